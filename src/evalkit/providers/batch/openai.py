"""OpenAI's Batch API (also Together's, at its own base URL): a JSONL file of requests is
uploaded (POST /files, purpose=batch), a batch made from it (POST /batches), polled
(GET /batches/{id}), and its output and error files downloaded (GET /files/{id}/content).

Together's differs in small ways, each handled here: the file purpose is "batch-api", its
request lines hold only custom_id and body, batch creation answers `{"job": {...}}`, and its
statuses are upper case (VALIDATING, IN_PROGRESS, COMPLETED, FAILED, EXPIRED, CANCELLED) with
a `progress` percentage instead of request counts.

An OpenAI batch is created with `metadata` naming its submission, so a create whose reply was
lost is found among the recent batches (GET /batches) and adopted (lost_creates.py); a retried
create reuses the uploaded file. Together's batches take no metadata: there a create whose
reply is lost may leave a second batch.

Errors of the file and batch calls are the provider's one-line errors, as for direct requests."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import orjson

from evalkit.providers.batch.lost_creates import LOOKUP_LIMIT, LostCreates, submission_tag
from evalkit.model.batch.protocol import (
    BatchProtocol,
    BatchRequest,
    BatchRequestError,
    BatchRetryError,
    BatchStatus,
)
from evalkit.providers.common.http_errors import body_detail, error_status, request_error
from evalkit.providers.common.sdk_transport import SDKTransport

_RUNNING = {"validating", "in_progress", "finalizing", "cancelling"}
_PARTIAL = {"completed", "expired", "cancelled"}
"""Final states whose output and error files hold a line per request (unfinished ones as errors)."""
_LOST = {"batch_expired", "batch_cancelled"}
"""Per-request error codes that mean the request never ran: it is sent again."""
SUBMISSION = "evalkit_submission"
"""The metadata key tagging a batch with its submission's digest, by which a lost create is found."""

T = TypeVar("T")


class OpenAIBatchProtocol(BatchProtocol):
    """Batches of one endpoint (`/v1/chat/completions` or `/v1/completions`) over the
    provider's openai SDK client."""

    max_requests = 50_000
    max_bytes = 200_000_000
    """The API's limits on one batch's input file (requests and bytes)."""

    def __init__(self, transport: SDKTransport, endpoint: str, purpose: str = "batch") -> None:
        self.transport = transport
        self.endpoint = endpoint
        self.purpose = purpose
        """The upload's file purpose: OpenAI's "batch" (request lines name their method and
        URL), or Together's "batch-api" (lines hold custom_id and body only)."""
        self._uploads: dict[str, str] = {}
        """Submission tag -> its uploaded input file, reused while its creation is retried."""
        self._lost = LostCreates(error_status)

    async def submit(self, requests: list[BatchRequest]) -> str:
        tag = submission_tag(requests)
        file_id = self._uploads.get(tag) or await self._upload(requests)
        self._uploads[tag] = file_id
        body: dict[str, Any] = {"input_file_id": file_id, "endpoint": self.endpoint, "completion_window": "24h"}
        if self.purpose != "batch":  # Together: no metadata to find a batch by
            created = await self.transport.post("/batches", body)
            self._uploads.pop(tag, None)
            return created.get("job", created)["id"]

        async def create() -> str:
            return str((await self.transport.post("/batches", {**body, "metadata": {SUBMISSION: tag}}))["id"])

        batch_id = await self._lost.create(tag, lambda tag: self._sdk(self._find(tag)), create)
        self._uploads.pop(tag, None)
        return batch_id

    async def _upload(self, requests: list[BatchRequest]) -> str:
        route = {"method": "POST", "url": self.endpoint} if self.purpose == "batch" else {}
        lines = b"".join(orjson.dumps({"custom_id": r.custom_id, **route, "body": r.body}) + b"\n" for r in requests)
        upload = await self._sdk(self.transport.client().files.create(file=("evalkit-batch.jsonl", lines), purpose=self.purpose))
        return str(upload.id)

    async def _find(self, tag: str) -> str | None:
        """The id of a recent batch tagged with submission `tag`, if one was made."""
        seen = 0
        async for batch in self.transport.client().batches.list(limit=100):
            if (batch.metadata or {}).get(SUBMISSION) == tag:
                return str(batch.id)
            seen += 1
            if seen >= LOOKUP_LIMIT:
                break
        return None

    async def _sdk(self, call: Awaitable[T]) -> T:
        """Await an SDK call, its status errors made the provider's one-line errors where a retry cannot help."""
        try:
            return await call
        except Exception as error:
            mapped = self.transport.status_error(error)
            if mapped is None:
                raise
            raise mapped from error

    async def status(self, batch_id: str) -> BatchStatus:
        batch = await self._sdk(self.transport.client().batches.retrieve(batch_id))
        state = batch.status.lower()
        counts = batch.request_counts
        progress = getattr(batch, "progress", None)
        done = {"completed": counts.completed, "failed": counts.failed, "total": counts.total} if counts else (
            {"completed": int(progress), "total": 100} if isinstance(progress, (int, float)) else {})
        if state in _RUNNING:
            return BatchStatus("running", **done)
        if state in _PARTIAL:
            return BatchStatus("ended", **done)
        errors = getattr(batch.errors, "data", None) or []
        reason = "; ".join(e.message for e in errors if getattr(e, "message", None)) or getattr(batch, "error", None) or state
        return BatchStatus("failed", **done, error=reason, retryable=state != "failed")

    async def results(self, batch_id: str) -> dict[str, dict[str, Any] | Exception]:
        client = self.transport.client()
        batch = await self._sdk(client.batches.retrieve(batch_id))
        results: dict[str, dict[str, Any] | Exception] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                content = await self._sdk(client.files.content(file_id))
                for line in content.content.splitlines():
                    if line.strip():
                        record = orjson.loads(line)
                        results[record["custom_id"]] = self._reply(record)
        return results

    def _reply(self, record: dict[str, Any]) -> dict[str, Any] | Exception:
        """One output line: the reply body, or the error of the request."""
        response = record.get("response") or {}
        error = record.get("error")
        status = response.get("status_code")
        if not error and status == 200 and isinstance(response.get("body"), dict):
            return response["body"]
        if error and error.get("code") in _LOST:
            return BatchRetryError(f"{self.transport.provider}: request not run in its batch ({error.get('code')})")
        detail = (error or {}).get("message") or body_detail(response.get("body")) or f"HTTP {status}"
        transport = self.transport
        return request_error(transport.provider, status, detail, model=transport.model, key_env=transport.key_env) or (
            BatchRequestError(f"{transport.provider}: request failed in its batch (HTTP {status}): {detail}", status))
