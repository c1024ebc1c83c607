"""A local Anthropic Message Batches API (and Messages API) on RecordingServer.

POST /v1/messages/batches takes {"requests": [{"custom_id", "params"}]} (refusing, as the API
does, a custom_id outside ^[a-zA-Z0-9_-]{1,64}$ or repeated within the batch); GET
/v1/messages/batches/{id} reports it in_progress until its `polls_to_finish`-th poll, then
ended with a results_url; GET .../results streams JSON Lines {"custom_id", "result"}.

Each result is computed from its params by `messages_reply` (the Messages API server), so a
request the API refuses is `errored` with its invalid_request_error. A last user turn holding
`BATCH_ERROR: <error type>` is errored with that type; with `BATCH_ERROR_ONCE: <type>` only
the first time those params are submitted; `BATCH_EXPIRE` expires it and `BATCH_CANCEL` cancels it. `outcome="expired"` or
"canceled" ends every batch with all its requests so. `refuse_creates` lists HTTP statuses to
answer the first batch creations with (each once, in order).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from tests.servers.anthropic_server import messages_reply, turn_text
from tests.servers.batch_ledger import Batch, Ledger
from tests.servers.http import RecordingServer, Reply, Request

BATCH_ERROR = "BATCH_ERROR:"
BATCH_ERROR_ONCE = "BATCH_ERROR_ONCE:"
BATCH_EXPIRE = "BATCH_EXPIRE"
BATCH_CANCEL = "BATCH_CANCEL"
ERROR_MESSAGES = {"overloaded_error": "Overloaded", "api_error": "Internal server error", "rate_limit_error": "Rate limited"}

_ERROR_TYPES = {401: "authentication_error", 429: "rate_limit_error", 529: "overloaded_error"}
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_MARKER = re.compile(r"(BATCH_ERROR(?:_ONCE)?):\s*(\w+)")
_PATH = re.compile(r"^/v1/messages/batches/([^/?]+)(/results)?")


class AnthropicBatchServer(RecordingServer):
    """`with AnthropicBatchServer() as server:`; `server.ledger` holds the batches it was given."""

    def __init__(self, polls_to_finish: int = 2, outcome: str = "ended", refuse_creates: tuple[int, ...] = ()) -> None:
        super().__init__(self._handle)
        self.ledger = Ledger("msgbatch_", polls_to_finish, self._result)
        self.outcome = outcome
        self.refusals = list(refuse_creates)

    def _handle(self, request: Request) -> Reply:
        path = request.path.split("?")[0]
        if request.method == "POST" and path == "/v1/messages":
            return messages_reply(request)
        if request.method == "POST" and path == "/v1/messages/batches":
            return self._create(request.json())
        match = _PATH.match(path)
        batch = self.ledger.poll(match.group(1)) if match and request.method == "GET" else None
        if batch is None:
            return _error(404, "not_found_error", f"no batch at {request.method} {path}")
        if match and match.group(2):
            return self._results(batch)
        return Reply(body=self._batch_json(batch))

    def _create(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            status = self.refusals.pop(0) if self.refusals else None
        if status is not None:
            return _error(status, _ERROR_TYPES.get(status, "api_error"), f"refused with HTTP {status}")
        requests = body.get("requests") or []
        ids = [item.get("custom_id") for item in requests]
        bad = [i for i in ids if not isinstance(i, str) or not _CUSTOM_ID.match(i)]
        if bad or len(set(ids)) != len(ids) or not requests:
            problem = f"invalid custom_id {bad[0]!r}" if bad else "custom_id values must be unique" if requests else "no requests"
            return _error(400, "invalid_request_error", problem)
        batch = self.ledger.create([(item["custom_id"], item["params"]) for item in requests])
        return Reply(body=self._batch_json(batch))

    def _batch_json(self, batch: Batch) -> dict[str, Any]:
        ended = batch.results is not None
        kinds = [result["type"] for result in (batch.results or {}).values()]
        counts = {kind: kinds.count(kind) for kind in ("succeeded", "errored", "canceled", "expired")}
        return {
            "id": batch.id, "type": "message_batch", "processing_status": "ended" if ended else "in_progress",
            "request_counts": {"processing": 0 if ended else len(batch.requests), **counts},
            "created_at": "2026-01-01T00:00:00Z", "expires_at": "2026-01-02T00:00:00Z",
            "ended_at": "2026-01-01T01:00:00Z" if ended else None, "archived_at": None, "cancel_initiated_at": None,
            "results_url": f"{self.url}/v1/messages/batches/{batch.id}/results" if ended else None,
        }

    def _results(self, batch: Batch) -> Reply:
        if batch.results is None:
            return _error(400, "invalid_request_error", f"batch {batch.id} is still in progress")
        lines = [json.dumps({"custom_id": custom_id, "result": result}) for custom_id, result in batch.results.items()]
        return Reply(body="\n".join(lines) + "\n", headers={"Content-Type": "application/binary"})

    def _result(self, custom_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """The result of one request: what the Messages API answers to its params, or the
        failure its markers (or the server's outcome) ask for."""
        if self.outcome != "ended":
            return {"type": self.outcome}
        prompt = next((turn_text(m["content"]) for m in reversed(params.get("messages") or []) if m["role"] == "user"), "")
        marker = _MARKER.search(prompt)
        if marker and (marker.group(1) + ":" == BATCH_ERROR or self.ledger.first_time(params)):
            kind = marker.group(2)
            return {"type": "errored", "error": {"type": "error", "error": {"type": kind, "message": ERROR_MESSAGES.get(kind, kind)}}}
        if BATCH_EXPIRE in prompt or BATCH_CANCEL in prompt:
            return {"type": "expired" if BATCH_EXPIRE in prompt else "canceled"}
        reply = messages_reply(Request("POST", "/v1/messages", {}, json.dumps(params).encode(), time.monotonic()))
        if reply.status != 200:
            return {"type": "errored", "error": reply.body}
        return {"type": "succeeded", "message": reply.body}


def _error(status: int, kind: str, message: str) -> Reply:
    return Reply(status, {"type": "error", "error": {"type": kind, "message": message}})
