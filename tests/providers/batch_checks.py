"""What the anthropic and google batch-protocol tests share: a question, one batch run directly,
and the check of an eval-retry after a SIGKILL mid-batch."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import evalkit
from evalkit import ChatMessageSystem, ChatMessageUser, GenerateConfig
from evalkit.model.api import ModelAPI
from evalkit.model.batch.protocol import BatchRequest, BatchStatus
from tests.servers.batch_ledger import Ledger


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


def check_collected_without_resubmitting(
    ledger: Ledger, log: Path, created: int, result: subprocess.CompletedProcess[str]
) -> None:
    """The 60-sample eval killed with 3 batches running: eval-retry succeeded, created no batch,
    submitted nothing twice (by custom_id or by body), and scored every sample."""
    assert result.returncode == 0, result.stderr
    assert created == len(ledger.batches) == 3  # eval-retry created no batch
    assert ledger.duplicates() == [] and ledger.duplicate_bodies() == 0 and sum(ledger.submitted.values()) == 60
    done = evalkit.read_eval_log(log)
    assert done.status == "success" and len(done.samples) == 60 and done.results["match"]["accuracy"] == 1.0
