"""Anthropic Message Batches (`client.messages.batches` of the anthropic SDK).

A batch is created from `{"custom_id", "params"}` requests (params: the Messages API body
generate() sends), polled until its processing_status is "ended", and its results (JSON Lines
at the batch's results_url) map each custom_id to the Message, or to an exception:
`errored` results carry the API's error type, mapped to the HTTP status the Messages API would
have answered (so 400s fail as they would without batching and overloaded/api errors are
retried); `expired` (not processed within 24 hours) and `canceled` ones are retried, in a
later batch.
"""

from __future__ import annotations

from typing import Any

import anthropic

from evalkit.model.batch.protocol import BatchProtocol, BatchRequest, BatchRequestError, BatchStatus
from evalkit.providers.common.sdk_transport import SDKTransport

MAX_REQUESTS = 100_000
"""The API's cap on requests per batch."""
MAX_BYTES = 250_000_000
"""Request bodies per batch: the API caps a batch at 256 MB, envelope included."""

ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
"""The HTTP status the Messages API answers with each error type."""

UNPROCESSED_STATUS = 408
"""An expired or canceled request is treated as timed out: retried, like a 408."""


class MessageBatchError(BatchRequestError):
    """One request of a Message Batch that did not succeed, with the API's error `body` (read,
    like `status_code`, as an SDK status error's)."""

    def __init__(self, message: str, status_code: int | None, body: Any = None) -> None:
        super().__init__(message, status_code)
        self.body = body


class MessageBatches(BatchProtocol):
    """The Message Batches API on the provider's own anthropic client (its transport's)."""

    max_requests = MAX_REQUESTS
    max_bytes = MAX_BYTES

    def __init__(self, transport: SDKTransport) -> None:
        self.transport = transport

    async def submit(self, requests: list[BatchRequest]) -> str:
        wire = [{"custom_id": request.custom_id, "params": request.body} for request in requests]
        batch = await self._call(self._batches().create(requests=wire))
        return str(batch.id)

    async def status(self, batch_id: str) -> BatchStatus:
        batch = await self._call(self._batches().retrieve(batch_id))
        counts = batch.request_counts
        unfinished = counts.canceled + counts.expired
        total = counts.processing + counts.succeeded + counts.errored + unfinished
        status = BatchStatus("running", counts.succeeded, counts.errored + unfinished, total)
        if batch.processing_status != "ended":
            return status
        if counts.succeeded + counts.errored == 0 and unfinished:
            status.state, status.error = "failed", f"{self.transport.provider}: batch {batch_id} {_end_reason(counts)}"
        else:
            status.state = "ended"
        return status

    async def results(self, batch_id: str) -> dict[str, dict[str, Any] | Exception]:
        decoder = await self._call(self._batches().results(batch_id))
        return {item.custom_id: self._result(item.result) async for item in decoder}

    def _result(self, result: Any) -> dict[str, Any] | Exception:
        """A result's Message as the Messages API returns it, or the exception for its failure."""
        if result.type == "succeeded":
            return result.message.to_dict(mode="json")
        if result.type == "errored":
            body = result.error.to_dict(mode="json")
            error = body.get("error") or {}
            message = f"{self.transport.provider}: {error.get('type')}: {error.get('message')}"
            failure = MessageBatchError(message, ERROR_STATUS.get(error.get("type")), body)
            return self.transport.status_error(failure) or failure
        expired = result.type == "expired"
        reason = "the batch expired before this request was processed" if expired else f"the request was {result.type}"
        return MessageBatchError(f"{self.transport.provider}: {reason}", UNPROCESSED_STATUS)

    def _batches(self) -> Any:
        return self.transport.client().messages.batches

    async def _call(self, request: Any) -> Any:
        """Await an SDK call, its status errors mapped as the provider's requests' are."""
        try:
            return await request
        except anthropic.APIStatusError as error:
            mapped = self.transport.status_error(error)
            if mapped is None:
                raise
            raise mapped from error


def _end_reason(counts: Any) -> str:
    """Why a batch ended without results: all its requests expired or were canceled."""
    if counts.expired and not counts.canceled:
        return f"expired ({counts.expired} requests unprocessed after 24 hours)"
    return f"was canceled ({counts.canceled} canceled, {counts.expired} expired)"
