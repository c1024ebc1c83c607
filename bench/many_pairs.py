"""3 tasks x 4 models: all (task, model) pairs at once against one pair at a time, and an
eval-set killed halfway then run again.

    .venv/bin/python bench/many_pairs.py                      # 40 samples a task, 3 rounds, 50 ms, 2 connections
    .venv/bin/python bench/many_pairs.py --samples 100 --rounds 5

Starts ../shared/bench/fake_llm_server.py (EVALKIT_FAKE_LLM_SERVER overrides) with --latency-ms
as a subprocess and evaluates three task functions of one file against openai/model-a,
openai/model-b (chat completions) and anthropic/model-c, anthropic/model-d (messages), all served
by it; each model has its own pool of --max-connections (default 2: one pair at a time is then
bound by latency, not by this process's CPU, which all pairs at once are near). After a
warm-up eval (SDK imports, first connections), per round, interleaved (the order swaps
each round): one `eval()` of the 12 pairs, and 12 `eval()` calls of one pair each. Then
`evalkit eval-set` of the same 12 pairs in a subprocess, SIGKILLed once half the samples are
logged, and run again: the requests the second run makes against the samples the logs lacked.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from local_server import start_process

FAKE_SERVER = Path(os.environ.get(
    "EVALKIT_FAKE_LLM_SERVER", Path(__file__).resolve().parents[2] / "shared" / "bench" / "fake_llm_server.py"))
MODELS = ["openai/model-a", "openai/model-b", "anthropic/model-c", "anthropic/model-d"]
TASKS = ("numbers", "letters", "words")
TASK_FILE = """
from evalkit import task, Task, Sample
from evalkit.scorer import match

def samples(kind, n):
    return [Sample(input=f"{kind} {i}? ANSWER: {kind[0]}{i}", target=f"{kind[0]}{i}", id=i) for i in range(n)]
""" + "".join(f"""
@task
def {name}():
    return Task(dataset=samples("{name}", {{n}}), scorer=match())
""" for name in TASKS)


def start_server(workdir: Path, latency_ms: float) -> tuple[subprocess.Popen[bytes], str]:
    """The fake server on a free port, and its address."""
    port_file = workdir / "port"
    return start_process([sys.executable, str(FAKE_SERVER), "--port", "0", "--port-file", str(port_file),
                          "--latency-ms", str(latency_ms)], port_file, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def requests_served(url: str, reset: bool = False) -> int:
    served = httpx.get(f"{url}/stats").json()["requests"]
    if reset:
        httpx.post(f"{url}/stats/reset")
    return served


def concurrent(task_file: Path, log_dir: Path, connections: int) -> float:
    """Seconds for one eval() of every pair."""
    from evalkit import eval

    start = time.perf_counter()
    logs = eval(str(task_file), model=MODELS, max_connections=connections, log_dir=log_dir, display="none")
    elapsed = time.perf_counter() - start
    assert len(logs) == len(TASKS) * len(MODELS) and all(log.status == "success" for log in logs)
    return elapsed


def one_pair_at_a_time(task_file: Path, log_dir: Path, connections: int) -> float:
    """Seconds for one eval() per pair, one after another."""
    from evalkit import eval

    start = time.perf_counter()
    for name in TASKS:
        for model in MODELS:
            [log] = eval(f"{task_file}@{name}", model=model, max_connections=connections, log_dir=log_dir, display="none")
            assert log.status == "success"
    return time.perf_counter() - start


def logged_samples(log_dir: Path) -> int:
    from evalkit import read_eval_log

    return sum(len(read_eval_log(path).samples) for path in log_dir.glob("*.jsonl"))


def killed_eval_set(workdir: Path, url: str, total: int, connections: int) -> dict[str, float]:
    """eval-set in a subprocess, SIGKILLed once half the samples are in its logs, then again."""
    command = [sys.executable, "-m", "evalkit", "eval-set", "tasks.py", "--model", ",".join(MODELS),
               "--max-connections", str(connections), "--log-dir", "set", "--display", "none"]
    requests_served(url, reset=True)
    process = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while sum(p.read_bytes().count(b"\n") for p in (workdir / "set").glob("*.jsonl")) < total // 2 + len(TASKS) * len(MODELS):
        if process.poll() is not None:
            raise RuntimeError("eval-set ended before it was killed")
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    first_requests = requests_served(url, reset=True)
    logged = logged_samples(workdir / "set")
    start = time.perf_counter()
    subprocess.run(command, cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    rerun_seconds = time.perf_counter() - start
    again = requests_served(url, reset=True)
    assert logged_samples(workdir / "set") == total
    start = time.perf_counter()
    subprocess.run(command, cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    return {"logged": logged, "first_requests": first_requests, "in_flight": first_requests - logged,
            "rerun_requests": again, "missing": total - logged, "rerun_s": rerun_seconds,
            "third_requests": requests_served(url), "third_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=40, help="samples per task")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--max-connections", type=int, default=2, help="per model")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        task_file = workdir / "tasks.py"
        task_file.write_text(TASK_FILE.replace("{n}", str(args.samples)))
        server, url = start_server(workdir, args.latency_ms)
        os.environ.update({"OPENAI_API_KEY": "bench", "OPENAI_BASE_URL": f"{url}/v1",
                           "ANTHROPIC_API_KEY": "bench", "ANTHROPIC_BASE_URL": url})
        try:
            concurrent(task_file, workdir / "warm-up", args.max_connections)  # SDK imports and first connections
            times: dict[str, list[float]] = {"concurrent": [], "one pair at a time": []}
            runs = [("concurrent", concurrent), ("one pair at a time", one_pair_at_a_time)]
            for round_number in range(args.rounds):
                for label, run in runs if round_number % 2 == 0 else runs[::-1]:
                    times[label].append(run(task_file, workdir / "logs", args.max_connections))
            total = args.samples * len(TASKS) * len(MODELS)
            killed = killed_eval_set(workdir, url, total, args.max_connections)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait()
    print(f"{len(TASKS)} tasks x {len(MODELS)} models, {args.samples} samples a task ({total} requests a run), "
          f"{args.latency_ms:g} ms latency, max_connections {args.max_connections} per model, {args.rounds} rounds")
    for label, values in times.items():
        print(f"  {label:20s} median {statistics.median(values):.2f} s  (runs: {', '.join(f'{v:.2f}' for v in values)})")
    print(f"  speed-up (medians)   {statistics.median(times['one pair at a time']) / statistics.median(times['concurrent']):.1f}x")
    print(f"eval-set SIGKILLed halfway: {killed['logged']} of {total} samples logged, {killed['first_requests']} requests made "
          f"({killed['in_flight']} in flight at the kill)")
    print(f"  rerun: {killed['rerun_requests']} requests for the {killed['missing']} samples not logged, {killed['rerun_s']:.2f} s")
    print(f"  third run (all complete): {killed['third_requests']} requests, {killed['third_s']:.2f} s")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
