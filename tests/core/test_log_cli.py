"""`evalkit log list|show|compare|export` on real logs, and their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.core.view_logs import make_runs


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_runs(tmp_path_factory.mktemp("log_cli") / "logs")


def ok(*args: str) -> str:
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def assert_one_line(result: Any, *parts: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "Traceback" not in result.stderr
    for part in parts:
        assert part in line, line


def test_log_list_is_a_table_of_runs(logs: dict[str, Path]) -> None:
    lines = ok("log", "list", str(logs["a"].parent)).splitlines()
    assert lines[0].split() == ["started", "task", "model", "status", "samples", "metrics", "tokens", "duration", "log"]
    rows = {line.split()[-1]: line for line in lines[1:]}
    assert len(rows) == 3
    a = rows[logs["a"].name].split()
    assert a[2:7] == ["quiz", "mockllm/first", "success", "6/6", "match/accuracy=0.8"]
    assert "match/accuracy=1" in rows[logs["b"].name] and "tools" in rows[logs["tools"].name]


def test_log_list_reads_the_log_dir_from_the_environment_and_skips_unreadable_logs(tmp_path: Path, logs: dict[str, Path]) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "copy.jsonl").write_bytes(logs["a"].read_bytes().splitlines(keepends=True)[0])  # a run that just started
    (folder / "junk.jsonl").write_text("{}\n")
    result = run_cli("log", "list", env={"EVALKIT_LOG_DIR": str(folder)})
    assert result.returncode == 0, result.stderr
    [_, row] = result.stdout.splitlines()
    assert row.split()[4:6] == ["started", "0/6"]
    assert "junk.jsonl" in result.stderr and "warning: skipped" in result.stderr


def test_log_list_of_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    assert_one_line(run_cli("log", "list", str(tmp_path / "missing")), "log folder not found", "missing")


def test_log_show_takes_several_logs_or_a_folder(logs: dict[str, Path]) -> None:
    single = ok("log", "show", str(logs["a"]))
    assert single.startswith("task:     quiz\nmodel:    mockllm/first\n") and "==" not in single
    folder = ok("log", "show", str(logs["a"].parent))
    assert folder.count("== ") == 3 and single in folder
    two = ok("log", "show", str(logs["a"]), str(logs["b"]))
    assert two.count("== ") == 2 and "mockllm/second" in two


def test_log_show_of_an_unreadable_log_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    assert_one_line(run_cli("log", "show", str(bad)), "bad.jsonl", "line 1")
    assert_one_line(run_cli("log", "show", str(tmp_path / "none.jsonl")), "none.jsonl")


def test_log_compare_shows_metrics_and_flips(logs: dict[str, Path]) -> None:
    out = ok("log", "compare", str(logs["a"]), str(logs["b"]))
    assert "[1] mockllm/first" in out and "[2] mockllm/second" in out
    accuracy = next(line for line in out.splitlines() if line.startswith("match/accuracy:"))
    assert accuracy.split()[1:] == ["0.8", "1"]
    assert "1 of 6 samples differ" in out
    assert any(line.split() == ["5", "epoch", "1", "match:", "I", "->", "C"] for line in out.splitlines())


def test_log_compare_of_different_tasks_is_one_line(logs: dict[str, Path]) -> None:
    assert_one_line(run_cli("log", "compare", str(logs["a"]), str(logs["tools"])), "different tasks", "quiz", "tools")
    assert_one_line(run_cli("log", "compare", str(logs["a"])), "two or more runs")


@pytest.mark.parametrize("format_", ["csv", "parquet", "jsonl"])
def test_log_export_writes_one_row_per_sample(tmp_path: Path, logs: dict[str, Path], format_: str) -> None:
    pandas = pytest.importorskip("pandas")
    output = tmp_path / f"samples.{format_}"
    out = ok("log", "export", str(logs["a"]), str(logs["tools"]), "--format", format_, "--output", str(output))
    assert out.strip() == f"wrote 9 samples to {output}"
    frame = {"csv": pandas.read_csv, "parquet": pandas.read_parquet,
             "jsonl": lambda p: pandas.read_json(p, lines=True)}[format_](output)
    assert len(frame) == 9
    quiz = frame[frame["task_name"] == "quiz"].sort_values("id")
    assert list(quiz["score_match"].fillna("-")) == ["C", "C", "C", "C", "I", "-"]  # the failed sample has no score
    assert list(quiz["metadata_level"]) == ["easy", "hard", "easy", "hard", "easy", "hard"]
    assert "boom" in str(quiz["error"].iloc[5]) and quiz["total_tokens"].iloc[0] > 0
    assert set(frame["model"]) == {"mockllm/first", "mockllm/tools"}


def test_log_export_jsonl_rows_are_flat(tmp_path: Path, logs: dict[str, Path]) -> None:
    output = tmp_path / "out.jsonl"
    ok("log", "export", str(logs["tools"]), "--format", "jsonl", "-o", str(output))
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["t0", "t1", "t2"] and all(r["answer"] == "The answer is 3" for r in rows)
    assert rows[0]["input"] == "What is 1+2? (0)\n[image]" and rows[0]["score_match"] == "C"


def test_log_export_bad_input_is_one_line(tmp_path: Path, logs: dict[str, Path]) -> None:
    assert_one_line(run_cli("log", "export", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "x.csv")), "missing.jsonl")
    assert_one_line(run_cli("log", "export", str(logs["a"]), "-o", str(tmp_path)), "is a folder")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("garbage\n")
    assert_one_line(run_cli("log", "export", str(bad), "--format", "jsonl", "-o", str(tmp_path / "y.jsonl")), "bad.jsonl", "line 1")
    result = run_cli("log", "export", str(logs["a"]), "--format", "xlsx", "-o", str(tmp_path / "x.xlsx"))
    assert result.returncode == 2 and "xlsx" in result.stderr and "Traceback" not in result.stderr


def test_log_export_of_a_folder_into_itself_skips_its_output_and_files_that_are_not_logs(tmp_path: Path, logs: dict[str, Path]) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    for run in ("a", "tools"):
        (folder / logs[run].name).write_bytes(logs[run].read_bytes())
    (folder / "notes.jsonl").write_text('{"note": "not a log"}\n')
    output = folder / "all.jsonl"
    for _ in range(2):  # the second time, the first export is in the folder
        result = run_cli("log", "export", str(folder), "--format", "jsonl", "--output", str(output))
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"wrote 9 samples to {output}"
        [warning] = result.stderr.strip().splitlines()
        assert warning.startswith("warning: skipped") and "notes.jsonl" in warning and "no evalkit log header" in warning
        assert len(output.read_text().splitlines()) == 9
    result = run_cli("log", "export", str(folder), "--format", "csv", "--output", str(folder / "all.csv"))
    assert result.returncode == 0 and "wrote 9 samples" in result.stdout
    warnings = result.stderr.strip().splitlines()  # the earlier JSON Lines export is not a log either
    assert len(warnings) == 2 and "all.jsonl" in warnings[0] and "notes.jsonl" in warnings[1]
    assert sorted(p.name for p in folder.iterdir()) == sorted([logs["a"].name, logs["tools"].name, "notes.jsonl", "all.jsonl", "all.csv"])


def test_log_export_that_fails_leaves_the_output_as_it_was(tmp_path: Path, logs: dict[str, Path]) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    lines = logs["a"].read_bytes().splitlines(keepends=True)
    (folder / "damaged.jsonl").write_bytes(b"".join([*lines[:3], b"{garbage\n", *lines[3:]]))
    output = tmp_path / "samples.jsonl"
    for format_ in ("jsonl", "csv"):
        output.write_text("the previous export\n")
        assert_one_line(run_cli("log", "export", str(folder), "--format", format_, "-o", str(output)), "damaged.jsonl", "line 4")
        assert output.read_text() == "the previous export\n"
    assert [p.name for p in folder.iterdir()] == ["damaged.jsonl"]  # no temporary file left behind
    (tmp_path / "empty").mkdir()
    assert_one_line(run_cli("log", "export", str(tmp_path / "empty"), "-o", str(output)), "no evalkit logs to export", "empty")
    assert output.read_text() == "the previous export\n"
