"""The secrets store and CLI, lookup order, and that no credential reaches any output."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from evalkit.secrets import get_secret
from tests.conftest import run_cli

KEY = "sk-test-Zq8wVn3Lr5Tx"


@pytest.fixture
def store_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {"EVALKIT_CONFIG_DIR": str(tmp_path / "config"), "EVALKIT_SECRETS_BACKEND": "file"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("EVALKIT_TEST_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    return env


def set_secret(name: str, value: str, env: dict[str, str]) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "evalkit", "secrets", "set", name], input=value + "\n",
                            capture_output=True, text=True, env={**os.environ, **env})
    assert result.returncode == 0, result.stderr
    assert value not in result.stdout + result.stderr


def test_set_list_delete_with_0600_file(store_env: dict[str, str], tmp_path: Path) -> None:
    set_secret("EVALKIT_TEST_KEY", KEY, store_env)
    path = tmp_path / "config" / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    listed = run_cli("secrets", "list", env=store_env)
    assert listed.stdout.split() == ["EVALKIT_TEST_KEY"] and KEY not in listed.stdout
    assert get_secret("EVALKIT_TEST_KEY") == KEY
    assert run_cli("secrets", "delete", "EVALKIT_TEST_KEY", env=store_env).returncode == 0
    assert run_cli("secrets", "list", env=store_env).stdout.strip() == ""
    missing = run_cli("secrets", "delete", "EVALKIT_TEST_KEY", env=store_env)
    assert missing.returncode == 2 and "no stored secret named EVALKIT_TEST_KEY" in missing.stderr


def test_lookup_order_env_then_dotenv_then_store(store_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_secret("EVALKIT_TEST_KEY", "from-store-value", store_env)
    assert get_secret("EVALKIT_TEST_KEY") == "from-store-value"
    (tmp_path / ".env").write_text("EVALKIT_TEST_KEY=from-dotenv-value\n")
    assert get_secret("EVALKIT_TEST_KEY") == "from-dotenv-value"
    monkeypatch.setenv("EVALKIT_TEST_KEY", "from-env-value")
    assert get_secret("EVALKIT_TEST_KEY") == "from-env-value"
    status = run_cli("providers", "status", "mockllm", env=store_env)
    assert status.returncode == 0 and "not needed" in status.stdout


def test_key_never_reaches_log_or_output(store_env: dict[str, str], tmp_path: Path) -> None:
    """A key from the store that ends up in an error message stays out of every output."""
    set_secret("EVALKIT_TEST_KEY", KEY, store_env)
    task_file = tmp_path / "t.py"
    task_file.write_text(
        "from evalkit import task, Task, Sample\nfrom evalkit.secrets import get_secret\nfrom evalkit.scorer import includes\n"
        "from evalkit.solver import generate\n"
        "async def leaky(state, generate):\n"
        "    raise RuntimeError('auth failed for key ' + get_secret('EVALKIT_TEST_KEY'))\n"
        "@task\ndef t():\n"
        "    return Task(dataset=[Sample(input='ANSWER: ok', target='ok'), Sample(input='x', target='y')],\n"
        "                solver=[generate(), leaky], scorer=includes())\n")
    result = run_cli("eval", "t.py", "--model", "mockllm/m", "--fail-on-error", "false",
                     "--log-dir", "logs", "--display", "plain", cwd=tmp_path, env=store_env)
    outputs = result.stdout + result.stderr + "".join(p.read_text() for p in (tmp_path / "logs").glob("*"))
    assert "auth failed for key <redacted>" in outputs
    assert KEY not in outputs
    shown = run_cli("log", "show", str(next((tmp_path / "logs").glob("*.jsonl"))), cwd=tmp_path)
    assert KEY not in shown.stdout + shown.stderr


def test_model_args_holding_credentials_are_redacted(store_env: dict[str, str]) -> None:
    from evalkit.log.writer import redact

    assert redact({"api_key": "abc", "auth_token": "t", "timeout": 3, "password": None}) == {
        "api_key": "<redacted>", "auth_token": "<redacted>", "timeout": 3, "password": None}
    os.environ["EVALKIT_TEST_KEY"] = KEY
    try:
        assert get_secret("EVALKIT_TEST_KEY") == KEY
        assert redact({"headers_value": KEY}) == {"headers_value": "<redacted>"}
    finally:
        del os.environ["EVALKIT_TEST_KEY"]


def test_nested_credentials_are_redacted_and_settings_are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    from evalkit.log.writer import redact

    headers = {"default_headers": {"Authorization": "Bearer sk-live-123456"}, "http_options": {"headers": [{"x-api-key": "k"}]}}
    assert redact(headers) == {"default_headers": {"Authorization": "<redacted>"},
                               "http_options": {"headers": [{"x-api-key": "<redacted>"}]}}
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert get_secret("AWS_DEFAULT_REGION") == "us-east-1"
    assert redact({"region_name": "us-east-1"}) == {"region_name": "us-east-1"}


def test_api_key_given_with_dash_m_is_scrubbed_from_errors(tmp_path: Path) -> None:
    from evalkit.model.model import get_model
    from evalkit.secrets import scrub

    with pytest.raises(Exception):
        get_model("mockllm/m", api_key_extra="sk-passed-on-the-command-line")
    assert scrub("failed with sk-passed-on-the-command-line") == "failed with <redacted>"
