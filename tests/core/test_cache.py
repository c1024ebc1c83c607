"""The output cache through eval(), the CLI and Model.generate, against a recording OpenAI-style
server: a second run makes no request, what the key covers, errors, expiry, epochs, tool turns,
several evals writing the cache at once, and `evalkit cache list | clear | prune | path`."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from evalkit import CachePolicy, Sample, Task, eval, eval_async, get_model, read_eval_log
from evalkit.log.schema import EvalLog
from evalkit.scorer import includes, match
from evalkit.solver import generate, solver, use_tools
from evalkit.solver.solver import Generate
from evalkit.solver.state import TaskState
from tests.conftest import REPO, run_cli
from tests.core.test_tools import add
from tests.servers.http import RecordingServer, Reply, Request
from tests.servers.openai_server import chat_reply, completion, error_reply, openai_reply, tool_call

MODEL = "openai/gpt-cache"


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("EVALKIT_CONFIG_DIR", str(tmp_path / "config"))  # no models file from this machine
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-cache")
    return tmp_path / "cache"


def qa_task(count: int = 4, prompt: str = "Question {i}. ANSWER: {i}", **task: Any) -> Task:
    samples = [Sample(id=i, input=prompt.format(i=i), target=str(i)) for i in range(1, count + 1)]
    return Task(dataset=samples, solver=task.pop("solver", generate()), scorer=match(), **task)


def run(server: RecordingServer, task: Task, log_dir: Path, **options: Any) -> EvalLog:
    [log] = eval(task, model=MODEL, model_args={"base_url": f"{server.url}/v1"}, log_dir=log_dir, display="none", **options)
    return read_eval_log(log.location)


def cache_row(model: str) -> list[str]:
    """The `evalkit cache list` row of `model`: model, entries, size (number and unit), expired."""
    listed = run_cli("cache", "list")
    assert listed.returncode == 0, listed.stderr
    return next(line.split() for line in listed.stdout.splitlines() if line.startswith(model + " "))


def lines(log: EvalLog) -> dict[Any, dict[str, Any]]:
    """Each sample's logged messages, output and scores, by (id, epoch)."""
    return {(s.id, s.epoch): {"messages": s.messages, "output": s.output, "scores": s.scores, "usage": s.usage}
            for s in log.samples}


def run_twice(handler: Any, task: Task, log_dir: Path, requests: int) -> tuple[EvalLog, EvalLog]:
    """Two runs of `task` with the cache: the first makes `requests` requests, the second none
    and logs the same samples."""
    with RecordingServer(handler) as server:
        first = run(server, task, log_dir, cache=True)
        assert len(server.requests) == requests
        second = run(server, task, log_dir, cache=True)
        assert len(server.requests) == requests
    assert lines(second) == lines(first)
    return first, second


def test_a_second_run_makes_no_request_and_logs_the_same_samples(log_dir: Path) -> None:
    first, second = run_twice(openai_reply, qa_task(), log_dir, requests=4)
    assert second.results == first.results and second.results["match"]["accuracy"] == 1.0
    assert [s.cache_hits for s in first.samples] == [None] * 4
    assert [s.cache_hits for s in second.samples] == [1] * 4
    assert "cache_hits" not in first.footer["counts"] and second.footer["counts"]["cache_hits"] == 4
    assert second.header["cache"] == {"expiry": "1W", "per_epoch": True, "scopes": {}}
    raw = [json.loads(line) for line in second.location.read_text().splitlines()[1:-1]]
    assert all(line["cache_hits"] == 1 for line in raw)


def test_a_cache_hit_takes_no_rate_limit_turn(log_dir: Path) -> None:
    import anyio

    from evalkit import eval_async

    async def second_run() -> EvalLog:
        with anyio.fail_after(60):  # were hits charged, the 2nd of them would wait 1000 s for its turn
            [log] = await eval_async(qa_task(3), model=MODEL, model_args={"base_url": f"{server.url}/v1"},
                                     log_dir=log_dir, display="none", cache=True, requests_per_sec=0.001)
        return log

    with RecordingServer(openai_reply) as server:
        run(server, qa_task(3), log_dir, cache=True)
        log = anyio.run(second_run)
        assert len(server.requests) == 3
    assert log.footer["counts"]["cache_hits"] == 3


def test_without_cache_every_run_asks_the_model(log_dir: Path) -> None:
    with RecordingServer(openai_reply) as server:
        run(server, qa_task(2), log_dir, cache=True)
        log = run(server, qa_task(2), log_dir)
        assert len(server.requests) == 4
    assert "cache" not in log.header and "cache_hits" not in log.footer["counts"]


def test_changed_messages_or_answer_settings_miss_and_operational_settings_hit(log_dir: Path) -> None:
    with RecordingServer(openai_reply) as server:
        run(server, qa_task(2), log_dir, cache=True)
        for changed in ({"temperature": 0.5}, {"max_tokens": 50}, {"seed": 3}):
            before = len(server.requests)
            run(server, qa_task(2), log_dir, cache=True, **changed)
            assert len(server.requests) == before + 2, changed
        before = len(server.requests)
        run(server, qa_task(2, prompt="Reworded {i}. ANSWER: {i}"), log_dir, cache=True)
        assert len(server.requests) == before + 2
        before = len(server.requests)
        log = run(server, qa_task(2), log_dir, cache=True, timeout=90, attempt_timeout=60, max_retries=2,
                  max_connections=3, requests_per_sec=1000)
        assert len(server.requests) == before and log.footer["counts"]["cache_hits"] == 2
        other_scope = run(server, qa_task(2), log_dir, cache=CachePolicy(scopes={"role": "b"}))
        assert len(server.requests) == before + 2 and "cache_hits" not in other_scope.footer["counts"]


def test_the_base_url_and_model_are_part_of_the_key(log_dir: Path) -> None:
    with RecordingServer(openai_reply) as one, RecordingServer(openai_reply) as two:
        run(one, qa_task(2), log_dir, cache=True)
        run(two, qa_task(2), log_dir, cache=True)
        [log] = eval(qa_task(2), model="openai/gpt-other", model_args={"base_url": f"{one.url}/v1"}, log_dir=log_dir,
                     display="none", cache=True)
        assert (len(one.requests), len(two.requests)) == (4, 2)
    assert "cache_hits" not in log.footer["counts"]


def test_model_args_are_part_of_the_key_but_credentials_are_not(tmp_path: Path, log_dir: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    def variant(server: RecordingServer, name: str, **args: Any) -> EvalLog:
        base = {"base_url": f"{server.url}/v1", "default_headers": {"X-Variant": name}}
        [log] = eval(qa_task(2), model=MODEL, model_args={**base, **args}, log_dir=log_dir, display="none", cache=True)
        return log

    with RecordingServer(openai_reply) as server:
        variant(server, "a")
        variant(server, "b")
        assert len(server.requests) == 4  # -M default_headers=A and =B never share entries
        assert variant(server, "a", api_key="sk-another-key-000000").footer["counts"]["cache_hits"] == 2
        assert len(server.requests) == 4  # the credential is not part of the key
        (tmp_path / "evalkit.yaml").write_text(
            f"models:\n  b: {{model: {MODEL}, base_url: '{server.url}/v1', args: {{default_headers: {{X-Variant: b}}}}}}\n"
            f"  c: {{model: {MODEL}, base_url: '{server.url}/v1', args: {{default_headers: {{X-Variant: c}}}}}}\n")
        [alias_b] = eval(qa_task(2), model="b", log_dir=log_dir, display="none", cache=True)
        assert len(server.requests) == 4 and alias_b.footer["counts"]["cache_hits"] == 2  # the same args as -M =B
        [alias_c] = eval(qa_task(2), model="c", log_dir=log_dir, display="none", cache=True)
        assert len(server.requests) == 6 and "cache_hits" not in alias_c.footer["counts"]
    assert {r.headers["x-variant"] for r in server.requests} == {"a", "b", "c"}


def test_a_cache_waiting_on_a_lock_does_not_stall_the_event_loop(log_dir: Path, cache_dir: Path) -> None:
    """Another process's write lock makes the cache's writes wait; the eval's other work (here
    a ticker) keeps running meanwhile, and the entries are stored once the lock is released."""
    held = 2.0
    gaps: list[float] = []
    finished: list[float] = []

    async def scenario(server: RecordingServer) -> None:
        done = anyio.Event()

        async def ticker() -> None:
            last = time.monotonic()
            while not done.is_set():
                await anyio.sleep(0.01)
                gaps.append(time.monotonic() - last)
                last = time.monotonic()

        async with anyio.create_task_group() as group:
            group.start_soon(ticker)
            await eval_async(qa_task(3, prompt="Locked {i}. ANSWER: {i}"), model=MODEL, log_dir=log_dir, display="none",
                             model_args={"base_url": f"{server.url}/v1"}, cache=True)
            finished.append(time.monotonic())
            done.set()

    with RecordingServer(openai_reply) as server:
        run(server, qa_task(1), log_dir, cache=True)  # the cache file exists
        other = sqlite3.connect(cache_dir / "outputs.sqlite3", isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # another eval's write lock
        release = threading.Timer(held, other.rollback)
        release.start()
        started = time.monotonic()
        anyio.run(scenario, server)
        release.join()
        assert finished[0] - started >= held  # the writes did wait for the lock
        again = run(server, qa_task(3, prompt="Locked {i}. ANSWER: {i}"), log_dir, cache=True)
    assert max(gaps) < held / 2  # the loop never stopped for the wait
    assert again.footer["counts"]["cache_hits"] == 3


def test_errors_are_never_cached(log_dir: Path) -> None:
    failing = {"on": True}

    def handler(request: Request) -> Reply:
        return error_reply(400, "bad request") if failing["on"] else chat_reply(request)

    with RecordingServer(handler) as server:
        first = run(server, qa_task(2), log_dir, cache=True, fail_on_error=False)
        assert all(s.error for s in first.samples)
        failing["on"] = False
        second = run(server, qa_task(2), log_dir, cache=True)
        assert len(server.requests) == 4
        third = run(server, qa_task(2), log_dir, cache=True)
        assert len(server.requests) == 4
    assert second.results["match"]["accuracy"] == 1.0 and "cache_hits" not in second.footer["counts"]
    assert third.footer["counts"]["cache_hits"] == 2


def test_eval_retry_uses_the_logged_cache_policy(log_dir: Path) -> None:
    from evalkit import eval_retry

    failing = {"on": True}

    def handler(request: Request) -> Reply:
        failed = failing["on"] and "Question 2" in json.dumps(request.json()["messages"])
        return error_reply(400, "bad request") if failed else chat_reply(request)

    with RecordingServer(handler) as server:
        first = run(server, qa_task(3), log_dir, cache="1D", fail_on_error=False)
        assert [s.id for s in first.samples if s.error] == [2]
        failing["on"] = False
        retried = eval_retry(first.location, task=qa_task(3), display="none")
        assert retried.status == "success" and len(server.requests) == 4
        again = run(server, qa_task(3), log_dir, cache=True)
        assert len(server.requests) == 4 and again.footer["counts"]["cache_hits"] == 3


def backdate(cache_dir: Path, hours: float) -> None:
    """Make the stored entries `hours` older, as if that much time had passed."""
    db = sqlite3.connect(cache_dir / "outputs.sqlite3", isolation_level=None)
    db.execute("UPDATE outputs SET created = created - ?, expires = expires - ?", (hours * 3600, hours * 3600))
    db.close()


def test_an_expired_entry_is_asked_again_and_pruned(log_dir: Path, cache_dir: Path) -> None:
    with RecordingServer(openai_reply) as server:
        run(server, qa_task(2), log_dir, cache="1h")
        run(server, qa_task(2), log_dir, cache="1h")
        assert len(server.requests) == 2
        backdate(cache_dir, hours=2)  # both entries expired
        log = run(server, qa_task(2), log_dir, cache="1h")
        assert len(server.requests) == 4 and "cache_hits" not in log.footer["counts"]
        backdate(cache_dir, hours=2)
        row = cache_row(MODEL)
        assert (row[1], row[4]) == ("2", "2")
        pruned = run_cli("cache", "prune")
        assert pruned.returncode == 0 and "pruned 2 expired" in pruned.stdout
        log = run(server, qa_task(2), log_dir, cache=CachePolicy(expiry=None))
        assert len(server.requests) == 6 and "cache_hits" not in log.footer["counts"]
        run(server, qa_task(2), log_dir, cache=CachePolicy(expiry=None))
        assert len(server.requests) == 6


def test_per_epoch_keeps_epochs_apart_unless_turned_off(log_dir: Path) -> None:
    with RecordingServer(openai_reply) as server:
        run(server, qa_task(2), log_dir, cache=True, epochs=2)
        assert len(server.requests) == 4
        second = run(server, qa_task(2), log_dir, cache=True, epochs=2)
        assert len(server.requests) == 4 and second.footer["counts"]["cache_hits"] == 4
        shared = run(server, qa_task(2, prompt="Shared {i}. ANSWER: {i}"), log_dir,
                     cache=CachePolicy(per_epoch=False), epochs=3, max_samples=1)
        assert len(server.requests) == 6 and shared.footer["counts"]["cache_hits"] == 4


def tool_task() -> Task:
    return Task(dataset=[Sample(id="t", input="What is 1 + 2?", target="3")], solver=[use_tools(add()), generate()],
                scorer=includes())


def tool_server_handler(request: Request) -> Reply:
    """A tool call on the first turn, the answer once the tool's result is in the conversation."""
    messages = request.json()["messages"]
    if any(m["role"] == "tool" for m in messages):
        return completion({"content": "The sum is 3", "reasoning_content": "add gave 3"})
    return completion({"content": "Let me add.", "tool_calls": [tool_call("call_1", "add", '{"x": 1, "y": 2}')]},
                      finish_reason="tool_calls")


def test_tool_using_samples_are_cached_per_turn(log_dir: Path) -> None:
    _, second = run_twice(tool_server_handler, tool_task(), log_dir, requests=2)
    [sample] = second.samples
    assert sample.cache_hits == 2 and [m["role"] for m in sample.messages] == ["user", "assistant", "tool", "assistant"]
    assert sample.messages[2]["content"] == "3" and sample.scores["includes"]["value"] == "C"


@solver
def two_calls() -> Any:
    """Asks twice: the first call cached by the solver itself, the second with the eval's setting."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        await generate(state, cache=True)
        return await generate(state)

    return solve


def test_a_solver_caches_one_call_while_the_eval_does_not(log_dir: Path) -> None:
    with RecordingServer(openai_reply) as server:
        run(server, qa_task(1, solver=two_calls()), log_dir)
        second = run(server, qa_task(1, solver=two_calls()), log_dir)
        assert len(server.requests) == 3
    assert second.samples[0].cache_hits == 1


def test_model_generate_rebuilds_the_whole_output(log_dir: Path) -> None:
    def handler(request: Request) -> Reply:
        reply = chat_reply(request)
        reply.body["choices"][1]["message"] = {"role": "assistant", "content": None, "reasoning_content": "thinking",
                                               "tool_calls": [tool_call("c9", "add", '{"x": 4}')]}
        reply.body["choices"][1]["finish_reason"] = "tool_calls"
        return reply

    async def twice() -> tuple[Any, Any]:
        model = get_model(MODEL, base_url=f"{server.url}/v1")
        from evalkit import GenerateConfig

        config = GenerateConfig(num_choices=2, logprobs=True, top_logprobs=2)
        first = await model.generate("Say ANSWER: four words right here", config=config, cache=CachePolicy("1D"))
        second = await model.generate("Say ANSWER: four words right here", config=config, cache=True)
        await model.aclose()
        return first, second

    import anyio

    with RecordingServer(handler) as server:
        first, second = anyio.run(twice)
        assert len(server.requests) == 1
    assert second == first and second is not first
    assert len(first.choices) == 2 and first.choices[0].logprobs[0].top_logprobs
    assert first.choices[1].message.tool_calls[0].arguments == {"x": 4} and first.choices[1].stop_reason == "tool_calls"
    assert first.usage.total_tokens > 0


TASK_FILE = """
from evalkit import Sample, Task, task
from evalkit.scorer import match
from evalkit.solver import generate


@task
def numbers(count: int = 3, model_tag: str = ""):
    return Task(dataset=[Sample(id=i, input=f"Question {i}. ANSWER: {i}", target=str(i)) for i in range(1, count + 1)],
                solver=generate(), scorer=match())
"""


def test_cli_cache_flag_and_cache_commands(tmp_path: Path, log_dir: Path, cache_dir: Path) -> None:
    task_file = tmp_path / "numbers.py"
    task_file.write_text(TASK_FILE)
    with RecordingServer(openai_reply) as server:
        args = ("eval", str(task_file), "--model", MODEL, "-M", f"base_url={server.url}/v1", "--log-dir", str(log_dir),
                "--display", "plain")
        first = run_cli(*args, "--cache")
        assert first.returncode == 0, first.stderr
        second = run_cli(*args, "--cache", "3h")
        assert second.returncode == 0, second.stderr
        assert len(server.requests) == 3
    assert "3 model calls from the cache" in second.stderr
    headers = [json.loads(path.read_text().splitlines()[0])["header"] for path in log_dir.glob("*.jsonl")]
    assert sorted(h["cache"]["expiry"] for h in headers) == ["1W", "3h"]

    assert run_cli("cache", "path").stdout.strip() == str(cache_dir)
    assert cache_row(MODEL)[1] == "3"
    assert str(cache_dir / "outputs.sqlite3") in run_cli("cache", "list").stdout
    assert run_cli("cache", "clear", "--model", "openai/other").stdout.strip() == "cleared 0 cached outputs of openai/other"
    project = tmp_path / "project"  # not tmp_path, whose numbers.py would hide the standard library's
    project.mkdir()
    (project / "evalkit.yaml").write_text(f"models:\n  cached: {MODEL}\n")
    unknown = run_cli("cache", "clear", "--model", "nosuch", cwd=project)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "model 'nosuch' must be" in unknown.stderr
    cleared = run_cli("cache", "clear", "--model", "cached", cwd=project)  # an alias clears its model's entries
    assert cleared.stdout.strip() == f"cleared 3 cached outputs of {MODEL}"
    assert "no cached outputs" in run_cli("cache", "list").stdout


@pytest.mark.parametrize("args, says", [
    (("eval", "TASK", "--model", "mockllm/x", "--cache", "5x"), "--cache: cache expiry must be a count and a unit"),
    (("eval", "--cache", "TASK", "--model", "mockllm/x"), "give --cache after the task files"),
    (("cache", "clear"), "needs --all or --model"),
])
def test_bad_cache_input_is_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    task_file = tmp_path / "numbers.py"
    task_file.write_text(TASK_FILE)
    result = run_cli(*[str(task_file) if a == "TASK" else a for a in args], "--log-dir", str(tmp_path / "logs")) \
        if args[0] == "eval" else run_cli(*args)
    assert result.returncode == 2 and says in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("content", ["file", "not a database"])
def test_a_cache_that_cannot_be_used_fails_before_any_request_in_one_line(tmp_path: Path, content: str) -> None:
    task_file = tmp_path / "numbers.py"
    task_file.write_text(TASK_FILE)
    blocked = tmp_path / "blocked"
    if content == "file":  # EVALKIT_CACHE_DIR names a file, not a directory
        blocked.write_text("x")
    else:
        blocked.mkdir()
        (blocked / "outputs.sqlite3").write_text("this is not an SQLite database " * 100)
    with RecordingServer(openai_reply) as server:
        result = run_cli("eval", str(task_file), "--model", MODEL, "-M", f"base_url={server.url}/v1", "--cache",
                         "--log-dir", str(tmp_path / "logs"), env={"EVALKIT_CACHE_DIR": str(blocked)})
        assert server.requests == []
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("error: the output cache ") and "set EVALKIT_CACHE_DIR" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    if content == "not a database":
        listed = run_cli("cache", "list", env={"EVALKIT_CACHE_DIR": str(blocked)})
        assert listed.returncode == 2 and listed.stderr.startswith("error: the output cache "), listed.stderr


def test_a_bad_expiry_in_python_is_refused() -> None:
    from evalkit.errors import ArgumentError

    with pytest.raises(ArgumentError, match="count and a unit"):
        CachePolicy(expiry="1 week")
    with pytest.raises(ArgumentError, match="cache must be True"):
        eval(qa_task(1), model="mockllm/x", cache=3, display="none")


CONCURRENT_EVAL = """
import sys
from evalkit import Sample, Task, eval
from evalkit.scorer import match
from evalkit.solver import generate

model, count = sys.argv[1], int(sys.argv[2])
task = Task(dataset=[Sample(id=i, input=f"Q {i}. ANSWER: {i}", target=str(i)) for i in range(count)],
            solver=generate(), scorer=match())
[log] = eval(task, model=model, model_args={"latency": 0.001}, log_dir=sys.argv[3], display="none", cache=True,
             max_connections=20)
print(log.status, log.footer["counts"].get("cache_hits", 0), log.results["match"]["accuracy"])
"""


def test_two_evals_write_the_cache_at_once(tmp_path: Path, cache_dir: Path) -> None:
    script = tmp_path / "cache_writer.py"
    script.write_text(CONCURRENT_EVAL)

    def both() -> list[str]:
        procs = [subprocess.Popen([sys.executable, str(script), f"mockllm/{name}", "300", str(tmp_path / name)],
                                  cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for name in ("a", "b")]
        outputs = [p.communicate(timeout=300) for p in procs]
        assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
        return [out.strip() for out, _ in outputs]

    assert both() == ["success 0 1.0", "success 0 1.0"]
    assert cache_row("mockllm/a")[1] == cache_row("mockllm/b")[1] == "300"
    assert both() == ["success 300 1.0", "success 300 1.0"]


def test_import_evalkit_does_not_load_sqlite3() -> None:
    code = "import sys, evalkit; from evalkit import CachePolicy; assert 'sqlite3' not in sys.modules, 'sqlite3 was imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
