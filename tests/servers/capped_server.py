"""An OpenAI chat server with a hidden cap on concurrent requests, for adaptive concurrency.

At most `cap` requests are served at once, each taking `latency` seconds; a request above the
cap is answered at once with 429 and `Retry-After`. `GET /stats` gives the counts as JSON.
Run standalone (for bench/adaptive.py) with:

    python -m tests.servers.capped_server --cap 16 --latency 0.1 --port-file PATH
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path
from typing import Any

from tests.servers.http import RecordingServer, Reply, Request
from tests.servers.openai_server import chat_reply


class CappedServer(RecordingServer):
    """`with CappedServer(cap=16) as server:` then point the openai provider at `server.url + "/v1"`."""

    def __init__(self, cap: int, latency: float = 0.05, retry_after: float = 0.2) -> None:
        super().__init__(self._handle)
        self.cap = cap
        self.latency = latency
        self.retry_after = retry_after
        self.active = 0
        self.served = 0
        self.refused = 0
        self.admitted_at: list[tuple[float, int]] = []
        """(time, requests being served including this one) for each request let through."""
        self._count = threading.Lock()

    def stats(self) -> dict[str, Any]:
        """Requests served and refused, and the most served at once."""
        peak = max((active for _, active in self.admitted_at), default=0)
        return {"cap": self.cap, "served": self.served, "refused": self.refused, "peak": peak}

    def _handle(self, request: Request) -> Reply:
        if request.method == "GET" and request.path == "/stats":
            return Reply(body=self.stats())
        with self._count:
            if self.active >= self.cap:
                self.refused += 1
                return Reply(429, {"error": {"message": "Too many concurrent requests", "type": "rate_limit_error"}},
                             {"Retry-After": f"{self.retry_after:g}"})
            self.active += 1
            self.admitted_at.append((time.monotonic(), self.active))
        try:
            time.sleep(self.latency)
            return chat_reply(request)
        finally:
            with self._count:
                self.active -= 1
                self.served += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--retry-after", type=float, default=1.0)
    parser.add_argument("--port-file", type=Path, required=True)
    args = parser.parse_args()
    with CappedServer(args.cap, args.latency, args.retry_after) as server:
        args.port_file.write_text(str(server.port))
        threading.Event().wait()


if __name__ == "__main__":
    main()
