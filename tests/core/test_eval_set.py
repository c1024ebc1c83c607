"""eval-set: idempotent over its log dir (reuse complete, resume unfinished, start missing),
retries with backoff, and a SIGKILL halfway finished by a rerun that asks only for the rest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import evalkit
from evalkit import eval_set, read_eval_log
from evalkit.errors import LogFileError
from evalkit.log.reader import read_eval_log_samples
from tests.conftest import run_cli
from tests.servers.http import RecordingServer, Reply, Request
from tests.servers.openai_server import chat_reply, error_reply

TASKS = """
from evalkit import task, Task, Sample
from evalkit.scorer import match

@task
def alpha(n: int = 4):
    return Task(dataset=[Sample(input=f"alpha {i} ANSWER: {i}", target=str(i), id=i) for i in range(n)], scorer=match())

@task
def beta(n: int = 3):
    return Task(dataset=[Sample(input=f"beta {i} ANSWER: {i}", target=str(i), id=i) for i in range(n)], scorer=match())
"""


class Server:
    """Answers like OpenAI, counting requests by '<task> <sample> <model>'; prompts listed in
    `failing` get a 400 (not retried) that many times."""

    def __init__(self, latency: float = 0.0, failing: dict[str, int] | None = None) -> None:
        self.latency = latency
        self.failing = dict(failing or {})
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def handler(self, request: Request) -> Reply:
        body = request.json()
        words = body["messages"][-1]["content"].split()
        key = f"{words[0]} {words[1]} {body['model']}"
        with self.lock:
            self.counts[key] += 1
            fail = self.failing.get(key, 0) > 0
            if fail:
                self.failing[key] -= 1
        if self.latency:
            time.sleep(self.latency)
        return error_reply(400, "refused on purpose") if fail else chat_reply(request)


@pytest.fixture
def tasks_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    (tmp_path / "tasks.py").write_text(TASKS)
    return tmp_path / "tasks.py"


def files(log_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(log_dir.glob("*.jsonl"))}


def run_set(tasks_file: Path, log_dir: Path, server: RecordingServer, **kwargs: object) -> tuple[bool, list[evalkit.EvalLog]]:
    return eval_set(str(tasks_file), log_dir, model=["openai/m1", "openai/m2"], model_args={"base_url": f"{server.url}/v1"},
                    display="none", retry_wait=0.01, **kwargs)


def test_second_call_with_everything_done_does_no_work(tasks_file: Path, log_dir: Path) -> None:
    server = Server()
    with RecordingServer(server.handler) as http:
        success, logs = run_set(tasks_file, log_dir, http)
        assert success and len(logs) == 4 and len(server.counts) == 14 and set(server.counts.values()) == {1}
        before = files(log_dir)
        again, reused = run_set(tasks_file, log_dir, http)
    assert again and sum(server.counts.values()) == 14  # no request
    assert files(log_dir) == before  # no new log, none touched
    assert [log.location for log in reused] == [log.location for log in logs]


def test_missing_pairs_start_and_logs_of_other_tasks_stay(tasks_file: Path, log_dir: Path) -> None:
    other = evalkit.eval(f"{tasks_file}@beta", model="mockllm/x", log_dir=log_dir,
                         display="none")[0]
    server = Server()
    with RecordingServer(server.handler) as http:
        first, _ = eval_set(f"{tasks_file}@alpha", log_dir, model="openai/m1", model_args={"base_url": f"{http.url}/v1"},
                            display="none")
        success, logs = run_set(tasks_file, log_dir, http)
    assert first and success
    assert [(log.task, log.model) for log in logs] == [
        ("alpha", "openai/m1"), ("alpha", "openai/m2"), ("beta", "openai/m1"), ("beta", "openai/m2")]
    assert set(server.counts.values()) == {1}  # alpha on m1 was reused, not asked again
    assert len(files(log_dir)) == 5 and other.location.exists()


def test_failed_samples_are_retried_in_the_same_log(tasks_file: Path, log_dir: Path) -> None:
    server = Server(failing={"alpha 2 m1": 2, "beta 0 m2": 1})
    with RecordingServer(server.handler) as http:
        success, logs = run_set(tasks_file, log_dir, http, max_retries=0, fail_on_error=False, retry_attempts=3)
    assert success
    assert server.counts["alpha 2 m1"] == 3 and server.counts["beta 0 m2"] == 2
    assert {key: n for key, n in server.counts.items() if n > 1} == {"alpha 2 m1": 3, "beta 0 m2": 2}
    assert len(files(log_dir)) == 4  # each pair kept its one log
    for log in logs:
        samples = list(read_eval_log_samples(log.location))
        assert all(s.error is None for s in samples) and log.footer["counts"]["errors"] == 0


def test_gives_up_after_retry_attempts_and_reports_failure(tasks_file: Path, log_dir: Path) -> None:
    server = Server(failing={"beta 1 m2": 100})
    with RecordingServer(server.handler) as http:
        started = time.monotonic()
        success, logs = run_set(tasks_file, log_dir, http, max_retries=0, retry_attempts=2)
        elapsed = time.monotonic() - started
    assert not success
    assert server.counts["beta 1 m2"] == 3  # the first attempt and two retries
    assert elapsed >= 0.01 + 0.02  # the backoff waits: retry_wait, then twice that
    assert [log.status for log in logs if (log.task, log.model) == ("beta", "openai/m2")] == ["error"]


def test_a_changed_task_is_refused_like_eval_retry(tasks_file: Path, log_dir: Path) -> None:
    server = Server()
    with RecordingServer(server.handler) as http:
        run_set(tasks_file, log_dir, http, max_retries=0)
        tasks_file.write_text(TASKS.replace("scorer=match())\n\n@task\ndef beta", "scorer=match(location='any'))\n\n@task\ndef beta"))
        with pytest.raises(LogFileError, match="the task changed since this log was written: the scorers"):
            run_set(tasks_file, log_dir, http)


def test_cli_second_run_writes_nothing_and_bad_retry_flag_is_one_line(tasks_file: Path, tmp_path: Path) -> None:
    args = ("eval-set", "tasks.py", "--model", "mockllm/a,mockllm/b", "--log-dir", "set", "--display", "none")
    assert run_cli(*args, cwd=tmp_path).returncode == 0
    before = files(tmp_path / "set")
    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(before) == 4 and files(tmp_path / "set") == before
    shown = run_cli(*args, "--display", "plain", cwd=tmp_path)
    assert "eval-set: all 4 runs already have a complete log in set; nothing to do" in shown.stderr
    bad = run_cli(*args, "--retry-attempts", "-1", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    missing = run_cli("eval-set", "tasks.py", "--model", "mockllm/a", cwd=tmp_path, env={"EVALKIT_LOG_DIR": ""})
    assert missing.returncode == 2 and "--log-dir" in missing.stderr


def test_cli_exit_1_when_a_pair_stays_unfinished(tasks_file: Path, tmp_path: Path) -> None:
    result = run_cli("eval-set", "tasks.py@alpha", "--model", "mockllm/a", "-M", "error_on=alpha 1", "--log-dir", "set",
                     "--retry-attempts", "1", "--retry-wait", "0", "--display", "none", cwd=tmp_path)
    assert result.returncode == 1
    [path] = (tmp_path / "set").glob("*.jsonl")
    assert read_eval_log(path, header_only=True).status == "error"


def test_sigkill_halfway_then_rerun_asks_only_for_samples_not_logged(tasks_file: Path, tmp_path: Path) -> None:
    rows = 120
    tasks_file.write_text(TASKS.replace("n: int = 4", f"n: int = {rows}"))
    server = Server(latency=0.03)
    with RecordingServer(server.handler) as http:
        command = [sys.executable, "-m", "evalkit", "eval-set", "tasks.py@alpha", "--model", "openai/m1",
                   "-M", f"base_url={http.url}/v1", "--max-connections", "6", "--log-dir", "set", "--display", "none"]
        process = subprocess.Popen(command, cwd=tmp_path, env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        log_path = wait_for_samples(tmp_path / "set", rows // 3)
        process.send_signal(signal.SIGKILL)
        process.wait()
        logged = {s.id for s in read_eval_log_samples(log_path)}
        first_run = settled_counts(server)
        assert 0 < len(logged) < rows
        rerun = subprocess.run(command, cwd=tmp_path, env={**os.environ}, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    asked_again = server.counts - first_run
    assert set(asked_again) == {f"alpha {i} m1" for i in range(rows) if i not in logged}
    assert set(asked_again.values()) == {1}
    assert [p.name for p in (tmp_path / "set").glob("*.jsonl")] == [log_path.name]
    log = read_eval_log(log_path)
    assert log.status == "success" and sorted(s.id for s in log.samples) == list(range(rows))


def settled_counts(server: Server) -> Counter[str]:
    """The server's request counts once they stop changing: requests the killed process had
    already sent may still be in the server's socket, and would otherwise count as asked again."""
    last, unchanged = Counter(server.counts), 0
    while unchanged < 3:
        time.sleep(0.05)
        now = Counter(server.counts)
        unchanged = unchanged + 1 if now == last else 0
        last = now
    return last


def wait_for_samples(log_dir: Path, samples: int) -> Path:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        paths = list(log_dir.glob("*.jsonl"))
        if paths and paths[0].read_bytes().count(b"\n") > samples:
            return paths[0]
        time.sleep(0.01)
    raise AssertionError("the eval-set wrote too few samples")


def test_an_alias_finds_its_logs_on_the_second_run(tasks_file: Path, tmp_path: Path) -> None:
    (tmp_path / "evalkit.yaml").write_text("models:\n  quick:\n    model: mockllm/quick\n")
    args = ("eval-set", "tasks.py@alpha", "--model", "quick", "--log-dir", "set", "--display", "none")
    first = run_cli(*args, cwd=tmp_path, env={"EVALKIT_CONFIG_DIR": str(tmp_path / "config")})
    assert first.returncode == 0, first.stderr
    before = files(tmp_path / "set")
    assert run_cli(*args, cwd=tmp_path, env={"EVALKIT_CONFIG_DIR": str(tmp_path / "config")}).returncode == 0
    assert len(before) == 1 and files(tmp_path / "set") == before


def test_a_fractional_limit_finds_its_logs_again(tasks_file: Path, log_dir: Path) -> None:
    server = Server()
    with RecordingServer(server.handler) as http:
        success, logs = run_set(tasks_file, log_dir, http, limit=0.5)
        before = files(log_dir)
        again, _ = run_set(tasks_file, log_dir, http, limit=0.5)
    assert success and again and [log.footer["counts"]["total"] for log in logs] == [2, 2, 1, 1]
    assert sum(server.counts.values()) == 6 and files(log_dir) == before


def test_two_tasks_of_one_name_each_find_their_own_log(tmp_path: Path, log_dir: Path) -> None:
    for folder, word in (("one", "first"), ("two", "second")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "t.py").write_text(TASKS.replace("alpha {i}", f"alpha {word} {{i}}"))
    specs = [f"{tmp_path / 'one' / 't.py'}@alpha", f"{tmp_path / 'two' / 't.py'}@alpha"]
    success, logs = eval_set(specs, log_dir, model="mockllm/a", display="none")
    assert success and len({log.location for log in logs}) == 2
    before = files(log_dir)
    again, reused = eval_set(specs, log_dir, model="mockllm/a", display="none")
    assert again and files(log_dir) == before and [log.location for log in reused] == [log.location for log in logs]


def test_two_aliases_of_one_model_and_two_temperatures_each_get_their_own_logs(tasks_file: Path, log_dir: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_CONFIG_DIR", str(tasks_file.parent / "config"))
    (tasks_file.parent / "evalkit.yaml").write_text("models:\n  cold:\n    model: mockllm/m\n    config: {temperature: 0}\n"
                                                    "  hot:\n    model: mockllm/m\n    config: {temperature: 1.5}\n")
    spec = f"{tasks_file}@alpha"
    success, logs = eval_set(spec, log_dir, model=["cold", "hot"], display="none")
    again, reused = eval_set(spec, log_dir, model=["cold", "hot"], display="none")
    assert success and again and len(files(log_dir)) == 2
    assert [log.location for log in reused] == [log.location for log in logs]
    assert [read_eval_log(log.location, header_only=True).header["model_alias"]["name"] for log in reused] == ["cold", "hot"]
    cold, _ = eval_set(spec, log_dir, model="mockllm/m", display="none", temperature=0.0)
    before = files(log_dir)
    warm, _ = eval_set(spec, log_dir, model="mockllm/m", display="none", temperature=1.0)
    assert cold and warm and len(files(log_dir)) == 4 and {k: v for k, v in files(log_dir).items() if k in before} == before
    [cold_again], [warm_again] = (eval_set(spec, log_dir, model="mockllm/m", display="none", temperature=t)[1] for t in (0.0, 1.0))
    assert len(files(log_dir)) == 4 and cold_again.location != warm_again.location
    assert [cold_again.header["config"]["temperature"], warm_again.header["config"]["temperature"]] == [0.0, 1.0]


def test_an_unfinished_log_is_not_resumed_under_other_settings(tasks_file: Path, log_dir: Path) -> None:
    server = Server(failing={"alpha 1 m1": 100})
    with RecordingServer(server.handler) as http:
        first, _ = eval_set(f"{tasks_file}@alpha", log_dir, model="openai/m1", model_args={"base_url": f"{http.url}/v1"},
                            display="none", max_retries=0, retry_attempts=0)
        before = files(log_dir)
        server.failing.clear()
        second, [log] = eval_set(f"{tasks_file}@alpha", log_dir, model="openai/m1", display="none",
                                 model_args={"base_url": f"{http.url}/v1"}, max_tokens=50)
    assert not first and second and log.location.name not in before
    assert {k: v for k, v in files(log_dir).items() if k in before} == before and len(files(log_dir)) == 2
    assert server.counts["alpha 0 m1"] == 2  # the new log ran every sample under its own settings


def test_a_selection_of_no_samples_is_reported_at_once_not_retried(tasks_file: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_cli("eval-set", "tasks.py", "--model", "mockllm/a", "--sample-id", "3", "--log-dir", "set",
                     "--display", "none", cwd=tmp_path)  # alpha has sample 3, beta does not; waits 30 s before a retry
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "eval-set: beta · mockllm/a failed in a way a retry cannot fix: --sample-id 3 selects no samples of task 'beta'" \
        in result.stderr
    assert "retry 1 of" not in result.stderr and time.monotonic() - started < 30
    statuses = {log.task: log.status for log in map(read_eval_log, (tmp_path / "set").glob("*.jsonl"))}
    assert statuses == {"alpha": "success", "beta": "error"}


def test_an_unseeded_shuffle_asks_for_a_seed_on_the_rerun(tmp_path: Path, log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.jsonl").write_text("".join(f'{{"input": "q{i}", "target": "{i}", "id": {i}}}\n' for i in range(30)))
    (tmp_path / "shuffled.py").write_text("from evalkit import task, Task, json_dataset\nfrom evalkit.scorer import match\n"
                                          "@task\ndef shuffled():\n"
                                          "    return Task(dataset=json_dataset('data.jsonl', shuffle=True), scorer=match())\n")
    success, _ = eval_set("shuffled.py", log_dir, model="mockllm/a", display="none")
    assert success
    with pytest.raises(LogFileError, match=r"the dataset.*give it a seed \(shuffle without seed="):
        eval_set("shuffled.py", log_dir, model="mockllm/a", display="none")
