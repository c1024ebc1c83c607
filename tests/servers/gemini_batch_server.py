"""A local Gemini API with batch mode (and generateContent) on RecordingServer.

POST /v1beta/models/{model}:batchGenerateContent (or /v1/..., as google-genai's default API version
may be) takes {"batch": {"displayName", "inputConfig":
{"requests": {"requests": [{"request", "metadata"}]}}}} and answers an Operation whose metadata
is the batch (state BATCH_STATE_PENDING); GET .../batches/{id} answers it running until its
`polls_to_finish`-th poll, then BATCH_STATE_SUCCEEDED with `output.inlinedResponses`, one per
request in order, each with its request's metadata.

Each response is computed from its request as generateContent answers it here: the text after
"ANSWER:" in the last user turn. A last user turn holding `BATCH_ERROR: <google.rpc code name>`
(e.g. RESOURCE_EXHAUSTED) gets that error instead; with `BATCH_ERROR_ONCE: <name>` only the
first time that request is submitted. `outcome="BATCH_STATE_FAILED"` (or _CANCELLED,
_EXPIRED) ends every batch so, without output. `refuse_creates` lists HTTP statuses to answer
the first batch creations with (each once, in order); `lose_creates` creations (the first
ones) make the batch but answer 503, as when a create's reply is lost. GET .../batches lists
the batches (Operations with their display names), newest first.
"""

from __future__ import annotations

import re
from typing import Any

from tests.servers.batch_ledger import Batch, Ledger
from tests.servers.gemini_server import gemini_reply, google_error
from tests.servers.http import RecordingServer, Reply, Request
from tests.servers.openai_server import answer

BATCH_ERROR = "BATCH_ERROR:"
BATCH_ERROR_ONCE = "BATCH_ERROR_ONCE:"
RPC_CODES = {"INVALID_ARGUMENT": 3, "RESOURCE_EXHAUSTED": 8, "INTERNAL": 13, "UNAVAILABLE": 14, "PERMISSION_DENIED": 7}

_STATUS_NAMES = {401: "UNAUTHENTICATED", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}
_MARKER = re.compile(r"(BATCH_ERROR(?:_ONCE)?):\s*(\w+)")
_CREATE = re.compile(r"^/v1(?:beta)?/models/([^/:]+):batchGenerateContent$")
_GENERATE = re.compile(r"^/v1(?:beta)?/models/([^/:]+):generateContent$")
_GET = re.compile(r"^/v1(?:beta)?/(batches/[^/:]+)$")
_LIST = re.compile(r"^/v1(?:beta)?/batches$")
_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"


class GeminiBatchServer(RecordingServer):
    """`with GeminiBatchServer() as server:`; `server.ledger` holds the batches it was given."""

    def __init__(self, polls_to_finish: int = 2, outcome: str = "BATCH_STATE_SUCCEEDED", refuse_creates: tuple[int, ...] = (),
                 lose_creates: int = 0) -> None:
        super().__init__(self._handle)
        self.lose_creates = lose_creates
        self.names: dict[str, str] = {}
        self.ledger = Ledger("batches/", polls_to_finish, self._result, body_of=lambda item: item.get("request"))
        self.outcome = outcome
        self.refusals = list(refuse_creates)
        self.models: dict[str, str] = {}

    def _handle(self, request: Request) -> Reply:
        path = request.path.split("?")[0]
        if request.method == "POST" and _GENERATE.match(path):
            return gemini_reply(answer(_prompt(request.json())))
        if request.method == "POST" and (create := _CREATE.match(path)):
            return self._create(create.group(1), request.json())
        if request.method == "GET" and _LIST.match(path):
            return Reply(body={"operations": [self._operation(b) for b in reversed(self.ledger.batches.values())]})
        get = _GET.match(path)
        batch = self.ledger.poll(get.group(1)) if get and request.method == "GET" else None
        if batch is None:
            return google_error(404, "NOT_FOUND", f"no batch at {request.method} {path}")
        return Reply(body=self._operation(batch))

    def _create(self, model: str, body: dict[str, Any]) -> Reply:
        with self._lock:
            status = self.refusals.pop(0) if self.refusals else None
        if status is not None:
            return google_error(status, _STATUS_NAMES.get(status, "INTERNAL"), f"refused with HTTP {status}")
        items = (((body.get("batch") or {}).get("inputConfig") or {}).get("requests") or {}).get("requests") or []
        if not items:
            return google_error(400, "INVALID_ARGUMENT", "batch.inputConfig has no requests")
        batch = self.ledger.create([(str((item.get("metadata") or {}).get("custom_id", f"#{i}")), item) for i, item in enumerate(items)])
        self.models[batch.id] = model
        self.names[batch.id] = (body.get("batch") or {}).get("displayName") or ""
        with self._lock:
            lost, self.lose_creates = self.lose_creates > 0, max(0, self.lose_creates - 1)
        if lost:
            return google_error(503, "UNAVAILABLE", "the reply to this create was lost")
        return Reply(body=self._operation(batch))

    def _operation(self, batch: Batch) -> dict[str, Any]:
        done = batch.results is not None
        state = self.outcome if done else "BATCH_STATE_PENDING" if batch.polls == 0 else "BATCH_STATE_RUNNING"
        metadata: dict[str, Any] = {
            "@type": _TYPE, "name": batch.id, "model": f"models/{self.models[batch.id]}", "displayName": self.names[batch.id],
            "createTime": "2026-01-01T00:00:00Z", "updateTime": "2026-01-01T00:10:00Z", "state": state,
            "batchStats": {"requestCount": str(len(batch.requests))},
        }
        operation: dict[str, Any] = {"name": batch.id, "metadata": metadata}
        if done and state == "BATCH_STATE_SUCCEEDED":
            output = {"inlinedResponses": {"inlinedResponses": list(batch.results.values())}}
            metadata["output"] = output
            operation.update(done=True, response={"@type": _TYPE.replace("Batch", "BatchOutput"), **output})
        elif done:
            operation.update(done=True, error={"code": 4 if state.endswith("EXPIRED") else 13, "message": f"batch {state}"})
        return operation

    def _result(self, _key: str, item: dict[str, Any]) -> dict[str, Any]:
        """One inlined response: what generateContent answers to its request, or the error its
        markers ask for; with the request's metadata."""
        request, metadata = item.get("request") or {}, item.get("metadata")
        prompt = _prompt(request)
        marker = _MARKER.search(prompt)
        if marker and (marker.group(1) + ":" == BATCH_ERROR or self.ledger.first_time(request)):
            code = RPC_CODES[marker.group(2)]
            response: dict[str, Any] = {"error": {"code": code, "message": f"{marker.group(2)} for this request"}}
        else:
            response = {"response": gemini_reply(answer(prompt)).body}
        return {**response, "metadata": metadata} if metadata is not None else response


def _prompt(request: dict[str, Any]) -> str:
    """The text of the last user turn of a generateContent request."""
    turns = [c for c in request.get("contents") or [] if c.get("role", "user") == "user"]
    return "\n".join(part.get("text") or "" for part in (turns[-1]["parts"] if turns else []))
