"""Gemini API batch mode: the real google-genai client talking to a local batch server, through
the provider's batch protocol, batch_body and batch_output."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import anyio
import pytest
from google.genai import errors

import evalkit
from evalkit import ChatMessageAssistant, ChatMessageTool, ChatMessageUser, GenerateConfig, get_model
from evalkit.errors import BatchUnsupportedError, EvalkitError
from evalkit.model.content import ContentImage, ContentText
from evalkit.model.batch.protocol import BatchRequest
from evalkit.tool.types import ToolCall, ToolInfo
from tests.providers.batch_checks import check_collected_without_resubmitting, question, run_batch
from tests.providers.helpers import generate_and_close
from tests.providers.test_batch_anthropic import FAST, kill_then_retry, quiz_task
from tests.servers.gemini_batch_server import BATCH_ERROR, BATCH_ERROR_ONCE, GeminiBatchServer
from tests.servers.gemini_server import function_call, gemini_parts
from tests.servers.http import RecordingServer

MODEL = "gemini-2.5-flash"
CONFIG = GenerateConfig(max_tokens=64, temperature=0.0)


@pytest.fixture(autouse=True)
def google_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOOGLE_API_KEY", "gkey-evalkit-test")
    for name in ("GEMINI_API_KEY", "GOOGLE_BASE_URL", "GOOGLE_VERTEX_BASE_URL", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION",
                 "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_API_VERSION"):
        monkeypatch.delenv(name, raising=False)


def test_inlined_requests_are_what_generate_sends_and_outputs_are_parsed_alike() -> None:
    inputs = [question(i) for i in range(3)]
    with GeminiBatchServer(polls_to_finish=3) as server:
        model = get_model(f"google/{MODEL}", base_url=server.url)
        direct = generate_and_close(model, inputs[1], CONFIG)
        statuses, results = anyio.run(run_batch, model.api, inputs, CONFIG)
    sent_directly, create, *polls = server.requests
    version = sent_directly.path.split("/")[1]  # google-genai's default API version (v1 in 3.x)
    assert (create.method, create.path) == ("POST", f"/{version}/models/{MODEL}:batchGenerateContent")
    assert create.headers["x-goog-api-key"] == "gkey-evalkit-test"
    batch = create.json()["batch"]
    assert batch["displayName"] == "evalkit-" + hashlib.sha256(b"q0\nq1\nq2").hexdigest()[:32]  # names the submission
    items = batch["inputConfig"]["requests"]["requests"]
    assert [item["metadata"] for item in items] == [{"custom_id": "q0"}, {"custom_id": "q1"}, {"custom_id": "q2"}]
    assert items[1]["request"] == {"model": f"models/{MODEL}", **sent_directly.json()}
    assert sent_directly.json()["generationConfig"] == {"maxOutputTokens": 64, "temperature": 0.0}
    assert sent_directly.json()["systemInstruction"] == {"role": "user", "parts": [{"text": "Answer with a number."}]}
    [batch_id] = server.ledger.batches
    assert [(r.method, r.path) for r in polls] == [("GET", f"/{version}/{batch_id}")] * 4  # 3 polls, then results()
    assert [s.state for s in statuses] == ["running", "running", "ended"]
    outputs = {custom_id: model.api.batch_output(body) for custom_id, body in results.items()}
    assert {custom_id: o.completion for custom_id, o in outputs.items()} == {"q0": "0", "q1": "7", "q2": "14"}
    assert outputs["q1"].completion == direct.completion and outputs["q1"].usage == direct.usage
    assert outputs["q1"].stop_reason == direct.stop_reason == "stop" and outputs["q1"].model == f"google/{MODEL}"


def test_per_request_errors_become_the_api_errors_the_provider_classifies() -> None:
    prompts = {"ok": "ANSWER: 5", "invalid": f"{BATCH_ERROR} INVALID_ARGUMENT", "exhausted": f"{BATCH_ERROR} RESOURCE_EXHAUSTED",
               "unavailable": f"{BATCH_ERROR} UNAVAILABLE"}
    with GeminiBatchServer(polls_to_finish=1) as server:
        api = get_model(f"google/{MODEL}", base_url=server.url).api
        statuses, results = anyio.run(run_batch, api, [[ChatMessageUser(p)] for p in prompts.values()], CONFIG)
    assert statuses[-1].state == "ended"
    by_name = {name: results[f"q{i}"] for i, name in enumerate(prompts)}
    assert api.batch_output(by_name["ok"]).completion == "5"
    invalid, exhausted, unavailable = by_name["invalid"], by_name["exhausted"], by_name["unavailable"]
    assert isinstance(invalid, errors.ClientError) and (invalid.code, invalid.status) == (400, "INVALID_ARGUMENT")
    assert invalid.message == "INVALID_ARGUMENT for this request" and not api.is_retryable(invalid)
    assert isinstance(exhausted, errors.ClientError) and exhausted.code == 429
    assert api.is_retryable(exhausted) and api.is_rate_limit(exhausted)
    assert isinstance(unavailable, errors.ServerError) and unavailable.code == 503
    assert api.is_retryable(unavailable) and not api.is_rate_limit(unavailable)


@pytest.mark.parametrize(("outcome", "reason", "retryable"), [
    ("BATCH_STATE_FAILED", "failed", False), ("BATCH_STATE_EXPIRED", "expired", True), ("BATCH_STATE_CANCELLED", "cancelled", True)])
def test_a_failed_expired_or_cancelled_batch_has_failed(outcome: str, reason: str, retryable: bool) -> None:
    with GeminiBatchServer(polls_to_finish=2, outcome=outcome) as server:
        api = get_model(f"google/{MODEL}", base_url=server.url).api
        statuses, results = anyio.run(run_batch, api, [question(1), question(2)], CONFIG)
    [batch_id] = server.ledger.batches
    assert [s.state for s in statuses] == ["running", "failed"]
    assert statuses[-1].error == f"google/{MODEL}: batch {batch_id} {reason}" and results == {}
    assert statuses[-1].retryable is retryable


def test_tool_calls_without_ids_are_numbered_on_from_the_conversation_as_in_generate() -> None:
    tool = ToolInfo("add", "Add two numbers.", {"type": "object", "properties": {"x": {"type": "integer"}}})
    earlier = ToolCall("evalkit-call-0", "add", {"x": 1})
    conversation = [ChatMessageUser("add"), ChatMessageAssistant("", tool_calls=[earlier]),
                    ChatMessageTool("1", tool_call_id=earlier.id, function="add")]
    reply = gemini_parts(function_call("add", {"x": 2}), function_call("add", {"x": 3}))
    with RecordingServer(lambda request: reply) as server:
        api = get_model(f"google/{MODEL}", base_url=server.url).api

        async def scenario() -> tuple[Any, Any]:
            direct = await api.generate(conversation, [tool], "auto", CONFIG)
            body = await api.batch_body(conversation, [tool], "auto", CONFIG)
            await api.aclose()
            return direct, body

        direct, body = anyio.run(scenario)
    assert body["metadata"] == {"evalkit_first_call": "1"} and body["config"]["tools"][0]["function_declarations"][0]["name"] == "add"
    batched = api.batch_output({**reply.body, "metadata": body["metadata"]})
    assert [c.id for c in batched.choices[0].message.tool_calls] == [c.id for c in direct.choices[0].message.tool_calls] == [
        "evalkit-call-1", "evalkit-call-2"]


def test_a_batch_over_the_inline_limit_fails_in_one_line() -> None:
    with GeminiBatchServer() as server:
        api = get_model(f"google/{MODEL}", base_url=server.url).api

        async def scenario() -> list[str]:
            small = await api.batch_body([ChatMessageUser("x" * 3_000_000)], [], None, CONFIG)
            huge = await api.batch_body([ChatMessageUser("x" * 21_000_000)], [], None, CONFIG)
            messages = []
            for requests in ([BatchRequest(f"q{i}", small) for i in range(8)], [BatchRequest("huge", huge)]):
                with pytest.raises(EvalkitError) as caught:
                    await api.batch_protocol().submit(requests)
                messages.append(str(caught.value))
            await api.aclose()
            return messages

        several, one = anyio.run(scenario)
    limit = "over the 20 MB of inlined requests the Gemini API takes"
    assert several == f"google/{MODEL}: a batch of 8 requests is 24.0 MB, {limit}; send fewer per batch (--batch SIZE)"
    assert one == f"google/{MODEL}: a request is 21.0 MB, {limit}; run it without --batch"
    assert server.requests == []


def test_vertex_has_no_batch_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    api = get_model(f"vertex/{MODEL}", api_key="vertex-express-key").api
    with pytest.raises(BatchUnsupportedError, match=r"^vertex: batch mode is not supported .* run without --batch$"):
        api.batch_protocol()


def test_eval_in_batch_mode_scores_every_sample_from_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with GeminiBatchServer(polls_to_finish=2) as server:
        monkeypatch.setenv("GOOGLE_BASE_URL", server.url)
        [log] = evalkit.eval(str(quiz_task(tmp_path, 25)), model=f"google/{MODEL}", batch=FAST, log_dir=tmp_path / "logs",
                             display="none")
    assert log.status == "success" and log.results["match"]["accuracy"] == 1.0 and len(log.samples) == 25
    assert sorted(len(batch.requests) for batch in server.ledger.batches.values()) == [5, 10, 10]
    assert server.ledger.duplicates() == [] and sum(server.ledger.submitted.values()) == 25
    assert not any(r.path.endswith(":generateContent") for r in server.requests)  # nothing went direct
    requests = [item["request"] for batch in server.ledger.batches.values() for item in batch.requests.values()]
    assert {r["systemInstruction"]["parts"][0]["text"] for r in requests} == {"Answer briefly."}
    assert {r["model"] for r in requests} == {f"models/{MODEL}"}


def test_eval_in_batch_mode_retries_failed_requests_in_a_later_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with GeminiBatchServer(polls_to_finish=1) as server:
        monkeypatch.setenv("GOOGLE_BASE_URL", server.url)
        [log] = evalkit.eval(str(quiz_task(tmp_path, 20, f"{BATCH_ERROR_ONCE} UNAVAILABLE")), model=f"google/{MODEL}", batch=FAST,
                             log_dir=tmp_path / "logs", display="none")
    assert log.status == "success" and log.results["match"]["accuracy"] == 1.0 and len(log.samples) == 20
    sizes = [len(batch.requests) for batch in server.ledger.batches.values()]
    assert sum(sizes) == 24 and len(sizes) >= 3  # 20 first requests, then the 4 that failed again
    assert server.ledger.duplicates() == []


def test_a_create_whose_reply_was_lost_adopts_the_batch_it_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with GeminiBatchServer(polls_to_finish=1, lose_creates=1) as server:
        monkeypatch.setenv("GOOGLE_BASE_URL", server.url)
        [log] = evalkit.eval(str(quiz_task(tmp_path, 3)), model=f"google/{MODEL}", batch=FAST, log_dir=tmp_path / "logs",
                             display="none")
    assert log.status == "success" and log.results["match"]["accuracy"] == 1.0
    assert list(server.ledger.batches) == ["batches/0001"] and server.ledger.duplicate_bodies() == 0
    assert server.names["batches/0001"].startswith("evalkit-")
    assert sum(r.method == "GET" and r.path.split("?")[0].endswith("/batches") for r in server.requests) == 1  # the lookup


def test_batch_creation_errors_are_classified_as_the_providers_requests_are() -> None:
    with GeminiBatchServer(refuse_creates=(503, 429, 401)) as server:
        api = get_model(f"google/{MODEL}", base_url=server.url).api

        async def scenario() -> list[BaseException]:
            body = await api.batch_body(question(1), [], None, CONFIG)
            raised = []
            for _ in range(3):
                with pytest.raises(errors.APIError) as caught:
                    await api.batch_protocol().submit([BatchRequest("q1", body)])
                raised.append(caught.value)
            await api.aclose()
            return raised

        unavailable, exhausted, unauthenticated = anyio.run(scenario)
    assert api.is_retryable(unavailable) and not api.is_rate_limit(unavailable)
    assert api.is_retryable(exhausted) and api.is_rate_limit(exhausted)
    assert unauthenticated.code == 401 and not api.is_retryable(unauthenticated)


def test_sigkill_mid_batch_then_eval_retry_collects_the_running_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with GeminiBatchServer(polls_to_finish=10**9) as server:
        monkeypatch.setenv("GOOGLE_BASE_URL", server.url)
        log, created, result = kill_then_retry(tmp_path, f"google/{MODEL}", server.ledger, batches=3)
    check_collected_without_resubmitting(server.ledger, log, created, result)


def test_an_image_goes_into_the_batch_as_generate_sends_it() -> None:
    png = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256))).decode()
    input = [ChatMessageUser([ContentText("What is it? ANSWER: a picture"), ContentImage(png)])]
    with GeminiBatchServer(polls_to_finish=1) as server:
        api = get_model(f"google/{MODEL}", base_url=server.url).api

        async def scenario() -> dict[str, Any]:
            await api.generate(input, [], None, CONFIG)
            protocol = api.batch_protocol()
            batch_id = await protocol.submit([BatchRequest("image", await api.batch_body(input, [], None, CONFIG))])
            await protocol.status(batch_id)
            results = await protocol.results(batch_id)
            await api.aclose()
            return results

        results = anyio.run(scenario)
    direct, create = server.requests[0].json(), server.requests[1].json()
    inlined = create["batch"]["inputConfig"]["requests"]["requests"][0]["request"]
    assert inlined["contents"] == direct["contents"] and "data" in direct["contents"][0]["parts"][1]["inlineData"]
    assert api.batch_output(results["image"]).completion == "a picture"
