"""The contract between the batcher and one provider's batch API.

A ModelAPI that supports batch mode implements, beside `generate`:

    def batch_protocol(self) -> BatchProtocol     # built lazily, same client and credentials
    def batch_body(self, input, tools, tool_choice, config) -> dict[str, Any]   # what generate() sends
    def batch_output(self, body: dict[str, Any]) -> ModelOutput                 # how generate() parses a reply

`batch_body` may be `async def` (building messages loads images): the batcher awaits its
result when it is awaitable.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class BatchRequest:
    """One generate() call inside a batch."""

    custom_id: str
    """Unique within the batch; maps the result back to its sample."""
    body: dict[str, Any]
    """The provider's own request body for this one generate(), exactly what generate() would
    send (model included)."""


@dataclass
class BatchStatus:
    """Where one submitted batch stands."""

    state: Literal["running", "ended", "failed"]
    """ended: results can be fetched; failed: the whole batch failed, expired or was cancelled."""
    completed: int = 0
    failed: int = 0
    total: int = 0
    error: str | None = None
    """Why the whole batch failed/expired/was cancelled."""
    retryable: bool = True
    """For a failed batch: whether its requests are worth sending again (expired, cancelled),
    or not (the provider refused the batch itself)."""


class BatchError(Exception):
    """A request's batch failed as a whole, or ended without a result for it."""


class BatchRetryError(BatchError, TimeoutError):
    """A batch expired, was cancelled or lost a request: the request is sent again (a
    TimeoutError, so evalkit's retries treat it as transient)."""


class BatchProtocol(ABC):
    """One provider's batch API (file upload/create/poll/results), on that provider's SDK client."""

    max_requests: int
    """The API's cap on requests per batch."""

    @abstractmethod
    async def submit(self, requests: list[BatchRequest]) -> str:
        """Create one batch of `requests`; return its id."""

    @abstractmethod
    async def status(self, batch_id: str) -> BatchStatus:
        """Poll batch `batch_id` once."""

    @abstractmethod
    async def results(self, batch_id: str) -> dict[str, dict[str, Any] | Exception]:
        """custom_id -> that request's reply body, shaped as the provider's normal (non-batch)
        endpoint returns it, or an exception for a request that failed (the provider's
        is_retryable()/is_rate_limit() decide whether evalkit retries it)."""


class BatchRequestError(Exception):
    """One request failed inside a batch with HTTP `status_code`: the provider's
    is_retryable()/is_rate_limit() classify it as they would a direct reply's error."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
