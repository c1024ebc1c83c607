"""Named model configurations (models files), `evalkit models list`, and evalkit settings in
`.env`: through the CLI in a subprocess and through `eval()`, the openai provider talking to a
recording server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evalkit import Sample, Task, eval, get_model, read_eval_log
from evalkit.errors import EvalkitError
from evalkit.scorer import CORRECT, INCORRECT, Score, Target, scorer
from evalkit.secrets import FileStore
from evalkit.solver import TaskState
from tests.conftest import run_cli
from tests.servers.http import RecordingServer, Reply, Request
from tests.servers.openai_server import chat_reply

SECRET = "sk-team-alias-secret-5Qz8Lw2Rv7"
TASK = ("from evalkit import task, Task, Sample\nfrom evalkit.scorer import match\n@task\ndef t():\n"
        "    return Task(dataset=[Sample(input=f'q{i} ANSWER: {i}', target=str(i)) for i in range(3)], scorer=match())\n")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a task file, its own config dir (a file secrets store holding
    TEAM_KEY) and no evalkit or OpenAI settings from the machine."""
    (tmp_path / "t.py").write_text(TASK)
    config = tmp_path / "config"
    FileStore(config / "secrets.json").set("TEAM_KEY", SECRET)
    monkeypatch.chdir(tmp_path)
    for name in ("EVALKIT_MODEL", "EVALKIT_LOG_DIR", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EVALKIT_CONFIG_DIR", str(config))
    monkeypatch.setenv("EVALKIT_SECRETS_BACKEND", "file")
    return tmp_path


def write_models(path: Path, models: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("models:\n" + models)


def test_cli_alias_sends_its_url_key_and_config_and_the_log_names_it(project: Path) -> None:
    with RecordingServer(chat_reply) as server:
        write_models(project / "evalkit.yaml", f"""
  fast:
    model: openai/gpt-test
    base_url: {server.url}/v1
    api_key: ${{secret:TEAM_KEY}}
    config: {{temperature: 0, max_tokens: 64}}
    limits:
      max_connections: 2
      max_retries: ${{env:ALIAS_RETRIES}}
""")
        result = run_cli("eval", "t.py", "--model", "fast", "--display", "none", "--log-dir", "logs",
                         env={"ALIAS_RETRIES": "1"}, cwd=project)
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == 3
    for request in server.requests:
        assert request.headers["authorization"] == f"Bearer {SECRET}"
        body = request.json()
        assert body["model"] == "gpt-test" and body["temperature"] == 0 and body["max_tokens"] == 64
    [path] = (project / "logs").iterdir()
    log = read_eval_log(path)
    assert log.results["match"]["accuracy"] == 1.0
    header = log.header
    assert header["model"] == "openai/gpt-test"
    assert header["model_args"] == {"base_url": f"{server.url}/v1", "api_key": "<redacted>"}
    alias = header["model_alias"]
    assert alias["name"] == "fast" and alias["source"] == str(project / "evalkit.yaml") and alias["model"] == "openai/gpt-test"
    assert alias["args"]["api_key"] == "${secret:TEAM_KEY}"
    assert alias["resolved_config"] == {"temperature": 0, "max_tokens": 64, "max_connections": 2, "max_retries": 1}
    assert SECRET not in path.read_text()


def test_eval_and_model_roles_take_aliases_and_flags_win(project: Path) -> None:
    write_models(project / "evalkit.yaml", """
  student: {model: mockllm/student, config: {temperature: 0.7}}
  judge: mockllm/judge
""")

    @scorer()
    def asks_the_grader() -> Any:
        async def score(state: TaskState, target: Target) -> Score:
            grader = get_model(role="grader")
            verdict = await grader.generate(f"Is '{state.output.completion}' right? ANSWER: yes")
            return Score(CORRECT if verdict.completion == "yes" else INCORRECT, explanation=grader.name)

        return score

    task = Task(dataset=[Sample(input="q ANSWER: 1", target="1")], scorer=asks_the_grader())
    [log] = eval(task, model="student", model_roles={"grader": "judge"}, temperature=0.2, log_dir=project / "logs",
                 display="none")
    assert log.status == "success"
    record = read_eval_log(log.location)
    assert record.header["model"] == "mockllm/student" and record.header["model_roles"] == {"grader": "mockllm/judge"}
    assert record.header["model_alias"]["resolved_config"]["temperature"] == 0.2  # the caller's setting wins
    assert record.samples[0].scores["asks_the_grader"]["explanation"] == "mockllm/judge"

    result = run_cli("eval", "t.py", "--model", "student", "--model-role", "grader=judge", "--display", "none",
                     "--log-dir", "cli-logs", cwd=project)
    assert result.returncode == 0, result.stderr
    [path] = (project / "cli-logs").iterdir()
    assert read_eval_log(path).header["model_roles"] == {"grader": "mockllm/judge"}


def test_models_list_merges_user_and_project_files_and_redacts(project: Path) -> None:
    write_models(project / "config" / "models.yaml", """
  fast: mockllm/from-user
  shared: {model: openai/gpt-4o, args: {organization: org-1}}
""")
    write_models(project / "evalkit.yaml", """
  fast:
    model: openai/gpt-4o-mini
    base_url: https://user:hunter2pass@gateway.example.com/v1
    api_key: ${secret:TEAM_KEY}
    args: {api_key_backup: sk-literal-key-0123456789abcdef}
""")
    result = run_cli("models", "list", "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    records = {r["name"]: r for r in json.loads(result.stdout)}
    assert records["fast"]["model"] == "openai/gpt-4o-mini" and records["fast"]["source"] == str(project / "evalkit.yaml")
    assert records["shared"]["source"] == str(project / "config" / "models.yaml")
    assert records["fast"]["args"] == {"api_key_backup": "<redacted>", "base_url": "https://user:<redacted>@gateway.example.com/v1",
                                       "api_key": "${secret:TEAM_KEY}"}
    table = run_cli("models", "list", cwd=project)
    assert table.returncode == 0 and "openai/gpt-4o-mini" in table.stdout and "models.yaml" in table.stdout
    for output in (result.stdout, table.stdout):
        assert "hunter2pass" not in output and "sk-literal" not in output and SECRET not in output


@pytest.mark.parametrize("models, complaint", [
    ("  fast: {model: gpt-4o}\n", "models.fast.model: give the provider/model"),
    ("  fast: {model: openai/x, temprature: 0}\n", "models.fast.temprature: unknown key"),
    ("  fast: {model: openai/x, config: {temprature: 0}}\n", "models.fast.config.temprature: unknown generate config field (did you mean temperature?)"),
    ("  fast: {model: openai/x, limits: {max_conections: 3}}\n", "models.fast.limits.max_conections: unknown limit"),
    ("  fast: {model: openai/x, api_key: '${vault:KEY}'}\n", "models.fast.api_key: write a reference as ${env:NAME}"),
    ("  fast: [openai/x]\n", "models.fast: must be a mapping"),
    ("  fast: {model: openai/x\n", "not valid YAML at line"),
    ("  fast: {model: mockllm/x, api_key: '${env:UNSET_ALIAS_KEY}'}\n", "models.fast.api_key: ${env:UNSET_ALIAS_KEY} is not set"),
    ("  fast: {model: mockllm/x, config: {temperature: hot}}\n", "models.fast.config: temperature must be"),
])
def test_bad_models_file_is_one_line_naming_file_and_key(project: Path, models: str, complaint: str) -> None:
    write_models(project / "evalkit.yaml", models)
    result = run_cli("eval", "t.py", "--model", "fast", "--display", "none", cwd=project)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: {project / 'evalkit.yaml'}") and complaint in result.stderr
    assert "Traceback" not in result.stderr


def test_provider_model_names_ignore_the_models_file_and_unknown_aliases_say_where_to_look(project: Path) -> None:
    write_models(project / "evalkit.yaml", "  fast: {model: openai/x\n")  # broken, but never read for provider/model
    result = run_cli("eval", "t.py", "--model", "mockllm/x", "--display", "none", "--log-dir", "logs", cwd=project)
    assert result.returncode == 0, result.stderr
    write_models(project / "evalkit.yaml", "  fast: mockllm/fast\n")
    unknown = run_cli("eval", "t.py", "--model-role", "grader=slow", "--model", "mockllm/x", "--display", "none", cwd=project)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert "model 'slow' must be written provider/model" in unknown.stderr and "(aliases: fast)" in unknown.stderr
    with pytest.raises(EvalkitError, match="evalkit.yaml"):
        eval(Task(dataset=[Sample(input="q")]), model="slow", display="none", log_dir=project / "logs")


def test_dotenv_sets_evalkit_settings_and_the_environment_wins(project: Path) -> None:
    (project / ".env").write_text("EVALKIT_MODEL=mockllm/from-dotenv\nEVALKIT_LOG_DIR=dotenv-logs\nSOME_API_KEY=sk-not-exported-0000\n")
    result = run_cli("eval", "t.py", "--display", "none", cwd=project)
    assert result.returncode == 0, result.stderr
    [path] = (project / "dotenv-logs").iterdir()
    assert read_eval_log(path).header["model"] == "mockllm/from-dotenv"
    overridden = run_cli("eval", "t.py", "--display", "none", env={"EVALKIT_MODEL": "mockllm/from-env"}, cwd=project)
    assert overridden.returncode == 0, overridden.stderr
    models = {read_eval_log(p).header["model"] for p in (project / "dotenv-logs").iterdir()}
    assert models == {"mockllm/from-dotenv", "mockllm/from-env"}


def test_eval_retry_of_an_alias_log_uses_the_alias_again(project: Path) -> None:
    failing = {"q1 ": True}

    def flaky(request: Request) -> Reply:
        if failing["q1 "] and "q1 " in request.body.decode():
            return Reply(400, {"error": {"message": "refused once", "type": "invalid_request_error"}})
        return chat_reply(request)

    with RecordingServer(flaky) as server:
        alias = f"  fast: {{model: openai/gpt-test, base_url: '{server.url}/v1', api_key: '${{secret:TEAM_KEY}}'}}\n"
        write_models(project / "evalkit.yaml", alias)
        run_cli("eval", "t.py", "--model", "fast", "--fail-on-error", "false", "--display", "none", "--log-dir", "logs", cwd=project)
        [path] = (project / "logs").iterdir()
        assert read_eval_log(path, header_only=True).footer["counts"]["errors"] == 1
        write_models(project / "evalkit.yaml", "  fast: openai/gpt-other\n")
        moved = run_cli("eval-retry", str(path), "--display", "none", cwd=project)
        assert moved.returncode == 2 and "alias 'fast' now stands for openai/gpt-other" in moved.stderr
        write_models(project / "evalkit.yaml", alias)
        failing["q1 "] = False
        retried = run_cli("eval-retry", str(path), "--display", "none", cwd=project)
    assert retried.returncode == 0, retried.stderr
    assert read_eval_log(path).footer["counts"]["errors"] == 0
    assert {r.headers["authorization"] for r in server.requests} == {f"Bearer {SECRET}"}


def test_an_env_reference_in_a_nested_arg_never_reaches_the_log(project: Path) -> None:
    code = "Zx81kqPLmA2-function-code"
    with RecordingServer(chat_reply) as server:
        write_models(project / "evalkit.yaml", f"""
  fast:
    model: openai/gpt-test
    base_url: {server.url}/v1
    api_key: ${{secret:TEAM_KEY}}
    args: {{default_query: {{code: '${{env:FUNC_CODE}}'}}, default_headers: {{X-Route: 'eu-${{env:FUNC_CODE}}'}}}}
""")
        result = run_cli("eval", "t.py", "--model", "fast", "--display", "none", "--log-dir", "logs",
                         env={"FUNC_CODE": code}, cwd=project)
    assert result.returncode == 0, result.stderr
    assert all(code in r.path and r.headers["x-route"] == f"eu-{code}" for r in server.requests)  # the server got it
    [path] = (project / "logs").iterdir()
    assert code not in path.read_text()
    header = read_eval_log(path).header
    assert header["model_args"]["default_query"] == {"code": "<redacted>"}
    assert header["model_args"]["default_headers"] == {"X-Route": "eu-<redacted>"}
    assert header["model_alias"]["args"]["default_query"] == {"code": "${env:FUNC_CODE}"}


GRADED_TASK = """\
from evalkit import task, Task, Sample, get_model
from evalkit.scorer import CORRECT, INCORRECT, Score, scorer

@scorer()
def graded():
    async def score(state, target):
        verdict = await get_model(role="grader").generate(f"Grade {state.output.completion}. ANSWER: yes")
        return Score(CORRECT if verdict.completion == "yes" else INCORRECT)
    return score

@task
def t():
    return Task(dataset=[Sample(input=f'q{i} ANSWER: {i}', target=str(i)) for i in range(3)], scorer=graded())
"""


def test_eval_retry_recreates_a_role_alias_and_keeps_the_users_overrides(project: Path) -> None:
    (project / "graded.py").write_text(GRADED_TASK)
    failing = {"on": True}

    def flaky(request: Request) -> Reply:
        if failing["on"] and "q1 " in request.body.decode():
            return Reply(400, {"error": {"message": "refused once", "type": "invalid_request_error"}})
        return chat_reply(request)

    with RecordingServer(flaky) as server:
        write_models(project / "evalkit.yaml", f"""
  fast: {{model: openai/gpt-test, base_url: 'http://127.0.0.1:9/v1', api_key: '${{secret:TEAM_KEY}}'}}
  judge: {{model: openai/gpt-judge, base_url: '{server.url}/v1', api_key: '${{secret:TEAM_KEY}}', config: {{max_tokens: 7}}}}
""")
        first = run_cli("eval", "graded.py", "--model", "fast", "-M", f"base_url={server.url}/v1", "--model-role",
                        "grader=judge", "--fail-on-error", "false", "--display", "none", "--log-dir", "logs", cwd=project)
        assert first.returncode == 0, first.stderr
        [path] = (project / "logs").iterdir()
        header = read_eval_log(path, header_only=True).header
        assert header["model_alias"]["overrides"] == ["base_url"]
        assert header["model_roles"] == {"grader": "openai/gpt-judge"}
        assert header["model_role_aliases"]["grader"]["name"] == "judge"
        failing["on"] = False
        before = len(server.requests)
        retried = run_cli("eval-retry", str(path), "--display", "none", cwd=project)
    assert retried.returncode == 0, retried.stderr
    log = read_eval_log(path)
    assert log.footer["counts"]["errors"] == 0 and log.results["graded"]["accuracy"] == 1.0
    again = [r.json() for r in server.requests[before:]]  # the -M base_url kept, the grader's alias resolved again
    assert sorted(body["model"] for body in again) == ["gpt-judge", "gpt-test"]
    assert next(body for body in again if body["model"] == "gpt-judge")["max_tokens"] == 7
    assert {r.headers["authorization"] for r in server.requests} == {f"Bearer {SECRET}"}
