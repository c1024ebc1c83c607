"""The shared batcher of local backends, with a plain Python function as the "model"."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import pytest

from evalkit.model.api import SampleActivity
from evalkit.model.types import GenerateConfig
from evalkit.providers.local.batching import Batcher, Cancellation, settings_key


class Recorder:
    """A model that echoes its requests and records every batch it ran, and in which thread.
    With `delay` it works that long in small steps, stopping early (and recording which rows
    were cancelled) once every request of the batch is cancelled."""

    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.calls: list[tuple[Any, list[str]]] = []
        self.threads: set[str] = set()
        self.stopped_early: list[list[bool]] = []

    def __call__(self, key: Any, requests: list[str], cancellation: Cancellation) -> list[str]:
        self.calls.append((key, list(requests)))
        self.threads.add(threading.current_thread().name)
        end = time.monotonic() + self.delay
        while time.monotonic() < end:
            if cancellation.everything:
                self.stopped_early.append(list(cancellation.rows))
                break
            time.sleep(0.01)
        if self.fail_on is not None and self.fail_on in requests:
            raise ValueError(f"model failed on {self.fail_on}")
        return [f"{key}:{request}" for request in requests]


async def submit_all(batcher: Batcher[str, str], activity: SampleActivity, items: list[tuple[str, Any]], limit: int = 64) -> list[Any]:
    """Submit (request, key) pairs concurrently, each counted as a running sample the way the
    runner counts them; results (or exceptions) in order."""
    results: list[Any] = [None] * len(items)

    async def one(index: int, request: str, key: Any) -> None:
        activity.active += 1
        try:
            results[index] = await batcher.submit(request, key=key, length=len(request), limit=limit)
        except Exception as error:  # noqa: BLE001 - the test inspects it
            results[index] = error
        finally:
            activity.active -= 1

    async with anyio.create_task_group() as group:
        for index, (request, key) in enumerate(items):
            group.start_soon(one, index, request, key)
    return results


def run(coro_fn: Any, *args: Any) -> Any:
    return anyio.run(coro_fn, *args)


def test_settings_groups_are_never_mixed() -> None:
    model = Recorder()
    activity = SampleActivity()
    batcher: Batcher[str, str] = Batcher(model, activity, max_wait=5.0)
    items = [(f"r{i}", "cold" if i % 2 else "hot") for i in range(7)]
    results = run(submit_all, batcher, activity, items)
    assert results == [f"{key}:{request}" for request, key in items]
    assert sorted(len(requests) for _, requests in model.calls) == [3, 4]
    for key, requests in model.calls:
        assert {dict(items)[r] for r in requests} == {key}
    assert len(model.threads) == 1 and next(iter(model.threads)).startswith("evalkit-model")


def test_settings_key_ignores_connection_settings_only() -> None:
    base = GenerateConfig(temperature=0.0, max_tokens=5, stop_seqs=("x",))
    assert settings_key(base) == settings_key(base.merge(GenerateConfig(timeout=3, max_connections=9, max_retries=1)))
    for change in (GenerateConfig(temperature=0.5), GenerateConfig(top_p=0.9), GenerateConfig(max_tokens=6),
                   GenerateConfig(stop_seqs=("y",)), GenerateConfig(seed=1)):
        assert settings_key(base) != settings_key(base.merge(change))


def test_batch_starts_at_once_when_every_running_sample_is_queued() -> None:
    model = Recorder()
    activity = SampleActivity()
    batcher: Batcher[str, str] = Batcher(model, activity, max_wait=5.0)
    start = time.monotonic()
    results = run(submit_all, batcher, activity, [(f"q{i}", "k") for i in range(5)])
    assert time.monotonic() - start < 0.5  # far below the 5 s bound: no timer involved
    assert results == [f"k:q{i}" for i in range(5)]
    assert batcher.batches == [5]


def test_full_batch_starts_at_once() -> None:
    activity = SampleActivity()
    activity.active = 100  # many more samples running than the batch may hold
    batcher: Batcher[str, str] = Batcher(Recorder(), activity, max_wait=5.0)
    start = time.monotonic()
    run(submit_all, batcher, activity, [(f"q{i}", "k") for i in range(6)], 3)
    assert time.monotonic() - start < 0.5
    assert batcher.batches == [3, 3]


def test_partial_batch_waits_only_the_short_bound() -> None:
    activity = SampleActivity()
    activity.active = 8  # eight more samples run and could still ask, but do not
    batcher: Batcher[str, str] = Batcher(Recorder(), activity, max_wait=0.05)
    start = time.monotonic()
    results = run(submit_all, batcher, activity, [("a", "k"), ("b", "k")])
    waited = time.monotonic() - start
    assert results == ["k:a", "k:b"]
    assert 0.04 <= waited < 0.5
    assert batcher.batches == [2]


def test_a_failing_batch_is_retried_one_by_one_and_fails_only_the_bad_request() -> None:
    model = Recorder(fail_on="bad")
    activity = SampleActivity()
    batcher: Batcher[str, str] = Batcher(model, activity, max_wait=5.0)
    items = [("ok1", "a"), ("bad", "b"), ("ok2", "a"), ("other", "b")]
    results = run(submit_all, batcher, activity, items)
    assert results[0] == "a:ok1" and results[2] == "a:ok2" and results[3] == "b:other"
    assert isinstance(results[1], ValueError) and str(results[1]) == "model failed on bad"
    assert sorted(requests for _, requests in model.calls) == [["bad"], ["bad", "other"], ["ok1", "ok2"], ["other"]]
    assert batcher.batches == [2, 2]  # the retries one by one are not new batches
    # the batcher keeps working after a failed batch
    assert run(submit_all, batcher, activity, [("again", "b")]) == ["b:again"]


def test_a_batch_of_one_that_fails_runs_once() -> None:
    model = Recorder(fail_on="bad")
    activity = SampleActivity()
    batcher: Batcher[str, str] = Batcher(model, activity, max_wait=5.0)
    (result,) = run(submit_all, batcher, activity, [("bad", "k")])
    assert isinstance(result, ValueError) and model.calls == [("k", ["bad"])]


def test_cancelling_every_request_of_a_running_batch_stops_the_model() -> None:
    model = Recorder(delay=30.0)
    activity = SampleActivity()
    batcher: Batcher[str, str] = Batcher(model, activity, max_wait=5.0)

    async def main() -> None:
        with anyio.move_on_after(0.3):
            await submit_all(batcher, activity, [("x", "k"), ("y", "k")])

    run(main)
    deadline = time.monotonic() + 5  # far below the model's 30 s of work
    while not model.stopped_early and time.monotonic() < deadline:
        time.sleep(0.01)
    assert model.stopped_early == [[True, True]]


def test_cancelling_some_requests_marks_only_their_rows() -> None:
    seen: list[list[bool]] = []

    def model(key: Any, requests: list[str], cancellation: Cancellation) -> list[str]:
        time.sleep(0.5)
        seen.append(list(cancellation.rows))
        return list(requests)

    activity = SampleActivity()
    batcher: Batcher[str, str] = Batcher(model, activity, max_wait=5.0)

    async def main() -> list[str]:
        results: list[str] = []

        async def patient(request: str) -> None:
            results.append(await batcher.submit(request, key="k", length=1, limit=8))

        async def impatient(request: str) -> None:
            with anyio.move_on_after(0.2):
                await batcher.submit(request, key="k", length=1, limit=8)

        activity.active = 3
        async with anyio.create_task_group() as group:
            group.start_soon(patient, "a")
            group.start_soon(impatient, "b")
            group.start_soon(patient, "c")
        return sorted(results)

    assert run(main) == ["a", "c"]
    assert seen == [[False, True, False]]


def test_event_loop_runs_while_the_model_works() -> None:
    activity = SampleActivity()
    batcher: Batcher[str, str] = Batcher(Recorder(delay=0.4), activity)
    ticks = 0

    async def main() -> list[Any]:
        async with anyio.create_task_group() as group:
            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await anyio.sleep(0.01)

            group.start_soon(ticker)
            results = await submit_all(batcher, activity, [("x", "k"), ("y", "k")])
            group.cancel_scope.cancel()
        return results

    assert run(main) == ["k:x", "k:y"]
    assert ticks >= 20  # 0.4 s of model time, ticking every 10 ms


def test_requests_are_sorted_by_length_and_the_oldest_is_never_left_behind() -> None:
    model = Recorder()
    activity = SampleActivity()
    batcher: Batcher[str, str] = Batcher(model, activity, max_wait=5.0)
    items = [("x" * 50, "k"), ("x" * 1, "k"), ("x" * 52, "k"), ("x" * 2, "k")]
    run(submit_all, batcher, activity, items, 2)
    lengths = [[len(r) for r in requests] for _, requests in model.calls]
    assert lengths == [[50, 52], [1, 2]]  # the oldest (50) goes first, with its closest peer


def test_cancelled_request_leaves_the_queue() -> None:
    model = Recorder()
    activity = SampleActivity()
    activity.active = 3
    batcher: Batcher[str, str] = Batcher(model, activity, max_wait=0.2)

    async def main() -> Any:
        with anyio.move_on_after(0.05):
            await batcher.submit("gone", key="k", length=4, limit=8)
        return await batcher.submit("kept", key="k", length=4, limit=8)

    assert run(main) == "k:kept"
    assert [requests for _, requests in model.calls] == [["kept"]]


@pytest.mark.parametrize("reuse", [1, 2])
def test_batcher_works_across_event_loops(reuse: int) -> None:
    activity = SampleActivity()
    batcher: Batcher[str, str] = Batcher(Recorder(), activity, max_wait=5.0)
    for _ in range(reuse):
        assert run(submit_all, batcher, activity, [("a", "k"), ("b", "k")]) == ["k:a", "k:b"]
        batcher.close()
