"""Framework overhead with mockllm: samples/s, peak RSS and log bytes per sample; start-up cost.

    .venv/bin/python bench/overhead.py            # 10,000 and 100,000 samples
    .venv/bin/python bench/overhead.py --sizes 10000

Each size runs in a fresh child process (so peak RSS is that run's alone) over a streamed
.jsonl dataset of short QA samples, at max_connections 256, with the log written to disk.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import resource, sys, time
from pathlib import Path
from evalkit import Task, eval, json_dataset
from evalkit.scorer import match
data, logs = sys.argv[1], sys.argv[2]
task = Task(dataset=json_dataset(data), scorer=match(), name="overhead")
start = time.perf_counter()
[log] = eval(task, model="mockllm/bench", max_connections=256, log_dir=logs, display="none")
elapsed = time.perf_counter() - start
assert log.status == "success", log.error
size = Path(log.location).stat().st_size
print(elapsed, size, log.footer["counts"]["completed"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

HEAVY = ("torch", "transformers", "openai", "anthropic", "aioboto3", "boto3", "google.genai", "vllm", "rich")


def write_dataset(path: Path, n: int) -> None:
    with path.open("w") as file:
        for i in range(n):
            a, b = i % 97, i % 89
            file.write(json.dumps({"input": f"What is {a} + {b}? ANSWER: {a + b}", "target": str(a + b)}) + "\n")


def run_size(n: int, workdir: Path) -> dict[str, float]:
    data = workdir / f"data_{n}.jsonl"
    write_dataset(data, n)
    out = subprocess.run([sys.executable, "-c", CHILD, str(data), str(workdir / f"logs_{n}")],
                         capture_output=True, text=True, check=True)
    elapsed, size, completed, maxrss_kb = out.stdout.split()
    return {
        "samples": int(completed),
        "seconds": float(elapsed),
        "samples_per_s": int(completed) / float(elapsed),
        "peak_rss_mb": int(maxrss_kb) / 1024,
        "log_bytes_per_sample": int(size) / int(completed),
    }


def best_of(command: list[str], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return min(times)


def startup() -> dict[str, object]:
    evalkit = [str(Path(sys.executable).with_name("evalkit"))]
    imported = subprocess.run([sys.executable, "-X", "importtime", "-c", "from evalkit import Task, eval, task"],
                              capture_output=True, text=True).stderr
    modules = {line.rsplit("|", 1)[-1].strip() for line in imported.splitlines() if "|" in line}
    return {
        "import_evalkit_s": best_of([sys.executable, "-c", "import evalkit"]),
        "import_public_api_s": best_of([sys.executable, "-c", "from evalkit import Task, eval, task"]),
        "evalkit_help_s": best_of([*evalkit, "--help"]),
        "python_bare_s": best_of([sys.executable, "-c", "pass"]),
        "heavy_modules_imported": sorted(m for m in HEAVY if m in modules) or "none",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, load avg {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            result = run_size(n, Path(tmp))
            print(f"{n:>7} samples: {result['samples_per_s']:8.0f} samples/s  {result['seconds']:6.2f} s  "
                  f"peak RSS {result['peak_rss_mb']:6.1f} MB  log {result['log_bytes_per_sample']:5.0f} B/sample")
    for name, value in startup().items():
        print(f"{name}: {value if not isinstance(value, float) else f'{value:.3f} s'}")


if __name__ == "__main__":
    main()
