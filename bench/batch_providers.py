"""Batch mode on anthropic (Message Batches) and google (Gemini batches) against their local
batch servers (tests/servers/anthropic_batch_server.py, gemini_batch_server.py).

    .venv/bin/python bench/batch_providers.py                  # 2,000 samples, --batch 100, both
    .venv/bin/python bench/batch_providers.py --provider google --samples 2000 --size 100 --polls 2

For each provider: 1. `evalkit.eval()` of N samples ("Question i. ANSWER: 3i", `match`) with
batch=SIZE: batches made, requests per batch, wall time, custom_ids and request bodies
submitted twice (a body counts whatever its custom_id). 2. The CLI
(`evalkit eval ... --batch SIZE`) in a subprocess, SIGKILLed once every request sits in a logged
batch (the server holds them all unfinished), then `evalkit eval-retry`: batches created by the
retry, requests submitted twice, samples scored. Tasks and log counting as in bench/batch.py.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.batch import TASK, eval_retry_seconds, lines_of, sigkill  # noqa: E402
from tests.servers.anthropic_batch_server import AnthropicBatchServer  # noqa: E402
from tests.servers.gemini_batch_server import GeminiBatchServer  # noqa: E402

PROVIDERS = {
    "anthropic": ("anthropic/claude-haiku-4-5", AnthropicBatchServer, "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"),
    "google": ("google/gemini-2.5-flash", GeminiBatchServer, "GOOGLE_BASE_URL", "GOOGLE_API_KEY"),
}


def in_process(provider: str, task: Path, samples: int, size: int, polls: int, log_dir: Path) -> None:
    import evalkit

    model, server_class, base_env, _ = PROVIDERS[provider]
    with server_class(polls_to_finish=polls) as server:
        os.environ[base_env] = server.url
        start = time.perf_counter()
        [log] = evalkit.eval(str(task), model=model, batch=size, log_dir=log_dir, display="none")
        wall = time.perf_counter() - start
    assert log.status == "success" and log.results["match"]["accuracy"] == 1.0, log.footer
    sizes = sorted((len(batch.requests) for batch in server.ledger.batches.values()), reverse=True)
    print(f"{provider} eval(): {samples} samples, batch={size}: {len(sizes)} batches (requests per batch: max {sizes[0]}, "
          f"min {sizes[-1]}), {sum(sizes)} requests, submitted twice: {len(server.ledger.duplicates())} custom_ids, "
          f"{server.ledger.duplicate_bodies()} bodies, wall {wall:.2f} s "
          f"({samples / wall:.0f} samples/s), accuracy {log.results['match']['accuracy']:.3f}")


def killed_and_retried(provider: str, task: Path, samples: int, size: int, log_dir: Path) -> None:
    model, server_class, base_env, _ = PROVIDERS[provider]
    with server_class(polls_to_finish=10**9) as server:
        env = {**os.environ, base_env: server.url, "HF_HUB_OFFLINE": "1"}
        process = subprocess.Popen([sys.executable, "-m", "evalkit", "eval", str(task), "--model", model, "--batch", str(size),
                                    "--log-dir", str(log_dir), "--display", "none"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        log = _wait_for(process, log_dir, -(-samples // size))
        sigkill(process)
        created, logged = len(server.ledger.batches), lines_of(log, "batch")
        server.ledger.polls_to_finish = 1
        wall = eval_retry_seconds(log, env)
    print(f"{provider} SIGKILL with {logged} batches logged ({created} created), then eval-retry: "
          f"{len(server.ledger.batches) - created} batches created by the retry, {sum(server.ledger.submitted.values())} "
          f"requests submitted for {samples} samples, submitted twice: {len(server.ledger.duplicates())} custom_ids, "
          f"{server.ledger.duplicate_bodies()} bodies, "
          f"{lines_of(log, 'sample')} samples in the log, retry wall {wall:.2f} s")


def _wait_for(process: subprocess.Popen[str], log_dir: Path, batches: int) -> Path:
    """The log, once it records `batches` batches."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the eval ended before it could be killed: {process.stderr.read()}")  # type: ignore[union-attr]
        logs = list(log_dir.glob("*.jsonl"))
        if logs and lines_of(logs[0], "batch") >= batches:
            return logs[0]
        time.sleep(0.2)
    raise SystemExit("timed out waiting for the batches")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--provider", choices=[*PROVIDERS, "both"], default="both")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--polls", type=int, default=2, help="status polls before the server completes a batch")
    args = parser.parse_args()
    for provider in PROVIDERS if args.provider == "both" else [args.provider]:
        os.environ[PROVIDERS[provider][3]] = "bench-key"
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            task = work / "quiz.py"
            task.write_text(TASK.format(count=args.samples))
            in_process(provider, task, args.samples, args.size, args.polls, work / "logs-eval")
            killed_and_retried(provider, task, args.samples, args.size, work / "logs-kill")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
