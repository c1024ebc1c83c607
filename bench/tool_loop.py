"""The tool loop's cost: a tool-using eval next to the same eval without tools.

    .venv/bin/python bench/tool_loop.py                      # 200 samples, 0 and 50 ms latency
    .venv/bin/python bench/tool_loop.py --samples 500 --latency-ms 0

A local OpenAI-protocol server (this file run with --serve, in its own process so its CPU is
not counted) answers a request offering tools with one tool call, and a request whose last
message is a tool result, or that offers no tools, with the final answer. Three evals through
the openai provider, interleaved over --rounds:
  plain        one request per sample (generate)
  two-plain    two requests per sample (generate twice; the second-request baseline)
  tools        use_tools(add) + generate: a tool call, the tool run, the final request
Prints samples/s, client CPU ms per sample (user+sys of this process), and tools vs two-plain.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from local_server import serve_tool_calls, start_process


def offers_tools(body: dict[str, Any]) -> bool:
    return bool(body.get("tools"))


def start_server(workdir: Path, latency_ms: float) -> tuple[subprocess.Popen[bytes], str]:
    port_file = workdir / f"port-{latency_ms}"
    return start_process([sys.executable, __file__, "--serve", str(port_file), "--latency-ms", str(latency_ms)], port_file, "/v1",
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_task(mode: str, n: int) -> Any:
    from evalkit import Sample, Task
    from evalkit.scorer import includes
    from evalkit.solver import generate, use_tools
    from evalkit.tool import tool

    @tool
    def add() -> Any:
        async def execute(x: int, y: int) -> int:
            """Add two numbers.

            Args:
                x: The first number.
                y: The second number.
            """
            return x + y

        return execute

    solver = {"plain": [generate()], "two-plain": [generate(), generate()], "tools": [use_tools(add()), generate()]}[mode]
    return Task(dataset=[Sample(input=f"What is 1 + 2? ({i})", target="3") for i in range(n)], solver=solver,
                scorer=includes(), name=f"tool-loop-{mode}")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_once(mode: str, n: int, base_url: str, log_dir: Path) -> tuple[float, float]:
    """(samples/s, client CPU ms per sample) of one eval."""
    from evalkit import eval

    cpu, start = cpu_seconds(), time.perf_counter()
    [log] = eval(make_task(mode, n), model="openai/bench", model_args={"base_url": base_url, "api_key": "bench"},
                 max_connections=64, log_dir=log_dir, display="none")
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    assert log.status == "success" and log.footer["counts"]["completed"] == n, log.footer
    requests = {"plain": 1, "two-plain": 2, "tools": 2}[mode]
    assert all(len(s.messages) == 1 + requests + (mode == "tools") for s in log.samples)
    return n / elapsed, 1000 * cpu / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, action="append")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_tool_calls(args.serve, (args.latency_ms or [0])[0] / 1000, offers_tools)
        return
    import os

    print(f"load average: {os.getloadavg()}, {args.samples} samples, {args.rounds} rounds, max_connections 64")
    with tempfile.TemporaryDirectory() as tmp:
        for latency in args.latency_ms or [0.0, 50.0]:
            server, base_url = start_server(Path(tmp), latency)
            try:
                run_once("plain", 20, base_url, Path(tmp) / "warm")
                results: dict[str, list[tuple[float, float]]] = {"plain": [], "two-plain": [], "tools": []}
                for _ in range(args.rounds):
                    for mode in results:
                        results[mode].append(run_once(mode, args.samples, base_url, Path(tmp) / "logs"))
            finally:
                server.terminate()
                server.wait()
            best = {mode: (max(r[0] for r in runs), min(r[1] for r in runs)) for mode, runs in results.items()}
            for mode, (rate, cpu) in best.items():
                print(f"latency {latency:g} ms  {mode:10s} {rate:8.1f} samples/s  {cpu:6.2f} ms CPU/sample")
            print(f"latency {latency:g} ms  tools / two-plain: {best['tools'][0] / best['two-plain'][0]:.2f}x samples/s, "
                  f"{best['tools'][1] / best['two-plain'][1]:.2f}x CPU per sample")


if __name__ == "__main__":
    main()
