"""Messages, generation settings and outputs shared by every provider."""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, Union

Role = Literal["system", "user", "assistant"]
StopReason = Literal["stop", "max_tokens", "content_filter", "error", "unknown"]


@dataclass(frozen=True, slots=True)
class ChatMessageSystem:
    """A system prompt."""

    content: str
    role: Literal["system"] = "system"


@dataclass(frozen=True, slots=True)
class ChatMessageUser:
    """A user turn."""

    content: str
    role: Literal["user"] = "user"


@dataclass(frozen=True, slots=True)
class ChatMessageAssistant:
    """A model turn."""

    content: str
    role: Literal["assistant"] = "assistant"


ChatMessage = Union[ChatMessageSystem, ChatMessageUser, ChatMessageAssistant]

_MESSAGE_TYPES: dict[str, type] = {
    "system": ChatMessageSystem,
    "user": ChatMessageUser,
    "assistant": ChatMessageAssistant,
}


def message_from_dict(data: dict[str, Any]) -> ChatMessage:
    """Build a ChatMessage from `{"role": ..., "content": ...}`."""
    role = data.get("role")
    if role not in _MESSAGE_TYPES:
        raise ValueError(f"message role must be one of system, user, assistant (got {role!r})")
    content = data.get("content")
    if not isinstance(content, str):
        raise ValueError(f"message content must be a string (got {type(content).__name__})")
    return _MESSAGE_TYPES[role](content=content)


def input_text(input: str | list[ChatMessage]) -> str:
    """A prompt as text: the string itself, or the last user message's content."""
    if isinstance(input, str):
        return input
    return next((m.content for m in reversed(input) if m.role == "user"), "")


def message_to_dict(message: ChatMessage) -> dict[str, str]:
    """The `{"role", "content"}` form of a message."""
    return {"role": message.role, "content": message.content}


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
    max_connections: int | None = None
    requests_per_sec: float | None = None
    tokens_per_sec: float | None = None

    def __post_init__(self) -> None:
        if self.stop_seqs is not None and not isinstance(self.stop_seqs, tuple):
            stops = [self.stop_seqs] if isinstance(self.stop_seqs, str) else self.stop_seqs
            object.__setattr__(self, "stop_seqs", tuple(stops))
        for name, kind in _FIELD_KINDS.items():
            value = getattr(self, name)
            if value is None:
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
    "requests_per_sec": float, "tokens_per_sec": float,
}


def closest_field(name: str, cutoff: float) -> str | None:
    """The GenerateConfig field `name` most likely misspells, if one is close enough."""
    close = difflib.get_close_matches(name, sorted(GENERATE_CONFIG_FIELDS), n=1, cutoff=cutoff)
    return close[0] if close else None


_POSITIVE = {"max_tokens", "top_k", "num_choices", "timeout", "attempt_timeout", "max_connections", "requests_per_sec", "tokens_per_sec"}
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

    def add(self, other: ModelUsage | None) -> None:
        """Accumulate another usage into this one."""
        if other is not None:
            self.input_tokens += other.input_tokens
            self.output_tokens += other.output_tokens
            self.total_tokens += other.total_tokens

    def to_dict(self) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens, "total_tokens": self.total_tokens}


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
    def completion(self) -> str:
        """The text of the first choice ("" when there is none)."""
        return self.choices[0].message.content if self.choices else ""

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
