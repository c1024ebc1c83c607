"""What the local batch servers share: the batches they were given, how often each custom_id
and each request body was submitted, and when a batch is done (after a set number of polls)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class Batch:
    """One submitted batch: its requests (custom_id -> body), polls so far, results once done."""

    id: str
    requests: dict[str, Any]
    polls: int = 0
    results: dict[str, Any] | None = None


@dataclass
class Ledger:
    """The batches a server holds; a batch is done on its `polls_to_finish`-th poll, and its
    results are then computed once by `answer(custom_id, body)`."""

    prefix: str
    polls_to_finish: int
    answer: Callable[[str, Any], Any]
    batches: dict[str, Batch] = field(default_factory=dict)
    submitted: Counter[str] = field(default_factory=Counter)
    """How many times each custom_id was submitted (in any batch)."""
    body_of: Callable[[Any], Any] = lambda request: request
    """The request body in what a batch holds for one request (without its custom_id)."""
    bodies: Counter[str] = field(default_factory=Counter)
    """How many times each request body (canonical JSON) was submitted, under any custom_id."""
    _seen: set[str] = field(default_factory=set)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def create(self, requests: list[tuple[str, Any]]) -> Batch:
        """A new batch of (custom_id, body) pairs, each custom_id and body counted as submitted."""
        with self._lock:
            batch = Batch(f"{self.prefix}{len(self.batches) + 1:04d}", dict(requests))
            self.batches[batch.id] = batch
            self.submitted.update(custom_id for custom_id, _ in requests)
            self.bodies.update(json.dumps(self.body_of(body), sort_keys=True) for _, body in requests)
            return batch

    def poll(self, batch_id: str) -> Batch | None:
        """The batch after one more poll (its results made when this poll finishes it); None if unknown."""
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return None
            batch.polls += 1
            if batch.results is None and batch.polls >= self.polls_to_finish:
                batch.results = {custom_id: self.answer(custom_id, body) for custom_id, body in batch.requests.items()}
            return batch

    def first_time(self, body: Any) -> bool:
        """Whether this request body (in any batch, under any custom_id) is seen for the first time."""
        key = json.dumps(body, sort_keys=True)
        with self._lock:
            first = key not in self._seen
            self._seen.add(key)
            return first

    def duplicates(self) -> list[str]:
        """custom_ids submitted more than once."""
        return [custom_id for custom_id, count in self.submitted.items() if count > 1]

    def duplicate_bodies(self) -> int:
        """Extra submissions of request bodies sent more than once, under any custom_id."""
        return sum(count - 1 for count in self.bodies.values() if count > 1)
