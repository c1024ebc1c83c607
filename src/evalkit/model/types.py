"""Messages, generation settings and outputs shared by every provider."""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, Union

from evalkit.model.content import Content, content_from_dict, content_to_dict, text_of, with_text
from evalkit.tool.types import ToolCall, ToolCallError, tool_call_from_dict, tool_call_to_dict

Role = Literal["system", "user", "assistant", "tool"]
StopReason = Literal["stop", "max_tokens", "model_length", "tool_calls", "content_filter", "error", "unknown"]


class _Text:
    """`.text`: a message's text parts joined (the whole content when it is a string)."""

    __slots__ = ()
    content: str | list[Content]

    @property
    def text(self) -> str:
        return text_of(self.content)


@dataclass(frozen=True, slots=True)
class ChatMessageSystem(_Text):
    """A system prompt."""

    content: str | list[Content]
    role: Literal["system"] = "system"


@dataclass(frozen=True, slots=True)
class ChatMessageUser(_Text):
    """A user turn (text, or text and images)."""

    content: str | list[Content]
    role: Literal["user"] = "user"


@dataclass(frozen=True, slots=True)
class ChatMessageAssistant(_Text):
    """A model turn: text (and reasoning) and the tool calls it asked for."""

    content: str | list[Content]
    tool_calls: list[ToolCall] | None = None
    role: Literal["assistant"] = "assistant"


@dataclass(frozen=True, slots=True)
class ChatMessageTool(_Text):
    """A tool's result (or the error the model is shown) for one of the model's tool calls."""

    content: str | list[Content]
    tool_call_id: str | None = None
    function: str | None = None
    error: ToolCallError | None = None
    role: Literal["tool"] = "tool"


ChatMessage = Union[ChatMessageSystem, ChatMessageUser, ChatMessageAssistant, ChatMessageTool]


def message_from_dict(data: dict[str, Any]) -> ChatMessage:
    """Build a ChatMessage from its JSON form (`{"role": ..., "content": ...}` and, for
    assistant and tool messages, their tool fields)."""
    role = data.get("role")
    content = data.get("content")
    if isinstance(content, list):
        content = [content_from_dict(part) for part in content]
    elif not isinstance(content, str):
        raise ValueError(f"message content must be a string or a list of content parts (got {type(content).__name__})")
    if role in ("system", "user"):
        return (ChatMessageSystem if role == "system" else ChatMessageUser)(content=content)
    if role == "assistant":
        calls = data.get("tool_calls")
        return ChatMessageAssistant(content=content, tool_calls=[tool_call_from_dict(c) for c in calls] if calls else None)
    if role == "tool":
        error = data.get("error")
        return ChatMessageTool(content=content, tool_call_id=data.get("tool_call_id"), function=data.get("function"),
                               error=ToolCallError(**error) if error else None)
    raise ValueError(f"message role must be one of system, user, assistant, tool (got {role!r})")


def input_text(input: str | list[ChatMessage]) -> str:
    """A prompt as text: the string itself, or the last user message's text."""
    if isinstance(input, str):
        return input
    return next((m.text for m in reversed(input) if m.role == "user"), "")


def message_to_dict(message: ChatMessage) -> dict[str, Any]:
    """The JSON form of a message: role, content (a string, or a list of parts) and, when
    set, tool calls, the tool call answered and its error."""
    content = message.content
    data: dict[str, Any] = {"role": message.role,
                            "content": content if isinstance(content, str) else [content_to_dict(p) for p in content]}
    if isinstance(message, ChatMessageAssistant) and message.tool_calls:
        data["tool_calls"] = [tool_call_to_dict(c) for c in message.tool_calls]
    elif isinstance(message, ChatMessageTool):
        data["tool_call_id"] = message.tool_call_id
        data["function"] = message.function
        if message.error is not None:
            data["error"] = {"type": message.error.type, "message": message.error.message}
    return data


@dataclass(frozen=True, slots=True)
class ResponseSchema:
    """Structured output: the reply must be JSON matching `json_schema`."""

    name: str
    json_schema: dict[str, Any]
    description: str | None = None
    strict: bool | None = None


ReasoningEffort = Literal["minimal", "low", "medium", "high"]


@dataclass(frozen=True, slots=True)
class BatchConfig:
    """Batch mode: requests go to the provider's batch API (Inspect's BatchConfig)."""

    size: int | None = None
    """Requests per batch (default: the provider's, 100 for most)."""
    send_delay: float | None = None
    """Seconds a partly filled batch waits for more requests before it is sent (default 15)."""
    tick: float | None = None
    """Most seconds between checks of a batch's status (default 15): the first comes after a
    second, later ones back off towards `tick` while the batch makes no progress."""
    max_batches: int | None = None
    """Batches in flight at once per model (default 100)."""
    max_size_mb: float | None = None
    """Most megabytes of request bodies per batch (default: the provider's limit)."""

    def __post_init__(self) -> None:
        for name in ("size", "send_delay", "tick", "max_batches", "max_size_mb"):
            value = getattr(self, name)
            whole = name in ("size", "max_batches")
            kind = (int,) if whole else (int, float)
            if value is not None and (isinstance(value, bool) or not isinstance(value, kind) or not 0 <= value < _LARGEST
                                      or (value == 0 and name != "send_delay")):
                raise ValueError(f"batch {name} must be {'a whole number above 0' if whole else 'a finite number above 0'} (got {value!r})")


def batch_config(value: Any) -> bool | int | BatchConfig | None:
    """GenerateConfig.batch from True/False, a size, a BatchConfig or its dict form."""
    if isinstance(value, dict):
        unknown = set(value) - {"size", "send_delay", "tick", "max_batches", "max_size_mb"}
        if unknown:
            raise ValueError(f"batch: unknown field {sorted(unknown)[0]!r} (known: size, send_delay, tick, max_batches, max_size_mb)")
        return BatchConfig(**value)
    if value is None or isinstance(value, (bool, BatchConfig)):
        return value
    if isinstance(value, int) and 0 < value < _LARGEST:
        return value
    raise ValueError(f"batch must be true, false, a batch size above 0 or a BatchConfig (got {value!r})")


@dataclass(frozen=True, slots=True)
class GenerateConfig:
    """Generation settings; `None` means "not set" so configs can be layered with `merge`."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_seqs: tuple[str, ...] | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    num_choices: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    timeout: float | None = None
    """Seconds the whole request may take: its attempts and the waits between them (default: no limit)."""
    attempt_timeout: float | None = None
    """Seconds one attempt may take before it is abandoned and retried (default 600)."""
    max_retries: int | None = None
    max_connections: int | Literal["auto"] | None = None
    """Concurrent requests per connection pool; "auto" adapts it (grows on success, backs off on 429s)."""
    requests_per_sec: float | None = None
    tokens_per_sec: float | None = None
    reasoning_effort: ReasoningEffort | None = None
    """How hard a reasoning model thinks (OpenAI reasoning models; others map it or warn)."""
    reasoning_tokens: int | None = None
    """The thinking budget in tokens (Anthropic extended thinking, Gemini thinking)."""
    response_schema: ResponseSchema | None = None
    """Make the reply JSON matching this schema (OpenAI, Gemini, vLLM guided decoding)."""
    parallel_tool_calls: bool | None = None
    """Whether the model may ask for several tool calls in one turn (where the API has the switch)."""
    max_tool_output: int | None = None
    """Bytes of a tool's result shown to the model (default 16 KiB); the rest is cut."""
    batch: bool | int | BatchConfig | None = None
    """Send requests through the provider's batch API: True, a batch size, or a BatchConfig."""

    def __post_init__(self) -> None:
        if self.batch is not None and not isinstance(self.batch, (bool, BatchConfig)):
            object.__setattr__(self, "batch", batch_config(self.batch))
        if self.stop_seqs is not None and not isinstance(self.stop_seqs, tuple):
            stops = [self.stop_seqs] if isinstance(self.stop_seqs, str) else self.stop_seqs
            object.__setattr__(self, "stop_seqs", tuple(stops))
        if isinstance(self.response_schema, dict):
            object.__setattr__(self, "response_schema", _response_schema(self.response_schema))
        if self.reasoning_effort is not None and self.reasoning_effort not in _EFFORTS:
            raise ValueError(f"reasoning_effort must be one of {', '.join(_EFFORTS)} (got {self.reasoning_effort!r})")
        for name, kind in _FIELD_KINDS.items():
            value = getattr(self, name)
            if value is None or (name == "max_connections" and value == "auto"):  # adaptive (model/adaptive.py)
                continue
            if kind is bool:
                ok = isinstance(value, bool)
            else:
                ok = isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool)
                ok = ok and abs(value) < _LARGEST  # also refuses inf and nan (nan < x is False)
                ok = ok and (value >= 0 if name in _NON_NEGATIVE else value > 0 if name in _POSITIVE else True)
            if not ok:
                raise ValueError(f"{name} must be {_DESCRIBE[name]} (got {value!r})")

    def merge(self, other: GenerateConfig | None) -> GenerateConfig:
        """A copy with every field that `other` sets taking precedence."""
        if other is None:
            return self
        updates = {name: value for name in GENERATE_CONFIG_FIELDS if (value := getattr(other, name)) is not None}
        if not updates:
            return self
        if all(name in updates or getattr(self, name) is None for name in GENERATE_CONFIG_FIELDS):
            return other  # `other` already holds every field set here: no new config to build
        return replace(self, **updates)

    def to_dict(self) -> dict[str, Any]:
        """The fields that are set."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerateConfig:
        """Build from a dict, rejecting unknown keys."""
        for key in data:
            if key not in GENERATE_CONFIG_FIELDS:
                close = closest_field(str(key), cutoff=0.75)
                known = f"did you mean {close}?" if close else f"known: {', '.join(sorted(GENERATE_CONFIG_FIELDS))}"
                raise ValueError(f"unknown generate config field {key!r} ({known})")
        return cls(**data)


GENERATE_CONFIG_FIELDS = frozenset(f.name for f in fields(GenerateConfig))

_FIELD_KINDS: dict[str, type] = {
    "max_tokens": int, "temperature": float, "top_p": float, "top_k": int, "seed": int,
    "frequency_penalty": float, "presence_penalty": float, "num_choices": int, "logprobs": bool,
    "top_logprobs": int, "timeout": float, "attempt_timeout": float, "max_retries": int, "max_connections": int,
    "requests_per_sec": float, "tokens_per_sec": float, "reasoning_tokens": int, "parallel_tool_calls": bool,
    "max_tool_output": int,
}
_EFFORTS = ("minimal", "low", "medium", "high")


def _response_schema(data: dict[str, Any]) -> ResponseSchema:
    """A ResponseSchema from its dict form; a bare JSON schema is named "response"."""
    if "json_schema" not in data:
        return ResponseSchema(name="response", json_schema=data)
    try:
        return ResponseSchema(**data)
    except TypeError as ex:
        raise ValueError(f"response_schema: {ex}") from None


def closest_field(name: str, cutoff: float) -> str | None:
    """The GenerateConfig field `name` most likely misspells, if one is close enough."""
    close = difflib.get_close_matches(name, sorted(GENERATE_CONFIG_FIELDS), n=1, cutoff=cutoff)
    return close[0] if close else None


_POSITIVE = {"max_tokens", "top_k", "num_choices", "timeout", "attempt_timeout", "max_connections", "requests_per_sec",
             "tokens_per_sec", "reasoning_tokens", "max_tool_output"}
_NON_NEGATIVE = {"temperature", "top_p", "top_logprobs", "max_retries"}
_LARGEST = 2**63  # what a log stores as a number
_DESCRIBE = {
    name: ("true or false" if kind is bool else ("a whole number" if kind is int else "a finite number"))
    + (" above 0" if name in _POSITIVE else " of 0 or more" if name in _NON_NEGATIVE else "")
    for name, kind in _FIELD_KINDS.items()
}


@dataclass(slots=True)
class ModelUsage:
    """Token counts for one or many requests."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0
    """Of output_tokens, those spent thinking (where the provider reports them)."""

    def add(self, other: ModelUsage | None) -> None:
        """Accumulate another usage into this one."""
        if other is not None:
            self.input_tokens += other.input_tokens
            self.output_tokens += other.output_tokens
            self.total_tokens += other.total_tokens
            self.reasoning_tokens += other.reasoning_tokens

    def to_dict(self) -> dict[str, int]:
        data = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens, "total_tokens": self.total_tokens}
        if self.reasoning_tokens:
            data["reasoning_tokens"] = self.reasoning_tokens
        return data


@dataclass(frozen=True, slots=True)
class TopLogprob:
    """One alternative token and its log probability."""

    token: str
    logprob: float


@dataclass(frozen=True, slots=True)
class Logprob:
    """A generated token, its log probability and the top alternatives."""

    token: str
    logprob: float
    top_logprobs: tuple[TopLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class ChatCompletionChoice:
    """One generated answer."""

    message: ChatMessageAssistant
    stop_reason: StopReason = "stop"
    logprobs: tuple[Logprob, ...] | None = None


@dataclass(slots=True)
class ModelOutput:
    """What one `generate` call produced."""

    model: str
    choices: list[ChatCompletionChoice] = field(default_factory=list)
    usage: ModelUsage | None = None
    time: float | None = None
    metadata: dict[str, Any] | None = None

    @property
    def message(self) -> ChatMessageAssistant:
        """The first choice's message (an empty one when there is no choice)."""
        return self.choices[0].message if self.choices else ChatMessageAssistant(content="")

    @property
    def completion(self) -> str:
        """The text of the first choice ("" when there is none)."""
        return self.choices[0].message.text if self.choices else ""

    @completion.setter
    def completion(self, text: str) -> None:
        """Replace the first choice's text (its reasoning and tool calls stay)."""
        if not self.choices:
            self.choices.append(ChatCompletionChoice(message=ChatMessageAssistant(content=text)))
            return
        message = self.choices[0].message
        self.choices[0] = replace(self.choices[0], message=replace(message, content=with_text(message.content, text)))

    @property
    def stop_reason(self) -> StopReason:
        """The stop reason of the first choice."""
        return self.choices[0].stop_reason if self.choices else "unknown"

    @classmethod
    def from_text(
        cls, model: str, text: str, *, stop_reason: StopReason = "stop", usage: ModelUsage | None = None
    ) -> ModelOutput:
        """An output with a single choice holding `text`."""
        choice = ChatCompletionChoice(message=ChatMessageAssistant(content=text), stop_reason=stop_reason)
        return cls(model=model, choices=[choice], usage=usage)
