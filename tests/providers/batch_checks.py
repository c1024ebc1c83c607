"""What the anthropic and google batch-protocol tests share: a question and one batch run directly."""

from __future__ import annotations

from typing import Any

from evalkit import ChatMessageSystem, ChatMessageUser, GenerateConfig
from evalkit.model.api import ModelAPI
from evalkit.model.batch.protocol import BatchRequest, BatchStatus


def question(i: int) -> list[Any]:
    """A question the local batch servers answer from its `ANSWER:` marker."""
    return [ChatMessageSystem("Answer with a number."), ChatMessageUser(f"What is {i} * 7? ANSWER: {i * 7}")]


async def run_batch(
    api: ModelAPI, inputs: list[list[Any]], config: GenerateConfig
) -> tuple[list[BatchStatus], dict[str, Any]]:
    """Submit one batch of `inputs` (custom ids q0, q1, ...), poll it until it is no longer
    running, and fetch its results if it ended; the statuses seen and the results."""
    protocol = api.batch_protocol()
    requests = [BatchRequest(f"q{i}", await api.batch_body(input, [], None, config)) for i, input in enumerate(inputs)]
    batch_id = await protocol.submit(requests)
    statuses = [await protocol.status(batch_id)]
    while statuses[-1].state == "running":
        statuses.append(await protocol.status(batch_id))
    results = await protocol.results(batch_id) if statuses[-1].state == "ended" else {}
    await api.aclose()
    return statuses, results
