"""The output cache: a second `evalkit eval --cache` run next to the first.

    .venv/bin/python bench/cache.py                  # 3 tasks x 4 models x 100 samples, 50 ms latency
    .venv/bin/python bench/cache.py --tasks 1 --models 1 --samples 500 --latency-ms 0

A local OpenAI-protocol server (this file run with --serve, in its own process) answers after
--latency-ms and counts the requests it gets. --tasks tasks (each --samples samples: even-numbered
ones answered at once, odd ones tool-using: a tool call, the tool run, the final request) against
--models models (openai/bench-1, ...; `--model a,b,...`). Three CLI runs through the openai
provider, each a fresh `evalkit eval` process, the cache in a fresh EVALKIT_CACHE_DIR:
  no cache     the baseline
  --cache 1    first run with the cache: every request made and stored
  --cache 2    second run: answered from the cache
Prints requests made, wall time (the process, start-up included) and the eval's own duration
(the log footer's), and the second run against the first.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from local_server import serve_tool_calls, start_process

TASK_HEAD = '''
from evalkit import Sample, Task, task
from evalkit.scorer import includes
from evalkit.solver import generate, use_tools
from evalkit.tool import tool


@tool
def add():
    async def execute(x: int, y: int) -> int:
        """Add two numbers.

        Args:
            x: The first number.
            y: The second number.
        """
        return x + y

    return execute
'''

TASK = '''

@task
def cached_{k}(samples: int = 100):
    dataset = [Sample(id=i, input=f"Question {{i}}: in task {k}, what is 1 + 2?", target="3") for i in range(samples)]
    return Task(dataset=dataset, solver=[use_tools(add()), generate()], scorer=includes())
'''


def odd_question(body: dict[str, Any]) -> bool:
    """Odd-numbered questions ("Question {i}: in task ...") make a tool call first."""
    return int(body["messages"][0]["content"].split()[1].rstrip(":")) % 2 == 1


def requests_so_far(url: str) -> int:
    with urllib.request.urlopen(f"{url}/count") as reply:
        return int(json.load(reply)["requests"])


def run_eval(work: Path, url: str, args: argparse.Namespace, cache: bool, env: dict[str, str]) -> tuple[int, float, float, dict[str, int]]:
    """One `evalkit eval` process: requests made, wall seconds, the longest footer duration and
    the counts summed over its logs."""
    logs = work / f"logs-{time.monotonic_ns()}"
    before = requests_so_far(url)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "evalkit", "eval", str(work / "cached.py"),
                    "--model", ",".join(f"openai/bench-{m}" for m in range(1, args.models + 1)),
                    "-M", f"base_url={url}/v1", "-T", f"samples={args.samples}", "--max-connections", "64",
                    "--log-dir", str(logs), "--display", "none", *(["--cache"] if cache else [])],
                   check=True, env=env)
    wall = time.perf_counter() - start
    footers = [json.loads(log.read_text().splitlines()[-1])["footer"] for log in logs.glob("*.jsonl")]
    assert len(footers) == args.tasks * args.models and all(f["status"] == "success" for f in footers)
    counts: dict[str, int] = {}
    for footer in footers:
        for name, value in footer["counts"].items():
            counts[name] = counts.get(name, 0) + value
    return requests_so_far(url) - before, wall, max(f["duration"] for f in footers), counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--samples", type=int, default=100, help="per task")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_tool_calls(args.serve, args.latency_ms / 1000, odd_question)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "cached.py").write_text(TASK_HEAD + "".join(TASK.format(k=k) for k in range(1, args.tasks + 1)))
        port_file = work / "port"
        server, url = start_process([sys.executable, __file__, "--serve", str(port_file), "--latency-ms", str(args.latency_ms)],
                                    port_file, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            env = {**os.environ, "OPENAI_API_KEY": "sk-bench", "EVALKIT_CACHE_DIR": str(work / "cache")}
            print(f"{args.tasks} tasks x {args.models} models x {args.samples} samples (half tool-using), "
                  f"{args.latency_ms:g} ms latency, max_connections 64 per model")
            print(f"{'run':<12} {'requests':>9} {'wall s':>8} {'eval s':>8}  counts (all logs; eval s: the longest log's duration)")
            rows = {}
            for name, cache in (("no cache", False), ("--cache 1", True), ("--cache 2", True)):
                rows[name] = run_eval(work, url, args, cache, env)
                made, wall, duration, counts = rows[name]
                print(f"{name:<12} {made:>9} {wall:>8.2f} {duration:>8.3f}  {counts}")
            first, second = rows["--cache 1"], rows["--cache 2"]
            print(f"second run vs first: {second[0]} requests of {first[0]}; wall {second[1] / first[1]:.2f}x, "
                  f"eval {second[2] / first[2]:.3f}x ({first[2] / second[2]:.0f}x faster)")
        finally:
            server.kill()
            server.wait()


if __name__ == "__main__":
    main()
