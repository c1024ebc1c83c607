"""Gemini API batches (`client.aio.batches` of google-genai), with inlined requests.

A batch is created with `batches.create(model=..., src=[inlined requests])`, i.e. POST
`models/{model}:batchGenerateContent`; each request is generate()'s `contents` and `config`
as google-genai JSON, with `metadata.custom_id` naming it. `batches.get` (GET `batches/{id}`)
gives its state; once JOB_STATE_SUCCEEDED, `dest.inlined_responses` hold one response per
request with the request's metadata: a generateContent response, or an error (a google.rpc
Status) that becomes the google-genai APIError the API would have raised for that request,
with the HTTP status of its code (RESOURCE_EXHAUSTED -> 429, UNAVAILABLE -> 503, ...), so the
provider's is_retryable/is_rate_limit classify it as usual.

An expired or cancelled batch's requests are sent again; a failed batch's are not. A batch's
display name carries its submission's digest, so a create whose reply was lost is found among
the recent batches (GET batches) and adopted (lost_creates.py).

The API takes at most 20 MB of inlined requests per batch: the batcher keeps batches to
`max_bytes` of bodies, so only a single request over the limit is refused here, in one line.
The Gemini API reports no per-request counts while a batch runs, so the status's counts stay 0.
"""

from __future__ import annotations

from typing import Any, Callable

import orjson
from google import genai
from google.genai import errors, types

from evalkit.errors import EvalkitError
from evalkit.providers.batch.lost_creates import LOOKUP_LIMIT, LostCreates, submission_tag
from evalkit.model.batch.protocol import BatchProtocol, BatchRequest, BatchStatus
from evalkit.providers.common.http_errors import MalformedResponseError

MAX_REQUESTS = 1000
"""Requests per batch: the API caps inlined requests at 20 MB, not at a count."""
MAX_INLINED_BYTES = 20_000_000
"""The API's cap on a batch's inlined requests."""
MAX_BYTES = 19_000_000
"""Request bodies per batch, leaving room for the metadata and the envelope within MAX_INLINED_BYTES."""
CUSTOM_ID = "custom_id"
"""The metadata key naming each request."""
FIRST_CALL = "evalkit_first_call"
"""Metadata: the tool calls already in the conversation, which numbering id-less calls needs."""

_RUNNING = {"JOB_STATE_PENDING", "JOB_STATE_QUEUED", "JOB_STATE_RUNNING", "JOB_STATE_UNSPECIFIED", "JOB_STATE_UPDATING"}
_ENDED = {"JOB_STATE_SUCCEEDED", "JOB_STATE_PARTIALLY_SUCCEEDED"}
_RPC_CODES = {
    1: ("CANCELLED", 499), 2: ("UNKNOWN", 500), 3: ("INVALID_ARGUMENT", 400), 4: ("DEADLINE_EXCEEDED", 504),
    5: ("NOT_FOUND", 404), 6: ("ALREADY_EXISTS", 409), 7: ("PERMISSION_DENIED", 403), 8: ("RESOURCE_EXHAUSTED", 429),
    9: ("FAILED_PRECONDITION", 400), 10: ("ABORTED", 409), 11: ("OUT_OF_RANGE", 400), 12: ("UNIMPLEMENTED", 501),
    13: ("INTERNAL", 500), 14: ("UNAVAILABLE", 503), 15: ("DATA_LOSS", 500), 16: ("UNAUTHENTICATED", 401),
}
"""Each google.rpc.Code's name and HTTP status, as Google's APIs map them."""


def inlined_request(request: dict[str, Any], first_call: int = 0) -> dict[str, Any]:
    """generate_content's arguments (model, contents, config objects) as an inlined request's JSON."""
    body = {
        "model": request["model"],
        "contents": [content.model_dump(mode="json", exclude_none=True) for content in request["contents"]],
        "config": request["config"].model_dump(mode="json", exclude_none=True),
    }
    if first_call:
        body["metadata"] = {FIRST_CALL: str(first_call)}
    return body


def inlined_response(body: dict[str, Any]) -> tuple[types.GenerateContentResponse, int]:
    """A result body (a generateContent response's JSON, with the request's metadata) as the
    response and the tool calls already in its conversation."""
    metadata = body.get("metadata") or {}
    response = types.GenerateContentResponse.model_validate({k: v for k, v in body.items() if k != "metadata"})
    return response, int(metadata.get(FIRST_CALL) or 0)


class GeminiBatches(BatchProtocol):
    """Gemini API batches on the provider's own google-genai client."""

    max_requests = MAX_REQUESTS
    max_bytes = MAX_BYTES

    def __init__(self, client: Callable[[], genai.Client], label: str) -> None:
        self._client = client
        self.label = label
        self._lost = LostCreates(lambda error: error.code if isinstance(error, errors.APIError) else None)

    async def submit(self, requests: list[BatchRequest]) -> str:
        model = requests[0].body["model"]
        src = [{**r.body, "metadata": {**(r.body.get("metadata") or {}), CUSTOM_ID: r.custom_id}} for r in requests]
        size = len(orjson.dumps(src))
        if size > MAX_INLINED_BYTES:
            what, fix = (("a request", "run it without --batch") if len(requests) == 1 else
                         (f"a batch of {len(requests)} requests", "send fewer per batch (--batch SIZE)"))
            raise EvalkitError(
                f"{self.label}: {what} is {size / 1e6:.1f} MB, over the 20 MB of inlined requests the Gemini API takes; {fix}"
            )
        name = f"evalkit-{submission_tag(requests)}"

        async def create() -> str:
            return str((await self._client().aio.batches.create(model=model, src=src, config={"display_name": name})).name)

        return await self._lost.create(name, self._find, create)

    async def _find(self, name: str) -> str | None:
        """The id of a recent batch with display name `name`, if one was made."""
        seen = 0
        async for job in await self._client().aio.batches.list(config={"page_size": 100}):
            if job.display_name == name:
                return str(job.name)
            seen += 1
            if seen >= LOOKUP_LIMIT:
                break
        return None

    async def status(self, batch_id: str) -> BatchStatus:
        job = await self._client().aio.batches.get(name=batch_id)
        state = str(job.state.value if job.state is not None else "JOB_STATE_UNSPECIFIED")
        if state in _RUNNING:
            return BatchStatus("running")
        if state in _ENDED:
            return BatchStatus("ended")
        reason = state.removeprefix("JOB_STATE_").lower()
        detail = f": {job.error.message}" if job.error is not None and job.error.message else ""
        return BatchStatus("failed", error=f"{self.label}: batch {batch_id} {reason}{detail}", retryable=reason != "failed")

    async def results(self, batch_id: str) -> dict[str, dict[str, Any] | Exception]:
        job = await self._client().aio.batches.get(name=batch_id)
        responses = job.dest.inlined_responses if job.dest is not None else None
        if responses is None:
            raise MalformedResponseError(f"{self.label}: batch {batch_id} has no inlined responses (state {job.state})")
        results: dict[str, dict[str, Any] | Exception] = {}
        for item in responses:
            metadata = dict(item.metadata or {})
            custom_id = metadata.pop(CUSTOM_ID, None)
            if custom_id is None:
                raise MalformedResponseError(f"{self.label}: batch {batch_id} has a response without its request's {CUSTOM_ID}")
            results[custom_id] = self._result(item, metadata)
        return results

    def _result(self, item: types.InlinedResponse, metadata: dict[str, str]) -> dict[str, Any] | Exception:
        """The response's JSON (with the request's other metadata), or its error as an APIError."""
        if item.error is not None:
            return _api_error(item.error)
        if item.response is None:
            return MalformedResponseError(f"{self.label}: a batch result with neither a response nor an error")
        body = item.response.model_dump(mode="json", exclude_none=True)
        return {**body, "metadata": metadata} if metadata else body


def _api_error(error: types.JobError) -> errors.APIError:
    """The APIError (ClientError or ServerError) of one request's google.rpc Status."""
    name, status = _RPC_CODES.get(error.code or 2, ("UNKNOWN", 500))
    body = {"error": {"code": status, "message": error.message or "", "status": name}}
    return (errors.ClientError if status < 500 else errors.ServerError)(status, body)
