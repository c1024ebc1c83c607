"""OpenAI's Batch API on a RecordingServer: file upload (multipart), batch create, poll, and
the output and error files, with chat completions answered as openai_server does.

A batch completes on its `polls`-th status request. Scripted failures: a request whose last
message holds `BATCH_ERROR <status>` fails inside its batch with that HTTP status the first
time the request is seen (its retry succeeds), `BATCH_FAIL <status>` every time; `outcomes` gives the
final state of the batches in creation order ("completed", "expired", "failed"), then
"completed". `lose_creates` batch creations (the first ones) make the batch but answer 500,
as when the reply to a create is lost; GET /v1/batches lists the batches, newest first, with
the `metadata` they were created with. `fail_polls` status requests (the first ones) answer
503 (with `Retry-After: poll_retry_after` when given). A batch for whose request lines `hold` is true stays in progress until
`release()`. Every custom_id's submissions are counted (`submissions`), and so is every
request body's (`bodies`): a request sent again under a new custom_id shows there.

`together=True` speaks Together's variant: file purpose "batch-api", request lines of
custom_id and body only, batch creation answering `{"job": ...}`, upper-case statuses and a
`progress` percentage instead of request counts.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections import Counter
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Callable

import orjson

from tests.servers.http import RecordingServer, Reply, Request
from tests.servers.openai_server import chat_reply, completion_reply, error_reply, message_text

_ERROR = re.compile(r"BATCH_(ERROR|FAIL) (\d{3})")


class BatchServer(RecordingServer):
    """`with BatchServer(polls=2) as server:` then use `f"{server.url}/v1"` as OPENAI_BASE_URL."""

    def __init__(self, polls: int = 1, outcomes: tuple[str, ...] = (),
                 hold: Callable[[list[dict[str, Any]]], bool] | None = None, together: bool = False,
                 lose_creates: int = 0, fail_polls: int = 0, poll_retry_after: float | None = None) -> None:
        super().__init__(self._handle)
        self.lose_creates = lose_creates
        self.fail_polls = fail_polls
        self.poll_retry_after = poll_retry_after
        self.together = together
        self.polls = polls
        self.outcomes = list(outcomes)
        self.hold = hold
        self.held = True
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.batch_lines: dict[str, list[dict[str, Any]]] = {}
        """The request lines of each batch, by batch id, in creation order."""
        self.submissions: Counter[str] = Counter()
        self.bodies: Counter[bytes] = Counter()
        """Submissions of each request body (canonical JSON), whatever its custom_id."""
        self.answered: Counter[str] = Counter()
        """How many times each prompt was answered in a finished batch."""
        self._ids = itertools.count(1)
        self._state = threading.Lock()
        self._server.handle_error = lambda *args: None  # type: ignore[method-assign]  # a killed client resets its connections

    def release(self) -> None:
        """Let held batches finish at their next poll."""
        self.held = False

    @property
    def duplicates(self) -> int:
        """Requests submitted in more than one batch (each counted once per extra submission)."""
        return sum(count - 1 for count in self.submissions.values() if count > 1)

    @property
    def body_duplicates(self) -> int:
        """Request bodies submitted more than once under any custom_id (each extra submission counted)."""
        return sum(count - 1 for count in self.bodies.values() if count > 1)

    def _handle(self, request: Request) -> Reply:
        with self._state:
            path = request.path.split("?")[0]
            if request.method == "POST" and path == "/v1/files":
                return self._upload(request)
            if request.method == "POST" and path == "/v1/batches":
                return self._create(request.json())
            if request.method == "GET" and path == "/v1/batches":
                listed = [self._public(batch_id) for batch_id in reversed(self.batches)]
                return Reply(body={"object": "list", "data": listed, "has_more": False})
            found = re.fullmatch(r"/v1/batches/([\w-]+)", path)
            if request.method == "GET" and found:
                return self._poll(found.group(1))
            found = re.fullmatch(r"/v1/files/([\w-]+)/content", path)
            if request.method == "GET" and found and found.group(1) in self.files:
                return Reply(body=self.files[found.group(1)], headers={"Content-Type": "application/octet-stream"})
        if path.endswith("/chat/completions") or path.endswith("/completions"):
            return chat_reply(request) if "chat" in path else completion_reply(request)
        return error_reply(404, f"no route for {request.method} {path}")

    def _upload(self, request: Request) -> Reply:
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n" + request.body)
        fields = {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                  for part in message.iter_parts()}
        purpose = b"batch-api" if self.together else b"batch"
        if fields.get("purpose") != purpose or "file" not in fields:
            return error_reply(400, f"expected a file with purpose={purpose.decode()}")
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = fields["file"]
        return Reply(body={"id": file_id, "object": "file", "bytes": len(fields["file"]), "created_at": int(time.time()),
                           "filename": "batch.jsonl", "purpose": "batch", "status": "processed"})

    def _create(self, body: dict[str, Any]) -> Reply:
        if body.get("completion_window") != "24h" or body.get("input_file_id") not in self.files:
            return error_reply(400, "bad batch request")
        lines = [orjson.loads(line) for line in self.files[body["input_file_id"]].splitlines() if line.strip()]
        if self.together and any(set(line) != {"custom_id", "body"} for line in lines):
            return error_reply(400, "each line holds custom_id and body")
        if not self.together and any(line.get("url") != body["endpoint"] or line.get("method") != "POST" for line in lines):
            return error_reply(400, "every line must POST to the batch's endpoint")
        batch_id = f"batch_{next(self._ids)}"
        self.batch_lines[batch_id] = lines
        self.submissions.update(line["custom_id"] for line in lines)
        self.bodies.update(orjson.dumps(line["body"], option=orjson.OPT_SORT_KEYS) for line in lines)
        self.batches[batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": body["endpoint"], "input_file_id": body["input_file_id"],
            "completion_window": "24h", "status": "validating", "created_at": int(time.time()), "polls": 0,
            "outcome": self.outcomes.pop(0) if self.outcomes else "completed",
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0}, "metadata": body.get("metadata"),
        }
        if self.lose_creates:
            self.lose_creates -= 1
            return error_reply(500, "the reply to this create was lost")
        return Reply(body={"job": self._public(batch_id)} if self.together else self._public(batch_id))

    def _poll(self, batch_id: str) -> Reply:
        batch = self.batches.get(batch_id)
        if batch is None:
            return error_reply(404, f"no batch {batch_id}")
        if self.fail_polls:
            self.fail_polls -= 1
            wait = {"Retry-After": f"{self.poll_retry_after:g}"} if self.poll_retry_after is not None else None
            return error_reply(503, "the batch service is unavailable", wait)
        batch["polls"] += 1
        if batch["status"] in ("validating", "in_progress"):
            batch["status"] = "in_progress"
            held = self.held and self.hold is not None and self.hold(self.batch_lines[batch_id])
            if batch["polls"] >= self.polls and not held:
                self._finish(batch)
        return Reply(body=self._public(batch_id))

    def _finish(self, batch: dict[str, Any]) -> None:
        outcome = batch["outcome"]
        lines = self.batch_lines[batch["id"]]
        if outcome == "failed":
            batch.update(status="failed", errors={"object": "list", "data": [{"code": "invalid", "message": "scripted failure"}]})
            return
        outputs, errors = [], []
        for line in lines:
            record = self._answer(line, batch["endpoint"]) if outcome == "completed" else {
                "id": "r", "custom_id": line["custom_id"], "response": None,
                "error": {"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}}
            (outputs if record["response"] and record["response"]["status_code"] == 200 else errors).append(record)
        batch["output_file_id"] = self._file(outputs)
        batch["error_file_id"] = self._file(errors)
        batch["request_counts"] = {"total": len(lines), "completed": len(outputs), "failed": len(errors)}
        batch["status"] = outcome

    def _answer(self, line: dict[str, Any], endpoint: str) -> dict[str, Any]:
        body = line["body"]
        messages = body.get("messages") or []
        prompt = "\n".join(message_text(m) for m in messages) or body.get("prompt", "")
        scripted = _ERROR.search(message_text(messages[-1]) if messages else prompt)  # the latest turn's marker only
        self.answered[prompt] += 1
        if scripted and (scripted.group(1) == "FAIL" or self.answered[prompt] == 1):
            status = int(scripted.group(2))
            response = {"status_code": status, "request_id": "req", "body": {"error": {"message": f"scripted {status}", "type": "test"}}}
        else:
            inner = Request("POST", endpoint, {}, orjson.dumps(body), time.monotonic())
            reply = chat_reply(inner) if endpoint.endswith("/chat/completions") else completion_reply(inner)
            response = {"status_code": 200, "request_id": "req", "body": reply.body}
        return {"id": f"r-{line['custom_id']}", "custom_id": line["custom_id"], "response": response, "error": None}

    def _file(self, records: list[dict[str, Any]]) -> str | None:
        if not records:
            return None
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = b"".join(orjson.dumps(r) + b"\n" for r in records)
        return file_id

    def _public(self, batch_id: str) -> dict[str, Any]:
        public = {k: v for k, v in self.batches[batch_id].items() if k not in ("polls", "outcome")}
        if self.together:
            counts = public.pop("request_counts")
            public.update(status=public["status"].upper(), progress=100 * (counts["completed"] + counts["failed"]) // counts["total"])
        return public
