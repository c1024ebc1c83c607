"""Seconds from Ctrl-C (SIGINT) or SIGTERM to the exit of `evalkit eval` on the bundled model
while a batch with long outputs runs.

    .venv/bin/python bench/interrupt_latency.py [--signal INT|TERM] [--samples 16] [--max-tokens 400]
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
from pathlib import Path

TASK = '''
from evalkit import Sample, Task, task
from evalkit.scorer import includes

@task
def stories():
    return Task(
        dataset=[Sample(input=f"Write a very long story about dragon number {{i}}.", target="x") for i in range({n})],
        scorer=includes(),
        config={{"temperature": 0.0, "max_tokens": {max_tokens}}},
    )
'''


def start_eval(folder: Path, samples: int, max_tokens: int, *extra: str) -> subprocess.Popen[str]:
    """`evalkit eval` of a task of long answers, in its own process, with Ctrl-C handled as in
    a terminal (a shell starts background jobs with SIGINT ignored)."""
    task = folder / "stories.py"
    task.write_text(TASK.format(n=samples, max_tokens=max_tokens), encoding="utf-8")
    command = [sys.executable, "-m", "evalkit", "eval", str(task), "--model", "hf/bundled",
               "--log-dir", str(folder / "logs"), "--display", "none", *extra]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_generation(folder: Path, process: subprocess.Popen[str], settle: float = 3.0) -> Path:
    """The log's path once its header is written (the model is loaded), `settle` seconds later,
    when the first batch is generating."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        logs = list((folder / "logs").glob("*.jsonl"))
        if logs and logs[0].read_text().strip():
            time.sleep(settle)
            return logs[0]
        time.sleep(0.1)
    raise RuntimeError(f"the eval did not start: {process.communicate()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signal", choices=["INT", "TERM"], default="INT")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        process = start_eval(folder, args.samples, args.max_tokens)
        log = wait_for_generation(folder, process)
        sent = time.monotonic()
        process.send_signal(getattr(signal, f"SIG{args.signal}"))
        _, stderr = process.communicate()
        seconds = time.monotonic() - sent
        footer = json.loads(log.read_text().splitlines()[-1]).get("footer", {})
        print(f"SIG{args.signal}: exit {process.returncode} after {seconds:.2f} s, footer status "
              f"{footer.get('status')}, {args.samples} samples x {args.max_tokens} tokens")
        print(stderr.strip())


if __name__ == "__main__":
    main()
