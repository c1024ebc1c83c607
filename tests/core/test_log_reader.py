"""Reading logs back: a damaged last line is recovered, damage elsewhere and malformed fields are
one line naming the file, line and field (exit 2), and resume compaction never duplicates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit import read_eval_log
from tests.conftest import run_cli

TASK = """
from evalkit import task, Task, Sample
from evalkit.scorer import match

@task
def t():
    return Task(dataset=[Sample(input=f"q{i} ANSWER: {i}", target=str(i), id=i) for i in range(1, 7)], scorer=match())
"""


@pytest.fixture
def task_dir(tmp_path: Path) -> Path:
    (tmp_path / "t.py").write_text(TASK)
    return tmp_path


def make_log(cwd: Path, *args: str) -> Path:
    """Run the six-sample task with mockllm and return its log."""
    result = run_cli("eval", "t.py", "--model", "mockllm/m", "--max-samples", "1", "--log-dir", "logs",
                     "--display", "none", *args, cwd=cwd)
    assert result.returncode in (0, 1), result.stderr
    [path] = (cwd / "logs").glob("*.jsonl")
    return path


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines()


def write_lines(path: Path, lines: list[str], end: str = "\n") -> None:
    path.write_text("\n".join(lines) + end)


def assert_one_error_line(result: object, *parts: str) -> None:
    assert result.returncode == 2, result.stderr  # type: ignore[attr-defined]
    [line] = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert line.startswith("error: ") and "Traceback" not in result.stderr  # type: ignore[attr-defined]
    for part in parts:
        assert part in line, line


@pytest.mark.parametrize("damage", ["cut short", "cut short with newline", "garbage", "garbage without newline"])
def test_damaged_last_line_is_left_out_and_the_log_resumes(task_dir: Path, damage: str) -> None:
    path = make_log(task_dir)
    lines = lines_of(path)[:-1]  # no footer: the run was killed ...
    last = {"cut short": lines[-1][:25], "cut short with newline": lines[-1][:25],
            "garbage": "\x00\x00##", "garbage without newline": '{"id": 9, "epo'}[damage]
    write_lines(path, lines[:-1] + [last], end="" if "without" in damage or damage == "cut short" else "\n")
    log = read_eval_log(path)  # ... while writing the last sample's line
    assert log.status == "started" and [s.id for s in log.samples] == [1, 2, 3, 4, 5]
    assert log.ignored_line == 7
    shown = run_cli("log", "show", str(path))
    assert shown.returncode == 0 and "line 7 was damaged" in shown.stdout
    retried = run_cli("eval-retry", str(path), "--display", "none", cwd=task_dir)
    assert retried.returncode == 0, retried.stderr
    done = read_eval_log(path)
    assert done.status == "success" and sorted(s.id for s in done.samples) == [1, 2, 3, 4, 5, 6]
    assert all(json.loads(line) for line in lines_of(path))


def test_log_samples_prints_letter_and_number_scores(task_dir: Path) -> None:
    path = make_log(task_dir)
    lines = lines_of(path)
    record = json.loads(lines[2])
    record["scores"]["match"]["value"] = 0.5  # a numeric score beside the letters match() gives
    lines[2] = json.dumps(record)
    write_lines(path, lines)
    shown = run_cli("log", "samples", str(path))
    assert shown.returncode == 0, shown.stderr
    assert [line.split("\t")[:3] for line in shown.stdout.splitlines()] == [
        ["1", "epoch 1", "match=C"], ["2", "epoch 1", "match=0.5"], *[[str(i), "epoch 1", "match=C"] for i in range(3, 7)]]


def test_damage_before_the_last_line_names_the_line(task_dir: Path) -> None:
    path = make_log(task_dir)
    lines = lines_of(path)
    lines[3] = lines[3] + lines[4]  # two records glued on one line
    write_lines(path, lines)
    for command in (["log", "show", str(path)], ["log", "samples", str(path)], ["eval-retry", str(path)]):
        assert_one_error_line(run_cli(*command, cwd=task_dir), f"{path}, line 4: not valid JSON", "delete that line")


def set_field(record: dict, dotted: str, value: object) -> None:
    *parents, name = dotted.split(".")
    for parent in parents:
        record = record[parent]
    if value is DELETE:
        del record[name]
    else:
        record[name] = value


DELETE = object()
MALFORMED = [
    (1, "header.epochs", "3", "header field 'epochs' should be a whole number of at least 1 (found a string)"),
    (1, "header.model_args", ["a"], "header field 'model_args' should be an object (found a list)"),
    (1, "header.dataset.fingerprint", None, "header field 'dataset' should be an object with a string 'fingerprint'"),
    (1, "header.limit", [0], "header field 'limit' should be a list [start, stop]"),
    (1, "header.task_origin.file", 7, "header field 'task_origin' should be null or an object with string 'file'"),
    (1, "header.model", DELETE, "the header lacks the field 'model'"),
    (1, "header", [], "the header is not an object"),
    (3, "epoch", "x", "sample field 'epoch' should be a whole number of at least 1 (found a string)"),
    (3, "id", True, "sample field 'id' should be a string or a whole number (found true)"),
    (3, "id", DELETE, "the sample lacks the field 'id'"),
    (3, "scores", [1], "sample field 'scores' should be an object whose entries are objects with a 'value'"),
    (3, "scores.match", 1.0, "sample field 'scores' should be an object whose entries are objects with a 'value'"),
    (3, "messages", "hi", "sample field 'messages' should be a list of message objects (found a string)"),
    (3, "error", 5, "sample field 'error' should be null or a string (found 5)"),
    (3, "usage", {"input_tokens": "many"}, "sample field 'usage' should be null or an object of token counts"),
    (-1, "footer.status", "done", "footer field 'status' should be one of started, success, error, cancelled"),
    (-1, "footer.counts", None, "footer field 'counts' should be an object of whole numbers (found null)"),
]


@pytest.mark.parametrize(("line", "field", "value", "message"), MALFORMED, ids=[f"{m[1]}={m[2]!r}" for m in MALFORMED])
def test_malformed_field_is_one_line_naming_file_line_and_field(
        task_dir: Path, line: int, field: str, value: object, message: str) -> None:
    path = make_log(task_dir, "-M", "error_on=q4 ", "--fail-on-error", "false")
    lines = lines_of(path)
    index = line - 1 if line > 0 else len(lines) + line
    record = json.loads(lines[index])
    if field == "header":
        record["header"] = value
    else:
        set_field(record, field, value)
    lines[index] = json.dumps(record)
    write_lines(path, lines)
    number = index + 1
    for command in (["eval-retry", str(path)], ["log", "show", str(path)]):
        assert_one_error_line(run_cli(*command, cwd=task_dir), f"{path}, line {number}: {message}")


def test_resume_truncates_a_stale_temporary_file(task_dir: Path) -> None:
    path = make_log(task_dir, "-M", "error_on=q4 ", "--fail-on-error", "false")
    stale = path.with_name(path.name + ".tmp")  # left by a compaction that crashed earlier
    stale.write_text(path.read_text() * 2)
    stale.chmod(0o600)
    retried = run_cli("eval-retry", str(path), "-M", "error_on=never", "--display", "none", cwd=task_dir)
    assert retried.returncode == 0, retried.stderr
    log = read_eval_log(path)
    assert log.status == "success" and sorted(s.id for s in log.samples) == [1, 2, 3, 4, 5, 6]
    assert [line.startswith('{"header"') for line in lines_of(path)].count(True) == 1
    assert not stale.exists()
