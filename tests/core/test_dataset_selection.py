"""Choosing samples: --sample-id, --limit as a fraction, and shuffling json/csv datasets with
a seed; through the CLI, eval() and eval-retry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit import MemoryDataset, Sample, Task, csv_dataset, eval, json_dataset, read_eval_log
from evalkit.errors import ArgumentError, DatasetError
from evalkit.scorer import match
from tests.conftest import run_cli

TASK = """
from evalkit import task, Task, json_dataset
from evalkit.scorer import match

@task
def numbers(seed: int = 0):
    return Task(dataset=json_dataset("data.jsonl", shuffle=seed > 0, seed=seed or None), scorer=match())
"""


def make_task_dir(tmp_path: Path, n: int = 30) -> Path:
    rows = [{"input": f"q{i} ANSWER: {i}", "target": str(i)} for i in range(1, n + 1)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "t.py").write_text(TASK)
    return tmp_path


def eval_cli(cwd: Path, *args: str):
    return run_cli("eval", "t.py", "--model", "mockllm/m", "--log-dir", "logs", "--display", "none", *args, cwd=cwd)


def only_log(cwd: Path):
    [path] = (cwd / "logs").glob("*.jsonl")
    return read_eval_log(path)


@pytest.mark.parametrize("flags", [("--sample-id", "3,7"), ("--sample-id", "3", "--sample-id", "7"), ("--sample-id", " 7 , 3")])
def test_sample_id_runs_only_those_samples(tmp_path: Path, flags: tuple[str, ...]) -> None:
    cwd = make_task_dir(tmp_path)
    result = eval_cli(cwd, *flags)
    assert result.returncode == 0, result.stderr
    log = only_log(cwd)
    assert sorted(s.id for s in log.samples) == [3, 7]
    assert log.footer["counts"]["total"] == 2 and log.header["sample_ids"] in (["3", "7"], ["7", "3"])


def test_unknown_sample_id_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cwd = make_task_dir(tmp_path, 5)
    result = eval_cli(cwd, "--sample-id", "3,99,x")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: --sample-id 99,x: no such sample (ids look like: 1, 2, 3, 4, 5)"]
    assert not (cwd / "logs").exists()  # refused before any model loads or any log starts


def test_sample_id_and_limit_together_are_refused(tmp_path: Path) -> None:
    cwd = make_task_dir(tmp_path, 5)
    result = eval_cli(cwd, "--sample-id", "3", "--limit", "2")
    assert result.returncode == 2 and "give one of them" in result.stderr


def test_sample_ids_match_text_ids_from_eval(tmp_path: Path) -> None:
    dataset = MemoryDataset([Sample(input=f"ANSWER: {n}", target=n, id=n) for n in ("alpha", "beta", "gamma")])
    [log] = eval(Task(dataset=dataset, scorer=match()), model="mockllm/m", sample_id=["gamma", "alpha"],
                 log_dir=tmp_path, display="none")
    assert sorted(s.id for s in read_eval_log(log.location).samples) == ["alpha", "gamma"]


@pytest.mark.parametrize(("limit", "expected"), [("0.1", 3), ("0.5", 15), ("0.29", 8), ("0.01", 1)])
def test_limit_fraction_takes_that_share_of_the_first_samples(tmp_path: Path, limit: str, expected: int) -> None:
    cwd = make_task_dir(tmp_path, 30)
    result = eval_cli(cwd, "--limit", limit)
    assert result.returncode == 0, result.stderr
    log = only_log(cwd)
    assert sorted(s.id for s in log.samples) == list(range(1, expected + 1))  # rounded down, at least one
    assert log.header["limit"] == [0, expected]  # the range, so eval-retry runs the same samples


@pytest.mark.parametrize("limit", ["1.5", "0.0", "-0.5", "1.0", "nan", "0.x"])
def test_bad_limit_fraction_is_one_line(tmp_path: Path, limit: str) -> None:
    cwd = make_task_dir(tmp_path, 5)
    result = eval_cli(cwd, f"--limit={limit}")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: --limit")


def test_eval_retry_keeps_the_sample_id_selection(tmp_path: Path) -> None:
    cwd = make_task_dir(tmp_path, 30)
    failing = eval_cli(cwd, "--sample-id", "2,5,9", "-M", "error_on=q5 ", "--fail-on-error", "false")
    assert failing.returncode == 0, failing.stderr
    path = only_log(cwd).location
    assert read_eval_log(path).footer["counts"] == {"total": 3, "completed": 2, "errors": 1}
    result = run_cli("eval-retry", str(path), "-M", "error_on=never-matches", "--display", "none", cwd=cwd)
    assert result.returncode == 0, result.stderr
    log = read_eval_log(path)
    assert log.footer["counts"] == {"total": 3, "completed": 3, "errors": 0}
    assert sorted(s.id for s in log.samples) == [2, 5, 9]


def test_eval_retry_of_a_fraction_and_a_seeded_shuffle_runs_the_same_samples(tmp_path: Path) -> None:
    cwd = make_task_dir(tmp_path, 30)
    failing = eval_cli(cwd, "-T", "seed=11", "--limit", "0.2", "-M", "error_on=ANSWER", "--fail-on-error", "false")
    assert failing.returncode == 1 and "every sample failed (6 of 6)" in failing.stderr
    first = only_log(cwd)
    assert first.footer["counts"] == {"total": 6, "completed": 0, "errors": 6}
    chosen = sorted(s.id for s in first.samples)
    assert chosen != list(range(1, 7))  # the first 20% of the shuffled order
    result = run_cli("eval-retry", str(first.location), "-M", "error_on=never-matches", "--display", "none", cwd=cwd)
    assert result.returncode == 0, result.stderr
    log = read_eval_log(first.location)
    assert log.footer["counts"] == {"total": 6, "completed": 6, "errors": 0}
    assert sorted(s.id for s in log.samples) == chosen


def test_json_shuffle_with_a_seed_is_the_same_every_run(tmp_path: Path) -> None:
    path = make_task_dir(tmp_path, 20) / "data.jsonl"
    order = [s.id for s in json_dataset(path, shuffle=True, seed=5)]
    assert order == [s.id for s in json_dataset(path, shuffle=True, seed=5)]
    assert sorted(order) == list(range(1, 21)) and order != list(range(1, 21))
    assert order != [s.id for s in json_dataset(path, shuffle=True, seed=6)]
    assert json_dataset(path, shuffle=True, seed=5).fingerprint() == json_dataset(path, shuffle=True, seed=5).fingerprint()
    limited = json_dataset(path, shuffle=True, seed=5, limit=4)
    assert [s.id for s in limited] == order[:4] and len(limited) == 4
    assert all(s.target == str(s.id) for s in limited)  # ids stay with their rows


def test_csv_limit_auto_id_and_shuffle_method(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("input,target,id\n" + "".join(f"q{i},{i},row{i}\n" for i in range(1, 11)))
    assert [s.id for s in csv_dataset(path, limit=3)] == ["row1", "row2", "row3"]
    assert [s.id for s in csv_dataset(path, auto_id=True, limit=3)] == [1, 2, 3]
    dataset = csv_dataset(path)
    dataset.shuffle(seed=1)
    assert [s.id for s in dataset] == [s.id for s in csv_dataset(path, shuffle=True, seed=1)]
    assert csv_dataset(path, limit=3).fingerprint() != csv_dataset(path).fingerprint()
    with pytest.raises(DatasetError, match="limit must be a positive whole number"):
        csv_dataset(path, limit=0)


def test_memory_dataset_shuffle_and_slice() -> None:
    dataset = MemoryDataset([Sample(input=f"q{i}") for i in range(10)], name="m")
    dataset.shuffle(seed=2)
    order = [s.id for s in dataset]
    again = MemoryDataset([Sample(input=f"q{i}") for i in range(10)], name="m")
    again.shuffle(seed=2)
    assert order == [s.id for s in again] and sorted(order) == list(range(1, 11))
    head = dataset[:3]
    assert isinstance(head, MemoryDataset) and [s.id for s in head] == order[:3] and head.name == "m"


def test_sample_id_argument_is_checked() -> None:
    with pytest.raises(ArgumentError, match="--sample-id needs ids separated by commas"):
        eval(Task(dataset=[Sample(input="x")], scorer=match()), model="mockllm/m", sample_id="1,,2", display="none")


def test_eval_set_reuses_a_log_only_for_the_same_selection(tmp_path: Path) -> None:
    cwd = make_task_dir(tmp_path, 10)

    def eval_set(*flags: str) -> int:
        result = run_cli("eval-set", "t.py", "--model", "mockllm/m", "--log-dir", "set", "--display", "none", *flags, cwd=cwd)
        assert result.returncode == 0, result.stderr
        return len(list((cwd / "set").glob("*.jsonl")))

    assert eval_set("--limit", "0.5") == 1
    assert eval_set("--limit", "0.5") == 1  # complete: reused, no new log
    assert eval_set("--sample-id", "2,3") == 2
    assert eval_set("--sample-id", "3,2") == 2
    assert eval_set("--sample-id", "2,4") == 3
