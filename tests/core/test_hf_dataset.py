"""hf_dataset: local json/parquet files and save_to_disk folders through the `datasets`
library, offline; through eval(), the CLI and eval-retry."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from evalkit import FieldSpec, Sample, Task, eval, hf_dataset, read_eval_log
from evalkit.errors import DatasetError
from evalkit.scorer import match
from tests.conftest import run_cli

datasets = pytest.importorskip("datasets")  # the `datasets` extra, in dev

ROWS = [{"question": f"q{i} ANSWER: {i if i % 4 else -1}", "answer": str(i), "topic": "t" if i % 2 else "u"} for i in range(1, 13)]
FIELDS = FieldSpec(input="question", target="answer")

TASK = """
from evalkit import task, Task, FieldSpec, hf_dataset
from evalkit.scorer import match

@task
def {name}(seed: int = 0):
    dataset = hf_dataset({path!r}, {args}, sample_fields=FieldSpec(input="question", target="answer"),
                         shuffle=seed > 0, seed=seed or None, cache_dir={cache!r})
    return Task(dataset=dataset, scorer=match())
"""


def write_json(path: Path, rows: list[dict]) -> Path:
    path.write_text(json.dumps(rows))
    return path


def saved_splits(folder: Path) -> Path:
    """A DatasetDict with a train and a test split, written with save_to_disk."""
    datasets.DatasetDict({
        "train": datasets.Dataset.from_list(ROWS[:4]),
        "test": datasets.Dataset.from_list(ROWS),
    }).save_to_disk(str(folder))
    return folder


def task_file(tmp_path: Path, name: str, path: str, args: str) -> Path:
    file = tmp_path / f"{name}.py"
    file.write_text(TASK.format(name=name, path=path, args=args, cache=str(tmp_path / "hf-cache")))
    return file


def test_local_json_file_through_eval(tmp_path: Path) -> None:
    data = write_json(tmp_path / "quiz.json", ROWS)
    dataset = hf_dataset("json", data_files=str(data), sample_fields=FIELDS, cache_dir=str(tmp_path / "cache"))
    assert dataset.name == "quiz" and len(dataset) == 12
    assert [s.id for s in dataset] == list(range(1, 13))
    assert dataset[0].metadata == {"topic": "t"}  # unmapped fields are metadata
    [log] = eval(Task(dataset=dataset, scorer=match()), model="mockllm/m", log_dir=tmp_path / "logs", display="none")
    log = read_eval_log(log.location)
    assert log.status == "success" and log.header["dataset"]["name"] == "quiz"
    assert sorted(s.id for s in log.samples) == list(range(1, 13))
    assert log.footer["results"]["match"]["accuracy"] == pytest.approx(9 / 12)  # q4, q8, q12 answer -1


def test_local_parquet_file_with_a_record_function(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "quiz.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    dataset = hf_dataset("parquet", split="train", data_files=str(path), cache_dir=str(tmp_path / "cache"),
                         sample_fields=lambda r: Sample(input=r["question"], target=r["answer"], id=f"row-{r['answer']}"))
    assert [s.id for s in dataset][:3] == ["row-1", "row-2", "row-3"]
    [log] = eval(Task(dataset=dataset, scorer=match()), model="mockllm/m", log_dir=tmp_path / "logs", display="none", limit=3)
    assert log.status == "success" and log.footer["counts"]["completed"] == 3


def test_saved_dataset_split_through_the_cli(tmp_path: Path) -> None:
    folder = saved_splits(tmp_path / "saved")
    task_file(tmp_path, "saved_quiz", str(folder), "split='test'")
    result = run_cli("eval", "saved_quiz.py", "--model", "mockllm/m", "--log-dir", "logs", "--display", "none", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [path] = (tmp_path / "logs").glob("*.jsonl")
    log = read_eval_log(path)
    assert len(log.samples) == 12 and log.header["task"] == "saved_quiz"
    assert log.header["dataset"]["fingerprint"] == hf_dataset(str(folder), split="test", sample_fields=FIELDS).fingerprint()


def test_one_split_is_picked_without_split_and_several_need_one(tmp_path: Path) -> None:
    single = tmp_path / "single"
    datasets.Dataset.from_list(ROWS[:3]).save_to_disk(str(single))
    assert len(hf_dataset(str(single), sample_fields=FIELDS)) == 3
    folder = saved_splits(tmp_path / "saved")
    with pytest.raises(DatasetError, match=r"has several splits: pass split= one of train, test"):
        hf_dataset(str(folder), sample_fields=FIELDS)
    with pytest.raises(DatasetError, match=r"has no split 'dev': pass split= one of train, test"):
        hf_dataset(str(folder), split="dev", sample_fields=FIELDS)


def test_fingerprint_is_stable_for_the_same_data_and_changes_with_it(tmp_path: Path) -> None:
    data = write_json(tmp_path / "quiz.json", ROWS)
    first = hf_dataset("json", data_files=str(data), sample_fields=FIELDS, cache_dir=str(tmp_path / "a"))
    data.touch()  # a new modification time, the same content, another cache folder
    again = hf_dataset("json", data_files=str(data), sample_fields=FIELDS, cache_dir=str(tmp_path / "b"))
    assert first.fingerprint() == again.fingerprint()
    write_json(data, [*ROWS[:-1], {**ROWS[-1], "answer": "changed"}])
    changed = hf_dataset("json", data_files=str(data), sample_fields=FIELDS, cache_dir=str(tmp_path / "c"))
    assert changed.fingerprint() != first.fingerprint()


def test_shuffle_with_a_seed_gives_the_same_order_every_run(tmp_path: Path) -> None:
    folder = saved_splits(tmp_path / "saved")
    order = [s.id for s in hf_dataset(str(folder), split="test", sample_fields=FIELDS, shuffle=True, seed=7)]
    assert order == [s.id for s in hf_dataset(str(folder), split="test", sample_fields=FIELDS, shuffle=True, seed=7)]
    assert sorted(order) == list(range(1, 13)) and order != list(range(1, 13))
    assert order != [s.id for s in hf_dataset(str(folder), split="test", sample_fields=FIELDS, shuffle=True, seed=8)]
    # limit keeps the first of the shuffled order; ids stay those of the rows
    limited = hf_dataset(str(folder), split="test", sample_fields=FIELDS, shuffle=True, seed=7, limit=4)
    assert [s.id for s in limited] == order[:4]
    assert all(s.target == str(s.id) for s in limited)


def test_auto_id_numbers_rows_over_their_own_ids(tmp_path: Path) -> None:
    data = write_json(tmp_path / "ids.json", [{"input": f"q{i}", "target": "x", "id": f"own-{i}"} for i in range(3)])
    assert [s.id for s in hf_dataset("json", data_files=str(data), cache_dir=str(tmp_path / "c"))] == ["own-0", "own-1", "own-2"]
    assert [s.id for s in hf_dataset("json", data_files=str(data), auto_id=True, cache_dir=str(tmp_path / "c"))] == [1, 2, 3]


def test_eval_retry_reloads_the_hf_dataset_and_resumes(tmp_path: Path) -> None:
    data = write_json(tmp_path / "quiz.json", ROWS)
    task_file(tmp_path, "quiz", "json", f"data_files={str(data)!r}")
    failing = run_cli("eval", "quiz.py", "--model", "mockllm/m", "-T", "seed=3", "-M", "error_on=q5 ",
                      "--fail-on-error", "false", "--log-dir", "logs", "--display", "none", cwd=tmp_path)
    assert failing.returncode == 0, failing.stderr
    [path] = (tmp_path / "logs").glob("*.jsonl")
    assert read_eval_log(path).footer["counts"]["errors"] == 1
    result = run_cli("eval-retry", str(path), "-M", "error_on=never-matches", "--display", "none", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    log = read_eval_log(path)
    assert log.footer["counts"] == {"total": 12, "completed": 12, "errors": 0}
    assert sorted(s.id for s in log.samples) == list(range(1, 13))


def test_a_row_that_does_not_map_names_its_row(tmp_path: Path) -> None:
    data = write_json(tmp_path / "bad.json", [{"question": "ok", "answer": "1"}, {"question": "", "answer": "2"}])
    with pytest.raises(DatasetError, match=r"hf_dataset\('json'\), row 2: field 'question' is missing or empty"):
        hf_dataset("json", data_files=str(data), sample_fields=FIELDS, cache_dir=str(tmp_path / "c"))


def test_missing_local_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"hf_dataset\('json'\): Unable to find"):
        hf_dataset("json", data_files=str(tmp_path / "nope.json"), cache_dir=str(tmp_path / "c"))


def test_hub_dataset_not_cached_offline_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    task_file(tmp_path, "hub", "evalkit-tests/no-such-dataset", "split='test'")
    result = run_cli("eval", "hub.py", "--model", "mockllm/m", "--log-dir", "logs", cwd=tmp_path,
                     env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: task 'hub': hf_dataset('evalkit-tests/no-such-dataset') is not in the local Hugging Face cache")
    assert "unset HF_HUB_OFFLINE" in lines[-1] and "Traceback" not in result.stderr
    assert not (tmp_path / "logs").exists()


def test_without_the_datasets_package_the_error_names_the_extra(tmp_path: Path) -> None:
    import subprocess

    code = ("import sys; sys.modules['datasets'] = None\n"
            "from evalkit import hf_dataset\n"
            "try:\n    hf_dataset('json', data_files='x.json')\n"
            "except Exception as ex:\n    print(type(ex).__name__, ex)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.stdout.strip() == "DatasetError hf_dataset needs the datasets package: pip install 'evalkit-ai[datasets]'"
