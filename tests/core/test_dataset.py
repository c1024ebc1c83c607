"""Datasets: files in every format, field mapping, streaming, and errors naming file/line/field."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from evalkit import FieldSpec, MemoryDataset, Sample, csv_dataset, json_dataset
from evalkit.errors import DatasetError
from evalkit.model.types import ChatMessageSystem, ChatMessageUser


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_with_messages_lists_and_metadata(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [
        {"input": "q1", "target": ["a", "b"], "topic": "x"},
        {"input": [{"role": "system", "content": "s"}, {"role": "user", "content": "q2"}], "target": "c", "id": "two"},
    ])
    samples = list(json_dataset(path))
    assert samples[0].input == "q1" and samples[0].targets == ["a", "b"] and samples[0].metadata == {"topic": "x"}
    assert samples[0].id == 1
    assert samples[1].input == [ChatMessageSystem(content="s"), ChatMessageUser(content="q2")]
    assert samples[1].id == "two" and samples[1].input_text == "q2"


def test_field_mapping_and_csv_choices_columns(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("question,answer,A,B,C\nWhat?,B,x,y,z\nWho?,A,p,q,\n")
    samples = list(csv_dataset(path, FieldSpec(input="question", target="answer", choices=["A", "B", "C"])))
    assert [s.input for s in samples] == ["What?", "Who?"]
    assert samples[0].choices == ["x", "y", "z"] and samples[1].choices == ["p", "q"]
    assert [s.id for s in samples] == [1, 2]


def test_csv_choices_as_json_list(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('input,target,choices\nq,A,"[""one"", ""two""]"\n')
    assert list(csv_dataset(path))[0].choices == ["one", "two"]


def test_json_list_file_and_length(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"input": f"q{i}", "target": str(i)} for i in range(5)]))
    dataset = json_dataset(path)
    assert len(dataset) == 5 and [s.target for s in dataset] == ["0", "1", "2", "3", "4"]


def test_custom_record_function(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"q": "x", "a": 1}])
    dataset = json_dataset(path, lambda r: Sample(input=r["q"], target=str(r["a"])))
    assert list(dataset)[0].target == "1"


def test_malformed_rows_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"input": "ok", "target": "1"}\n{"question": "no input"}\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl, line 2: field 'input' is missing"):
        list(json_dataset(path))
    path.write_text('{"input": "ok"}\n\n{not json}\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl, line 3: not valid JSON"):
        list(json_dataset(path))
    path.write_text('{"input": [{"role": "robot", "content": "x"}]}\n')
    with pytest.raises(DatasetError, match=r"line 1: field 'input': message role must be"):
        list(json_dataset(path))


def test_missing_and_unsupported_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="dataset file not found"):
        json_dataset(tmp_path / "nope.jsonl")
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(DatasetError, match="unsupported format"):
        json_dataset(tmp_path / "d.txt")


def test_fingerprint_changes_with_content(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"input": "a"}])
    first = json_dataset(path).fingerprint()
    write_jsonl(path, [{"input": "b"}])
    assert json_dataset(path).fingerprint() != first
    memory = MemoryDataset([Sample(input="a")])
    assert memory.fingerprint() == MemoryDataset([Sample(input="a")]).fingerprint()


def test_csv_with_byte_order_mark_and_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes("\ufeffinput,target\nq,a\n".encode())
    assert [s.input for s in csv_dataset(path)] == ["q"]
    path.write_bytes(b"input,target\nq\xff,a\n")
    with pytest.raises(DatasetError, match="not UTF-8 text"):
        list(csv_dataset(path))


def test_duplicate_ids_and_fingerprint_of_a_record_function(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"input": "a", "id": 1}, {"input": "b", "id": 1}, {"input": "c"}])
    assert json_dataset(path).duplicate_ids() == [1]
    assert MemoryDataset([Sample(input="a", id="x"), Sample(input="b", id="x")]).duplicate_ids() == ["x"]

    def record(row: dict) -> Sample:
        return Sample(input=row["input"])

    twin = types.FunctionType(record.__code__, globals(), "record")  # same function, another address
    twin.__qualname__ = record.__qualname__
    assert json_dataset(path, record).fingerprint() == json_dataset(path, twin).fingerprint()


@pytest.mark.parametrize(("fields", "error", "message"), [
    ({"input": None}, TypeError, r"Sample input must be text or a list of chat messages \(got NoneType None\)"),
    ({"input": [{"role": "user", "content": "hi"}]}, TypeError, "Sample input must be text or a list of chat messages"),
    ({"input": "q", "target": 4}, TypeError, r"Sample target must be text or a list of texts \(got int 4\)"),
    ({"input": "q", "target": ["a", 2]}, TypeError, "Sample target must be text or a list of texts"),
    ({"input": "q", "choices": "abc"}, TypeError, "Sample choices must be a list of texts"),
    ({"input": "q", "id": 1.5}, TypeError, "Sample id must be a whole number or text"),
    ({"input": "q", "metadata": ["x"]}, TypeError, "Sample metadata must be a dict"),
    ({"input": "a\ud800"}, ValueError, r"Sample input holds a lone surrogate '\\ud800' at character 2"),
    ({"input": [ChatMessageUser(content="\udfff")]}, ValueError, "Sample input holds a lone surrogate"),
    ({"input": "q", "target": ["ok", "\udc80"]}, ValueError, "Sample target holds a lone surrogate"),
    ({"input": "q", "choices": ["\ud83d"]}, ValueError, "Sample choices holds a lone surrogate"),
    ({"input": "q", "metadata": {"notes": ["fine", "x\udc00"]}}, ValueError, r"Sample metadata\['notes'\] holds a lone surrogate"),
])
def test_sample_refuses_wrong_types_and_invalid_unicode(fields: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        Sample(**fields)


def test_sample_accepts_every_documented_shape() -> None:
    sample = Sample(input=[ChatMessageSystem(content="s"), ChatMessageUser(content="q \U0001f600")], target=["a", "b"],
                    choices=["x", "y"], id="one", metadata={"k": {"nested": [1, "two"]}})
    assert sample.input_text == "q \U0001f600" and sample.targets == ["a", "b"]


def test_json_dataset_row_with_a_lone_surrogate_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('[{"input": "fine"}, {"input": "broken \\ud800 text"}]')
    with pytest.raises(DatasetError, match=r"d.json, line 2: Sample input holds a lone surrogate '\\ud800' at character 8"):
        list(json_dataset(path))


def test_csv_rows_with_missing_or_extra_fields_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("input,target,subject\nq1,a,x\nq2,b\n")
    with pytest.raises(DatasetError, match=r"d.csv, line 3: 2 field\(s\) where the header has 3 \(input, target, subject\)"):
        len(csv_dataset(path))
    path.write_text("input,target\nq1,a,extra,more\n")
    with pytest.raises(DatasetError, match=r"d.csv, line 2: 4 field\(s\) where the header has 2"):
        list(csv_dataset(path))
    path.write_text('input,target\n"a, b",c\nd,\n')  # quoted commas and empty fields are fine
    assert [(s.input, s.target) for s in csv_dataset(path)] == [("a, b", "c"), ("d", "")]


def test_csv_field_over_the_size_limit_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(f'input,target\nq,a\n"{"x" * 200_000}",b\n')
    with pytest.raises(DatasetError, match=r"d.csv, line 3: not valid CSV \(field larger than field limit"):
        list(csv_dataset(path))
