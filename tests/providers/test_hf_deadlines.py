"""hf: a request's timeout covers its wait for a batch, and a timed-out request stops generating."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from evalkit import GenerateConfig, Model, get_model
from evalkit.model.retry import RequestTimeoutError

STORY = "Tell me a very long story about the sea."
LONG_TOKENS = 900  # the tiny model's context is 1,024 tokens


@pytest.fixture(scope="module")
def one_at_a_time(tiny_llama: Path) -> Model:
    """The tiny random Llama with batches of one: a second request waits for the first."""
    return get_model("hf/local", model_path=str(tiny_llama), device="cpu", batch_size=1)


def long_config(timeout: float | None = None) -> GenerateConfig:
    return GenerateConfig(temperature=0.0, max_tokens=LONG_TOKENS, timeout=timeout)


async def timed_generate(model: Model, prompt: str, config: GenerateConfig) -> float:
    start = time.monotonic()
    await model.generate(prompt, config)
    return time.monotonic() - start


async def full_story_seconds(model: Model) -> float:
    """How long the whole story takes here; it must run to max_tokens for the timings to mean anything."""
    start = time.monotonic()
    output = await model.generate(STORY, long_config())
    assert output.usage is not None and output.usage.output_tokens == LONG_TOKENS
    return time.monotonic() - start


def test_a_timeout_covers_the_wait_for_a_batch(one_at_a_time: Model) -> None:
    async def main() -> None:
        full = await full_story_seconds(one_at_a_time)
        async with anyio.create_task_group() as group:
            group.start_soon(one_at_a_time.generate, STORY, long_config())  # holds the only batch place
            await anyio.sleep(full / 10)
            start = time.monotonic()
            with pytest.raises(RequestTimeoutError):
                await one_at_a_time.generate("Hi", GenerateConfig(max_tokens=4, timeout=full / 4))
            assert time.monotonic() - start < full / 2  # not after the story's batch ended
            group.cancel_scope.cancel()

    anyio.run(main)


def test_a_timed_out_request_stops_generating(one_at_a_time: Model) -> None:
    async def main() -> None:
        full = await full_story_seconds(one_at_a_time)
        with pytest.raises(RequestTimeoutError):
            await one_at_a_time.generate(STORY, long_config(timeout=full / 4))
        # Had the story gone on generating, this request would wait about 3/4 of `full` for it.
        assert await timed_generate(one_at_a_time, "Hi", GenerateConfig(max_tokens=4)) < full / 2

    anyio.run(main)
