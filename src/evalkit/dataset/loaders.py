"""Datasets: in-memory lists and json/jsonl/csv files, streamed row by row (or read whole
when shuffled)."""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, overload

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

    def shuffle(self, seed: int | None = None) -> None:
        """Put the samples in a random order, in place; the same `seed` gives the same order
        on every run (without one, a new order each time)."""
        raise NotImplementedError

    def duplicate_ids(self) -> list[int | str]:
        """Sample ids used more than once (results and resume are keyed by id)."""
        return _duplicates(sample.id for sample in self)  # type: ignore[misc]


def shuffled_order(count: int, seed: int | None) -> list[int]:
    """The positions 0..count-1 in the random order every dataset shuffle uses."""
    order = list(range(count))
    random.Random(seed).shuffle(order)
    return order


def samples_fingerprint(samples: Iterable[Sample]) -> str:
    """A short hash of the samples' ids, inputs, targets and choices, in order."""
    digest = hashlib.sha256()
    for sample in samples:
        digest.update(orjson.dumps([sample.id, sample.input_for_log(), sample.target, sample.choices]))
    return digest.hexdigest()[:16]


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

    @overload
    def __getitem__(self, index: int) -> Sample: ...

    @overload
    def __getitem__(self, index: slice) -> MemoryDataset: ...

    def __getitem__(self, index: int | slice) -> Sample | MemoryDataset:
        """A sample, or for a slice (`dataset[:10]`) a new dataset of those samples."""
        if isinstance(index, slice):
            return MemoryDataset(self.samples[index], name=self.name)
        return self.samples[index]

    def fingerprint(self) -> str:
        return samples_fingerprint(self.samples)

    def shuffle(self, seed: int | None = None) -> None:
        self.samples = [self.samples[i] for i in shuffled_order(len(self.samples), seed)]


class FileDataset(Dataset):
    """Rows of a .json (list), .jsonl or .csv file, read lazily each time it is iterated
    (read once into memory when shuffled).

    A sample without an id gets its line number (its row number in a CSV), or with `auto_id`
    always its position 1, 2, ...; `limit` keeps the first that many samples (after a shuffle).
    """

    def __init__(
        self,
        path: str | Path,
        fields: FieldSpec | RecordToSample | None = None,
        *,
        name: str | None = None,
        auto_id: bool = False,
        limit: int | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DatasetError(f"dataset file not found: {self.path} (give a path to a .json, .jsonl or .csv file)")
        self.format = self.path.suffix.lower().lstrip(".")
        if self.format not in ("json", "jsonl", "csv"):
            raise DatasetError(f"dataset {self.path}: unsupported format '.{self.format}' (use .json, .jsonl or .csv)")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise DatasetError(f"dataset {self.path}: limit must be a positive whole number (got {limit!r})")
        self.fields = fields or FieldSpec()
        self.name = name or self.path.stem
        self.auto_id = auto_id
        self.limit = limit
        self._shuffled: list[Sample] | None = None
        self._length: int | None = None
        self._duplicate_ids: list[int | str] = []

    def __iter__(self) -> Iterator[Sample]:
        samples = iter(self._shuffled) if self._shuffled is not None else self._read()
        return itertools.islice(samples, self.limit)

    def shuffle(self, seed: int | None = None) -> None:
        every = self._shuffled if self._shuffled is not None else list(self._read())
        self._shuffled = [every[i] for i in shuffled_order(len(every), seed)]
        self._length = None

    def _read(self) -> Iterator[Sample]:
        """Every sample of the file, in file order."""
        records = self._records()
        count = 0
        while True:
            try:
                line, record = next(records)
            except StopIteration:
                return
            except UnicodeDecodeError as ex:
                raise DatasetError(f"{self.path}: not UTF-8 text (byte {ex.start}); save it as UTF-8") from None
            try:
                sample = self.fields(record) if callable(self.fields) else record_to_sample(record, self.fields)
            except (DatasetError, KeyError, TypeError, ValueError) as ex:
                raise DatasetError(f"{self.path}, line {line}: {ex}") from None
            count += 1
            if self.auto_id:
                sample.id = count
            elif sample.id is None:
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
        if self._shuffled is not None:
            return samples_fingerprint(self)
        digest = hashlib.sha256()
        with self.path.open("rb") as file:
            for chunk in iter(lambda: file.read(1 << 20), b""):
                digest.update(chunk)
        mapping = f"{self.fields.__module__}.{self.fields.__qualname__}" if callable(self.fields) else repr(self.fields)
        digest.update(mapping.encode())
        if self.auto_id or self.limit is not None:
            digest.update(f"auto_id={self.auto_id} limit={self.limit}".encode())
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


def record_to_sample(record: dict[str, Any], spec: FieldSpec) -> Sample:
    """The Sample a row maps to under `spec` (DatasetError names the field at fault)."""
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


def json_dataset(
    path: str | Path,
    fields: FieldSpec | RecordToSample | None = None,
    name: str | None = None,
    *,
    auto_id: bool = False,
    shuffle: bool = False,
    seed: int | None = None,
    limit: int | None = None,
) -> Dataset:
    """A .json (list of objects) or .jsonl (one object per line) dataset.

    `auto_id` numbers the samples 1, 2, ... in file order; `shuffle` puts them in a random
    order (the same one on every run for the same `seed`); `limit` keeps the first that many.
    """
    return _file_dataset(path, fields, name, ("json", "jsonl"), auto_id, shuffle, seed, limit)


def csv_dataset(
    path: str | Path,
    fields: FieldSpec | RecordToSample | None = None,
    name: str | None = None,
    *,
    auto_id: bool = False,
    shuffle: bool = False,
    seed: int | None = None,
    limit: int | None = None,
) -> Dataset:
    """A .csv dataset with a header row; `auto_id`, `shuffle`, `seed` and `limit` as for
    `json_dataset`."""
    return _file_dataset(path, fields, name, ("csv",), auto_id, shuffle, seed, limit)


def _file_dataset(
    path: str | Path,
    fields: FieldSpec | RecordToSample | None,
    name: str | None,
    formats: tuple[str, ...],
    auto_id: bool,
    shuffle: bool,
    seed: int | None,
    limit: int | None,
) -> Dataset:
    dataset = FileDataset(path, fields, name=name, auto_id=auto_id, limit=limit)
    if dataset.format not in formats:
        raise DatasetError(f"dataset {dataset.path}: expected a {' or '.join('.' + f for f in formats)} file")
    if shuffle:
        dataset.shuffle(seed)
    return dataset
