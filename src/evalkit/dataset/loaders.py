"""Datasets: in-memory lists and json/jsonl/csv files, streamed row by row."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import orjson

from evalkit.dataset.sample import Sample
from evalkit.errors import DatasetError
from evalkit.model.types import message_from_dict


@dataclass(frozen=True)
class FieldSpec:
    """Which row fields hold each part of a Sample.

    `choices` may name one field (a list, or a JSON list in CSV) or several columns.
    `metadata=None` keeps every unmapped field as metadata; a list keeps only those.
    """

    input: str = "input"
    target: str = "target"
    choices: str | list[str] = "choices"
    id: str = "id"
    metadata: list[str] | None = None


RecordToSample = Callable[[dict[str, Any]], Sample]


class Dataset:
    """A named, re-iterable sequence of samples that knows its length and fingerprint."""

    name: str = "dataset"

    def __iter__(self) -> Iterator[Sample]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def fingerprint(self) -> str:
        """A short hash identifying the data (and mapping) evaluated."""
        raise NotImplementedError

    def duplicate_ids(self) -> list[int | str]:
        """Sample ids used more than once (results and resume are keyed by id)."""
        return _duplicates(sample.id for sample in self)  # type: ignore[misc]


def _duplicates(ids: Iterable[int | str]) -> list[int | str]:
    seen: set[int | str] = set()
    repeated: list[int | str] = []
    for sample_id in ids:
        if sample_id in seen:
            repeated.append(sample_id)
        seen.add(sample_id)
    return repeated


class MemoryDataset(Dataset):
    """Samples held in a list."""

    def __init__(self, samples: Iterable[Sample], name: str = "memory") -> None:
        self.samples = list(samples)
        self.name = name
        for index, sample in enumerate(self.samples, 1):
            if sample.id is None:
                sample.id = index

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for sample in self.samples:
            digest.update(orjson.dumps([sample.id, sample.input_for_log(), sample.target, sample.choices]))
        return digest.hexdigest()[:16]


class FileDataset(Dataset):
    """Rows of a .json (list), .jsonl or .csv file, read lazily each time it is iterated."""

    def __init__(
        self,
        path: str | Path,
        fields: FieldSpec | RecordToSample | None = None,
        *,
        name: str | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DatasetError(f"dataset file not found: {self.path} (give a path to a .json, .jsonl or .csv file)")
        self.format = self.path.suffix.lower().lstrip(".")
        if self.format not in ("json", "jsonl", "csv"):
            raise DatasetError(f"dataset {self.path}: unsupported format '.{self.format}' (use .json, .jsonl or .csv)")
        self.fields = fields or FieldSpec()
        self.name = name or self.path.stem
        self._length: int | None = None
        self._duplicate_ids: list[int | str] = []

    def __iter__(self) -> Iterator[Sample]:
        records = self._records()
        while True:
            try:
                line, record = next(records)
            except StopIteration:
                return
            except UnicodeDecodeError as ex:
                raise DatasetError(f"{self.path}: not UTF-8 text (byte {ex.start}); save it as UTF-8") from None
            try:
                sample = self.fields(record) if callable(self.fields) else _record_to_sample(record, self.fields)
            except (DatasetError, KeyError, TypeError, ValueError) as ex:
                raise DatasetError(f"{self.path}, line {line}: {ex}") from None
            if sample.id is None:
                sample.id = line if self.format != "csv" else line - 1
            yield sample

    def __len__(self) -> int:
        """The number of samples; the first call reads every row, so a malformed one fails
        here, before an eval starts."""
        self._scan()
        return self._length  # type: ignore[return-value]

    def duplicate_ids(self) -> list[int | str]:
        self._scan()
        return self._duplicate_ids

    def _scan(self) -> None:
        if self._length is None:
            ids = [sample.id for sample in self]
            self._length, self._duplicate_ids = len(ids), _duplicates(ids)  # type: ignore[arg-type]

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        with self.path.open("rb") as file:
            for chunk in iter(lambda: file.read(1 << 20), b""):
                digest.update(chunk)
        mapping = f"{self.fields.__module__}.{self.fields.__qualname__}" if callable(self.fields) else repr(self.fields)
        digest.update(mapping.encode())
        return digest.hexdigest()[:16]

    def _records(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """(line number, row) pairs; line numbers count from 1 as an editor shows them."""
        if self.format == "jsonl":
            with self.path.open("rb") as file:
                for number, raw in enumerate(file, 1):
                    if raw.strip():
                        yield number, _parse_json_row(raw, self.path, number)
        elif self.format == "csv":
            with self.path.open(newline="", encoding="utf-8-sig") as file:  # -sig: spreadsheets write a BOM
                reader = csv.DictReader(file)
                try:
                    for row in reader:
                        _check_csv_columns(row, reader, self.path)
                        yield reader.line_num, dict(row)
                except csv.Error as ex:
                    raise DatasetError(f"{self.path}, line {reader.line_num + 1}: not valid CSV ({ex})") from None
        else:
            try:
                rows = json.loads(self.path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as ex:
                raise DatasetError(f"{self.path}, line {ex.lineno}: not valid JSON ({ex.msg})") from None
            if not isinstance(rows, list):
                raise DatasetError(f"{self.path}: a .json dataset must hold a list of objects")
            for number, row in enumerate(rows, 1):
                if not isinstance(row, dict):
                    raise DatasetError(f"{self.path}, item {number}: expected an object, got {type(row).__name__}")
                yield number, row


def _check_csv_columns(row: dict[str | None, Any], reader: csv.DictReader, path: Path) -> None:
    """A row with fewer or more fields than the header (DictReader would fill in None)."""
    header = reader.fieldnames or []
    missing = [name for name in header if row.get(name) is None]
    extra = row.get(None) or []
    if missing or extra:
        count = len(header) - len(missing) + len(extra)
        raise DatasetError(
            f"{path}, line {reader.line_num}: {count} field(s) where the header has {len(header)} "
            f"({', '.join(map(str, header))}); quote a field that holds a comma, or fill in the missing ones"
        )


def _parse_json_row(raw: bytes, path: Path, number: int) -> dict[str, Any]:
    try:
        row = orjson.loads(raw)
    except orjson.JSONDecodeError as ex:
        raise DatasetError(f"{path}, line {number}: not valid JSON ({ex})") from None
    if not isinstance(row, dict):
        raise DatasetError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}")
    return row


def _record_to_sample(record: dict[str, Any], spec: FieldSpec) -> Sample:
    if spec.input not in record or record[spec.input] in (None, ""):
        raise DatasetError(
            f"field '{spec.input}' is missing or empty (row has: {', '.join(record) or 'nothing'}); "
            "map another field with FieldSpec(input=...)"
        )
    raw_input = record[spec.input]
    if isinstance(raw_input, list):
        try:
            sample_input: str | list[Any] = [message_from_dict(m) for m in raw_input]
        except (ValueError, AttributeError) as ex:
            raise DatasetError(f"field '{spec.input}': {ex}") from None
    elif isinstance(raw_input, str):
        sample_input = raw_input
    else:
        raise DatasetError(f"field '{spec.input}' must be text or a list of messages, got {type(raw_input).__name__}")
    target = record.get(spec.target, "")
    if isinstance(target, list):
        target = [str(t) for t in target]
    elif target is None:
        target = ""
    else:
        target = str(target)
    choices = _choices(record, spec)
    used = {spec.input, spec.target, spec.id, *([spec.choices] if isinstance(spec.choices, str) else spec.choices)}
    if spec.metadata is None:
        metadata = {k: v for k, v in record.items() if k not in used} or None
    else:
        metadata = {k: record.get(k) for k in spec.metadata}
    sample_id = record.get(spec.id)
    return Sample(sample_input, target, choices, sample_id if sample_id not in ("", None) else None, metadata)


def _choices(record: dict[str, Any], spec: FieldSpec) -> list[str] | None:
    if isinstance(spec.choices, list):
        return [str(record[name]) for name in spec.choices if record.get(name) not in (None, "")]
    value = record.get(spec.choices)
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise DatasetError(f"field '{spec.choices}' must be a list (in CSV, a JSON list such as [\"a\", \"b\"])") from None
    if not isinstance(value, list):
        raise DatasetError(f"field '{spec.choices}' must be a list, got {type(value).__name__}")
    return [str(v) for v in value]


def json_dataset(path: str | Path, fields: FieldSpec | RecordToSample | None = None, name: str | None = None) -> Dataset:
    """A .json (list of objects) or .jsonl (one object per line) dataset."""
    return _file_dataset(path, fields, name, ("json", "jsonl"))


def csv_dataset(path: str | Path, fields: FieldSpec | RecordToSample | None = None, name: str | None = None) -> Dataset:
    """A .csv dataset with a header row."""
    return _file_dataset(path, fields, name, ("csv",))


def _file_dataset(path: str | Path, fields: FieldSpec | RecordToSample | None, name: str | None, formats: tuple[str, ...]) -> Dataset:
    dataset = FileDataset(path, fields, name=name)
    if dataset.format not in formats:
        raise DatasetError(f"dataset {dataset.path}: expected a {' or '.join('.' + f for f in formats)} file")
    return dataset
