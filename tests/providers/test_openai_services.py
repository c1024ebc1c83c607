"""sglang and perplexity: OpenAI-compatible services with their own extras, the real openai SDK
against a local server (SGLang's OpenAI-compatible server; Perplexity's Sonar API with its
citations, search results and search usage)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest

import evalkit
from evalkit import GenerateConfig, read_eval_log
from evalkit.errors import EvalkitError, ToolsUnsupportedError
from evalkit.providers.common.http_errors import MalformedResponseError
from evalkit.solver import generate, use_tools
from tests.conftest import REPO, run_cli
from tests.providers.helpers import RETRY_AFTER, generate_and_close, isolate_env, waited_for_hint
from tests.servers.http import RecordingServer, Reply, Request
from tests.servers.openai_server import chat_reply, error_reply, scripted
from tests.tools import add

ENV = ("SGLANG_API_KEY", "SGLANG_BASE_URL", "PERPLEXITY_API_KEY", "PERPLEXITY_BASE_URL")
PPLX_KEY = "pplx-test-0123456789"
SEARCH_RESULTS = [{"title": "Tokyo - Wikipedia", "url": "https://en.wikipedia.org/wiki/Tokyo", "date": "2024-01-01"}]
CITATIONS = ["https://en.wikipedia.org/wiki/Tokyo"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials from the machine or a .env file; a Perplexity test key."""
    isolate_env(monkeypatch, tmp_path, unset=ENV, PERPLEXITY_API_KEY=PPLX_KEY)


def sonar_reply(request: Request) -> Reply:
    """`chat_reply` with what Perplexity adds: citations, search results and search usage."""
    reply = chat_reply(request)
    reply.body["usage"].update(search_context_size="low", citation_tokens=120, num_search_queries=1, reasoning_tokens=3)
    reply.body.update(citations=CITATIONS, search_results=SEARCH_RESULTS)
    return reply


def test_sglang_connects_to_a_running_server(monkeypatch: pytest.MonkeyPatch) -> None:
    with RecordingServer(chat_reply) as server:
        monkeypatch.setenv("SGLANG_BASE_URL", f"{server.url}/v1")
        config = GenerateConfig(max_retries=0, max_tokens=8, top_k=20, num_choices=2, logprobs=True, top_logprobs=1)
        output = generate_and_close(evalkit.get_model("sglang/Qwen/Qwen2.5-7B-Instruct", extra_body={"regex": "[0-9]+"}),
                                    "ANSWER: 42", config)
    [request] = server.requests
    assert request.path == "/v1/chat/completions" and request.headers["authorization"] == "Bearer none"
    assert request.json() == {"model": "Qwen/Qwen2.5-7B-Instruct", "messages": [{"role": "user", "content": "ANSWER: 42"}],
                              "max_tokens": 8, "top_k": 20, "n": 2, "logprobs": True, "top_logprobs": 1, "regex": "[0-9]+"}
    assert output.completion == "42" and len(output.choices) == 2 and output.choices[0].logprobs is not None
    assert output.usage is not None and output.usage.output_tokens == 2


def test_sglang_port_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert evalkit.get_model("sglang/m", port=31000).api.base_url == "http://localhost:31000/v1"
    with RecordingServer(chat_reply) as server:
        monkeypatch.setenv("SGLANG_API_KEY", "sglang-secret-key")
        output = generate_and_close(evalkit.get_model("sglang/m", port=server.port), "ANSWER: local")
    assert output.completion == "local" and server.requests[0].headers["authorization"] == "Bearer sglang-secret-key"


def test_perplexity_request_citations_and_search_usage(monkeypatch: pytest.MonkeyPatch) -> None:
    with RecordingServer(sonar_reply) as server:
        monkeypatch.setenv("PERPLEXITY_BASE_URL", server.url)
        model = evalkit.get_model("perplexity/sonar-pro", search_domain_filter=["wikipedia.org"], search_recency_filter="month",
                                  web_search_options={"search_context_size": "low"})
        output = generate_and_close(model, "ANSWER: Tokyo", GenerateConfig(max_retries=0, max_tokens=16, top_k=3))
    [request] = server.requests
    assert request.path == "/chat/completions" and request.headers["authorization"] == f"Bearer {PPLX_KEY}"
    assert request.json() == {"model": "sonar-pro", "messages": [{"role": "user", "content": "ANSWER: Tokyo"}], "max_tokens": 16,
                              "top_k": 3, "search_domain_filter": ["wikipedia.org"], "search_recency_filter": "month",
                              "web_search_options": {"search_context_size": "low"}}
    assert output.completion == "Tokyo" and output.stop_reason == "stop"
    assert output.usage is not None and output.usage.to_dict() == {"input_tokens": 2, "output_tokens": 1, "total_tokens": 3,
                                                                   "reasoning_tokens": 3}
    assert output.metadata == {"citations": CITATIONS, "search_results": SEARCH_RESULTS, "search_context_size": "low",
                               "citation_tokens": 120, "num_search_queries": 1}


def test_perplexity_without_search_results_has_no_metadata() -> None:
    with RecordingServer(chat_reply) as server:
        output = generate_and_close(evalkit.get_model("perplexity/sonar", base_url=server.url), "ANSWER: plain")
    assert output.completion == "plain" and output.metadata is None


def test_perplexity_takes_no_tools(tmp_path: Path) -> None:
    task = evalkit.Task(dataset=[evalkit.Sample(input="1 + 2?", target="3")], solver=[use_tools(add()), generate()])
    with RecordingServer(chat_reply) as server:
        [log] = evalkit.eval(task, model="perplexity/sonar", model_args={"base_url": server.url}, log_dir=tmp_path / "logs",
                             display="none")
    assert server.requests == [] and log.status == "error" and "\n" not in log.error
    assert f"{ToolsUnsupportedError.__name__}: provider 'perplexity' cannot call tools (perplexity/sonar)" in log.error


def test_sglang_tool_loop_through_eval(tmp_path: Path) -> None:
    from tests.providers.test_openai_tools import ADD_TOOL, SENT_BACK, SUMS_MESSAGES, SUMS_TASK, two_sums

    with RecordingServer(two_sums) as server:
        [log] = evalkit.eval(SUMS_TASK, model="sglang/Qwen/Qwen2.5-7B-Instruct", model_args={"base_url": f"{server.url}/v1"},
                             log_dir=tmp_path / "logs", display="none")
    first, second = (r.json() for r in server.requests)
    assert first["tools"] == [ADD_TOOL] and first["tool_choice"] == "required" and second["messages"] == SENT_BACK
    assert log.status == "success" and log.samples[0].chat_messages == SUMS_MESSAGES


def model_for(provider: str, server: RecordingServer) -> evalkit.Model:
    base_url = f"{server.url}/v1" if provider == "sglang" else server.url
    return evalkit.get_model(f"{provider}/m", base_url=base_url)


@pytest.mark.parametrize("provider", ["sglang", "perplexity"])
def test_bad_key_is_one_line_and_not_retried(provider: str) -> None:
    key_env = {"sglang": "SGLANG_API_KEY", "perplexity": "PERPLEXITY_API_KEY"}[provider]
    with RecordingServer(lambda request: error_reply(401, "Invalid API key")) as server:
        with pytest.raises(EvalkitError, match=rf"^{provider}: authentication failed \(HTTP 401\); check {key_env}: Invalid API key$"):
            generate_and_close(model_for(provider, server), "ANSWER: never", GenerateConfig(max_retries=3))
    assert len(server.requests) == 1


@pytest.mark.parametrize("provider", ["sglang", "perplexity"])
def test_rate_limit_and_server_errors_are_retried(provider: str) -> None:
    replies = [error_reply(429, "slow down", {"Retry-After": str(RETRY_AFTER)}), error_reply(500, "oops")]
    with RecordingServer(scripted(replies, chat_reply)) as server:
        model = model_for(provider, server)
        output = generate_and_close(model, "ANSWER: eventually", GenerateConfig(max_retries=2))
    assert output.completion == "eventually" and model.retries == 2 and len(server.requests) == 3
    assert waited_for_hint(server.requests[0], server.requests[1])


@pytest.mark.parametrize("provider", ["sglang", "perplexity"])
def test_server_errors_give_up_and_bad_json_is_an_error(provider: str) -> None:
    with RecordingServer(lambda request: error_reply(502, "bad gateway")) as server:
        with pytest.raises(openai.InternalServerError):
            generate_and_close(model_for(provider, server), "ANSWER: never", GenerateConfig(max_retries=1))
    assert len(server.requests) == 2
    with RecordingServer(lambda request: Reply(body="<html>oops</html>")) as server:
        with pytest.raises(MalformedResponseError, match=f"{provider}: the reply is not a JSON object"):
            generate_and_close(model_for(provider, server), "ANSWER: never", GenerateConfig(max_retries=3))
    assert len(server.requests) == 1


@pytest.mark.parametrize(("provider", "env", "path"), [
    ("sglang", {"SGLANG_BASE_URL": "{url}/v1", "SGLANG_API_KEY": "cli-sglang-key"}, "/v1/chat/completions"),
    ("perplexity", {"PERPLEXITY_BASE_URL": "{url}", "PERPLEXITY_API_KEY": "cli-pplx-key"}, "/chat/completions"),
])
def test_cli_eval(provider: str, env: dict[str, str], path: str, tmp_path: Path) -> None:
    with RecordingServer(sonar_reply) as server:
        result = run_cli("eval", str(REPO / "tasks" / "factual_qa.py"), "--model", f"{provider}/some-model", "--limit", "1",
                         "-M", "default_headers={X-Run: cli}", "--log-dir", str(tmp_path / "logs"),
                         env={name: value.format(url=server.url) for name, value in env.items()})
    assert result.returncode == 0, result.stderr
    [request] = server.requests
    key = next(value for name, value in env.items() if name.endswith("_API_KEY"))
    assert request.path == path and request.headers["authorization"] == f"Bearer {key}" and request.headers["x-run"] == "cli"
    assert request.json()["max_tokens"] == 32 and request.json()["model"] == "some-model"
    [log_path] = (tmp_path / "logs").glob("*.jsonl")
    log = read_eval_log(log_path)
    assert log.footer["status"] == "success" and key not in log_path.read_text()
    metadata: dict[str, Any] = log.samples[0].output.get("metadata") or {}
    assert (metadata.get("citations") == CITATIONS) == (provider == "perplexity")
