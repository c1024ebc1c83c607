"""OpenAI-compatible services: the real openai SDK against a local OpenAI-shaped server, each
service with its own key and base URL variables."""

from __future__ import annotations

from pathlib import Path

import pytest

import evalkit
from evalkit import GenerateConfig
from evalkit.errors import EvalkitError, ModelNotFoundError
from tests.providers.helpers import generate_and_close, isolate_env
from tests.servers.http import RecordingServer
from tests.servers.openai_server import chat_reply, error_reply, openai_reply

# provider, key variable, base URL variable, default base URL (None: must be set), key required, top_k sent
SERVICES = [
    ("together", "TOGETHER_API_KEY", "TOGETHER_BASE_URL", "https://api.together.xyz/v1", True, True),
    ("grok", "GROK_API_KEY", "GROK_BASE_URL", "https://api.x.ai/v1", True, False),
    ("fireworks", "FIREWORKS_API_KEY", "FIREWORKS_BASE_URL", "https://api.fireworks.ai/inference/v1", True, True),
    ("deepseek", "DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL", "https://api.deepseek.com/v1", True, False),
    ("openrouter", "OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1", True, True),
    ("ollama", "OLLAMA_API_KEY", "OLLAMA_BASE_URL", "http://localhost:11434/v1", False, False),
    ("llama-cpp-python", "LLAMA_CPP_PYTHON_API_KEY", "LLAMA_CPP_PYTHON_BASE_URL", "http://localhost:8000/v1", False, True),
    ("vllm-server", "VLLM_API_KEY", "VLLM_BASE_URL", "http://localhost:8000/v1", False, True),
    ("databricks", "DATABRICKS_API_KEY", "DATABRICKS_BASE_URL", None, True, False),
    ("sglang", "SGLANG_API_KEY", "SGLANG_BASE_URL", "http://localhost:30000/v1", False, True),
    ("perplexity", "PERPLEXITY_API_KEY", "PERPLEXITY_BASE_URL", "https://api.perplexity.ai", True, True),
]
IDS = [s[0] for s in SERVICES]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials from the machine or a .env file."""
    service_vars = [name for _, key_env, url_env, *_ in SERVICES for name in (key_env, url_env)]
    isolate_env(monkeypatch, tmp_path, unset=[*service_vars, "OPENAI_API_KEY", "OPENAI_BASE_URL", "MY_LAB_API_KEY", "MY_LAB_BASE_URL"])


@pytest.mark.parametrize(("provider", "key_env", "url_env", "default_url", "key_required", "top_k"), SERVICES, ids=IDS)
def test_service_uses_its_own_key_and_base_url(
    monkeypatch: pytest.MonkeyPatch, provider: str, key_env: str, url_env: str, default_url: str | None,
    key_required: bool, top_k: bool,
) -> None:
    key = f"{provider}-key-0123456789"
    monkeypatch.setenv(key_env, key)
    with RecordingServer(chat_reply) as server:
        monkeypatch.setenv(url_env, f"{server.url}/v1")
        model = evalkit.get_model(f"{provider}/org/some-model-Instruct")
        config = GenerateConfig(max_tokens=8, temperature=0.5, top_k=40)
        if top_k:
            output = generate_and_close(model, "ANSWER: compatible", config)
        else:
            with pytest.warns(UserWarning, match=f"'{provider}' does not support top_k"):
                output = generate_and_close(model, "ANSWER: compatible", config)
    [request] = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {key}"
    body = request.json()
    assert body["model"] == "org/some-model-Instruct"
    assert body["max_tokens"] == 8 and body["temperature"] == 0.5
    assert body.get("top_k") == (40 if top_k else None)
    assert output.completion == "compatible" and output.usage is not None and output.usage.output_tokens == 1


@pytest.mark.parametrize(("provider", "key_env", "url_env", "default_url", "key_required", "top_k"), SERVICES, ids=IDS)
def test_service_defaults_and_missing_settings(
    monkeypatch: pytest.MonkeyPatch, provider: str, key_env: str, url_env: str, default_url: str | None,
    key_required: bool, top_k: bool,
) -> None:
    if default_url is None:
        monkeypatch.setenv(key_env, "k" * 12)
        with pytest.raises(EvalkitError, match=url_env):
            evalkit.get_model(f"{provider}/m")
        return
    if key_required:
        with pytest.raises(EvalkitError, match=key_env):
            evalkit.get_model(f"{provider}/m")
        monkeypatch.setenv(key_env, "k" * 12)
    assert evalkit.get_model(f"{provider}/m").api.base_url == default_url


def test_keyless_local_server_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with RecordingServer(chat_reply) as server:
        monkeypatch.setenv("OLLAMA_BASE_URL", f"{server.url}/v1")
        output = generate_and_close(evalkit.get_model("ollama/llama3.2"), "ANSWER: local")
    assert output.completion == "local"
    assert server.requests[0].json()["model"] == "llama3.2"


def test_openrouter_routing_args_go_in_the_request_body(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "or-key-0123456789")
    with RecordingServer(chat_reply) as server:
        monkeypatch.setenv("OPENROUTER_BASE_URL", f"{server.url}/api/v1")
        model = evalkit.get_model(
            "openrouter/anthropic/claude-3.5-haiku", models=["openai/gpt-4o-mini"], provider={"order": ["Anthropic"]},
            transforms=["middle-out"], default_headers={"HTTP-Referer": "https://evalkit.test"},
        )
        output = generate_and_close(model, "ANSWER: routed")
    [request] = server.requests
    assert request.path == "/api/v1/chat/completions"
    assert request.headers["http-referer"] == "https://evalkit.test"
    body = request.json()
    assert body["model"] == "anthropic/claude-3.5-haiku"
    assert body["models"] == ["openai/gpt-4o-mini"]
    assert body["provider"] == {"order": ["Anthropic"]} and body["transforms"] == ["middle-out"]
    assert output.completion == "routed"


def test_generic_openai_api_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_LAB_API_KEY", "lab-key-0123456789")
    with RecordingServer(openai_reply) as server:
        monkeypatch.setenv("MY_LAB_BASE_URL", f"{server.url}/v1")
        chat = generate_and_close(evalkit.get_model("openai-api/my-lab/tiny-chat"), "ANSWER: generic")
        completion = generate_and_close(evalkit.get_model("openai-api/my-lab/tiny-base", api="completions"), "ANSWER: plain")
    first, second = server.requests
    assert first.path == "/v1/chat/completions" and first.json()["model"] == "tiny-chat"
    assert first.headers["authorization"] == "Bearer lab-key-0123456789"
    assert second.path == "/v1/completions" and second.json() == {"model": "tiny-base", "prompt": "ANSWER: plain"}
    assert (chat.completion, completion.completion) == ("generic", "plain")


def test_generic_openai_api_needs_a_base_url_and_a_service() -> None:
    with pytest.raises(EvalkitError, match="MY_LAB_BASE_URL"):
        evalkit.get_model("openai-api/my-lab/tiny")
    with pytest.raises(ModelNotFoundError, match="openai-api/<service>/<model>"):
        evalkit.get_model("openai-api/just-a-model")


def test_compatible_errors_name_the_services_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", "ds-key-0123456789")
    with RecordingServer(lambda request: error_reply(401, "Invalid API Key")) as server:
        monkeypatch.setenv("DEEPSEEK_BASE_URL", f"{server.url}/v1")
        with pytest.raises(EvalkitError, match="deepseek: authentication failed \\(HTTP 401\\); check DEEPSEEK_API_KEY: Invalid API Key"):
            generate_and_close(evalkit.get_model("deepseek/deepseek-chat"), "ANSWER: never")
