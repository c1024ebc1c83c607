"""evalkit's openai and anthropic providers against a bare loop of the same SDK.

    .venv/bin/python bench/api_throughput.py                 # 5,000 samples, 256 connections
    .venv/bin/python bench/api_throughput.py --samples 2000 --rounds 3

Starts ../shared/bench/fake_llm_server.py (beside the checkout; EVALKIT_FAKE_LLM_SERVER overrides) (0 ms latency) as a subprocess. For each provider
it runs, in this one process: `evalkit.eval()` over an in-memory task whose prompts contain
"ANSWER: X" (max_connections 256, log written to a temporary folder, scored with match), and
a bare loop of the SDK's own call (`chat.completions.create` / `messages.create`, default
client, max_retries=0) making the same requests under asyncio.Semaphore(256). Prints samples/s
for each, the ratio, CPU per request, and the machine's load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Awaitable, Callable

from local_server import start_process

FAKE_SERVER = Path(os.environ.get(
    "EVALKIT_FAKE_LLM_SERVER", Path(__file__).resolve().parents[2] / "shared" / "bench" / "fake_llm_server.py"))
CONCURRENCY = 256


def start_server(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The fake server on a free port, and its address."""
    port_file = workdir / "port"
    return start_process([sys.executable, str(FAKE_SERVER), "--port", "0", "--port-file", str(port_file)],
                         port_file, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def prompts(n: int) -> list[tuple[str, str]]:
    """(prompt, target) pairs."""
    return [(f"What is {i % 97} + {i % 89}? ANSWER: {i % 97 + i % 89}", str(i % 97 + i % 89)) for i in range(n)]


def run_evalkit(model: str, base_url: str, n: int, log_dir: Path) -> float:
    """Samples/s of `evalkit.eval()` with `model` against the server."""
    from evalkit import Sample, Task, eval
    from evalkit.scorer import match

    task = Task(dataset=[Sample(input=p, target=t) for p, t in prompts(n)], scorer=match(), name="api-throughput")
    start = time.perf_counter()
    [log] = eval(task, model=model, model_args={"base_url": base_url, "api_key": "bench"}, max_connections=CONCURRENCY,
                 log_dir=log_dir, display="none")
    elapsed = time.perf_counter() - start
    counts = log.footer["counts"]
    assert log.footer["status"] == "success" and counts["completed"] == n, log.footer
    assert log.footer["results"]["match"]["accuracy"] == 1.0, log.footer["results"]
    return n / elapsed


async def _loop(call: Callable[[str], Awaitable[str]], n: int) -> float:
    """Samples/s of `call(prompt)` for every prompt, 256 at a time, each answer checked."""
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one(prompt: str, target: str) -> None:
        async with semaphore:
            answer = await call(prompt)
        assert answer == target, (answer, target)

    start = time.perf_counter()
    await asyncio.gather(*(one(p, t) for p, t in prompts(n)))
    return n / (time.perf_counter() - start)


def bare_openai(base_url: str, n: int) -> float:
    """Samples/s of `chat.completions.create` calls with a default client."""
    import openai

    async def main() -> float:
        client = openai.AsyncOpenAI(api_key="bench", base_url=f"{base_url}/v1", max_retries=0)

        async def call(prompt: str) -> str:
            reply = await client.chat.completions.create(model="fake", messages=[{"role": "user", "content": prompt}])
            return reply.choices[0].message.content or ""

        try:
            return await _loop(call, n)
        finally:
            await client.close()

    return asyncio.run(main())


def bare_anthropic(base_url: str, n: int) -> float:
    """Samples/s of `messages.create` calls with a default client."""
    import anthropic

    async def main() -> float:
        client = anthropic.AsyncAnthropic(api_key="bench", base_url=base_url, max_retries=0)

        async def call(prompt: str) -> str:
            reply = await client.messages.create(model="fake", max_tokens=4096, messages=[{"role": "user", "content": prompt}])
            return "".join(block.text for block in reply.content if block.type == "text")

        try:
            return await _loop(call, n)
        finally:
            await client.close()

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=1, help="repeat each measurement; the best is reported")
    args = parser.parse_args()
    n = args.samples
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        server, base_url = start_server(workdir)
        try:
            cases: list[tuple[str, Callable[[], float], Callable[[], float]]] = [
                ("openai", lambda: bare_openai(base_url, n),
                 lambda: run_evalkit("openai/fake", f"{base_url}/v1", n, workdir / "logs")),
                ("anthropic", lambda: bare_anthropic(base_url, n),
                 lambda: run_evalkit("anthropic/fake", base_url, n, workdir / "logs")),
            ]
            for name, bare, evalkit_run in cases:
                results: dict[str, list[tuple[float, float]]] = {"bare": [], "evalkit": []}
                for _ in range(args.rounds):
                    for label, run in (("bare", bare), ("evalkit", evalkit_run)):
                        cpu = time.process_time()
                        rate = run()
                        results[label].append((rate, (time.process_time() - cpu) * 1000 / n))
                bare_rate, bare_cpu = max(results["bare"])
                ek_rate, ek_cpu = max(results["evalkit"])
                print(f"{name:9s} bare SDK loop {bare_rate:7.0f} samples/s ({bare_cpu:.2f} ms CPU/sample)   "
                      f"evalkit {ek_rate:7.0f} samples/s ({ek_cpu:.2f} ms CPU/sample)   ratio {ek_rate / bare_rate:.2f}x")
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  "
          "(CPU figures are this process only; the fake server runs in another)")


if __name__ == "__main__":
    main()
