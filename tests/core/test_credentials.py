"""Credentials never reach an output: keys nested in `-M` values, keys a server echoes in a long
body, passwords in URLs, a mistyped `-M`, and credential shapes in any error text. Every check
runs the CLI against a local server and searches stderr, stdout, the log file, `log show`,
`log samples` and `providers status` for the secret."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit import read_eval_log
from tests.conftest import run_cli
from tests.servers.http import RecordingServer, Reply, Request
from tests.servers.openai_server import chat_reply

TOKEN = "tok9Zq8wVn3Lr5TxQ7mPe2"  # shaped like nothing: only remembering it can hide it
TASK = """
from evalkit import task, Task, Sample
from evalkit.scorer import match

@task
def t():
    return Task(dataset=[Sample(input=f"{word} ANSWER: ok", target="ok", id=word) for word in ("fine", "flaky", "refused")],
                scorer=match())
"""


def leaky_server(request: Request) -> Reply:
    """Echoes the caller's credential: in a 401 for "refused" and for the status check, in a long 500 body (cut at 300
    characters, across the key, in the retry record) on the first "flaky" request; answers the rest."""
    token = request.headers.get("authorization", "").split()[-1]
    prompt = json.dumps(request.json())
    if "refused" in prompt or "ANSWER" not in prompt:  # and `providers status --check`
        return Reply(401, {"error": {"message": f"Incorrect API key provided: {token}"}})
    if "flaky" in prompt and not leaky_server.failed:  # type: ignore[attr-defined]
        leaky_server.failed = True  # type: ignore[attr-defined]
        return Reply(500, {"error": {"message": "x" * 220 + f" upstream rejected credential {token} " + "y" * 400}})
    return chat_reply(request)


def every_output(tmp_path: Path, *runs: subprocess.CompletedProcess[str]) -> str:
    """stdout and stderr of `runs`, the log files, and `log show` / `log samples` of each log."""
    texts = [run.stdout + run.stderr for run in runs]
    for path in (tmp_path / "logs").glob("*.jsonl"):
        texts.append(path.read_text())
        for command in ("show", "samples"):
            shown = run_cli("log", command, str(path))
            assert shown.returncode == 0, shown.stderr
            texts.append(shown.stdout + shown.stderr)
    return "\n".join(texts)


def assert_hidden(secret: str, text: str) -> None:
    assert secret not in text
    assert secret[:8] not in text, "a piece of the secret leaked (cut before it was redacted?)"


def test_bearer_token_in_default_headers_reaches_no_output(tmp_path: Path) -> None:
    (tmp_path / "t.py").write_text(TASK)
    leaky_server.failed = False  # type: ignore[attr-defined]
    headers = f"default_headers={{Authorization: Bearer {TOKEN}}}"
    env = {"OPENAI_API_KEY": "unused-env-key-000000"}
    with RecordingServer(leaky_server) as server:
        base = f"base_url={server.url}/v1"
        result = run_cli("eval", "t.py", "--model", "openai/gpt-test", "-M", headers, "-M", base, "--fail-on-error", "false",
                         "--max-retries", "2", "--log-dir", "logs", "--display", "plain", cwd=tmp_path, env=env)
        [path] = (tmp_path / "logs").glob("*.jsonl")
        retried = run_cli("eval-retry", str(path), "-M", headers, "-M", base, "--display", "plain", cwd=tmp_path, env=env)
        status = run_cli("providers", "status", "openai", "--check", "openai/gpt-test", "-M", headers, "-M", base,
                         cwd=tmp_path, env=env)
    assert server.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    log = read_eval_log(path)
    samples = {s.id: s for s in log.samples}
    assert "authentication failed (HTTP 401)" in samples["refused"].error  # the error is there, the key is not
    assert samples["flaky"].error is None and samples["flaky"].retries  # retried once, recorded
    assert "upstream rejected credential" in samples["flaky"].retries[0]["error"]
    assert log.header["model_args"]["default_headers"] == {"Authorization": "<redacted>"}
    assert "failed" in status.stdout
    assert_hidden(TOKEN, every_output(tmp_path, result, retried, status))


def test_key_echoed_late_in_a_long_body_is_redacted_before_it_is_cut(tmp_path: Path) -> None:
    """azureml quotes the start of a non-JSON error body; the key sits across the cut."""
    key = "amlQz7Rk2Wd9Xv4Tn6Hs"

    def echo(request: Request) -> Reply:
        sent = request.headers["authorization"].split()[-1]
        return Reply(401, "-" * 290 + sent + "-" * 100, {"Content-Type": "text/plain"})

    (tmp_path / "t.py").write_text(TASK)
    with RecordingServer(echo) as server:
        result = run_cli("eval", "t.py", "--model", "azureml/default", "--log-dir", "logs", "--display", "plain",
                         cwd=tmp_path, env={"AZUREML_API_KEY": key, "AZUREML_BASE_URL": f"{server.url}/score"})
    assert result.returncode != 0 and "authentication failed (HTTP 401)" in result.stderr
    assert_hidden(key, every_output(tmp_path, result))


def test_password_in_base_url_is_not_logged(tmp_path: Path) -> None:
    """The password stays out of the header and out of the error the SDK gives about it."""
    password = "pw7Hq2Zr9Yx4"
    (tmp_path / "t.py").write_text(TASK)
    base = f"http://evals:{password}@127.0.0.1:9/v1"
    result = run_cli("eval", "t.py", "--model", "openai/gpt-test", "-M", f"base_url={base}", "--max-retries", "0",
                     "--log-dir", "logs", "--display", "plain", cwd=tmp_path, env={"OPENAI_API_KEY": "sk-test-0000000000000000"})
    [path] = (tmp_path / "logs").glob("*.jsonl")
    assert read_eval_log(path).header["model_args"]["base_url"] == "http://evals:<redacted>@127.0.0.1:9/v1"
    assert_hidden(password, every_output(tmp_path, result))


def test_mistyped_model_arg_does_not_echo_the_key(tmp_path: Path) -> None:
    key = "sk-proj-Tq8wVn3Lr5TxZq8wVn3L"
    result = run_cli("eval", "t.py", "--model", "openai/gpt-test", "-M", f"api_key:{key}", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: -M expects key=value (got 'api_key...'), e.g. -M temperature=0.5"


CREDENTIAL_SHAPES = {
    "sk-ant-api03-Zq8wVn3Lr5TxZq8wVn3Lr5Tx": "sk-ant-api03-",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload": "eyJhbGciOiJIUzI1NiJ9",
    "AKIAIOSFODNN7EXAMPLE": "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY": "wJalrXUtnFEMI",
    "https://bob:hunter2hunter2@db.example/x": "hunter2hunter2",
}


def test_credential_shapes_are_masked_in_sample_errors(tmp_path: Path) -> None:
    """Credentials evalkit never handed out (a solver's own) are masked by their shape."""
    (tmp_path / "t.py").write_text(
        "from evalkit import task, Task, Sample\n"
        f"SHAPES = {list(CREDENTIAL_SHAPES)!r}\n"
        "async def leaky(state, generate):\n"
        "    raise RuntimeError('connection failed: ' + ' | '.join(SHAPES))\n"
        "@task\ndef t():\n    return Task(dataset=[Sample(input='x')], solver=leaky)\n")
    result = run_cli("eval", "t.py", "--model", "mockllm/m", "--log-dir", "logs", "--display", "plain", cwd=tmp_path)
    assert result.returncode == 1
    outputs = every_output(tmp_path, result)
    assert "connection failed: <redacted> | Authorization: Bearer <redacted>" in outputs
    assert "https://bob:<redacted>@db.example/x" in outputs
    for piece in CREDENTIAL_SHAPES.values():
        assert piece not in outputs


def config_env(tmp_path: Path) -> dict[str, str]:
    return {"EVALKIT_CONFIG_DIR": str(tmp_path / "config"), "EVALKIT_SECRETS_BACKEND": "file"}


def test_secrets_file_is_0600_in_a_0700_folder_whatever_the_umask(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    stale = folder / "secrets.tmp"  # left by a crash, readable by everyone
    stale.write_text("{}")
    stale.chmod(0o666)
    done = subprocess.run([sys.executable, "-m", "evalkit", "secrets", "set", "EVALKIT_TEST_KEY"], input="v4lue-Zq8w\n",
                          capture_output=True, text=True, env={**os.environ, **config_env(tmp_path)},
                          preexec_fn=lambda: os.umask(0))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE((folder / "secrets.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert not stale.exists()
    assert json.loads((folder / "secrets.json").read_text()) == {"EVALKIT_TEST_KEY": "v4lue-Zq8w"}


@pytest.mark.parametrize("content", ['{"OPENAI_API_KEY": "sk-abc', "[1, 2]", '{"A": 1}', "\udcff"])
def test_corrupt_secrets_file_is_one_line(tmp_path: Path, content: str) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "secrets.json").write_bytes(content.encode(errors="surrogateescape"))
    (tmp_path / "t.py").write_text(TASK)
    env = {**config_env(tmp_path), "OPENAI_API_KEY": ""}
    for command in (["secrets", "list"], ["eval", "t.py", "--model", "openai/gpt-test", "--display", "none"]):
        result = run_cli(*command, cwd=tmp_path, env=env)
        assert result.returncode == 2, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert line.startswith(f"error: the secrets file {tmp_path / 'config' / 'secrets.json'} ")
        assert line.endswith("delete it and store the secrets again with: evalkit secrets set NAME")
        assert "sk-abc" not in line
