"""Reliability under faults: a local OpenAI-style server that fails 20% of requests (429/500)
and enforces a request-rate cap; evalkit runs 2,000 samples through the openai provider.
Then a kill/resume run: SIGKILL in the middle, `evalkit eval-retry`, counts checked.

    .venv/bin/python bench/fault_injection.py [--samples 2000] [--rate 200] [--fail-rate 0.2]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

SERVER = r"""
import json, random, sys, time
from collections import deque
from aiohttp import web

fail_rate, cap, port_file = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
rng = random.Random(0)
recent = deque()
stats = {"arrivals": [], "failed": 0, "over_cap": 0, "prompts": []}

async def chat(request):
    now = time.monotonic()
    stats["arrivals"].append(now)
    body = await request.json()
    while recent and now - recent[0] >= 1.0:
        recent.popleft()
    recent.append(now)
    if len(recent) > cap + 1:
        stats["over_cap"] += 1
        return web.json_response({"error": {"message": "over the rate limit"}}, status=429, headers={"Retry-After": "1"})
    roll = rng.random()
    if roll < fail_rate:
        stats["failed"] += 1
        status = 429 if roll < fail_rate / 2 else 500
        return web.json_response({"error": {"message": "injected"}}, status=status, headers={"Retry-After": "0"})
    prompt = body["messages"][-1]["content"]
    stats["prompts"].append(prompt)
    text = prompt.split("ANSWER:")[-1].strip()
    return web.json_response({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}})

async def dump(request):
    return web.json_response(stats)

async def start(app):
    pass

app = web.Application()
app.router.add_post("/v1/chat/completions", chat)
app.router.add_get("/stats", dump)

async def main():
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    open(port_file, "w").write(str(site._server.sockets[0].getsockname()[1]))
    import asyncio
    await asyncio.Event().wait()

import asyncio
asyncio.run(main())
"""


def start_server(workdir: Path, fail_rate: float, rate: float) -> tuple[subprocess.Popen[bytes], str]:
    port_file = workdir / "port"
    port_file.unlink(missing_ok=True)
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(fail_rate), str(rate), str(port_file)])
    for _ in range(200):
        if port_file.exists() and port_file.read_text():
            return process, f"http://127.0.0.1:{port_file.read_text()}/v1"
        time.sleep(0.05)
    raise RuntimeError("server did not start")


def server_stats(url: str) -> dict:
    import urllib.request

    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats") as response:
        return json.load(response)


def peak_window(arrivals: list[float]) -> int:
    window: deque[float] = deque()
    peak = 0
    for moment in sorted(arrivals):
        window.append(moment)
        while moment - window[0] >= 1.0:
            window.popleft()
        peak = max(peak, len(window))
    return peak


def write_task(workdir: Path, samples: int) -> None:
    rows = [{"input": f"q{i} ANSWER: {i}", "target": str(i)} for i in range(samples)]
    (workdir / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (workdir / "task.py").write_text(
        "from evalkit import task, Task, json_dataset\nfrom evalkit.scorer import match\n"
        "@task\ndef faults():\n    return Task(dataset=json_dataset('data.jsonl'), scorer=match())\n")


def evalkit(workdir: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "evalkit", *args, "--display", "none"], cwd=workdir, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s cap (server) and limit (evalkit)")
    parser.add_argument("--fail-rate", type=float, default=0.2)
    args = parser.parse_args()
    from evalkit import read_eval_log

    print(f"machine: {os.cpu_count()} cores, load avg {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        write_task(workdir, args.samples)
        server, url = start_server(workdir, args.fail_rate, args.rate)
        try:
            env = {**os.environ, "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": url}
            start = time.perf_counter()
            run = evalkit(workdir, env, "eval", "task.py", "--model", "openai/bench", "--max-connections", "64",
                          "--requests-per-sec", str(args.rate), "--max-retries", "10", "--log-dir", "faults")
            run.communicate()
            wall = time.perf_counter() - start
            [path] = (workdir / "faults").glob("*.jsonl")
            log = read_eval_log(path)
            stats = server_stats(url)
            print(f"fault run: {log.footer['counts']['completed']}/{args.samples} samples completed, status {log.status}, "
                  f"accuracy {log.results['match']['accuracy']:.3f}")
            print(f"  requests {len(stats['arrivals'])}, injected failures {stats['failed']}, over-cap 429s {stats['over_cap']}, "
                  f"retries made {log.footer['retries']}")
            print(f"  peak requests in any 1 s window: {peak_window(stats['arrivals'])} (limit {args.rate:g}); wall {wall:.1f} s")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait()

        server, url = start_server(workdir, 0.0, 10_000)
        try:
            env = {**os.environ, "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": url}
            run = evalkit(workdir, env, "eval", "task.py", "--model", "openai/bench", "--max-connections", "16",
                          "--requests-per-sec", "400", "--log-dir", "kill")
            while len(server_stats(url)["prompts"]) < args.samples // 2:
                time.sleep(0.05)
            run.send_signal(signal.SIGKILL)
            run.wait()
            [path] = (workdir / "kill").glob("*.jsonl")
            before = read_eval_log(path)
            finished = {s.input for s in before.samples}
            answered_before = len(server_stats(url)["prompts"])
            retry = evalkit(workdir, env, "eval-retry", str(path))
            retry.communicate()
            after = read_eval_log(path)
            prompts = server_stats(url)["prompts"]
            repeated = len(finished & set(prompts[answered_before:]))
            ids = [s.id for s in after.samples]
            print(f"kill/resume: {len(before.samples)} samples in the log at SIGKILL, server had answered {answered_before} "
                  f"(the difference was in flight); after eval-retry {len(ids)} samples, {len(set(ids))} distinct, "
                  f"status {after.status}; finished samples requested again: {repeated}; "
                  f"accuracy {after.results['match']['accuracy']:.3f}")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait()


if __name__ == "__main__":
    main()
