"""Which samples of a dataset an eval runs: `--limit` (N, M-N or a fraction) or `--sample-id`."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from evalkit.dataset.loaders import Dataset
from evalkit.dataset.sample import Sample
from evalkit.errors import ArgumentError

SampleRange = tuple[int, int | None]
"""A 0-based, half-open (start, stop) range of samples; stop None: to the end."""


def limit_share(value: float) -> float:
    """A `--limit` fraction, checked: more than 0 and less than 1."""
    if not math.isfinite(value) or not 0 < value < 1:
        raise ArgumentError(f"--limit as a fraction must be more than 0 and less than 1, e.g. 0.1 for 10% (got {value})")
    return value


def resolve_limit(limit: SampleRange | float, size: int) -> SampleRange:
    """`limit` as a range of a dataset of `size` samples: a fraction takes that share of the
    first samples, rounded down but at least one."""
    if isinstance(limit, tuple):
        return limit
    return 0, max(1, math.floor(Decimal(str(limit)) * size))


def parse_sample_ids(sample_id: str | int | Sequence[str | int] | None, limit: object = None) -> tuple[str, ...] | None:
    """Sample ids as text: one id, a comma-separated list, or a list of either (refused
    together with a `limit`, which would be ignored)."""
    if sample_id is None:
        return None
    if limit is not None:
        raise ArgumentError("--sample-id and --limit select samples in two ways: give one of them")
    given = [sample_id] if isinstance(sample_id, (str, int)) else list(sample_id)
    ids = tuple(part.strip() for each in given for part in str(each).split(","))
    if not ids or any(not part for part in ids):
        raise ArgumentError(f"--sample-id needs ids separated by commas, e.g. --sample-id 3,7 (got {sample_id!r})")
    return tuple(dict.fromkeys(ids))


def check_sample_ids(datasets: Iterable[Dataset], sample_ids: tuple[str, ...] | None) -> None:
    """Refuse ids that no dataset has (matched as text: `3` finds id 3 and id "3")."""
    if not sample_ids:
        return
    known = {str(sample.id) for dataset in datasets for sample in dataset}
    unknown = [each for each in sample_ids if each not in known]
    if unknown:
        examples = ", ".join(sorted(known, key=lambda x: (len(x), x))[:5])
        raise ArgumentError(f"--sample-id {','.join(unknown)}: no such sample (ids look like: {examples})")


def select_samples(dataset: Dataset, limit: SampleRange, sample_ids: tuple[str, ...] | None) -> tuple[Iterator[Sample], int]:
    """The samples to run, in dataset order, and how many: those with `sample_ids`, else the
    `limit` range."""
    if sample_ids:
        wanted = set(sample_ids)
        chosen = [sample for sample in dataset if str(sample.id) in wanted]
        return iter(chosen), len(chosen)
    start, stop = limit
    available = len(dataset)
    count = max(0, min(available, stop if stop is not None else available) - start)
    return itertools.islice(iter(dataset), start, stop), count


def same_selection(header: dict[str, Any], limit: SampleRange | float, sample_ids: tuple[str, ...] | None, size: int) -> bool:
    """Whether a log's header records the samples that `limit` or `sample_ids` select from a
    dataset of `size` samples (eval-set reuses only such a log)."""
    return (header.get("limit") == list(resolve_limit(limit, size))
            and sorted(header.get("sample_ids") or []) == sorted(sample_ids or []))
