"""Attempt deadlines: one timer per event loop cancels exactly the attempts that ran out of time."""

from __future__ import annotations

import time

import anyio
import pytest

from evalkit.model.deadlines import GRANULARITY, AttemptTimedOut, attempt_deadline


def test_a_slow_attempt_times_out_soon_after_its_deadline() -> None:
    async def main() -> float:
        start = time.monotonic()
        with pytest.raises(AttemptTimedOut):
            with attempt_deadline(0.2):
                await anyio.sleep(5)
        await anyio.sleep(0.01)  # no cancellation is left pending on the task
        return time.monotonic() - start

    assert 0.2 <= anyio.run(main) < 0.2 + GRANULARITY + 0.2


def test_fast_and_slow_attempts_side_by_side() -> None:
    outcomes: list[str] = []

    async def attempt(seconds: float, limit: float) -> None:
        try:
            with attempt_deadline(limit):
                await anyio.sleep(seconds)
            outcomes.append("done")
        except AttemptTimedOut:
            outcomes.append("timed out")
        await anyio.sleep(0.05)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for index in range(400):
                group.start_soon(attempt, 0.01 if index % 2 else 2.0, 0.3 if index % 4 < 2 else 0.6)

    anyio.run(main)
    assert outcomes.count("done") == 200 and outcomes.count("timed out") == 200


def test_cancellation_from_elsewhere_is_not_a_timeout() -> None:
    async def main() -> str:
        with anyio.move_on_after(0.1) as scope:
            with attempt_deadline(30):
                await anyio.sleep(5)
        return "cancelled" if scope.cancelled_caught else "not cancelled"

    assert anyio.run(main) == "cancelled"


def test_a_body_that_swallows_the_cancellation_leaves_none_pending() -> None:
    async def stubborn() -> str:
        try:
            await anyio.sleep(5)
        except BaseException:
            return "swallowed"
        return "slept"

    async def main() -> str:
        with attempt_deadline(0.1):
            result = await stubborn()
        await anyio.sleep(0.05)  # would raise if a cancellation were still pending
        return result

    assert anyio.run(main) == "swallowed"
