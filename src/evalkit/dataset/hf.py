"""`hf_dataset`: a dataset read through the Hugging Face `datasets` library (the Hub, local
json/csv/parquet files, or a folder written by `save_to_disk`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from evalkit.dataset.loaders import Dataset, FieldSpec, MemoryDataset, RecordToSample, record_to_sample, shuffled_order
from evalkit.dataset.sample import Sample
from evalkit.errors import DatasetError

_SAVED_MARKERS = ("dataset_dict.json", "state.json")
"""Files `save_to_disk` writes: a DatasetDict's, and a single Dataset's."""
_FILE_BUILDERS = ("json", "csv", "parquet", "text", "arrow")
"""`path` values that read local files given by `data_files`."""


def hf_dataset(
    path: str,
    split: str | None = None,
    name: str | None = None,
    data_dir: str | None = None,
    revision: str | None = None,
    sample_fields: FieldSpec | RecordToSample | None = None,
    auto_id: bool = False,
    shuffle: bool = False,
    seed: int | None = None,
    limit: int | None = None,
    trust: bool = False,
    cached: bool = True,
    **kwargs: Any,
) -> Dataset:
    """A dataset from the Hugging Face Hub (`"openai/gsm8k"`), from local files (`"json"`,
    `"csv"` or `"parquet"` with `data_files=...`), or from a folder `save_to_disk` wrote.

    `split` picks the split (it may be left out when there is only one); `name` the
    configuration; `revision` a Hub commit, tag or branch. `sample_fields` maps each row to a
    Sample (a FieldSpec, or a function of the row). `auto_id` numbers the samples 1, 2, ...
    in the dataset's order, which is also the id of a row without one. `shuffle` puts them in
    a random order (the same one on every run for the same `seed`), then `limit` keeps the
    first that many. `cached=False` downloads again instead of using the local cache. Other
    keyword arguments (`data_files`, `cache_dir`, `token`, ...) go to `datasets.load_dataset`.
    `trust` is accepted as in Inspect: `datasets` 4 and later run no loading scripts.
    Needs the `datasets` package (`pip install 'evalkit-ai[datasets]'`).
    """
    del trust  # loading scripts are gone from `datasets`: nothing left to trust
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise DatasetError(f"hf_dataset('{path}'): limit must be a positive whole number (got {limit!r})")
    rows = _load(path, split, name, data_dir, revision, cached, kwargs)
    order = shuffled_order(len(rows), seed) if shuffle else list(range(len(rows)))
    order = order[:limit]
    if shuffle or len(order) < len(rows):
        rows = rows.select(order)
    fields = sample_fields or FieldSpec()
    samples = [_sample(path, index, record, fields, auto_id) for index, record in zip(order, rows)]
    return MemoryDataset(samples, name=_dataset_name(path, kwargs.get("data_files"), split))


def _sample(path: str, index: int, record: dict[str, Any], fields: FieldSpec | RecordToSample, auto_id: bool) -> Sample:
    """Row `index` (0-based, in the dataset's own order) as a Sample."""
    try:
        sample = fields(record) if callable(fields) else record_to_sample(record, fields)
    except (DatasetError, KeyError, TypeError, ValueError) as ex:
        raise DatasetError(f"hf_dataset('{path}'), row {index + 1}: {ex}") from None
    if auto_id or sample.id is None:
        sample.id = index + 1
    return sample


def _load(path: str, split: str | None, name: str | None, data_dir: str | None, revision: str | None,
          cached: bool, kwargs: dict[str, Any]) -> Any:
    """The `datasets.Dataset` of one split."""
    try:
        import datasets
    except ImportError:
        raise DatasetError("hf_dataset needs the datasets package: pip install 'evalkit-ai[datasets]'") from None
    try:
        if _is_saved(path):
            loaded = datasets.load_from_disk(path)
        else:
            loaded = datasets.load_dataset(path, name=name, data_dir=data_dir, split=split, revision=revision,
                                           download_mode=None if cached else "force_redownload", **kwargs)
    except ConnectionError as ex:
        raise DatasetError(_unreachable(path, ex)) from None
    except (FileNotFoundError, ValueError) as ex:
        raise DatasetError(f"hf_dataset('{path}'): {_first_line(ex)}{_hint(path)}") from None
    return _one_split(loaded, split, path, datasets)


def _is_saved(path: str) -> bool:
    folder = Path(path)
    return folder.is_dir() and any((folder / marker).is_file() for marker in _SAVED_MARKERS)


def _one_split(loaded: Any, split: str | None, path: str, datasets: Any) -> Any:
    """The split asked for (or the only one) of what `datasets` returned."""
    if isinstance(loaded, datasets.Dataset):
        return loaded
    if not isinstance(loaded, datasets.DatasetDict):
        raise DatasetError(f"hf_dataset('{path}'): streaming datasets are not supported; leave out streaming=True")
    splits = list(loaded)
    if split is None and len(splits) == 1:
        return loaded[splits[0]]
    if split in splits:
        return loaded[split]
    wanted = f"has no split '{split}'" if split is not None else "has several splits"
    raise DatasetError(f"hf_dataset('{path}') {wanted}: pass split= one of {', '.join(splits)}")


def _unreachable(path: str, error: Exception) -> str:
    offline = [var for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE") if os.environ.get(var, "").lower() in ("1", "true", "yes", "on")]
    if offline:
        return (f"hf_dataset('{path}') is not in the local Hugging Face cache and downloads are off ({', '.join(offline)} set): "
                f"unset {' and '.join(offline)} to download it once, or give local files (data_files=...) or a save_to_disk folder")
    return f"hf_dataset('{path}'): the Hugging Face Hub cannot be reached ({_first_line(error)}); check the network, or give local files"


def _hint(path: str) -> str:
    if Path(path).exists() or path in _FILE_BUILDERS:
        return ""
    return " (for a local file use path='json', 'csv' or 'parquet' with data_files=...; a Hub dataset is 'owner/name')"


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _dataset_name(path: str, data_files: Any, split: str | None) -> str:
    """A file-system-safe name: the (split's first) data file's stem for local files, else the
    last part of the path (`openai/gsm8k` -> `gsm8k`)."""
    if path in _FILE_BUILDERS and data_files:
        if isinstance(data_files, dict):
            data_files = data_files.get(split) or next(iter(data_files.values()))
        first = data_files if isinstance(data_files, str) else next(iter(data_files), None)
        if isinstance(first, str):
            return Path(first).stem
    return Path(path.rstrip("/")).name or "dataset"
