"""Provider forms as other tools' documentation writes them: a transform spec keyed by endpoint
and kept as JSON text in a variable (Snorkel), Google safety settings in Inspect's short forms,
OpenRouter fallback models as a comma string, Azure OpenAI without an API version, and
provider parameters (`headers`, `extra_headers`, `extra_body`, `logit_bias`) reaching the
request. Each goes through the provider's real client to a local server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import evalkit
from evalkit import GenerateConfig, read_eval_log
from tests.conftest import REPO, run_cli
from tests.providers.helpers import NO_RETRIES, generate_and_close, generate_once, isolate_env
from tests.servers.custom_llm_server import custom_reply
from tests.servers.gemini_server import gemini_reply
from tests.servers.http import RecordingServer, Reply, Request
from tests.servers.openai_server import chat_reply

# A spec in Snorkel's form: keyed by the OpenAI endpoint it transforms, no base URL of its own.
SNORKEL_FORM_SPEC: dict[str, Any] = {
    "api_key_env": "ACME_API_KEY",
    "/chat/completions": {
        "openai_to_custom_request": {
            "model_id": "model",
            "inputs": "messages[*].{speaker: role, text: content}",
            "parameters": {"temperature": "temperature", "max_new_tokens": "max_tokens", "logit_bias": "logit_bias"},
        },
        "custom_to_openai_response": {
            "choices": "generations[*].{message: {role: 'assistant', content: text}, finish_reason: stop_reason}",
            "usage": {"prompt_tokens": "token_counts.input", "completion_tokens": "token_counts.output"},
        },
    },
    "/completions": {
        "openai_to_custom_request": {"model_id": "model", "text": "prompt", "parameters": {"max_new_tokens": "max_tokens"}},
        "custom_to_openai_response": {
            "choices": "generations[*].{text: text, finish_reason: stop_reason}",
            "usage": {"prompt_tokens": "token_counts.input", "completion_tokens": "token_counts.output"},
        },
    },
}
ENV = ("EVALKIT_TRANSFORM_SPEC", "TRANSFORM_BASE_URL", "TRANSFORM_API_KEY", "ACME_API_KEY", "AZUREML_BASE_URL",
       "AZUREML_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENROUTER_API_KEY", "OPENROUTER_BASE_URL",
       "AZUREAI_OPENAI_API_KEY", "AZUREAI_OPENAI_BASE_URL", "OPENAI_API_VERSION", "GOOGLE_BASE_URL", "GEMINI_API_KEY")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_env(monkeypatch, tmp_path, unset=ENV)


def test_snorkel_form_spec_as_json_text_in_the_environment_through_the_cli(tmp_path: Path) -> None:
    with RecordingServer(custom_reply) as server:
        env = {"EVALKIT_TRANSFORM_SPEC": json.dumps(SNORKEL_FORM_SPEC), "TRANSFORM_BASE_URL": f"{server.url}/acme/v1",
               "ACME_API_KEY": "acme-key-0123456789"}
        result = run_cli("eval", str(REPO / "tasks" / "factual_qa.py"), "--model", "transform/acme-7b", "--limit", "1",
                         "--log-dir", str(tmp_path / "logs"), env=env)
    assert result.returncode == 0, result.stderr
    [request] = server.requests
    assert request.path == "/acme/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer acme-key-0123456789"
    body = request.json()
    assert body["model_id"] == "acme-7b" and body["parameters"] == {"temperature": 0.0, "max_new_tokens": 32}
    assert [item["speaker"] for item in body["inputs"]] == ["system", "user"]
    [path] = (tmp_path / "logs").glob("*.jsonl")
    log = read_eval_log(path)
    assert log.footer["status"] == "success"
    assert log.samples[0].output["completion"].startswith("echo: ")
    assert "acme-key-0123456789" not in path.read_text()


def test_completions_root_key_and_base_url_model_arg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ACME_API_KEY", "acme-key-0123456789")
    spec = tmp_path / "acme.json"
    spec.write_text(json.dumps(SNORKEL_FORM_SPEC))
    with RecordingServer(custom_reply) as server:
        output = generate_once("transform/acme-7b", "Say hi", GenerateConfig(max_retries=0, max_tokens=5),
                               base_url=server.url, spec=str(spec), endpoint="/completions")
    [request] = server.requests
    assert request.path == "/completions"
    assert request.json() == {"model_id": "acme-7b", "text": "Say hi", "parameters": {"max_new_tokens": 5}}
    assert output.completion == "echo: Say hi" and output.stop_reason == "stop"
    assert output.usage is not None and output.usage.output_tokens == 2


def test_transform_without_any_base_url_says_where_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_TRANSFORM_SPEC", json.dumps(SNORKEL_FORM_SPEC))
    monkeypatch.setenv("ACME_API_KEY", "acme-key-0123456789")
    with pytest.raises(evalkit.EvalkitError, match="base_url: missing .*-M base_url=URL, or set TRANSFORM_BASE_URL"):
        evalkit.get_model("transform/acme-7b")
    with pytest.raises(evalkit.EvalkitError, match="has no '/completions' key"):
        evalkit.get_model("transform/acme-7b", spec={"/chat/completions": SNORKEL_FORM_SPEC["/chat/completions"]},
                          endpoint="/completions")


def test_transform_headers_merge_and_extra_body_reaches_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_API_KEY", "acme-key-0123456789")
    spec = {**SNORKEL_FORM_SPEC, "headers": {"X-Client": "evalkit"}}
    with RecordingServer(custom_reply) as server:
        output = generate_once("transform/acme-7b", "Hi", base_url=server.url, spec=spec,
                               headers={"X-Tenant": "t1"}, extra_headers={"X-Trace": 7}, logit_bias={"50256": -100})
    [request] = server.requests
    assert request.headers["x-tenant"] == "t1" and request.headers["x-trace"] == "7"
    assert request.headers["x-client"] == "evalkit" and request.headers["authorization"] == "Bearer acme-key-0123456789"
    assert request.json()["parameters"] == {"logit_bias": {"50256": -100}}
    assert output.completion == "echo: Hi"


def azureml_reply(request: Request) -> Reply:
    return Reply(body={"choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]})


def test_azureml_headers_merge_and_extra_body(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZUREML_API_KEY", "aml-key-0123456789")
    with RecordingServer(azureml_reply) as server:
        output = generate_once("azureml/llama-blue", "Hi", base_url=f"{server.url}/score",
                               headers={"X-Tenant": "t1"}, extra_body={"safe_prompt": True}, logit_bias={"7": 5})
    [request] = server.requests
    assert request.headers["x-tenant"] == "t1" and request.headers["authorization"] == "Bearer aml-key-0123456789"
    assert request.headers["azureml-model-deployment"] == "llama-blue"
    body = request.json()
    assert body["safe_prompt"] is True and body["logit_bias"] == {"7": 5}
    assert output.completion == "ok"


def test_azureml_headers_from_the_cli(tmp_path: Path) -> None:
    with RecordingServer(azureml_reply) as server:
        result = run_cli("eval", str(REPO / "tasks" / "factual_qa.py"), "--model", "azureml/default", "--limit", "1",
                         "-M", "headers={X-Tenant: t1}", "--log-dir", str(tmp_path / "logs"),
                         env={"AZUREML_BASE_URL": f"{server.url}/score", "AZUREML_API_KEY": "cli-aml-key-0123"})
    assert result.returncode == 0, result.stderr
    assert server.requests[0].headers["x-tenant"] == "t1"
    assert server.requests[0].headers["authorization"] == "Bearer cli-aml-key-0123"


def test_openai_extra_body_extra_headers_and_logit_bias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789")
    with RecordingServer(chat_reply) as server:
        model = evalkit.get_model("openai/gpt-4o-mini", base_url=f"{server.url}/v1", extra_body={"metadata": {"run": "r1"}},
                                  extra_headers={"X-Team": "evals"}, logit_bias={50256: -100})
        output = generate_and_close(model, "ANSWER: biased", GenerateConfig(max_tokens=4))
    [request] = server.requests
    assert request.headers["x-team"] == "evals"
    body = request.json()
    assert body["metadata"] == {"run": "r1"} and body["logit_bias"] == {"50256": -100} and body["max_tokens"] == 4
    assert output.completion == "biased"


def test_compatible_service_extra_body_from_the_cli(tmp_path: Path) -> None:
    (tmp_path / "t.py").write_text(
        "from evalkit import task, Task, Sample\n@task\ndef t():\n    return Task(dataset=[Sample(input='ANSWER: x')])\n")
    with RecordingServer(chat_reply) as server:
        result = run_cli("eval", "t.py", "--model", "openrouter/meta/llama", "-M", "extra_body={top_a: 0.2}",
                         "-M", 'logit_bias={42: 3}', "-M", "models=openai/gpt-4o-mini, anthropic/claude-3.5-haiku",
                         "--log-dir", "logs", cwd=tmp_path,
                         env={"OPENROUTER_API_KEY": "or-key-0123456789", "OPENROUTER_BASE_URL": f"{server.url}/api/v1"})
    assert result.returncode == 0, result.stderr
    body = server.requests[0].json()
    assert body["top_a"] == 0.2 and body["logit_bias"] == {"42": 3}
    assert body["models"] == ["openai/gpt-4o-mini", "anthropic/claude-3.5-haiku"]


def test_openai_azure_without_api_version_uses_the_ga_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZUREAI_OPENAI_API_KEY", "azure-key-0123456789")
    with RecordingServer(chat_reply) as server:
        monkeypatch.setenv("AZUREAI_OPENAI_BASE_URL", server.url)
        generate_and_close(evalkit.get_model("openai/azure/my-gpt4o"), "ANSWER: ok")
        monkeypatch.setenv("OPENAI_API_VERSION", "2025-04-01-preview")
        generate_and_close(evalkit.get_model("openai/azure/my-gpt4o"), "ANSWER: ok")
    assert [r.path.split("api-version=")[1] for r in server.requests] == ["2024-10-21", "2025-04-01-preview"]


@pytest.mark.parametrize(("given", "threshold"), [
    ("low_and_above", "BLOCK_LOW_AND_ABOVE"), ("medium_and_above", "BLOCK_MEDIUM_AND_ABOVE"),
    ("only_high", "BLOCK_ONLY_HIGH"), ("high", "BLOCK_ONLY_HIGH"), ("none", "BLOCK_NONE"), ("off", "OFF"),
    ("block_medium_and_above", "BLOCK_MEDIUM_AND_ABOVE"),
])
def test_google_safety_settings_short_forms(monkeypatch: pytest.MonkeyPatch, given: str, threshold: str) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "gkey-evalkit-test")
    with RecordingServer(lambda r: gemini_reply("ok")) as server:
        generate_once("google/gemini-2.0-flash", "Hi", NO_RETRIES, base_url=server.url, safety_settings={"hate_speech": given})
    settings = {s["category"]: s["threshold"] for s in server.requests[0].json()["safetySettings"]}
    assert settings == {"HARM_CATEGORY_HARASSMENT": "BLOCK_NONE", "HARM_CATEGORY_HATE_SPEECH": threshold,
                        "HARM_CATEGORY_SEXUALLY_EXPLICIT": "BLOCK_NONE", "HARM_CATEGORY_DANGEROUS_CONTENT": "BLOCK_NONE"}


def test_google_defaults_all_four_categories_to_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "gkey-evalkit-test")
    with RecordingServer(lambda r: gemini_reply("ok")) as server:
        generate_once("google/gemini-2.0-flash", "Hi", NO_RETRIES, base_url=server.url)
    assert server.requests[0].json()["safetySettings"] == [
        {"category": f"HARM_CATEGORY_{name}", "threshold": "BLOCK_NONE"}
        for name in ("HARASSMENT", "HATE_SPEECH", "SEXUALLY_EXPLICIT", "DANGEROUS_CONTENT")
    ]


def test_providers_status_finds_the_specs_key_and_fails_on_a_failed_check(tmp_path: Path) -> None:
    spec = json.dumps(SNORKEL_FORM_SPEC)
    status = run_cli("providers", "status", "transform", cwd=tmp_path,
                     env={"EVALKIT_TRANSFORM_SPEC": spec, "ACME_API_KEY": "acme-key-0123456789"})
    assert status.returncode == 0, status.stderr
    assert "ACME_API_KEY (environment)" in status.stdout and "acme-key-0123456789" not in status.stdout
    with RecordingServer(lambda r: Reply(401, {"detail": "bad key"})) as server:
        failed = run_cli("providers", "status", "transform", "--check", "transform/acme-7b", "-M", f"base_url={server.url}",
                         cwd=tmp_path, env={"EVALKIT_TRANSFORM_SPEC": spec, "ACME_API_KEY": "acme-key-0123456789"})
    assert failed.returncode == 1 and "failed" in failed.stdout
    with RecordingServer(custom_reply) as server:
        ok = run_cli("providers", "status", "transform", "--check", "transform/acme-7b", "-M", f"base_url={server.url}",
                     cwd=tmp_path, env={"EVALKIT_TRANSFORM_SPEC": spec, "ACME_API_KEY": "acme-key-0123456789"})
    assert ok.returncode == 0 and "ok (" in ok.stdout, ok.stdout + ok.stderr
