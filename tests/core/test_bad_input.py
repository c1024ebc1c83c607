"""The table of bad inputs: each gives one clear line naming the fault, the documented exit code
(2 for bad input, 1 for an eval stopped by sample errors), no traceback, and no finished sample
lost."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from evalkit import Sample, Task, eval, read_eval_log
from evalkit.errors import ArgumentError
from tests.conftest import REPO, run_cli
from tests.servers.http import RecordingServer, Reply, Request

ARITHMETIC = str(REPO / "tasks" / "arithmetic.py")
GOOD_TASK = "from evalkit import task, Task, json_dataset\n@task\ndef t():\n    return Task(dataset=json_dataset('d.jsonl'))\n"
THREE_ROWS = '{"input": "one"}\n{"input": "two"}\n{"input": "BAD three"}\n'
SPEC_HEAD = "base_url: http://127.0.0.1:9\ncustom_path: /x\n"
GENERAL_KNOWLEDGE = str(REPO / "tasks" / "multiple_choice.py")
FILE_TASK = "from evalkit import task, Task, json_dataset, csv_dataset\n@task\ndef t(f: str = 'd.csv'):\n    return Task(dataset=(csv_dataset if f.endswith('csv') else json_dataset)(f))\n"


def task_returning(task: str) -> str:
    """A task file whose @task function runs `return <task>` on line 5."""
    return f"from evalkit import task, Task, Sample\n\n@task\ndef t():\n    return {task}\n"


@dataclass
class Case:
    name: str
    args: list[str]
    message: str
    code: int = 2
    files: dict[str, str | bytes] = field(default_factory=dict)
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
    Case("-M a generation setting", ["eval", ARITHMETIC, "--model", "mockllm/m", "-M", "temperature=0"],
         "-M temperature is a generation setting, not a model argument: use --temperature 0"),
    Case("-M a mistyped generation setting", ["eval", ARITHMETIC, "--model", "mockllm/m", "-M", "temprature=0"],
         "-M temprature: did you mean --temperature"),
    Case("--model-config holding a generation setting", ["eval", ARITHMETIC, "--model", "mockllm/m", "--model-config", "m.yaml"],
         "--model-config m.yaml: max_tokens is a generation setting, not a model argument: use --max-tokens 5", files={"m.yaml": "max_tokens: 5\n"}),
    Case("--model-config binary", ["eval", ARITHMETIC, "--model", "mockllm/m", "--model-config", "m.yaml"],
         "--model-config m.yaml: not a text file (byte 4 is not UTF-8)", files={"m.yaml": b"\x7fELF\xd0\x00\x01"}),
    Case("--model empty", ["eval", ARITHMETIC, "--model", ""], "--model is empty: give provider/model"),
    Case("--model blank", ["eval", ARITHMETIC, "--model", "  "], "--model is empty: give provider/model"),
    # -T and task files
    Case("-T text for a whole number", ["eval", ARITHMETIC, "--model", "mockllm/m", "-T", "n=abc"],
         "-T n: task 'arithmetic' expects a whole number (got 'abc')"),
    Case("-T number out of range", ["eval", ARITHMETIC, "--model", "mockllm/m", "-T", "n=1e400"], "-T n: 1e400 is out of range"),
    Case("-T fraction for a whole number", ["eval", ARITHMETIC, "--model", "mockllm/m", "-T", "n=1e23"],
         "-T n: task 'arithmetic' expects a whole number (got 1e+23)"),
    Case("-T negative sample count", ["eval", ARITHMETIC, "--model", "mockllm/m", "-T", "n=-5"],
         "task 'arithmetic': -T n must be 1 or more"),
    Case("-T zero epochs", ["eval", GENERAL_KNOWLEDGE, "--model", "mockllm/m", "-T", "epochs=0"],
         "task 'general_knowledge': epochs must be a whole number of at least 1 (got 0)"),
    Case("task file raising RuntimeError", ["eval", "t.py", "--model", "mockllm/m"],
         "task file t.py failed to import: RuntimeError: no GPU here (line 3)",
         files={"t.py": "from evalkit import task\n\nraise RuntimeError('no GPU here')\n"}),
    Case("task file with a NameError", ["eval", "t.py", "--model", "mockllm/m"],
         "task file t.py failed to import: NameError: name 'y' is not defined (line 2)",
         files={"t.py": "from evalkit import task\nx = y + 1\n"}),
    Case("task file in a circular import", ["eval", "t.py", "--model", "mockllm/m"],
         "task file t.py failed to import: ImportError: cannot import name 'thing' from partially initialized module 'a'",
         files={"t.py": "from evalkit import task\nimport a\n", "a.py": "import b\nthing = 1\n", "b.py": "from a import thing\n"}),
    Case("task function raising", ["eval", "t.py", "--model", "mockllm/m"], "task 't' failed: ValueError: bad split 'x' (line 5)",
         files={"t.py": "from evalkit import task\n\n@task\ndef t():\n    raise ValueError(\"bad split 'x'\")\n"}),
    Case("Sample(input=None)", ["eval", "t.py", "--model", "mockllm/m"],
         "task 't' failed: TypeError: Sample input must be text or a list of chat messages (got NoneType None) (line 5)",
         files={"t.py": task_returning("Task(dataset=[Sample(input=None)])")}),
    Case("Sample(target=4)", ["eval", "t.py", "--model", "mockllm/m"],
         "task 't' failed: TypeError: Sample target must be text or a list of texts (got int 4) (line 5)",
         files={"t.py": task_returning("Task(dataset=[Sample(input='2+2', target=4)])")}),
    Case("Task(epochs='3')", ["eval", "t.py", "--model", "mockllm/m"], "task 't': epochs must be a whole number of at least 1 (got '3')",
         files={"t.py": task_returning("Task(dataset=[Sample(input='a')], epochs='3')")}),
    Case("Task config key typo", ["eval", "t.py", "--model", "mockllm/m"],
         "task 't' failed: ValueError: unknown generate config field 'temprature' (did you mean temperature?) (line 5)",
         files={"t.py": task_returning("Task(dataset=[Sample(input='a')], config={'temprature': 0})")}),
    Case("lone surrogate in a Sample", ["eval", "t.py", "--model", "mockllm/m"],
         "task 't' failed: ValueError: Sample input holds a lone surrogate '\\ud800' at character 2, which is not valid Unicode",
         files={"t.py": task_returning("Task(dataset=[Sample(input='a\\ud800b')])")}),
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
    Case("--limit too large", ["eval", ARITHMETIC, "--model", "mockllm/m", "--limit", str(10**23)], f"--limit {10**23} is too large"),
    Case("--limit range too large", ["eval", ARITHMETIC, "--model", "mockllm/m", "--limit", f"2-{10**23}"], f"--limit 2-{10**23} is too large"),
    Case("--epochs in exponent form", ["eval", ARITHMETIC, "--model", "mockllm/m", "--epochs", "1e23"],
         "Invalid value for '--epochs': '1e23' is not a whole number"),
    Case("--epochs too large for a log", ["eval", ARITHMETIC, "--model", "mockllm/m", "--epochs", str(10**23)],
         f"Invalid value for '--epochs': {10**23} is too large"),
    Case("--temperature inf", ["eval", ARITHMETIC, "--model", "mockllm/m", "--temperature", "inf"],
         "Invalid value for '--temperature': 'inf' is not a finite number"),
    Case("--temperature nan", ["eval", ARITHMETIC, "--model", "mockllm/m", "--temperature", "nan"],
         "Invalid value for '--temperature': 'nan' is not a finite number"),
    Case("--tokens-per-sec -inf", ["eval", ARITHMETIC, "--model", "mockllm/m", "--tokens-per-sec", "-inf"],
         "Invalid value for '--tokens-per-sec': '-inf' is not a finite number"),
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
    Case("lone surrogate in a .json dataset", ["eval", "t.py", "--model", "mockllm/m", "-T", "f=d.json"],
         "d.json, line 2: Sample target holds a lone surrogate '\\udc80' at character 1",
         files={"t.py": FILE_TASK, "d.json": '[{"input": "a"}, {"input": "b", "target": "\\udc80"}]'}),
    Case("lone surrogate in a .jsonl dataset", ["eval", "t.py", "--model", "mockllm/m", "-T", "f=d.jsonl"],
         "d.jsonl, line 1: not valid JSON", files={"t.py": FILE_TASK, "d.jsonl": '{"input": "a\\ud800"}\n'}),
    Case("CSV row missing a column", ["eval", "t.py", "--model", "mockllm/m"],
         "d.csv, line 3: 2 field(s) where the header has 3 (input, target, subject)",
         files={"t.py": FILE_TASK, "d.csv": "input,target,subject\n1+1,2,maths\n2+2,4\n"}),
    Case("CSV row with an unquoted comma", ["eval", "t.py", "--model", "mockllm/m"],
         "d.csv, line 2: 3 field(s) where the header has 2 (input, target); quote a field that holds a comma",
         files={"t.py": FILE_TASK, "d.csv": "input,target\nSay 1,000,1000\n"}),
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
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
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


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "t.py").write_text("from evalkit import task\nx = y + 1\n")
    result = run_cli("--debug", "eval", "t.py", "--model", "mockllm/m", cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "NameError: name 'y' is not defined" in result.stderr
    assert 'File "' + str(tmp_path / "t.py") + '", line 2' in result.stderr


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("temperature", float("inf"), r"temperature must be a finite number of 0 or more \(got inf\)"),
    ("top_p", float("nan"), r"top_p must be a finite number of 0 or more \(got nan\)"),
    ("max_tokens", 10**23, r"max_tokens must be a whole number above 0 \(got 100000000000000000000000\)"),
])
def test_eval_refuses_settings_no_log_can_hold(setting: str, value: float, message: str, tmp_path: Path) -> None:
    with pytest.raises(ArgumentError, match=message):
        eval(Task(dataset=[Sample(input="a")]), model="mockllm/m", log_dir=tmp_path, display="none", **{setting: value})
    assert not tmp_path.exists() or not any(tmp_path.iterdir())
