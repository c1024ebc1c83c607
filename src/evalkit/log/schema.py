"""What an eval log holds: a header, one record per finished sample, a footer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from evalkit.model.types import ChatMessage

EvalStatus = Literal["started", "success", "error", "cancelled"]

LOG_FORMAT_VERSION = 1


@dataclass(slots=True)
class EvalSample:
    """One finished (sample, epoch): the conversation, the output, scores, usage, timing, error."""

    id: int | str
    epoch: int
    input: str | list[dict[str, Any]]
    target: str | list[str]
    messages: list[dict[str, Any]]
    output: dict[str, Any] | None
    scores: dict[str, dict[str, Any]]
    usage: dict[str, int] | None
    time: float
    error: str | None = None
    retries: list[dict[str, Any]] | None = None
    metadata: dict[str, Any] | None = None
    """The sample's metadata as the dataset gave it."""
    state_metadata: dict[str, Any] | None = None
    """`TaskState.metadata` when the sample ended (left out of the line when unchanged)."""
    limit: dict[str, Any] | None = None
    """The limit that ended the sample's solvers (`{"type": "message" | "token", "limit": N}`)."""
    cache_hits: int | None = None
    """How many of the sample's model calls the output cache answered."""

    @property
    def chat_messages(self) -> list[ChatMessage]:
        """`messages` as ChatMessage objects (content parts, tool calls and tool results included)."""
        from evalkit.model.types import message_from_dict

        return [message_from_dict(m) for m in self.messages]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; empty optional fields are left out to keep lines small."""
        data: dict[str, Any] = {
            "id": self.id,
            "epoch": self.epoch,
            "input": self.input,
            "target": self.target,
            "messages": self.messages,
            "output": self.output,
            "scores": self.scores,
            "usage": self.usage,
            "time": self.time,
        }
        if self.error is not None:
            data["error"] = self.error
        if self.retries:
            data["retries"] = self.retries
        if self.metadata:
            data["metadata"] = self.metadata
        if self.state_metadata is not None and _changed(self.state_metadata, self.metadata or {}):
            data["state_metadata"] = self.state_metadata
        if self.limit is not None:
            data["limit"] = self.limit
        if self.cache_hits:
            data["cache_hits"] = self.cache_hits
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalSample:
        return cls(
            id=data["id"],
            epoch=data.get("epoch", 1),
            input=data.get("input", ""),
            target=data.get("target", ""),
            messages=data.get("messages", []),
            output=data.get("output"),
            scores=data.get("scores", {}),
            usage=data.get("usage"),
            time=data.get("time", 0.0),
            error=data.get("error"),
            retries=data.get("retries"),
            metadata=data.get("metadata"),
            state_metadata=data.get("state_metadata", data.get("metadata")),
            limit=data.get("limit"),
            cache_hits=data.get("cache_hits"),
        )


def _changed(now: dict[str, Any], before: dict[str, Any]) -> bool:
    try:
        return bool(now != before)
    except Exception:  # values such as numpy arrays that do not compare to one bool
        return True


@dataclass
class EvalLog:
    """A whole log file: header fields, samples in finishing order, and the footer if written.

    `samples` are read from the file the first time they are asked for. `ignored_line` is the
    number of a damaged last line (cut short by a kill or a full disk) left out when reading.
    """

    location: Path
    header: dict[str, Any]
    footer: dict[str, Any] | None = None
    loaded_samples: list[EvalSample] | None = field(default=None, repr=False)
    ignored_line: int | None = None

    @property
    def samples(self) -> list[EvalSample]:
        if self.loaded_samples is None:
            from evalkit.log.reader import read_eval_log

            self.loaded_samples = read_eval_log(self.location).samples
        return self.loaded_samples

    @property
    def status(self) -> EvalStatus:
        """success / error / cancelled from the footer; "started" for a log with no footer
        (still running, or killed)."""
        return self.footer["status"] if self.footer else "started"

    @property
    def task(self) -> str:
        return self.header["task"]

    @property
    def model(self) -> str:
        return self.header["model"]

    @property
    def eval_id(self) -> str:
        return self.header["eval_id"]

    @property
    def results(self) -> dict[str, dict[str, float]]:
        """Metric values per scorer (empty until the footer is written)."""
        return self.footer.get("results", {}) if self.footer else {}

    @property
    def error(self) -> str | None:
        return self.footer.get("error") if self.footer else None
