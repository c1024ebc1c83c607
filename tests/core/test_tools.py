"""Tools through the public surface: @tool schemas, the tool loop in generate(), tool errors the
model sees, use_tools, limits, basic_agent, logs that keep it all, and providers without tools."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Literal

import pytest

from evalkit import ChatMessageAssistant, GenerateConfig, ModelAPI, ModelOutput, Sample, Task, eval, read_eval_log
from evalkit.errors import DefinitionError
from evalkit.model.model import Model
from evalkit.scorer import includes, match
from evalkit.solver import Generate, TaskState, basic_agent, generate, solver, use_tools
from evalkit.tool import ToolCall, ToolDef, ToolError, ToolFunction, ToolInfo, tool
from tests.conftest import REPO, run_cli


@tool
def add() -> Any:
    async def execute(x: int, y: int = 0) -> int:
        """Add two whole numbers.

        Args:
            x: The first number.
            y: The second number,
                which may be left out.
        """
        return x + y

    return execute


@tool
def lookup() -> Any:
    async def execute(key: Literal["a", "b"], keys: list[str] | None = None) -> str:
        """Look a key up.

        Args:
            key: Which key.
            keys: More keys.
        """
        if key == "b":
            raise ToolError("no value for b")
        raise RuntimeError("the lookup service is down")

    return execute


def call(function: str, arguments: Any) -> dict[str, Any]:
    return {"function": function, "arguments": arguments}


def run(outputs: list[Any], solver: Any, log_dir: Path, **task: Any) -> Any:
    [log] = eval(Task(dataset=[Sample(input="What is 1 + 2?", target="3")], solver=solver, scorer=includes(), **task),
                 model="mockllm/tools", model_args={"outputs": outputs}, log_dir=log_dir, display="none")
    return log


def test_schema_comes_from_type_hints_and_the_google_docstring() -> None:
    info = ToolDef.of(add()).info
    assert info == ToolInfo("add", "Add two whole numbers.", {
        "type": "object",
        "properties": {"x": {"type": "integer", "description": "The first number."},
                       "y": {"type": "integer", "description": "The second number, which may be left out.", "default": 0}},
        "required": ["x"],
    })
    params = ToolDef.of(lookup()).parameters["properties"]
    assert params["key"] == {"enum": ["a", "b"], "description": "Which key."}
    assert params["keys"]["anyOf"] == [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]


def test_tool_loop_runs_parallel_calls_and_shows_every_failure_to_the_model(log_dir: Path) -> None:
    outputs = [
        {"content": "working", "tool_calls": [call("add", {"x": 1, "y": 2}), call("add", {"x": 5}), call("nope", {}),
                                              call("add", "{bad json"), call("add", {"z": 1}), call("add", {"x": 1, "z": 2}),
                                              call("lookup", {"key": "b"}), call("lookup", {"key": "a"})]},
        "The answer is 3",
    ]
    log = run(outputs, [use_tools(add(), lookup()), generate()], log_dir)
    assert log.status == "success"
    sample = read_eval_log(log.location).samples[0]
    messages = sample.chat_messages
    assert [m.role for m in messages] == ["user", "assistant", *["tool"] * 8, "assistant"]
    results = messages[2:10]
    assert [r.tool_call_id for r in results] == [c.id for c in messages[1].tool_calls]  # in the calls' order
    assert [r.text for r in results[:2]] == ["3", "5"] and results[0].error is None
    errors = [r.error for r in results[2:]]
    assert [e.type for e in errors] == ["parsing", "parsing", "parsing", "parsing", "unknown", "unknown"]
    assert "no tool named 'nope'" in errors[0].message and "not valid JSON" in errors[1].message
    assert errors[2].message == "add: missing required argument(s): x"
    assert errors[3].message == "add: unexpected argument(s): z (takes: x, y)"
    assert errors[4].message == "no value for b" and errors[5].message == "RuntimeError: the lookup service is down"
    assert sample.scores["includes"]["value"] == "C" and sample.output["completion"] == "The answer is 3"


def test_single_and_none_tool_call_modes(log_dir: Path) -> None:
    @solver
    def modes(mode: str) -> Any:
        async def solve(state: TaskState, generate: Generate) -> TaskState:
            return await generate(state, tool_calls=mode)
        return solve

    outputs = [{"tool_calls": [call("add", {"x": 1})]}, "3"]
    single = read_eval_log(run(outputs, [use_tools(add()), modes("single")], log_dir).location).samples[0]
    assert [m["role"] for m in single.messages] == ["user", "assistant", "tool"]
    none = read_eval_log(run(outputs, [use_tools(add()), modes("none")], log_dir).location).samples[0]
    assert [m["role"] for m in none.messages] == ["user", "assistant"]


def test_message_and_token_limits_end_the_sample_and_are_logged(log_dir: Path) -> None:
    looping = [{"content": "again", "tool_calls": [call("add", {"x": 1})]}]
    log = run(looping, [use_tools(add()), generate()], log_dir, message_limit=5)
    sample = read_eval_log(log.location).samples[0]
    assert sample.limit == {"type": "message", "limit": 5} and len(sample.messages) == 5
    assert sample.error is None and sample.scores["includes"]["value"] == "I" and log.status == "success"
    assert log.footer["counts"] == {"total": 1, "completed": 1, "errors": 0, "limited": 1}
    log = run(looping, [use_tools(add()), generate()], log_dir, token_limit=10)
    sample = read_eval_log(log.location).samples[0]
    assert sample.limit == {"type": "token", "limit": 10} and sample.usage["total_tokens"] >= 10
    assert log.header["sample_limits"] == {"messages": None, "tokens": 10}


def test_limits_from_the_cli_override_the_task(log_dir: Path, tmp_path: Path) -> None:
    outputs = json.dumps([{"tool_calls": [call("calculator", {"expression": "1+1"})]}])
    result = run_cli("eval", str(REPO / "tasks" / "tool_use.py"), "--model", "mockllm/x", "-M", f"outputs={outputs}",
                     "-T", "n=2", "--message-limit", "4", "--log-dir", str(log_dir), "--display", "plain")
    assert result.returncode == 0, result.stderr
    [path] = log_dir.glob("*.jsonl")
    assert {s.limit["limit"] for s in read_eval_log(path).samples} == {4}
    assert "2 ended by a message or token limit" in result.stderr
    bad = run_cli("eval", str(REPO / "tasks" / "tool_use.py"), "--model", "mockllm/x", "--message-limit", "0")
    assert bad.returncode == 2 and "--message-limit" in bad.stderr and "Traceback" not in bad.stderr


def test_basic_agent_submits_and_retries_an_incorrect_answer(log_dir: Path) -> None:
    outputs = [
        {"content": "let me compute", "tool_calls": [call("add", {"x": 1, "y": 2})]},
        "thinking aloud without a tool",
        {"tool_calls": [call("submit", {"answer": "4"})]},
        {"tool_calls": [call("submit", {"answer": "3"})]},
    ]
    log = run(outputs, basic_agent(tools=[add()], max_attempts=2), log_dir)
    sample = read_eval_log(log.location).samples[0]
    roles = [m["role"] for m in sample.messages]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user", "assistant", "tool", "user", "assistant", "tool"]
    assert "submit()" in sample.messages[5]["content"] and "incorrect" in sample.messages[8]["content"]
    assert sample.output["completion"] == "3" and sample.scores["includes"]["value"] == "C"


def test_basic_agent_stops_at_its_default_message_limit(log_dir: Path) -> None:
    log = run(["no tools, no submit"], basic_agent(tools=[add()]), log_dir)
    sample = read_eval_log(log.location).samples[0]
    assert sample.limit == {"type": "message", "limit": 50} and sample.scores["includes"]["value"] == "I"


def test_a_forced_tool_choice_applies_to_the_first_call_only(log_dir: Path) -> None:
    seen: list[Any] = []

    class Recording(ModelAPI):
        provider = "recording"

        async def generate(self, input: Any, tools: list[ToolInfo], tool_choice: Any, config: GenerateConfig) -> ModelOutput:
            seen.append((tool_choice, [t.name for t in tools]))
            if len(seen) == 1:
                message = ChatMessageAssistant(content="", tool_calls=[ToolCall("c1", "add", {"x": 2})])
                output = ModelOutput.from_text("r", "")
                output.choices[0] = type(output.choices[0])(message=message, stop_reason="tool_calls")
                return output
            return ModelOutput.from_text("r", "3")

    model = Model("recording/x", Recording("x"))
    eval(Task(dataset=[Sample(input="1+2", target="3")], solver=[use_tools(add(), tool_choice=ToolFunction("add")), generate()]),
         model=model, log_dir=log_dir, display="none")
    assert seen == [(ToolFunction("add"), ["add"]), ("auto", ["add"])]


def test_a_provider_in_the_two_argument_form_still_works_and_refuses_tools_in_one_line(log_dir: Path, tmp_path: Path) -> None:
    task_file = tmp_path / "echo_tools.py"
    task_file.write_text(
        "from evalkit import Task, task, Sample\nfrom evalkit.solver import use_tools, generate\n"
        "from tool_use import calculator\n"
        "@task\ndef echo_tools():\n"
        "    return Task(dataset=[Sample(input='hi', target='hi')] * 1, solver=[use_tools(calculator()), generate()])\n")
    env = {"PYTHONPATH": str(REPO / "tasks")}
    plain = run_cli("eval", str(REPO / "tasks" / "factual_qa.py"), "--model", "echo/x", "--limit", "1", "--log-dir", str(log_dir))
    assert plain.returncode == 0, plain.stderr
    refused = run_cli("eval", str(task_file), "--model", "echo/x", "--log-dir", str(log_dir), "--display", "plain", env=env)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "provider 'echo' cannot call tools" in refused.stderr
    [log] = [read_eval_log(p) for p in log_dir.glob("*echo_tools*.jsonl")]
    assert log.status == "error" and "cannot call tools" in log.error and log.header["solver"][0]["name"] == "use_tools"


def test_reasoning_and_images_round_trip_through_the_log(log_dir: Path, tmp_path: Path) -> None:
    image = tmp_path / "dot.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n")
    dataset = tmp_path / "images.jsonl"
    dataset.write_text(json.dumps({"input": [{"role": "user", "content": [
        {"type": "text", "text": "What is shown?"}, {"type": "image", "image": str(image), "detail": "low"}]}], "target": "dot"}) + "\n")
    from evalkit import json_dataset

    [log] = eval(Task(dataset=json_dataset(str(dataset)), scorer=match()), model="mockllm/x",
                 model_args={"outputs": [{"reasoning": "it is round", "content": "a dot"}]}, log_dir=log_dir, display="none")
    sample = read_eval_log(log.location).samples[0]
    user, reply = sample.chat_messages
    assert user.content[1].image == str(image) and user.content[1].detail == "low" and user.text == "What is shown?"
    assert reply.content[0].reasoning == "it is round" and reply.text == "a dot"
    assert sample.output["completion"] == "a dot"


def test_tools_that_cannot_be_described_fail_at_definition_and_undescribed_parameters_warn() -> None:
    def not_async(x: int) -> int:
        return x

    with pytest.raises(DefinitionError, match="must be an async function"):
        use_tools(not_async)

    async def odd(x: object) -> str:
        """Odd.

        Args:
            x: A thing.
        """
        return ""

    with pytest.raises(DefinitionError, match="tool 'odd': type"):
        ToolDef.of(odd)

    async def half(x: int, y: int) -> int:
        """Half documented.

        Args:
            x: Documented.
        """
        return x

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = ToolDef.of(half).info
    assert "no Args: entry for y" in str(caught[0].message) and info.parameters["required"] == ["x", "y"]


def test_bad_task_limits_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="message_limit must be a whole number"):
        Task(dataset=[Sample(input="x")], message_limit=0)


def test_eval_retry_keeps_the_sample_limits_and_their_count(log_dir: Path) -> None:
    from evalkit import eval_retry

    looping = [{"content": "again", "tool_calls": [call("add", {"x": 1})]}]
    task = Task(dataset=[Sample(input="a", target="3", id=1), Sample(input="b FAIL", target="3", id=2)],
                solver=[use_tools(add()), generate()], scorer=includes())
    [log] = eval(task, model="mockllm/x", model_args={"outputs": looping, "error_on": "FAIL"}, message_limit=5,
                 fail_on_error=False, log_dir=log_dir, display="none")
    assert log.footer["counts"] == {"total": 2, "completed": 1, "errors": 1, "limited": 1}
    retried = eval_retry(log.location, task=task, model_args={"error_on": None}, display="none")
    samples = {s.id: s for s in read_eval_log(retried.location).samples}
    assert samples[2].limit == {"type": "message", "limit": 5} and len(samples[2].messages) == 5
    assert retried.footer["counts"] == {"total": 2, "completed": 2, "errors": 0, "limited": 2}


def test_a_limit_reached_inside_parallel_tool_calls_ends_the_sample_as_a_limit(log_dir: Path) -> None:
    from evalkit.sample_limits import LimitExceededError

    @tool
    def budget() -> Any:
        async def execute(cost: int) -> str:
            """Spend from a budget shared by the sample's sub-agents.

            Args:
                cost: Tokens to spend.
            """
            raise LimitExceededError("token", 100, 100 + cost)

        return execute

    outputs = [{"tool_calls": [call("budget", {"cost": 5}), call("budget", {"cost": 7})]}, "done"]
    log = run(outputs, [use_tools(budget()), generate()], log_dir)
    sample = read_eval_log(log.location).samples[0]
    assert sample.error is None and sample.limit == {"type": "token", "limit": 100}
    assert log.footer["counts"]["limited"] == 1


def test_a_bound_method_can_be_a_tool() -> None:
    class Counter:
        async def bump(self, by: int) -> int:
            """Add to the count.

            Args:
                by: How much.
            """
            return by

    counter = Counter()
    assert ToolDef.of(counter.bump).info.name == "bump" and ToolDef.of(counter.bump).parameters["required"] == ["by"]
