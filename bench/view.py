"""Figures for `evalkit view`, the log CLI and eval-retry on a 100,000-sample log.

    .venv/bin/python bench/view.py [--samples 100000] [--logs 1000] [--browser]
    .venv/bin/python bench/view.py --only retry [--retry-task file|memory|both] [--pad 0]

The big log is made once under bench/.view-data/ (git-ignored): a real `evalkit eval` of the
task below with mockllm on its first 10 samples gives the header and a real sample line; the
other lines are written directly in the log format (each with its own id, input, answer and
score), then the run's last 1,000 samples and footer are cut off as a kill would leave it.
Prints: time to first rows of the run page through the API (a fresh server, so the index is
built), the same in chromium (--browser), time to open a sample, the server's RSS, `evalkit
log list` over 1,000 logs, and eval-retry's peak RSS finishing the cut log, for the task
reading its samples from a jsonl file (`json_dataset`, streamed) and for the one building them
in memory, each with its floor.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / ".view-data"
PYTHON = sys.executable
TASK = '''
from evalkit import Task, Sample, task
from evalkit.scorer import match

@task
def big(n: int = 100000, pad: int = 3):
    pad = "Please think about it carefully and reply with the number only. " * pad
    return Task(dataset=[Sample(input=f"Question {i}: what is {i} + {i % 7}? {pad}ANSWER: {i + i % 7 if i % 5 else -1}",
                                target=str(i + i % 7), id=i, metadata={"bucket": i % 10}) for i in range(1, n + 1)],
                scorer=match(), name="big")
'''
FILE_TASK = '''
from pathlib import Path
from evalkit import Task, json_dataset, task
from evalkit.scorer import accuracy, grouped, match, stderr

@task
def bigfile(n: int = 100000, pad: int = 3, by_bucket: bool = False):
    metrics = [grouped(accuracy(), "bucket"), stderr()] if by_bucket else None
    return Task(dataset=json_dataset(Path(__file__).parent / f"bigfile-{n}-pad{pad}.jsonl"), scorer=match(), metrics=metrics, name="bigfile")
'''


def evalkit(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "evalkit", *args], capture_output=True, text=True, check=True, cwd=DATA, **kwargs)  # type: ignore[call-overload]


def prompt(i: int, pad: int) -> str:
    """Sample i's input, as both tasks above make it."""
    padding = "Please think about it carefully and reply with the number only. " * pad
    return f"Question {i}: what is {i} + {i % 7}? {padding}ANSWER: {i + i % 7 if i % 5 else -1}"


def write_dataset_file(samples: int, pad: int) -> None:
    """The jsonl file FILE_TASK reads: the same samples the in-memory task builds."""
    path = DATA / f"bigfile-{samples}-pad{pad}.jsonl"
    if path.exists():
        return
    with path.open("w") as out:
        for i in range(1, samples + 1):
            out.write(json.dumps({"id": i, "input": prompt(i, pad), "target": str(i + i % 7), "bucket": i % 10}) + "\n")


def make_big_log(samples: int, pad: int = 3, from_file: bool = False, by_bucket: bool = False) -> Path:
    """A `samples`-line log of the task above (FILE_TASK with `from_file`, with `by_bucket` its
    accuracy grouped by the metadata field bucket), made once (`pad`: repeats of a sentence in
    each input)."""
    name = "bigfile" if from_file else "big"
    folder = DATA / (f"{name}-{samples}" if pad == 3 else f"{name}-{samples}-pad{pad}")
    folder = folder.with_name(folder.name + "-grouped") if by_bucket else folder
    done = folder / "complete.jsonl"
    if done.exists():
        return done
    shutil.rmtree(folder, ignore_errors=True)
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "big.py").write_text(TASK)
    (DATA / "bigfile.py").write_text(FILE_TASK)
    if from_file:
        write_dataset_file(samples, pad)
    evalkit("eval", f"{name}.py", "--model", "mockllm/m", "-T", f"n={samples}", "-T", f"pad={pad}", *(["-T", "by_bucket=true"] if by_bucket else []), "--limit", "10", "--log-dir", str(folder), "--display", "none")
    [small] = folder.glob("*.jsonl")
    lines = small.read_text().splitlines()
    header = json.loads(lines[0])
    header["header"]["limit"] = [0, samples]
    template = json.loads(lines[1])
    start = time.perf_counter()
    with done.open("w") as out:
        out.write(json.dumps(header) + "\n")
        correct = 0
        for i in range(1, samples + 1):
            answer = str(i + i % 7 if i % 5 else -1)
            record = {**template, "id": i, "input": prompt(i, pad), "target": str(i + i % 7), "metadata": {"bucket": i % 10}}
            record["messages"] = [{"role": "user", "content": record["input"]}, {"role": "assistant", "content": answer}]
            record["output"] = {**template["output"], "completion": answer}
            value = "C" if i % 5 else "I"
            correct += value == "C"
            record["scores"] = {"match": {"value": value, "answer": answer}}
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
        footer = json.loads(lines[-1])
        footer["footer"]["counts"] = {"total": samples, "completed": samples, "errors": 0}
        footer["footer"]["results"] = {"match": {"accuracy": correct / samples, "stderr": 0.0}}
        out.write(json.dumps(footer) + "\n")
    small.unlink()
    print(f"wrote {done} ({done.stat().st_size / 1e6:.0f} MB, {samples:,} samples) in {time.perf_counter() - start:.1f}s")
    return done


def start_server(folder: Path) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen([PYTHON, "-m", "evalkit", "view", "--log-dir", str(folder), "--port", "0"],
                              stdout=subprocess.PIPE, text=True)
    url = re.search(r"http://\S+/", server.stdout.readline()).group(0).rstrip("/")  # type: ignore[union-attr]
    return server, url


def first_rows(samples: int, browser: bool) -> None:
    log = make_big_log(samples)
    serve = DATA / "serve"
    shutil.rmtree(serve, ignore_errors=True)
    serve.mkdir()
    os.link(log, serve / "big.jsonl")
    server, url = start_server(serve)
    try:
        start = time.perf_counter()
        run = httpx.get(f"{url}/api/run", params={"log": "big.jsonl"}, timeout=600).json()
        page = httpx.get(f"{url}/api/samples", params={"log": "big.jsonl", "size": 50}, timeout=600).json()
        first = time.perf_counter() - start
        assert page["samples"] == samples and len(page["rows"]) == 50, page.get("error")
        print(f"run page, first 50 rows via the API (fresh server: index built): {first:.2f}s  [{run['samples']:,} samples]")
        timed(url, "run page again (index cached)", "/api/samples", log="big.jsonl", size=50)
        timed(url, "last page, sorted by score descending", "/api/samples", log="big.jsonl", size=50, sort="score:match", desc=1, offset=samples - 50)
        timed(url, "filter score=I", "/api/samples", log="big.jsonl", size=50, score="match=I")
        timed(url, "search 'Question 99999:' (one match)", "/api/samples", log="big.jsonl", size=50, q="Question 99999:")
        timed(url, "search 'carefully' (every sample matches)", "/api/samples", log="big.jsonl", size=50, q="carefully")
        timed(url, "open a sample (the last one)", "/api/sample", log="big.jsonl", position=samples - 1)
        rss = psutil.Process(server.pid).memory_info().rss / 2**20
        print(f"server RSS after all of the above: {rss:.0f} MiB")
    finally:
        server.terminate()
        server.wait()
    if browser:
        server, url = start_server(serve)
        try:
            in_browser(url)
        finally:
            server.terminate()
            server.wait()


def timed(url: str, what: str, path: str, **params: object) -> None:
    start = time.perf_counter()
    response = httpx.get(url + path, params=params, timeout=600)
    response.raise_for_status()
    print(f"{what}: {(time.perf_counter() - start) * 1000:.0f} ms")


def in_browser(url: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        start = time.perf_counter()
        page.goto(f"{url}/#/run?log=big.jsonl")
        page.locator("#samples tbody tr[data-position]").first.wait_for(timeout=600_000)
        print(f"browser: run page showing its first rows (fresh server): {time.perf_counter() - start:.2f}s")
        start = time.perf_counter()
        page.locator("#samples tbody tr[data-position]").first.click()
        page.locator("#transcript .message").first.wait_for()
        print(f"browser: click a row until its transcript shows: {(time.perf_counter() - start) * 1000:.0f} ms")
        expect(page.locator("#sample-title")).to_contain_text("Sample")
        browser.close()


def log_list(count: int) -> None:
    folder = DATA / f"many-{count}"
    if not folder.exists():
        source = DATA / "many-source"
        (DATA / "small.py").write_text(TASK.replace("def big(n: int = 100000)", "def small(n: int = 20)").replace('name="big"', 'name="small"'))
        evalkit("eval", "small.py", "--model", "mockllm/m", "--log-dir", str(source), "--display", "none")
        [one] = source.glob("*.jsonl")
        folder.mkdir()
        for i in range(count):
            shutil.copy(one, folder / f"{i:04d}_{one.name}")
    start = time.perf_counter()
    out = evalkit("log", "list", str(folder)).stdout
    print(f"evalkit log list over {count:,} logs: {time.perf_counter() - start:.2f}s  ({len(out.splitlines()) - 1} rows)")


def peak_rss_of_retry(log: Path) -> tuple[float, float]:
    """eval-retry of `log` in a child that reports its own peak RSS: (MiB, seconds)."""
    measured = ("import resource, sys\nfrom evalkit.cli.main import main\ntry:\n    main(sys.argv[1:])\nfinally:\n"
                "    print('peak', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)")
    start = time.perf_counter()
    result = subprocess.run([PYTHON, "-c", measured, "eval-retry", str(log), "--display", "none"], capture_output=True, text=True, cwd=DATA)
    assert result.returncode == 0, result.stderr
    return int(re.search(r"peak (\d+)", result.stderr).group(1)) / 1024, time.perf_counter() - start  # type: ignore[union-attr]


def retry_memory(samples: int, pad: int, from_file: bool, by_bucket: bool = False, missing: int = 1000) -> None:
    """eval-retry of the big log cut short by `missing` samples, and of the same task's log
    limited to 8 samples (the floor: python, evalkit's imports and the task's setup; for the
    in-memory task that includes its 100,000 Samples, for FILE_TASK one pass over the file)."""
    complete = make_big_log(samples, pad, from_file, by_bucket)
    folder = DATA / "retry"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    cut = folder / complete.name
    with complete.open("rb") as source, cut.open("wb") as out:
        for number, line in enumerate(source):
            if number <= samples - missing:
                out.write(line)
    peak, seconds = peak_rss_of_retry(cut)
    lines = sum(1 for _ in cut.open("rb"))
    shape = ("json_dataset(jsonl file)" if from_file else "in-memory list") + (", grouped() metric" if by_bucket else "")
    print(f"eval-retry, task dataset {shape}, of a {samples:,}-sample log ({complete.stat().st_size / 1e6:.0f} MB) missing {missing:,}: "
          f"peak RSS {peak:.0f} MiB, {seconds:.1f}s, {lines - 2:,} samples after")
    small = folder / "eight.jsonl"
    with complete.open("rb") as source:
        header = json.loads(source.readline())
        header["header"]["limit"] = [0, 8]
        small.write_text(json.dumps(header) + "\n" + b"".join(source.readline() for _ in range(4)).decode())
    floor, _ = peak_rss_of_retry(small)
    print(f"  floor: eval-retry of the same task's log limited to 8 samples: peak RSS {floor:.0f} MiB")
    imports = subprocess.run([PYTHON, "-c", "import resource, evalkit.cli.main, evalkit.runner\n"
                              "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"], capture_output=True, text=True, check=True)
    print(f"  python + import evalkit (its CLI and runner): peak RSS {int(imports.stdout) / 1024:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--logs", type=int, default=1000)
    parser.add_argument("--browser", action="store_true")
    parser.add_argument("--pad", type=int, default=3, help="eval-retry's task: repeats of a sentence in each input")
    parser.add_argument("--retry-task", choices=["file", "memory", "both", "grouped"], default="both",
                        help="eval-retry's task: its dataset read from a jsonl file, built in memory, or both; "
                             "grouped: from the file, with accuracy grouped by a metadata field")
    parser.add_argument("--only", choices=["view", "list", "retry"])
    args = parser.parse_args()
    if args.only in (None, "view"):
        first_rows(args.samples, args.browser)
    if args.only in (None, "list"):
        log_list(args.logs)
    if args.only in (None, "retry"):
        for from_file in {"file": [True], "memory": [False], "both": [True, False], "grouped": [True]}[args.retry_task]:
            retry_memory(args.samples, args.pad, from_file, by_bucket=args.retry_task == "grouped")


if __name__ == "__main__":
    main()
