"""The table of bad inputs: each gives one clear line naming the fault, the documented exit code
(2 for bad input, 1 for an eval stopped by sample errors), no traceback, and no finished sample
lost."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from evalkit import read_eval_log
from tests.conftest import REPO, run_cli
from tests.servers.http import RecordingServer, Reply, Request

ARITHMETIC = str(REPO / "tasks" / "arithmetic.py")
GOOD_TASK = "from evalkit import task, Task, json_dataset\n@task\ndef t():\n    return Task(dataset=json_dataset('d.jsonl'))\n"
THREE_ROWS = '{"input": "one"}\n{"input": "two"}\n{"input": "BAD three"}\n'
SPEC_HEAD = "base_url: http://127.0.0.1:9\ncustom_path: /x\n"


@dataclass
class Case:
    name: str
    args: list[str]
    message: str
    code: int = 2
    files: dict[str, str] = field(default_factory=dict)
    server: Reply | None = None  # answered to the prompt containing BAD; others succeed


CASES = [
    # model strings and -M
    Case("unknown provider", ["eval", ARITHMETIC, "--model", "nosuch/model"], "unknown provider 'nosuch'; known providers:"),
    Case("model without /", ["eval", ARITHMETIC, "--model", "mockllm"], "must be written provider/model"),
    Case("-M without =", ["eval", ARITHMETIC, "--model", "mockllm/m", "-M", "oops"], "-M expects key=value"),
    Case("-M the provider rejects", ["eval", ARITHMETIC, "--model", "mockllm/m", "-M", "bogus=1"], "-M argument rejected by provider 'mockllm'"),
    Case("-M the SDK rejects", ["eval", ARITHMETIC, "--model", "openai/gpt-x", "-M", "not_a_client_arg=1"], "not_a_client_arg"),
    Case("-M config reserved", ["eval", ARITHMETIC, "--model", "mockllm/m", "-M", "config={a: 1}"], "-M config is reserved"),
    Case("--model-config missing", ["eval", ARITHMETIC, "--model", "mockllm/m", "--model-config", "/no/such.yaml"], "--model-config: file not found"),
    Case("--model-config not a mapping", ["eval", ARITHMETIC, "--model", "mockllm/m", "--model-config", "m.yaml"], "must hold a mapping",
         files={"m.yaml": "- a\n- b\n"}),
    # -T and task files
    Case("-T malformed list", ["eval", ARITHMETIC, "--model", "mockllm/m", "-T", "x=[1"], "-T x: not a valid list or dict"),
    Case("-T unknown argument", ["eval", ARITHMETIC, "--model", "mockllm/m", "-T", "nope=1"], "task 'arithmetic' takes no argument nope"),
    Case("task file missing", ["eval", "missing.py", "--model", "mockllm/m"], "task file not found"),
    Case("task file syntax error", ["eval", "t.py", "--model", "mockllm/m"], "syntax error in task file", files={"t.py": "def broken(:\n"}),
    Case("task file without @task", ["eval", "t.py", "--model", "mockllm/m"], "no @task function in", files={"t.py": "x = 1\n"}),
    Case("FILE@name naming no task", ["eval", "t.py@nope", "--model", "mockllm/m"], "no task 'nope' in", files={"t.py": GOOD_TASK, "d.jsonl": "{}\n"}),
    Case("@task not returning a Task", ["eval", "t.py", "--model", "mockllm/m"], "must return a Task",
         files={"t.py": "from evalkit import task\n@task\ndef a():\n    return 3\n"}),
    # flags
    Case("negative --limit", ["eval", ARITHMETIC, "--model", "mockllm/m", "--limit", "-2"], "--limit"),
    Case("malformed --limit", ["eval", ARITHMETIC, "--model", "mockllm/m", "--limit", "abc"], "--limit must be N or M-N"),
    Case("reversed --limit range", ["eval", ARITHMETIC, "--model", "mockllm/m", "--limit", "5-2"], "--limit M-N needs 1 <= M <= N"),
    Case("--epochs 0", ["eval", ARITHMETIC, "--model", "mockllm/m", "--epochs", "0"], "--epochs must be at least 1"),
    Case("--fail-on-error word", ["eval", ARITHMETIC, "--model", "mockllm/m", "--fail-on-error", "maybe"], "--fail-on-error takes"),
    Case("--max-connections not a number", ["eval", ARITHMETIC, "--model", "mockllm/m", "--max-connections", "x"], "Invalid value for '--max-connections'"),
    Case("unknown flag", ["eval", ARITHMETIC, "--modle", "mockllm/m"], "No such option '--modle'"),
    # dataset rows
    Case("row without input", ["eval", "t.py", "--model", "mockllm/m"], "d.jsonl, line 2: field 'input' is missing",
         files={"t.py": GOOD_TASK, "d.jsonl": '{"input": "a"}\n{"prompt": "b"}\n'}),
    Case("row that is not JSON", ["eval", "t.py", "--model", "mockllm/m"], "d.jsonl, line 2: not valid JSON",
         files={"t.py": GOOD_TASK, "d.jsonl": '{"input": "a"}\n{input: b\n'}),
    Case("message with a bad role", ["eval", "t.py", "--model", "mockllm/m"], "d.jsonl, line 1: field 'input': message role must be",
         files={"t.py": GOOD_TASK, "d.jsonl": '{"input": [{"role": "robot", "content": "x"}]}\n'}),
    Case("duplicate sample ids", ["eval", "t.py", "--model", "mockllm/m"], "uses sample ids more than once (7)",
         files={"t.py": GOOD_TASK, "d.jsonl": '{"input": "a", "id": 7}\n{"input": "b", "id": 7}\n'}),
    # transform specs
    Case("transform spec missing", ["eval", ARITHMETIC, "--model", "transform/m", "-M", "spec=nope.yaml"], "nope.yaml"),
    Case("transform spec not YAML", ["eval", ARITHMETIC, "--model", "transform/m", "-M", "spec=s.yaml"], "s.yaml",
         files={"s.yaml": "base_url: [unclosed\n"}),
    Case("transform bad JMESPath", ["eval", ARITHMETIC, "--model", "transform/m", "-M", "spec=s.yaml"], "openai_to_custom_request.params.temp",
         files={"s.yaml": SPEC_HEAD + "openai_to_custom_request: {params: {temp: 'temperature[['}}\n"
                "custom_to_openai_response: {choices: choices}\n"}),
    # logs given to eval-retry
    Case("eval-retry missing log", ["eval-retry", "nope.jsonl"], "log file not found"),
    Case("eval-retry not JSON", ["eval-retry", "x.jsonl"], "not valid JSON", files={"x.jsonl": "hello\n"}),
    Case("eval-retry no header", ["eval-retry", "x.jsonl"], "no evalkit log header", files={"x.jsonl": '{"id": 1}\n'}),
    # credentials
    Case("missing API key", ["eval", ARITHMETIC, "--model", "anthropic/claude-x"], "ANTHROPIC_API_KEY"),
    # server answers (the eval stops: exit 1; the first two samples are kept)
    Case("HTML instead of JSON", ["eval", "t.py", "--model", "openai/gpt-x", "--max-samples", "1"], "not a JSON object", code=1,
         files={"t.py": GOOD_TASK, "d.jsonl": THREE_ROWS}, server=Reply(200, "<html>bad gateway</html>", {"Content-Type": "text/html"})),
    Case("empty body", ["eval", "t.py", "--model", "openai/gpt-x", "--max-samples", "1"], "not a JSON object", code=1,
         files={"t.py": GOOD_TASK, "d.jsonl": THREE_ROWS}, server=Reply(200, "")),
    Case("401 from the server", ["eval", "t.py", "--model", "openai/gpt-x", "--max-samples", "1"], "authentication failed (HTTP 401)", code=1,
         files={"t.py": GOOD_TASK, "d.jsonl": THREE_ROWS}, server=Reply(401, {"error": {"message": "bad key"}})),
    Case("JSON without choices", ["eval", "t.py", "--model", "openai/gpt-x", "--max-samples", "1"], "choices", code=1,
         files={"t.py": GOOD_TASK, "d.jsonl": THREE_ROWS}, server=Reply(200, {"id": "x"})),
]


def chat_reply(text: str) -> dict:
    return {"id": "c", "object": "chat.completion", "created": 0, "model": "gpt-x",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    for name, content in case.files.items():
        (tmp_path / name).write_text(content)
    env = {"OPENAI_API_KEY": "sk-test-key", "ANTHROPIC_API_KEY": ""}
    args = [*case.args, "--log-dir", "logs"] if case.args[0] == "eval" else case.args

    def handler(request: Request) -> Reply:
        prompt = request.json()["messages"][-1]["content"]
        return case.server if "BAD" in prompt and case.server else Reply(body=chat_reply("fine"))

    with RecordingServer(handler) as server:
        result = run_cli(*args, cwd=tmp_path, env={**env, "OPENAI_BASE_URL": f"{server.url}/v1"})
    assert result.returncode == case.code, result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if "error:" in line.lower()]
    assert error_lines and case.message in error_lines[0], result.stderr
    if case.code == 2:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    if case.server is not None:
        [path] = (tmp_path / "logs").glob("*.jsonl")
        log = read_eval_log(path)
        assert [s.input for s in log.samples if s.error is None] == ["one", "two"]
        assert log.status == "error"


def test_table_is_big_enough() -> None:
    assert len(CASES) >= 25
