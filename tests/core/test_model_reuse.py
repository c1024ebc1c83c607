"""A Model passed to eval() stays open and works again in a later eval() (a new event loop)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit import Sample, Task, eval, get_model
from evalkit.scorer import includes
from tests.servers.http import RecordingServer, Reply, Request


def chat(request: Request) -> Reply:
    return Reply(body={"choices": [{"message": {"role": "assistant", "content": "Tokyo"}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})


@pytest.mark.parametrize("provider", ["azureml/default", "openai/gpt-test"])
def test_model_reused_across_eval_calls(provider: str, log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    task = Task(dataset=[Sample(input=f"q{i}", target="Tokyo") for i in range(5)], scorer=includes())
    with RecordingServer(chat) as server:
        monkeypatch.setenv("AZUREML_BASE_URL", f"{server.url}/score")
        monkeypatch.setenv("AZUREML_API_KEY", "k-azure")
        monkeypatch.setenv("OPENAI_API_KEY", "k-openai")
        model = get_model(provider, base_url=f"{server.url}/v1" if provider.startswith("openai") else None)
        first = eval(task, model=model, log_dir=log_dir, display="none")[0]
        second = eval(task, model=model, log_dir=log_dir, display="none")[0]
    assert first.status == second.status == "success"
    assert first.results["includes"]["accuracy"] == second.results["includes"]["accuracy"] == 1.0
    assert len(server.requests) == 10
