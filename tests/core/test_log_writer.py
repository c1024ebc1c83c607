"""The log writer: numpy values stored as numbers, values a log cannot hold refused by field,
every write checked (a full disk stops the run, never glues two records on one line), and a
bad log folder refused at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evalkit import eval, read_eval_log
from evalkit.errors import LogValueError, LogWriteError
from evalkit.log.schema import EvalSample
from evalkit.log.writer import LogWriter
from tests.conftest import REPO, run_cli

NUMPY_TASK = """
import numpy as np
from evalkit import task, Task, Sample
from evalkit.scorer import Score, scorer, mean

@scorer(metrics=[mean()])
def measured():
    async def score(state, target):
        return Score(value=np.float64(0.75), answer=state.output.completion,
                     metadata={"lengths": np.array([[1, 2], [3, 4]]), "ok": np.bool_(True), "n": np.int64(7),
                               "strided": np.arange(6).reshape(2, 3).T, "mixed": np.array([1, "a"], dtype=object)})
    return score

@task
def t():
    return Task(dataset=[Sample(input="ANSWER: a", target="a", metadata={"weight": np.float32(0.5)}),
                         Sample(input="ANSWER: b", target="b")], scorer=measured())
"""


def sample(id: int, **fields: object) -> EvalSample:
    values = {"id": id, "epoch": 1, "input": "q", "target": "a", "messages": [], "output": None, "scores": {},
              "usage": None, "time": 0.1, **fields}
    return EvalSample(**values)  # type: ignore[arg-type]


def records(path: Path) -> list[dict]:
    """Every line of a log as one JSON object (fails on a line holding anything else)."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_numpy_scores_and_metadata_are_logged_as_numbers_and_resume(tmp_path: Path) -> None:
    (tmp_path / "t.py").write_text(NUMPY_TASK)
    result = run_cli("eval", "t.py", "--model", "mockllm/m", "--log-dir", "logs", "--display", "none", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [path] = (tmp_path / "logs").glob("*.jsonl")
    assert "np." not in path.read_text() and "array(" not in path.read_text()
    [first, _] = sorted(records(path)[1:-1], key=lambda r: r["id"])
    score = first["scores"]["measured"]
    assert score["value"] == 0.75 and isinstance(score["value"], float)
    assert score["metadata"] == {"lengths": [[1, 2], [3, 4]], "ok": True, "n": 7, "strided": [[0, 3], [1, 4], [2, 5]],
                                 "mixed": [1, "a"]}
    assert first["metadata"] == {"weight": 0.5}
    log = read_eval_log(path)
    assert log.status == "success" and log.results["measured"]["mean"] == 0.75
    # the log reads back for a resume: drop the footer and the last sample, then finish it
    path.write_text("".join(line + "\n" for line in path.read_text().splitlines()[:2]))
    retried = run_cli("eval-retry", str(path), "--display", "none", cwd=tmp_path)
    assert retried.returncode == 0, retried.stderr
    assert read_eval_log(path).status == "success" and len(read_eval_log(path).samples) == 2


def test_writer_stores_numpy_without_importing_it(tmp_path: Path) -> None:
    """A process that never imported numpy writes logs without importing it."""
    code = ("import sys, pathlib\nfrom evalkit.log.writer import LogWriter\n"
            "w = LogWriter(pathlib.Path(sys.argv[1]))\nw.header({'eval_id': 'e', 'task': 't', 'model': 'm'})\nw.close()\n"
            "assert 'numpy' not in sys.modules, 'numpy was imported'\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.jsonl")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_value_a_log_cannot_hold_names_its_field_and_writes_nothing(tmp_path: Path) -> None:
    class Opaque:
        pass

    path = tmp_path / "x.jsonl"
    writer = LogWriter(path)
    writer.header({"eval_id": "e", "task": "t", "model": "m"})
    size = path.stat().st_size
    bad = sample(1, scores={"match": {"value": 1, "metadata": {"obj": Opaque()}}})
    with pytest.raises(LogValueError, match=r"^scores\.match\.metadata\.obj: cannot store a value of type Opaque in the log$"):
        writer.sample(bad)
    with pytest.raises(LogValueError, match=r"^scores\.m\.metadata: key 3 is not a string \(int\); log keys must be strings$"):
        writer.sample(sample(2, scores={"m": {"value": 1, "metadata": {3: "x"}}}))
    with pytest.raises(LogValueError, match=r"^messages\[0\]\.content: cannot store this value"):
        writer.sample(sample(3, messages=[{"role": "user", "content": "\ud800"}]))
    assert path.stat().st_size == size  # nothing written
    writer.sample(sample(4, scores={"match": {"value": np.float16(0.5)}}))
    writer.close()
    assert read_eval_log(path).samples[0].scores == {"match": {"value": 0.5}}


def test_unstorable_score_becomes_that_samples_error(tmp_path: Path) -> None:
    (tmp_path / "t.py").write_text(
        "from evalkit import task, Task, Sample\nfrom evalkit.scorer import Score, scorer, accuracy\n"
        "class Opaque:\n    pass\n"
        "@scorer(metrics=[accuracy()])\ndef odd():\n"
        "    async def score(state, target):\n"
        "        return Score(value=1, metadata={'obj': Opaque()} if state.input == 'ANSWER: b' else None)\n"
        "    return score\n"
        "@task\ndef t():\n    return Task(dataset=[Sample(input='ANSWER: a', target='a'), Sample(input='ANSWER: b', target='b')], scorer=odd())\n")
    logs = eval(str(tmp_path / "t.py"), model="mockllm/m", log_dir=tmp_path / "logs", display="none", fail_on_error=False)
    failed = [s for s in read_eval_log(logs[0].location).samples if s.error]
    assert len(failed) == 1 and "scores.odd.metadata.obj: cannot store a value of type Opaque in the log" in failed[0].error
    assert logs[0].footer["counts"]["errors"] == 1


LIMITED_WRITER = """
import resource, sys, pathlib
from evalkit.errors import LogWriteError
from evalkit.log.schema import EvalSample
from evalkit.log.writer import LogWriter
path = pathlib.Path(sys.argv[1])
def sample(i):
    return EvalSample(id=i, epoch=1, input="q" * 500, target="a", messages=[], output=None, scores={}, usage=None, time=0.1)
writer = LogWriter(path)
writer.header({"eval_id": "e", "task": "t", "model": "m"})
writer.sample(sample(1))
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size + 100, hard))  # the disk fills up
try:
    writer.sample(sample(2))
except LogWriteError as ex:
    print(ex)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # and has room again
writer.sample(sample(3))
writer.footer({"status": "success"})
writer.close()
"""


def test_a_moment_of_full_disk_never_glues_two_records(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    done = subprocess.run([sys.executable, "-c", LIMITED_WRITER, str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"cannot write the log {path}: the file is larger than this system allows")
    assert len(done.stdout.splitlines()) == 1
    assert [r.get("id") for r in records(path)] == [None, 1, 3, None]  # sample 2 is not half there
    assert [s.id for s in read_eval_log(path).samples] == [1, 3]


def test_dev_full_raises_disk_full(tmp_path: Path) -> None:
    writer = LogWriter(Path("/dev/full"))
    with pytest.raises(LogWriteError, match=r"^cannot write the log /dev/full: the disk is full; free some space"):
        writer.header({"eval_id": "e", "task": "t", "model": "m"})
    with pytest.raises(LogWriteError, match="the disk is full"):
        writer.footer({"status": "success"})
    writer.close()


FILLS_DISK_TASK = """
import os
import resource
from pathlib import Path
from evalkit import task, Task, Sample
from evalkit.scorer import match

async def fill_disk(state, generate):
    if os.environ.get("FILL_DISK") and state.input.startswith("q3 "):  # just before sample 3's line is written
        [log] = Path("logs").glob("*.jsonl")
        resource.setrlimit(resource.RLIMIT_FSIZE, (log.stat().st_size + 20, resource.RLIM_INFINITY))
    return await generate(state)

@task
def t():
    return Task(dataset=[Sample(input=f"q{i} ANSWER: {i}", target=str(i), id=i) for i in range(1, 7)],
                solver=fill_disk, scorer=match())
"""


def test_full_disk_stops_the_run_with_one_line_and_eval_retry_finishes_it(tmp_path: Path) -> None:
    (tmp_path / "t.py").write_text(FILLS_DISK_TASK)
    result = run_cli("eval", "t.py", "--model", "mockllm/m", "--max-samples", "1", "--log-dir", "logs",
                     "--display", "plain", cwd=tmp_path, env={"FILL_DISK": "1"})
    assert result.returncode == 2, result.stderr
    assert "success" not in result.stdout + result.stderr
    [error_line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "cannot write the log" in error_line and "larger than this system allows" in error_line
    assert "Traceback" not in result.stderr
    [path] = (tmp_path / "logs").glob("*.jsonl")
    lines = records(path)  # every line is exactly one JSON record
    assert [r["id"] for r in lines[1:] if "id" in r] == [1, 2]
    assert read_eval_log(path).status != "success"
    retried = run_cli("eval-retry", str(path), "--display", "none", cwd=tmp_path)  # the disk has room again
    assert retried.returncode == 0, retried.stderr
    finished = read_eval_log(path)
    assert finished.status == "success" and sorted(s.id for s in finished.samples) == [1, 2, 3, 4, 5, 6]
    records(path)


def test_log_dir_that_is_a_file_fails_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "logs").write_text("not a folder")
    result = run_cli("eval", str(REPO / "tasks" / "arithmetic.py"), "--model", "mockllm/m", "--log-dir", "logs/sub",
                     "--display", "none", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: cannot create the log folder logs/sub: logs is a file, not a folder; "
        "pass a --log-dir (log_dir=) that is a folder or does not exist yet"]


def test_read_only_log_dir_fails_with_one_line(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    command = [sys.executable, "-m", "evalkit", "eval", str(REPO / "tasks" / "arithmetic.py"), "--model", "mockllm/m",
               "--log-dir", "logs", "--display", "none"]
    if os.geteuid() == 0:  # root writes through folder permissions: mount a read-only file system there
        command = ["unshare", "--mount", "sh", "-c", 'mount -t tmpfs -o ro tmpfs "$0" && exec "$@"', str(logs), *command]
    else:
        logs.chmod(0o555)
    try:
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    finally:
        logs.chmod(0o755)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot write the log logs/")
    assert line.endswith(": permission denied; pass a --log-dir (log_dir=) you can write to") or line.endswith(
        ": the file system is read-only; pass a --log-dir (log_dir=) you can write to")
