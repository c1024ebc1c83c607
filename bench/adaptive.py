"""Adaptive concurrency against a server with a hidden concurrency cap.

    .venv/bin/python bench/adaptive.py                                   # cap 16, 100 ms, 3000 samples
    .venv/bin/python bench/adaptive.py --cap 32 --latency 0.05 --samples 4000 --rounds 3

Starts tests/servers/capped_server.py in its own process (an OpenAI chat server serving at
most CAP requests at once, LATENCY seconds each, answering 429 with `Retry-After` above the
cap) and runs `evalkit.eval()` through the openai provider, alternately with
`max_connections=CAP` (the best a user who knows the cap can do) and `max_connections="auto"`.
Prints each run's samples/s, samples lost (not in the log, or errored), the server's 429s and
the mean concurrency the server saw over the second half of the run, then the ratio of auto's
best throughput to the fixed run's best (target: at least 0.90) and auto's lowest second-half
mean concurrency as a share of the cap (target: at least 0.70).
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

from local_server import start_process

REPO = Path(__file__).resolve().parent.parent


def serve(cap: int, latency: float, retry_after: float, port_file: Path) -> None:
    """The capped server, whose /stats also lists the concurrency at each admitted request."""
    import threading

    from tests.servers.capped_server import CappedServer

    class Server(CappedServer):
        def stats(self) -> dict[str, Any]:
            return {**super().stats(), "admitted": [active for _, active in self.admitted_at]}

    with Server(cap, latency, retry_after) as server:
        port_file.write_text(str(server.port))
        threading.Event().wait()


def start_server(workdir: Path, cap: int, latency: float, retry_after: float) -> tuple[subprocess.Popen[bytes], str]:
    port_file = workdir / "port"
    command = [sys.executable, __file__, "--cap", str(cap), "--latency", str(latency), "--retry-after", str(retry_after),
               "--serve", str(port_file)]
    return start_process(command, port_file, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


def server_stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/stats") as reply:
        return json.loads(reply.read())


def one_run(url: str, samples: int, max_connections: int | str, max_samples: int | None, log_dir: Path) -> dict[str, float]:
    """Samples/s, samples lost and 429s of one eval."""
    from evalkit import Sample, Task, eval, read_eval_log
    from evalkit.scorer import match

    task = Task(dataset=[Sample(input=f"q{i} ANSWER: {i}", target=str(i)) for i in range(samples)], scorer=match(), name="capped")
    before = server_stats(url)
    start = time.perf_counter()
    [log] = eval(task, model="openai/gpt-bench", model_args={"base_url": f"{url}/v1"}, max_connections=max_connections,
                 max_samples=max_samples, log_dir=log_dir, display="none", fail_on_error=False)
    wall = time.perf_counter() - start
    after = server_stats(url)
    good = sum(1 for s in read_eval_log(log.location).samples if s.error is None)
    admitted = after["admitted"][len(before["admitted"]):]
    later = admitted[len(admitted) // 2:]
    return {"rate": samples / wall, "wall": wall, "lost": samples - good, "refused": after["refused"] - before["refused"],
            "concurrency": sum(later) / max(len(later), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cap", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request")
    parser.add_argument("--retry-after", type=float, default=1.0, help="the 429's Retry-After, seconds")
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-samples", type=int, help="samples in flight in both runs (default: evalkit's, the pool size)")
    parser.add_argument("--serve", type=Path, metavar="PORT_FILE", help=argparse.SUPPRESS)  # the server process
    args = parser.parse_args()
    if args.serve:
        serve(args.cap, args.latency, args.retry_after, args.serve)
        return
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-adaptive-0000000000")
    print(f"load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores; cap {args.cap}, latency {args.latency * 1000:g} ms, "
          f"Retry-After {args.retry_after:g} s, {args.samples} samples, max_samples {args.max_samples or 'default'}; ideal {args.cap / args.latency:,.0f} samples/s")
    best: dict[str, float] = {}
    auto_concurrency: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        server, url = start_server(Path(folder), args.cap, args.latency, args.retry_after)
        try:
            for round_ in range(1, args.rounds + 1):
                for setting in (args.cap, "auto"):
                    figures = one_run(url, args.samples, setting, args.max_samples, Path(folder) / "logs")
                    label = f"max_connections={setting}"
                    best[str(setting)] = max(best.get(str(setting), 0.0), figures["rate"])
                    if setting == "auto":
                        auto_concurrency.append(figures["concurrency"])
                    print(f"round {round_} {label:>22}: {figures['rate']:7.1f} samples/s ({figures['wall']:.1f} s), "
                          f"lost {figures['lost']:.0f}, 429s {figures['refused']:.0f}, "
                          f"mean concurrency (2nd half) {figures['concurrency']:.1f}")
        finally:
            server.terminate()
            server.wait()
    ratio = best["auto"] / best[str(args.cap)]
    print(f"auto / fixed at the cap: {ratio:.3f} ({'meets' if ratio >= 0.9 else 'MISSES'} the 0.90 target)")
    share = min(auto_concurrency) / args.cap
    print(f"auto's lowest mean concurrency over a run's second half: {min(auto_concurrency):.1f} of {args.cap} = {share:.2f} "
          f"of the cap ({'meets' if share >= 0.7 else 'MISSES'} the 0.70 target)")


if __name__ == "__main__":
    main()
