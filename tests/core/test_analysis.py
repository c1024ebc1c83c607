"""`evals_df` / `samples_df` on real logs, and the streaming reads behind them:
`read_eval_log(path, header_only=True)` and `read_eval_log_samples(path)`."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit import read_eval_log
from evalkit.errors import LogFileError
from evalkit.log.reader import read_eval_log_samples
from tests.core.view_logs import make_runs

pandas = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_runs(tmp_path_factory.mktemp("analysis") / "logs")


def test_evals_df_has_one_row_per_run(logs: dict[str, Path]) -> None:
    from evalkit.analysis import evals_df

    frame = evals_df(logs["a"].parent).set_index("model")
    assert sorted(frame.index) == ["mockllm/first", "mockllm/second", "mockllm/tools"]
    first = frame.loc["mockllm/first"]
    assert (first["task_name"], first["status"], first["total_samples"], first["completed_samples"], first["error_samples"]) == ("quiz", "success", 6, 6, 1)
    assert first["score_match_accuracy"] == pytest.approx(0.8) and first["score_match_stderr"] > 0
    assert first["total_tokens"] > 0 and first["duration"] >= 0 and first["started"] and first["log"] == str(logs["a"])
    assert frame.loc["mockllm/second", "score_match_accuracy"] == 1.0


def test_samples_df_has_one_row_per_sample_and_epoch(logs: dict[str, Path]) -> None:
    from evalkit.analysis import samples_df

    frame = samples_df([logs["a"], logs["b"]])
    assert len(frame) == 12 and frame["sample_id"].is_unique
    first = frame[frame["model"] == "mockllm/first"].set_index("id")
    assert list(first.loc[[1, 2, 3, 4, 5], "score_match"]) == ["C", "C", "C", "C", "I"]
    assert first.loc[3, "metadata_level"] == "easy" and first.loc[4, "metadata_level"] == "hard"
    assert "boom" in first.loc[6, "error"] and pandas.isna(first.loc[1, "error"])
    assert first.loc[2, "answer"] == "2" and first.loc[2, "target"] == "2" and first.loc[2, "epoch"] == 1
    assert first.loc[2, "total_tokens"] == first.loc[2, "input_tokens"] + first.loc[2, "output_tokens"] > 0
    # the comparison that took 15 lines of pandas
    wide = frame.pivot_table(index="id", columns="model", values="score_match", aggfunc="first")
    assert list(wide[wide["mockllm/first"] != wide["mockllm/second"]].dropna().index) == [5]


def test_samples_df_has_a_row_per_epoch(tmp_path: Path) -> None:
    from evalkit import eval
    from evalkit.analysis import evals_df, samples_df
    from tests.core.view_logs import quiz

    [log] = eval(quiz(), model="mockllm/m", model_args={"error_on": "boom"}, epochs=2, log_dir=tmp_path,
                 display="none", fail_on_error=False)
    frame = samples_df(log.location)
    assert len(frame) == 12 and sorted(frame.groupby("epoch").size().items()) == [(1, 6), (2, 6)]
    assert set(frame[frame["id"] == 5]["score_match"]) == {"I"}
    assert evals_df(tmp_path)["total_samples"].tolist() == [12]


def test_frames_of_a_missing_path_are_a_clear_error(tmp_path: Path) -> None:
    from evalkit.analysis import evals_df

    with pytest.raises(LogFileError, match="no log file or folder"):
        evals_df(tmp_path / "nope")


def test_header_only_reads_header_and_footer_not_samples(logs: dict[str, Path], tmp_path: Path) -> None:
    log = read_eval_log(logs["a"], header_only=True)
    assert (log.task, log.model, log.status, log.results["match"]["accuracy"]) == ("quiz", "mockllm/first", "success", pytest.approx(0.8))
    assert log.loaded_samples is None
    assert len(log.samples) == 6  # read from the file when asked for
    running = tmp_path / "running.jsonl"
    lines = logs["a"].read_bytes().splitlines(keepends=True)
    running.write_bytes(b"".join(lines[:3]) + lines[3][:30])  # no footer, the last line half written
    assert read_eval_log(running, header_only=True).status == "started"
    with pytest.raises(LogFileError, match="no evalkit log header"):
        read_eval_log(running.with_name("x.jsonl").write_text("{}\n") and running.with_name("x.jsonl"), header_only=True)


def test_samples_are_read_one_at_a_time(logs: dict[str, Path], tmp_path: Path) -> None:
    samples = read_eval_log_samples(logs["b"])
    first = next(samples)
    assert (first.id, first.epoch) == (1, 1)
    assert [s.id for s in samples] == [2, 3, 4, 5, 6]
    damaged = tmp_path / "damaged.jsonl"
    lines = logs["b"].read_bytes().splitlines(keepends=True)
    damaged.write_bytes(b"".join(lines[:3]) + b"garbage\n" + b"".join(lines[3:5]))
    found = read_eval_log_samples(damaged)
    assert [s.id for s in (next(found), next(found))] == [1, 2]
    with pytest.raises(LogFileError, match="line 4"):
        next(found)
