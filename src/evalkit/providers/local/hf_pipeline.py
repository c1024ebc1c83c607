"""`hf-pipeline`: local transformers task models, batched, answering as text a scorer compares.

Model names: `hf-pipeline/<task>/<hub-id>` or `hf-pipeline/<task>/local -M model_path=DIR`.
Each answer's text is what a scorer compares; the task's full output goes to the output's
metadata (and so to the sample's log line).

- text-classification, sentiment-analysis: the last user message -> the top label.
- zero-shot-classification: the last user message -> the top label; the candidate labels come
  from `-M candidate_labels=[a, b]`, else from the prompt's `A) option` lines (as
  `multiple_choice()` writes them; the sequence classified is the prompt without them).
- question-answering: the question is the last user message, the context the system
  message(s) (e.g. `system_message("{context}")` from sample metadata), else the prompt's
  `Context:` and `Question:` sections -> the answer span.
- summarization, translation_xx_to_yy, text2text-generation: the last user message, with the
  model's task prefix (`task_specific_params`) -> the generated text.
- fill-mask: text holding the mask token (or `[MASK]`/`<mask>`) -> the top token.
- token-classification, ner: the last user message -> `word (TYPE), word (TYPE), ...`.
- text-generation: the chat, through its template -> the generated text.

Transformers 5 dropped the question-answering and sequence-to-sequence pipelines; evalkit runs
those tasks with the model classes directly. Own model args: `model_path`, `tokenizer_path`,
`device`, `dtype`, `batch_size`, `batch_wait`, `candidate_labels`, `hypothesis_template`,
`aggregation_strategy` (ner, default "simple"), `top_k` (fill-mask candidates kept, default 5);
every other `-M` goes to `from_pretrained`.

No tools (the older `generate(messages, config)` form): a tool request fails with one line;
chat models that call tools run on the `hf` provider. Images fail the request with one line.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Callable

from evalkit.errors import ModelArgsError
from evalkit.model.api import ModelAPI
from evalkit.model.types import (
    ChatCompletionChoice, ChatMessage, ChatMessageAssistant, GenerateConfig, ModelOutput, ModelUsage, StopReason,
    input_text,
)
from evalkit.providers.local.batching import DEFAULT_MAX_WAIT, Batcher, Cancellation, batch_limit, settings_key
from evalkit.providers.local.chat_prompt import refuse_images
from evalkit.providers.local.hf import (
    DEFAULT_MAX_CONNECTIONS, decode_generated, eos_ids, generation_kwargs, load_pretrained,
    load_tokenizer, parse_dtype, resolve_source, select_device, stop_when_cancelled, trim_at_stop,
)
from evalkit.providers.local.weights import weights_identity

_OPTION = re.compile(r"^\s*([A-Z])\)\s+(.+?)\s*$", re.MULTILINE)
_SECTION = re.compile(r"^\s*(context|question)\s*:\s*", re.IGNORECASE | re.MULTILINE)
_ALIASES = {"sentiment-analysis": "text-classification", "ner": "token-classification"}
MAX_ANSWER_TOKENS = 30


@dataclass(frozen=True)
class Answer:
    """One request's result before it becomes a ModelOutput."""

    text: str
    output: Any
    input_tokens: int = 0
    output_tokens: int = 0
    stop_reason: StopReason = "stop"


class HFPipelineAPI(ModelAPI):
    """A transformers task model; concurrent requests with equal settings run as one batch."""

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
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int | None = None,
        batch_wait: float = DEFAULT_MAX_WAIT,
        candidate_labels: list[str] | str | None = None,
        hypothesis_template: str | None = None,
        aggregation_strategy: str = "simple",
        top_k: int = 5,
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url=base_url, api_key=api_key, config=config, **model_args)
        task, _, name = model_name.partition("/")
        self.task = _ALIASES.get(task, task)
        kind = _kind(self.task)
        if kind is None or not name:
            raise ModelArgsError(
                f"hf-pipeline model '{model_name}' must be <task>/<model>, task one of: "
                "text-classification, sentiment-analysis, zero-shot-classification, question-answering, "
                "summarization, translation_xx_to_yy, text2text-generation, fill-mask, token-classification, "
                "ner, text-generation"
            )
        self.device = select_device(device)
        self.dtype = parse_dtype(dtype, self.device)
        source = resolve_source(
            name, model_path=model_path, tokenizer_path=tokenizer_path, gguf_file=None, dtype=self.dtype
        )
        self.source = source
        self.tokenizer = load_tokenizer(source.tokenizer, "left" if kind == "text-generation" else "right")
        self.model = load_pretrained(_auto_class(kind), source.model, self.device, self.dtype, model_args)
        if isinstance(candidate_labels, str):
            candidate_labels = [label.strip() for label in candidate_labels.split(",") if label.strip()]
        self.candidate_labels = tuple(candidate_labels) if candidate_labels else None
        self.hypothesis_template = hypothesis_template
        self.aggregation_strategy = aggregation_strategy
        self.top_k = int(top_k)
        self.pipeline = _pipeline(kind, self.model, self.tokenizer, self.device) if kind in _PIPELINES else None
        handler = kind.replace("-", "_")
        self._run: Callable[[GenerateConfig, Any, list[Any], Cancellation], list[Answer]] = getattr(
            self, f"_run_{handler}"
        )
        self._prepare: Callable[[list[ChatMessage]], tuple[Any, Hashable]] = getattr(
            self, f"_prepare_{handler}", self._prepare_text
        )
        self.batch_size = int(batch_size) if batch_size else None
        self.batcher: Batcher[Any, Answer] = Batcher(
            self._run_batch, self.activity, max_wait=float(batch_wait), thread_name="evalkit-hf-pipeline"
        )

    def max_connections(self) -> int:
        return DEFAULT_MAX_CONNECTIONS

    def weights(self) -> dict[str, str] | None:
        return weights_identity(self.source.weights)

    async def generate(self, messages: list[ChatMessage], config: GenerateConfig) -> ModelOutput:
        refuse_images("hf-pipeline", messages)
        inputs, extra = self._prepare(list(messages))
        limit = batch_limit(config, self.max_connections(), self.batch_size)
        length = sum(len(m.text) for m in messages)
        answer = await self.batcher.submit(inputs, key=(settings_key(config), extra), length=length, limit=limit)
        usage = ModelUsage(answer.input_tokens, answer.output_tokens, answer.input_tokens + answer.output_tokens)
        choice = ChatCompletionChoice(ChatMessageAssistant(answer.text), stop_reason=answer.stop_reason)
        metadata = {"task": self.task, "output": _plain(answer.output)}
        return ModelOutput(model=f"hf-pipeline/{self.model_name}", choices=[choice], usage=usage, metadata=metadata)

    async def aclose(self) -> None:
        self.batcher.close()

    def _run_batch(
        self, key: tuple[GenerateConfig, Hashable], batch: list[Any], cancellation: Cancellation
    ) -> list[Answer]:
        import torch

        settings, extra = key
        with torch.inference_mode():
            return self._run(settings, extra, batch, cancellation)

    def _count(self, text: str) -> int:
        return len(self.tokenizer(text)["input_ids"])

    # --- preparing one request (event loop): (inputs, what else its batch must share) ---

    def _prepare_text(self, messages: list[ChatMessage]) -> tuple[Any, Hashable]:
        return input_text(messages), None

    def _prepare_text_generation(self, messages: list[ChatMessage]) -> tuple[Any, Hashable]:
        return tuple((m.role, m.text) for m in messages), None

    def _prepare_zero_shot_classification(self, messages: list[ChatMessage]) -> tuple[Any, Hashable]:
        text = input_text(messages)
        if self.candidate_labels:
            return text, self.candidate_labels
        options = _OPTION.findall(text)
        if not options:
            raise ValueError(
                "zero-shot-classification needs candidate labels: -M candidate_labels=[a, b] or "
                "'A) option' lines in the prompt (multiple_choice() writes them)"
            )
        return _OPTION.sub("", text).strip(), tuple(option for _, option in options)

    def _prepare_question_answering(self, messages: list[ChatMessage]) -> tuple[Any, Hashable]:
        question = input_text(messages)
        context = "\n".join(m.text for m in messages if m.role == "system")
        if not context:
            parts = dict(zip(*[iter(_SECTION.split(question)[1:])] * 2))  # {"context": ..., "question": ...}
            sections = {name.lower(): value.strip() for name, value in parts.items()}
            context, question = sections.get("context", ""), sections.get("question", question)
        if not context:
            raise ValueError(
                "question-answering needs a context: a system message (e.g. system_message('{context}')) "
                "or 'Context: ...' and 'Question: ...' in the prompt"
            )
        return (question, context), None

    def _prepare_fill_mask(self, messages: list[ChatMessage]) -> tuple[Any, Hashable]:
        text = input_text(messages)
        mask = self.tokenizer.mask_token
        if mask is None:
            raise ValueError(f"the tokenizer of {self.model_name} has no mask token")
        return text.replace("[MASK]", mask).replace("<mask>", mask), None

    # --- running one batch (worker thread) ---

    def _run_text_classification(
        self, settings: GenerateConfig, extra: Any, texts: list[str], cancellation: Cancellation
    ) -> list[Answer]:
        results = _per_input(self.pipeline(texts, batch_size=len(texts), top_k=None))
        return [Answer(ranked[0]["label"], ranked, self._count(text)) for text, ranked in zip(texts, results)]

    def _run_zero_shot_classification(
        self, settings: GenerateConfig, labels: tuple[str, ...], texts: list[str], cancellation: Cancellation
    ) -> list[Answer]:
        options = {"hypothesis_template": self.hypothesis_template} if self.hypothesis_template else {}
        results = self.pipeline(texts, candidate_labels=list(labels), batch_size=len(texts), **options)
        results = results if isinstance(results, list) else [results]
        return [Answer(result["labels"][0], result, self._count(text)) for text, result in zip(texts, results)]

    def _run_fill_mask(
        self, settings: GenerateConfig, extra: Any, texts: list[str], cancellation: Cancellation
    ) -> list[Answer]:
        results = _per_input(self.pipeline(texts, batch_size=len(texts), top_k=self.top_k))
        return [
            Answer(ranked[0]["token_str"].strip(), ranked, self._count(text)) for text, ranked in zip(texts, results)
        ]

    def _run_token_classification(
        self, settings: GenerateConfig, extra: Any, texts: list[str], cancellation: Cancellation
    ) -> list[Answer]:
        found_all = self.pipeline(texts, batch_size=len(texts), aggregation_strategy=self.aggregation_strategy)
        results = _per_input(found_all)
        return [Answer(_entities_text(found), found, self._count(text)) for text, found in zip(texts, results)]

    def _run_text_generation(
        self, settings: GenerateConfig, extra: Any, chats: list[tuple[tuple[str, str], ...]], cancellation: Cancellation
    ) -> list[Answer]:
        messages = [[{"role": role, "content": content} for role, content in chat] for chat in chats]
        kwargs = generation_kwargs(settings, self.tokenizer)
        stopping = stop_when_cancelled(cancellation, None)  # the pipeline's rows are its own business
        results = self.pipeline(
            messages, batch_size=len(messages), return_full_text=False, stopping_criteria=stopping, **kwargs
        )
        answers = []
        for chat, result in zip(messages, results):
            text = _generated_text(result[0]["generated_text"])
            output_tokens = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            prompt_tokens = len(self.tokenizer.apply_chat_template(chat, add_generation_prompt=True)["input_ids"])
            text, stopped = trim_at_stop(text, settings.stop_seqs)
            stop: StopReason = "max_tokens" if output_tokens >= kwargs["max_new_tokens"] and not stopped else "stop"
            answers.append(Answer(text, result, prompt_tokens, output_tokens, stop))
        return answers

    def _run_seq2seq(
        self, settings: GenerateConfig, extra: Any, texts: list[str], cancellation: Cancellation
    ) -> list[Answer]:
        specific = getattr(self.model.config, "task_specific_params", None) or {}
        prefix = specific.get(self.task, {}).get("prefix", "")
        inputs = [prefix + text for text in texts]
        encoded = self.tokenizer(inputs, return_tensors="pt", padding=True, truncation=True).to(self.device)
        kwargs = generation_kwargs(settings, self.tokenizer)
        stopping = stop_when_cancelled(cancellation, kwargs.get("num_return_sequences", 1))
        generated = self.model.generate(**encoded, **kwargs, stopping_criteria=stopping)
        ends = eos_ids(self.model.generation_config, self.tokenizer)
        answers = []
        for text, mask, row in zip(inputs, encoded["attention_mask"], generated[:, 1:].tolist()):
            answer, count, stop = decode_generated(self.tokenizer, row, ends, settings.stop_seqs)
            answers.append(Answer(answer, {"input": text, "generated_text": answer}, int(mask.sum()), count, stop))
        return answers

    def _run_question_answering(
        self, settings: GenerateConfig, extra: Any, pairs: list[tuple[str, str]], cancellation: Cancellation
    ) -> list[Answer]:
        questions, contexts = [q for q, _ in pairs], [c for _, c in pairs]
        encoded = self.tokenizer(
            questions, contexts, truncation="only_second", padding=True, return_offsets_mapping=True,
            return_tensors="pt", max_length=min(self.tokenizer.model_max_length, 512),
        )
        offsets = encoded.pop("offset_mapping")
        logits = self.model(**encoded.to(self.device))
        answers = []
        for row, context in enumerate(contexts):
            in_context = [i for i, part in enumerate(encoded.sequence_ids(row)) if part == 1]
            start, end, score = _best_span(logits.start_logits[row], logits.end_logits[row], in_context)
            begin, finish = int(offsets[row][start][0]), int(offsets[row][end][1])
            found = {"answer": context[begin:finish], "score": score, "start": begin, "end": finish}
            answers.append(Answer(found["answer"].strip(), found, int(encoded["attention_mask"][row].sum())))
        return answers


_PIPELINES = ("text-classification", "zero-shot-classification", "fill-mask", "token-classification", "text-generation")
_SEQ2SEQ = ("summarization", "text2text-generation", "translation")


def _kind(task: str) -> str | None:
    """The handler family of `task` (translation_xx_to_yy and summarization are seq2seq)."""
    if task in _PIPELINES or task == "question-answering":
        return task
    if task in _SEQ2SEQ or task.startswith("translation_"):
        return "seq2seq"
    return None


def _auto_class(kind: str) -> Any:
    import transformers

    names = {
        "text-classification": "AutoModelForSequenceClassification",
        "zero-shot-classification": "AutoModelForSequenceClassification",
        "fill-mask": "AutoModelForMaskedLM",
        "token-classification": "AutoModelForTokenClassification",
        "text-generation": "AutoModelForCausalLM",
        "question-answering": "AutoModelForQuestionAnswering",
        "seq2seq": "AutoModelForSeq2SeqLM",
    }
    return getattr(transformers, names[kind])


def _pipeline(kind: str, model: Any, tokenizer: Any, device: str) -> Any:
    from transformers import pipeline

    return pipeline(kind, model=model, tokenizer=tokenizer, device=device)


def _best_span(start_logits: Any, end_logits: Any, allowed: list[int]) -> tuple[int, int, float]:
    """The (start, end) token span within `allowed` with the highest start+end score, at most
    MAX_ANSWER_TOKENS long, and its probability."""
    import torch

    index = torch.tensor(allowed)
    starts = torch.softmax(start_logits[index].float(), -1)
    ends = torch.softmax(end_logits[index].float(), -1)
    scores = torch.triu(starts[:, None] * ends[None, :])
    scores = torch.tril(scores, MAX_ANSWER_TOKENS - 1)
    best = int(torch.argmax(scores))
    first, last = divmod(best, len(allowed))
    return allowed[first], allowed[last], float(scores[first, last])


def _per_input(results: list[Any]) -> list[list[Any]]:
    """One ranked list per input: pipelines return a bare list for a batch of one."""
    return [results] if results and isinstance(results[0], dict) else results


def _entities_text(entities: list[dict[str, Any]]) -> str:
    return ", ".join(f"{e['word'].strip()} ({e.get('entity_group') or e.get('entity')})" for e in entities)


def _generated_text(generated: Any) -> str:
    """The new text of a text-generation result (a string, or the chat's last message)."""
    if isinstance(generated, list):
        return generated[-1]["content"] if generated else ""
    return str(generated)


def _plain(value: Any) -> Any:
    """`value` with numpy and torch scalars turned into Python numbers (for the JSON log)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value
