"""`hf-pipeline`: local transformers task models, batched, answering as text a scorer compares.

Model names: `hf-pipeline/<task>/<hub-id>` or `hf-pipeline/<task>/local -M model_path=DIR`.
Each answer's text is what a scorer compares; the task's full output goes to the output's
metadata (and so to the sample's log line). How each task reads a chat (`pipeline_tasks`):

- text-classification, sentiment-analysis: the last user message -> the top label; a pair
  (NLI, paraphrase) as the JSON object `{"text": ..., "text_pair": ...}` (the Snowflake
  signature's names). The output: the labels ranked (top_k of them; all by default).
- zero-shot-classification: the last user message -> the top label; the candidate labels come
  from `-M candidate_labels=[a, b]`, else from the prompt's `A) option` lines (as
  `multiple_choice()` writes them; the sequence classified is the prompt without them).
- question-answering: the question is the last user message, the context the system
  message(s) (e.g. `system_message("{context}")` from sample metadata), else the prompt's
  `Context:` and `Question:` sections, or `{"question": ..., "context": ...}` -> the answer
  span. With top_k K > 1 the choices are the K best spans, best first, and the output is
  their list of {answer, score, start, end} (the Snowflake signature's `outputs`).
- table-question-answering (TAPAS models): the query is the last user message, the table the
  system message(s) (e.g. `system_message("{table}")`), or `{"query": ..., "table": ...}`. A
  table is JSON `{column: [values]}` (the Snowflake and transformers form) or
  `[{column: value}, ...]`, the same as a Python literal (what `{table}` writes for a dict in
  sample metadata), else CSV with a header row -> the pipeline's answer: the selected cells
  joined by ", ", after `AGGREGATOR > ` when the model aggregates (SUM, AVERAGE, COUNT); the
  output holds answer, coordinates ([row, column]), cells and aggregator ("NONE" when none).
- summarization, translation_xx_to_yy, text2text-generation: the last user message, with the
  model's task prefix (`task_specific_params`) -> the generated text(s), one choice per
  `--num-choices` sequence when sampling.
- fill-mask: text holding the mask token (or `[MASK]`/`<mask>`) -> the top token.
- token-classification, ner: the last user message -> `word (TYPE), word (TYPE), ...`.
- text-generation: the chat, through its template -> the generated text(s).

Transformers 5 dropped the question-answering and sequence-to-sequence pipelines, and its
table pipeline cannot batch; evalkit runs those tasks with the model classes directly. Own
model args: `model_path`, `tokenizer_path`, `device`, `dtype`, `batch_size`, `batch_wait`,
`candidate_labels`, `hypothesis_template`, `aggregation_strategy` (ner, default "simple"),
`top_k` (fill-mask candidates kept, default 5; question-answering spans, default 1;
text-classification labels, default all; these tasks do not sample, so `--top-k` sets it per
request, and the command line takes only that form); every other `-M` goes to `from_pretrained`.

No tools (the older `generate(messages, config)` form): a tool request fails with one line;
chat models that call tools run on the `hf` provider. Images fail the request with one line.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Callable

from evalkit.errors import ModelArgsError
from evalkit.model.api import ModelAPI
from evalkit.model.types import (
    ChatCompletionChoice, ChatMessage, ChatMessageAssistant, GenerateConfig, ModelOutput, ModelUsage, StopReason,
    input_text,
)
from evalkit.providers.local import pipeline_tasks as tasks
from evalkit.providers.local.batching import DEFAULT_MAX_WAIT, Batcher, Cancellation, batch_limit, settings_key
from evalkit.providers.local.chat_prompt import refuse_images
from evalkit.providers.local.hf import (
    DEFAULT_MAX_CONNECTIONS, decode_generated, eos_ids, generation_kwargs, load_pretrained,
    load_tokenizer, parse_dtype, resolve_source, select_device, stop_when_cancelled, trim_at_stop,
)
from evalkit.providers.local.replicas import Replicable
from evalkit.providers.local.weights import weights_identity

_ALIASES = {"sentiment-analysis": "text-classification", "ner": "token-classification"}
_DEFAULT_TOP_K = {"fill-mask": 5, "question-answering": 1}


@dataclass(frozen=True)
class Answer:
    """One request's result before it becomes a ModelOutput."""

    text: str
    output: Any
    input_tokens: int = 0
    output_tokens: int = 0
    stop_reason: StopReason = "stop"
    alternatives: tuple[tuple[str, StopReason], ...] = ()
    """The choices after the first, in order (num_choices sequences, top_k answers)."""


class HFPipelineAPI(Replicable, ModelAPI):
    """A transformers task model; concurrent requests with equal settings run as one batch
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
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int | None = None,
        batch_wait: float = DEFAULT_MAX_WAIT,
        candidate_labels: list[str] | str | None = None,
        hypothesis_template: str | None = None,
        aggregation_strategy: str = "simple",
        top_k: int | None = None,
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url=base_url, api_key=api_key, config=config, **model_args)
        self.task, kind, name = _parse_name(model_name)
        self.top_k = _top_k(top_k, self.task)
        self._load(kind, name, model_path, tokenizer_path, device, dtype, model_args)
        self.candidate_labels = _labels(candidate_labels)
        self.hypothesis_template = hypothesis_template
        self.aggregation_strategy = aggregation_strategy
        self.pipeline = _pipeline(kind, self.model, self.tokenizer, self.device) if kind in _PIPELINES else None
        self._bind_task(kind)
        self.batch_size = int(batch_size) if batch_size else None
        self.batcher: Batcher[Any, Answer] = Batcher(
            self._run_batch, self.activity, max_wait=float(batch_wait), thread_name="evalkit-hf-pipeline"
        )

    def _load(
        self, kind: str, name: str, model_path: str | None, tokenizer_path: str | None, device: str | None,
        dtype: str | None, model_args: dict[str, Any],
    ) -> None:
        """Pick the device and dtype, and load the tokenizer and the model for `kind`."""
        self.device = select_device(device)
        self.dtype = parse_dtype(dtype, self.device)
        self.source = resolve_source(
            name, model_path=model_path, tokenizer_path=tokenizer_path, gguf_file=None, dtype=self.dtype
        )
        self.tokenizer = load_tokenizer(self.source.tokenizer, "left" if kind == "text-generation" else "right")
        self.model = load_pretrained(_auto_class(kind), self.source.model, self.device, self.dtype, model_args)

    def _bind_task(self, kind: str) -> None:
        """Bind `kind`'s batch runner and request preparation (plain text unless it has its own)."""
        handler = kind.replace("-", "_")
        self._run: Callable[[GenerateConfig, Any, list[Any], Cancellation], list[Answer]] = getattr(
            self, f"_run_{handler}"
        )
        self._prepare: Callable[[list[ChatMessage]], tuple[Any, Hashable]] = getattr(
            self, f"_prepare_{handler}", self._prepare_text
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
        choices = [
            ChatCompletionChoice(ChatMessageAssistant(text), stop_reason=reason)
            for text, reason in ((answer.text, answer.stop_reason), *answer.alternatives)
        ]
        metadata = {"task": self.task, "output": tasks.plain(answer.output)}
        return ModelOutput(model=f"hf-pipeline/{self.model_name}", choices=choices, usage=usage, metadata=metadata)

    async def aclose(self) -> None:
        self.batcher.close()

    def _run_batch(
        self, key: tuple[GenerateConfig, Hashable], batch: list[Any], cancellation: Cancellation
    ) -> list[Answer]:
        import torch

        settings, extra = key
        with torch.inference_mode():
            return self._run(settings, extra, batch, cancellation)

    def _top_k(self, settings: GenerateConfig) -> int | None:
        """Candidates kept: `--top-k` (these tasks do not sample), else `-M top_k`, else the task's default."""
        return settings.top_k if settings.top_k is not None else self.top_k

    def _count(self, text: str | dict[str, str]) -> int:
        encoded = self.tokenizer(**text) if isinstance(text, dict) else self.tokenizer(text)
        return len(encoded["input_ids"])

    # --- preparing one request (event loop): (inputs, what else its batch must share) ---

    def _prepare_text(self, messages: list[ChatMessage]) -> tuple[Any, Hashable]:
        return input_text(messages), None

    def _prepare_text_classification(self, messages: list[ChatMessage]) -> tuple[Any, Hashable]:
        return tasks.classification_input(messages), None

    def _prepare_text_generation(self, messages: list[ChatMessage]) -> tuple[Any, Hashable]:
        return tuple((m.role, m.text) for m in messages), None

    def _prepare_zero_shot_classification(self, messages: list[ChatMessage]) -> tuple[Any, Hashable]:
        if self.candidate_labels:
            return input_text(messages), self.candidate_labels
        return tasks.zero_shot_input(messages)

    def _prepare_question_answering(self, messages: list[ChatMessage]) -> tuple[Any, Hashable]:
        return tasks.question_and_context(messages), None

    def _prepare_table_question_answering(self, messages: list[ChatMessage]) -> tuple[Any, Hashable]:
        return tasks.query_and_table(messages), None

    def _prepare_fill_mask(self, messages: list[ChatMessage]) -> tuple[Any, Hashable]:
        text = input_text(messages)
        mask = self.tokenizer.mask_token
        if mask is None:
            raise ValueError(f"the tokenizer of {self.model_name} has no mask token")
        return text.replace("[MASK]", mask).replace("<mask>", mask), None

    # --- running one batch (worker thread) ---

    def _run_text_classification(
        self, settings: GenerateConfig, extra: Any, texts: list[str | dict[str, str]], cancellation: Cancellation
    ) -> list[Answer]:
        results = tasks.per_input(self.pipeline(texts, batch_size=len(texts), top_k=self._top_k(settings)))
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
        results = tasks.per_input(self.pipeline(texts, batch_size=len(texts), top_k=self._top_k(settings)))
        return [
            Answer(ranked[0]["token_str"].strip(), ranked, self._count(text)) for text, ranked in zip(texts, results)
        ]

    def _run_token_classification(
        self, settings: GenerateConfig, extra: Any, texts: list[str], cancellation: Cancellation
    ) -> list[Answer]:
        found_all = self.pipeline(texts, batch_size=len(texts), aggregation_strategy=self.aggregation_strategy)
        results = tasks.per_input(found_all)
        return [Answer(tasks.entities_text(found), found, self._count(text)) for text, found in zip(texts, results)]

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
        for chat, sequences in zip(messages, results):
            prompt_tokens = len(self.tokenizer.apply_chat_template(chat, add_generation_prompt=True)["input_ids"])
            decoded = [self._generated(tasks.generated_text(s["generated_text"]), settings, kwargs) for s in sequences]
            answers.append(_answer_of(decoded, sequences, prompt_tokens))
        return answers

    def _generated(self, text: str, settings: GenerateConfig, kwargs: dict[str, Any]) -> tuple[str, int, StopReason]:
        """(text up to a stop sequence, tokens generated, stop reason) of one text-generation sequence."""
        output_tokens = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        text, stopped = trim_at_stop(text, settings.stop_seqs)
        stop: StopReason = "max_tokens" if output_tokens >= kwargs["max_new_tokens"] and not stopped else "stop"
        return text, output_tokens, stop

    def _run_seq2seq(
        self, settings: GenerateConfig, extra: Any, texts: list[str], cancellation: Cancellation
    ) -> list[Answer]:
        specific = getattr(self.model.config, "task_specific_params", None) or {}
        prefix = specific.get(self.task, {}).get("prefix", "")
        inputs = [prefix + text for text in texts]
        encoded = self.tokenizer(inputs, return_tensors="pt", padding=True, truncation=True).to(self.device)
        kwargs = generation_kwargs(settings, self.tokenizer)
        per_input = kwargs.get("num_return_sequences", 1)  # generate() returns each input's sequences in turn
        stopping = stop_when_cancelled(cancellation, per_input)
        rows = self.model.generate(**encoded, **kwargs, stopping_criteria=stopping)[:, 1:].tolist()
        ends = eos_ids(self.model.generation_config, self.tokenizer)
        answers = []
        for index, (text, mask) in enumerate(zip(inputs, encoded["attention_mask"])):
            own = rows[index * per_input : (index + 1) * per_input]
            decoded = [decode_generated(self.tokenizer, row, ends, settings.stop_seqs) for row in own]
            answers.append(_answer_of(decoded, {"input": text, "generated_text": decoded[0][0]}, int(mask.sum())))
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
        top_k = self._top_k(settings) or 1
        answers = []
        for row, context in enumerate(contexts):
            in_context = [i for i, part in enumerate(encoded.sequence_ids(row)) if part == 1]
            spans = tasks.best_spans(logits.start_logits[row], logits.end_logits[row], in_context, top_k)
            found = []
            for start, end, score in spans:
                begin, finish = int(offsets[row][start][0]), int(offsets[row][end][1])
                found.append({"answer": context[begin:finish], "score": score, "start": begin, "end": finish})
            texts = [span["answer"].strip() for span in found]
            output = found[0] if top_k == 1 else found  # as the pipeline: one dict, or a ranked list
            tokens = int(encoded["attention_mask"][row].sum())
            answers.append(Answer(texts[0], output, tokens, alternatives=tuple((t, "stop") for t in texts[1:])))
        return answers

    def _run_table_question_answering(
        self, settings: GenerateConfig, extra: Any, items: list[tuple[str, Any]], cancellation: Cancellation
    ) -> list[Answer]:
        encoded = self.tokenizer.pad(
            [self.tokenizer(table=table, queries=query, truncation="drop_rows_to_fit") for query, table in items],
            return_tensors="pt",
        )
        result = self.model(**{name: tensor.to(self.device) for name, tensor in encoded.items()})
        config = self.model.config
        aggregating = bool(getattr(config, "num_aggregation_labels", 0))
        aggregation = result.logits_aggregation.float().cpu() if aggregating else None
        predicted = self.tokenizer.convert_logits_to_predictions(encoded, result.logits.float().cpu(), aggregation)
        operators = predicted[1] if aggregating else [None] * len(items)
        answers = []
        for row, ((_, table), coordinates, operator) in enumerate(zip(items, predicted[0], operators)):
            aggregator = config.aggregation_labels[operator] if operator is not None else "NONE"
            prefixed = operator is not None and operator != config.no_aggregation_label_index
            found = tasks.table_answer(table, coordinates, aggregator, prefixed)
            answers.append(Answer(found["answer"], found, int(encoded["attention_mask"][row].sum())))
        return answers


_PIPELINES = ("text-classification", "zero-shot-classification", "fill-mask", "token-classification", "text-generation")
_DIRECT = ("question-answering", "table-question-answering")
_SEQ2SEQ = ("summarization", "text2text-generation", "translation")


def _parse_name(model_name: str) -> tuple[str, str, str]:
    """(task, kind, model) of `<task>/<model>`, the task's alias resolved."""
    task, _, name = model_name.partition("/")
    task = _ALIASES.get(task, task)
    kind = _kind(task)
    if kind is None or not name:
        raise ModelArgsError(
            f"hf-pipeline model '{model_name}' must be <task>/<model>, task one of: "
            "text-classification, sentiment-analysis, zero-shot-classification, question-answering, "
            "table-question-answering, summarization, translation_xx_to_yy, text2text-generation, fill-mask, "
            "token-classification, ner, text-generation"
        )
    return task, kind, name


def _labels(candidate_labels: list[str] | str | None) -> tuple[str, ...] | None:
    """The zero-shot candidate labels, from a list or a comma-separated string; None when none."""
    if isinstance(candidate_labels, str):
        candidate_labels = [label.strip() for label in candidate_labels.split(",") if label.strip()]
    return tuple(candidate_labels) if candidate_labels else None


def _kind(task: str) -> str | None:
    """The handler family of `task` (translation_xx_to_yy and summarization are seq2seq)."""
    if task in _PIPELINES or task in _DIRECT:
        return task
    if task in _SEQ2SEQ or task.startswith("translation_"):
        return "seq2seq"
    return None


def _top_k(top_k: int | None, task: str) -> int | None:
    """`-M top_k`, else the task's default (fill-mask 5, question-answering 1, else all)."""
    if top_k is None:
        return _DEFAULT_TOP_K.get(task)
    if not str(top_k).isdigit() or int(top_k) < 1:
        raise ModelArgsError(f"-M top_k={top_k} must be a whole number of at least 1")
    return int(top_k)


def _auto_class(kind: str) -> Any:
    import transformers

    names = {
        "text-classification": "AutoModelForSequenceClassification",
        "zero-shot-classification": "AutoModelForSequenceClassification",
        "fill-mask": "AutoModelForMaskedLM",
        "token-classification": "AutoModelForTokenClassification",
        "text-generation": "AutoModelForCausalLM",
        "question-answering": "AutoModelForQuestionAnswering",
        "table-question-answering": "AutoModelForTableQuestionAnswering",
        "seq2seq": "AutoModelForSeq2SeqLM",
    }
    return getattr(transformers, names[kind])


def _pipeline(kind: str, model: Any, tokenizer: Any, device: str) -> Any:
    from transformers import pipeline

    return pipeline(kind, model=model, tokenizer=tokenizer, device=device)


def _answer_of(decoded: list[tuple[str, int, StopReason]], output: Any, input_tokens: int) -> Answer:
    """The Answer of one input's generated sequences, each (text, tokens, stop reason)."""
    (text, _, stop), *others = decoded
    output_tokens = sum(count for _, count, _ in decoded)
    return Answer(text, output, input_tokens, output_tokens, stop, tuple((t, reason) for t, _, reason in others))
