"""How closely evalkit's requests_per_sec and tokens_per_sec limits hold, measured at the server.

    .venv/bin/python bench/rate_limits.py                       # 64..512 connections
    .venv/bin/python bench/rate_limits.py --connections 64 512 --rate 100 --token-rate 10000

Starts a small local aiohttp server (a subprocess) speaking OpenAI chat completions that
records when each request arrives and answers with 80 prompt + 20 completion tokens (100 a
request, where evalkit's static guess, input/4 + 256 output, is about 2.6 times that). For each
connection count it runs `evalkit.eval()` through the openai provider:

- requests: `requests_per_sec=RATE` over max(connections, 5 x RATE) samples;
- tokens: `tokens_per_sec=TOKEN_RATE` over as many samples;
- shared: two evals at once on the same endpoint and key (different model names), each at
  `requests_per_sec=RATE`, which together must stay at RATE.

and prints, from the server's arrival times, the most requests (or tokens) in any sliding
one-second window against the limit, the rate reached in the first two seconds, and the
steady rate over the run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from local_server import start_process

TOKENS_PER_REQUEST = 100

SERVER = r'''
import json, sys, time
from aiohttp import web

from local_server import start_process

arrivals = []

async def chat(request):
    arrivals.append(time.monotonic())
    body = await request.json()
    text = body["messages"][-1]["content"].split("ANSWER:")[-1].strip()
    return web.json_response({
        "id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 80, "completion_tokens": 20, "total_tokens": 100}})

async def take(request):
    taken = list(arrivals)
    arrivals.clear()
    return web.json_response(taken)

app = web.Application()
app.router.add_post("/v1/chat/completions", chat)
app.router.add_post("/arrivals", take)

async def main():
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
    await site.start()
    with open(sys.argv[1], "w") as f:
        f.write(str(site._server.sockets[0].getsockname()[1]))
    while True:
        await __import__("asyncio").sleep(3600)

__import__("asyncio").run(main())
'''


def start_server(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port_file = workdir / "port"
    return start_process([sys.executable, "-c", SERVER, str(port_file)], port_file)


def take_arrivals(url: str) -> list[float]:
    with urllib.request.urlopen(urllib.request.Request(f"{url}/arrivals", method="POST")) as reply:
        return sorted(json.loads(reply.read()))


def busiest_second(arrivals: list[float]) -> int:
    """The most arrivals within any one-second window (both ends included)."""
    worst = start = 0
    for end, moment in enumerate(arrivals):
        while moment - arrivals[start] > 1.0:
            start += 1
        worst = max(worst, end - start + 1)
    return worst


def figures(arrivals: list[float], limit: float, weight: float) -> str:
    """Peak window, first-two-seconds rate and steady rate, in the limit's units."""
    peak = busiest_second(arrivals) * weight
    first = sum(1 for t in arrivals if t - arrivals[0] < 2.0) * weight / 2.0
    steady = (len(arrivals) - 1) * weight / (arrivals[-1] - arrivals[0])
    return (f"peak 1 s window {peak:>7,.0f} ({peak / limit - 1:+.1%} vs limit {limit:,.0f}), "
            f"first 2 s {first:>7,.0f}/s, steady {steady:>7,.0f}/s")


def task(n: int):
    from evalkit import Sample, Task
    from evalkit.scorer import match

    return Task(dataset=[Sample(input=f"q{i} ANSWER: {i}", target=str(i)) for i in range(n)], scorer=match(), name="rate")


def run(runs: list[dict]) -> None:
    """One `eval_async(**kwargs)` per dict, all at once in one event loop."""
    import anyio

    from evalkit import eval_async

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for kwargs in runs:
                group.start_soon(lambda kw=kwargs: eval_async(**kw))

    anyio.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--rate", type=float, default=100.0, help="requests_per_sec")
    parser.add_argument("--token-rate", type=float, default=10_000.0, help="tokens_per_sec")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        server, url = start_server(workdir)
        try:
            for connections in args.connections:
                common = {"model_args": {"base_url": f"{url}/v1", "api_key": "bench"}, "max_connections": connections,
                          "log_dir": workdir / "logs", "display": "none"}
                n = max(connections, int(5 * args.rate))
                run([{**common, "tasks": task(n), "model": "openai/bench", "requests_per_sec": args.rate}])
                print(f"{connections:>4} connections  requests: {figures(take_arrivals(url), args.rate, 1)}")
                n = max(connections, int(5 * args.token_rate / TOKENS_PER_REQUEST))
                run([{**common, "tasks": task(n), "model": "openai/bench", "tokens_per_sec": args.token_rate}])
                print(f"{connections:>4} connections  tokens:   "
                      f"{figures(take_arrivals(url), args.token_rate, TOKENS_PER_REQUEST)}")
                half = max(connections, int(5 * args.rate)) // 2
                run([{**common, "tasks": task(half), "model": f"openai/bench-{i}", "requests_per_sec": args.rate}
                     for i in range(2)])
                print(f"{connections:>4} connections  2 evals:  {figures(take_arrivals(url), args.rate, 1)}")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
