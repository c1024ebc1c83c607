"""Batch mode against the local OpenAI batch server (tests/servers/batch_server.py).

    .venv/bin/python bench/batch.py                      # 2,000 samples, --batch 100
    .venv/bin/python bench/batch.py --samples 2000 --size 100 --polls 2

1. `evalkit.eval()` of a task of N samples (prompts "Question i. ANSWER: 3i", scored with
   match) on `openai/gpt-4o-mini` with batch=SIZE: batches made, requests per batch, wall time.
2. The same through the CLI (`evalkit eval ... --batch SIZE`) in a subprocess, SIGKILLed once
   every request sits in a batch and the batches of the first half have finished (their samples
   are in the log) while those of the second half are still running; then `evalkit eval-retry`:
   batches created by the retry, requests submitted more than once (the server counts the
   submissions of each custom_id and of each request body, so a request sent again under a
   new custom_id shows too), samples scored, wall time of the retry.

3. Retries and the cache: the same CLI run of a two-turn task with `--cache`, where every 10th
   sample's first turn fails with a 500 inside its batch; killed once every request is in a
   logged batch while the 500s' retries and all second turns are still running (held), then
   `evalkit eval-retry`. The bodies submitted twice should be exactly the in-run retries of the
   500s: eval-retry collects the running retries and takes the first turns from the cache.

The server completes a batch on its `--polls`-th status request (evalkit polls a batch after
1 s, then backs off by 1.5x), so wall time is dominated by polling, as with a real batch API.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers.batch_server import BatchServer  # noqa: E402

TASK = '''
from evalkit import Sample, Task, task
from evalkit.scorer import match
from evalkit.solver import generate

@task
def quiz():
    return Task(dataset=[Sample(input=f"Question {{i}}. ANSWER: {{i * 3}}", target=str(i * 3), id=i) for i in range({count})],
                solver=generate(), scorer=match())
'''


FLAKY_TASK = '''
from evalkit import Sample, Task, task
from evalkit.scorer import match
from evalkit.solver import generate, user_message

@task
def flaky():
    return Task(dataset=[Sample(input=("BATCH_ERROR 500 " if i % 10 == 0 else "") + f"Question {{i}}. ANSWER: {{i * 3}}",
                                target=str(i * 3), metadata={{"n": i * 3}}, id=i) for i in range({count})],
                solver=[generate(), user_message("Again. ANSWER: {{n}}"), generate()], scorer=match())
'''


def lines_of(log: Path, kind: str) -> int:
    """How many records of `kind` ("batch", or "sample": neither header, footer nor batch) the log holds."""
    found = 0
    for raw in log.read_bytes().splitlines():
        keys = set(orjson.loads(raw)) if raw.strip() else set()
        found += kind in keys if kind != "sample" else not ({"header", "footer", "batch"} & keys)
    return found


def in_process(task: Path, samples: int, size: int, polls: int, log_dir: Path) -> None:
    import evalkit

    with BatchServer(polls=polls) as server:
        start = time.perf_counter()
        [log] = evalkit.eval(str(task), model="openai/gpt-4o-mini", model_args={"base_url": f"{server.url}/v1"},
                             batch=size, log_dir=log_dir, display="none")
        wall = time.perf_counter() - start
    assert log.status == "success" and log.results["match"]["accuracy"] == 1.0, log.footer
    sizes = sorted((len(lines) for lines in server.batch_lines.values()), reverse=True)
    print(f"eval(): {samples} samples, batch={size}: {len(sizes)} batches (requests per batch: max {sizes[0]}, "
          f"min {sizes[-1]}), {sum(sizes)} requests, submitted twice: {server.duplicates} custom_ids, "
          f"{server.body_duplicates} bodies, wall {wall:.2f} s "
          f"({samples / wall:.0f} samples/s), accuracy {log.results['match']['accuracy']:.3f}")


def killed_and_retried(task: Path, samples: int, size: int, polls: int, log_dir: Path) -> None:
    half = samples // 2

    def second_half(lines: list[dict]) -> bool:
        return any(int(line["body"]["messages"][-1]["content"].split()[1].rstrip(".")) >= half for line in lines)

    env = {**os.environ, "OPENAI_API_KEY": "sk-bench", "HF_HUB_OFFLINE": "1"}
    with BatchServer(polls=polls, hold=second_half) as server:
        base = ["-M", f"base_url={server.url}/v1", "--display", "none"]
        process = subprocess.Popen([sys.executable, "-m", "evalkit", "eval", str(task), "--model", "openai/gpt-4o-mini",
                                    "--batch", str(size), "--log-dir", str(log_dir), *base], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        log = _wait_for(process, log_dir, samples, size, half)
        sigkill(process)
        batches_before, written = lines_of(log, "batch"), lines_of(log, "sample")
        created = len(server.batch_lines)
        server.release()
        wall = eval_retry_seconds(log, env)
        print(f"SIGKILL with {batches_before} batches logged ({created} created, {written} samples written), then "
              f"eval-retry: {len(server.batch_lines) - created} batches created by the retry, "
              f"{sum(server.submissions.values())} requests submitted for {samples} samples, "
              f"submitted twice: {server.duplicates} custom_ids, {server.body_duplicates} bodies, "
              f"{lines_of(log, 'sample')} samples in the log, retry wall {wall:.2f} s")


def retried_with_cache(task: Path, samples: int, size: int, polls: int, log_dir: Path) -> None:
    flaky = samples // 10 + (samples % 10 > 0)

    def running(lines: list[dict]) -> bool:  # second turns, and the retries of the 500s
        prompts = [line["body"]["messages"][-1]["content"] for line in lines]
        return any(p.startswith("Again") or (p.startswith("BATCH_ERROR") and server.answered[p]) for p in prompts)

    env = {**os.environ, "OPENAI_API_KEY": "sk-bench", "HF_HUB_OFFLINE": "1", "EVALKIT_CACHE_DIR": str(log_dir / "cache")}
    with BatchServer(polls=polls, hold=running) as server:
        process = subprocess.Popen([sys.executable, "-m", "evalkit", "eval", str(task), "--model", "openai/gpt-4o-mini",
                                    "--batch", str(size), "--cache", "--log-dir", str(log_dir), "-M", f"base_url={server.url}/v1",
                                    "--display", "none"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        log = _wait_for_requests(process, log_dir, 2 * samples)
        sigkill(process)
        created = len(server.batch_lines)
        server.release()
        wall = eval_retry_seconds(log, env)
    print(f"two turns, --cache, every 10th first turn a 500 retried in a later batch; SIGKILL with {created} batches created "
          f"(the retries and second turns running), then eval-retry: {len(server.batch_lines) - created} batches created by the "
          f"retry (the second turns of the {flaky} retried samples), {sum(server.submissions.values())} requests submitted "
          f"for {samples} samples, submitted twice: {server.duplicates} custom_ids, {server.body_duplicates} bodies "
          f"({flaky} are the retries of the 500s), {lines_of(log, 'sample')} samples in the log, retry wall {wall:.2f} s")


def sigkill(process: subprocess.Popen[str]) -> None:
    """Kill the eval as a crash would, and reap it."""
    process.send_signal(signal.SIGKILL)
    process.wait()


def eval_retry_seconds(log: Path, env: dict[str, str]) -> float:
    """`evalkit eval-retry LOG` (which must succeed); its wall time."""
    start = time.perf_counter()
    retry = subprocess.run([sys.executable, "-m", "evalkit", "eval-retry", str(log), "--display", "none"],
                           env=env, capture_output=True, text=True)
    assert retry.returncode == 0, retry.stderr
    return time.perf_counter() - start


def _wait_for_requests(process: subprocess.Popen[str], log_dir: Path, requests: int) -> Path:
    """The log, once its batch records hold `requests` custom_ids."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the eval ended before it could be killed: {process.stderr.read()}")  # type: ignore[union-attr]
        logs = list(log_dir.glob("*.jsonl"))
        if logs and _logged_requests(logs[0]) >= requests:
            return logs[0]
        time.sleep(0.2)
    raise SystemExit("timed out waiting for the batches")


def _logged_requests(log: Path) -> int:
    lines = [orjson.loads(raw) for raw in log.read_bytes().splitlines() if raw.strip()]
    return sum(len(line["batch"]["custom_ids"]) for line in lines if "batch" in line)


def _wait_for(process: subprocess.Popen[str], log_dir: Path, samples: int, size: int, half: int) -> Path:
    """The log, once every request is in a logged batch and the first half's samples are written."""
    batches = -(-samples // size)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the eval ended before it could be killed: {process.stderr.read()}")  # type: ignore[union-attr]
        logs = list(log_dir.glob("*.jsonl"))
        if logs and lines_of(logs[0], "batch") >= batches and lines_of(logs[0], "sample") >= half:
            return logs[0]
        time.sleep(0.2)
    raise SystemExit("timed out waiting for the batches")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--polls", type=int, default=2, help="status polls before the server completes a batch")
    args = parser.parse_args()
    os.environ["OPENAI_API_KEY"] = "sk-bench"
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        task = work / "quiz.py"
        task.write_text(TASK.format(count=args.samples))
        in_process(task, args.samples, args.size, args.polls, work / "logs-eval")
        killed_and_retried(task, args.samples, args.size, args.polls, work / "logs-kill")
        flaky = work / "flaky.py"
        flaky.write_text(FLAKY_TASK.format(count=args.samples))
        retried_with_cache(flaky, args.samples, args.size, args.polls, work / "logs-flaky")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
