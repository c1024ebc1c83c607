"""Rewrites a log before a resume, so each retried sample ends up in it exactly once."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evalkit.log.reader import EvalSampleStream
from evalkit.log.schema import EvalLog, EvalSample
from evalkit.log.writer import LogWriter, write_error


class SampleKeys:
    """A set of (sample id, epoch) pairs that costs one bit a pair for whole-number ids
    below 2**24 (the usual ids: line numbers, positions); other ids are kept as pairs."""

    DENSE = 1 << 24

    def __init__(self) -> None:
        self._bits: dict[int, bytearray] = {}
        self._pairs: set[tuple[Any, int]] = set()

    def add(self, sample_id: Any, epoch: int) -> None:
        """Record the pair."""
        if not self._dense(sample_id):
            self._pairs.add((sample_id, epoch))
            return
        bits = self._bits.setdefault(epoch, bytearray())
        byte = sample_id >> 3
        if byte >= len(bits):
            bits.extend(bytes(byte + 1 - len(bits)))
        bits[byte] |= 1 << (sample_id & 7)

    def __contains__(self, pair: tuple[Any, int]) -> bool:
        sample_id, epoch = pair
        if not self._dense(sample_id):
            return pair in self._pairs
        bits = self._bits.get(epoch)
        byte = sample_id >> 3
        return bits is not None and byte < len(bits) and bool(bits[byte] & 1 << (sample_id & 7))

    def _dense(self, sample_id: Any) -> bool:
        return isinstance(sample_id, int) and 0 <= sample_id < self.DENSE


def compact_log(log: EvalLog, keep: Callable[[EvalSample], None],
                keep_batch: Callable[[dict[str, Any]], None] | None = None) -> int:
    """Replace `log`'s file with its header, its finished (error-free) samples and its batch
    records, passing each sample to `keep` (and each batch record to `keep_batch`) and
    returning how many samples there are. Records stream from the old file to the new one
    one at a time, so memory stays flat on a large log.

    The new file is written to `<log>.tmp` (emptied first: a stale one from an earlier crash
    is never appended to), synced, renamed over the log, and the folder synced, so a crash at
    any moment leaves either the old log or the new one whole."""
    temporary = log.location.with_name(log.location.name + ".tmp")
    try:
        count = _write(temporary, log, keep, keep_batch)
        os.replace(temporary, log.location)
    except OSError as ex:
        temporary.unlink(missing_ok=True)
        raise write_error(log.location, ex) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(log.location.parent)
    return count


def _write(path: Path, log: EvalLog, keep: Callable[[EvalSample], None],
           keep_batch: Callable[[dict[str, Any]], None] | None) -> int:
    writer: LogWriter | None = None

    def batch(record: dict[str, Any]) -> None:  # batches still to collect: kept, in their order
        writer.batch(record, durable=False)  # type: ignore[union-attr]  # synced with the whole file
        if keep_batch is not None:
            keep_batch(record)

    samples = EvalSampleStream(log.location, on_batch=batch)  # checks the header before the new file is made
    writer = LogWriter(path, truncate=True)
    count = 0
    try:
        writer.header(log.header)
        for sample in samples:
            if sample.error is None:
                writer.sample(sample)
                keep(sample)
                count += 1
    finally:
        writer.close()
    return count


def _sync_folder(folder: Path) -> None:
    """fsync a folder so a rename in it survives a power cut (POSIX only)."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError as ex:
        raise write_error(folder, ex) from None
    finally:
        os.close(descriptor)
