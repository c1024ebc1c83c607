"""HumanEval in the local sandbox: the cost of the sandbox, and the bundled model's pass@1.

    .venv/bin/python bench/humaneval.py canonical
        the 164 canonical solutions through eval() (wall time, peak RSS of the eval), then each
        problem's sandbox overhead on its own: create, exec of the tests, clean-up, against a
        bare subprocess running the same program
    .venv/bin/python bench/humaneval.py model --model hf/bundled [--limit N] [--max-tokens 512]
    .venv/bin/python bench/humaneval.py model --llama-server [--limit N]
        greedy pass@1 of a model (--llama-server: the bundled GGUF served by llama.cpp's
        llama-server on 127.0.0.1, through the openai provider)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tasks"))
sys.path.insert(0, str(REPO))

from evalkit import ModelAPI, ModelOutput, eval  # noqa: E402
from evalkit.model.model import Model  # noqa: E402
from evalkit.sandbox.local import LocalSandboxEnvironment  # noqa: E402
from humaneval import humaneval, humaneval_records, program  # noqa: E402

RECORDS = humaneval_records()


class Canonical(ModelAPI):
    """Answers each problem with its canonical solution."""

    async def generate(self, input: Any, tools: Any, tool_choice: Any, config: Any) -> ModelOutput:
        prompt = input[-1].text
        return ModelOutput.from_text("canonical", next(r["canonical_solution"] for r in RECORDS if prompt.endswith(r["prompt"])))


def _rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def _summary(values: list[float]) -> str:
    ordered = sorted(values)
    return (f"mean {statistics.fmean(values) * 1000:.1f} ms, median {statistics.median(values) * 1000:.1f} ms, "
            f"p95 {ordered[int(len(ordered) * 0.95) - 1] * 1000:.1f} ms")


async def _overhead() -> None:
    create, run, cleanup, bare = [], [], [], []
    for record in RECORDS:
        script = program(record, record["canonical_solution"], False, "done")
        begin = time.perf_counter()
        box = await LocalSandboxEnvironment.create(None)
        made = time.perf_counter()
        result = await box.exec(["python3", "-c", script], timeout=30)
        ran = time.perf_counter()
        await box.cleanup()
        done = time.perf_counter()
        assert result.success, (record["task_id"], result.stderr)
        create.append(made - begin), run.append(ran - made), cleanup.append(done - ran)
        with tempfile.TemporaryDirectory() as folder:
            begin = time.perf_counter()
            subprocess.run([sys.executable, "-c", script], cwd=folder, check=True, capture_output=True)
            bare.append(time.perf_counter() - begin)
    print(f"per problem, one at a time ({len(RECORDS)} problems):")
    print(f"  create   {_summary(create)}")
    print(f"  exec     {_summary(run)}")
    print(f"  clean-up {_summary(cleanup)}")
    print(f"  bare subprocess.run of the same program: {_summary(bare)}")
    extra = [c + r + u - b for c, r, u, b in zip(create, run, cleanup, bare)]
    print(f"  sandbox overhead over bare (create + exec + clean-up - bare): {_summary(extra)}")


def canonical() -> None:
    begin = time.perf_counter()
    with tempfile.TemporaryDirectory() as logs:
        [log] = eval(humaneval(), model=Model("canonical/x", Canonical("x")), log_dir=logs, display="none")
        wall = time.perf_counter() - begin
        passed = sum(s.scores["verify"]["value"] == "C" for s in log.samples)
        count = len(log.samples)
    print(f"eval of {count} canonical solutions: {passed} passed, wall {wall:.2f} s "
          f"({wall / count * 1000:.1f} ms per problem), peak RSS of the eval {_rss_mb(resource.RUSAGE_SELF):.1f} MB, "
          f"largest child {_rss_mb(resource.RUSAGE_CHILDREN):.1f} MB")
    asyncio.run(_overhead())


def _llama_server() -> tuple[subprocess.Popen[bytes], str]:
    from tests.e2e.test_llama_server import _bundled_gguf, _free_port, _server_binary

    port = _free_port()
    threads = os.environ.get("EVALKIT_LLAMA_THREADS", "2")
    server = subprocess.Popen([str(_server_binary()), "-m", str(_bundled_gguf()), "--host", "127.0.0.1", "--port", str(port),
                               "--alias", "smollm2", "-t", threads, "-c", "8192", "--parallel", "4"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    import urllib.request

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                if reply.status == 200:
                    return server, f"{url}/v1"
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("llama-server did not become healthy within 120 s")


def model(args: argparse.Namespace) -> None:
    server = None
    model_name, model_args = args.model, {}
    if args.llama_server:
        server, base_url = _llama_server()
        model_name, model_args = "openai/smollm2", {"base_url": base_url, "api_key": "none"}
        os.environ.setdefault("OPENAI_API_KEY", "none")
    try:
        begin = time.perf_counter()
        with tempfile.TemporaryDirectory() as logs:
            [log] = eval(humaneval(), model=model_name, model_args=model_args, log_dir=args.log_dir or logs, display="none",
                         limit=args.limit, temperature=0.0, max_tokens=args.max_tokens, fail_on_error=False)
            wall = time.perf_counter() - begin
            samples = list(log.samples)
    finally:
        if server is not None:
            server.kill()
    passed = sum(s.scores.get("verify", {}).get("value") == "C" for s in samples)
    errors = sum(s.error is not None for s in samples)
    print(f"{model_name}: pass@1 {passed}/{len(samples)} = {passed / len(samples):.3f} (greedy, max_tokens "
          f"{args.max_tokens}), {errors} errors, wall {wall:.0f} s, peak RSS {_rss_mb(resource.RUSAGE_SELF):.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["canonical", "model"])
    parser.add_argument("--model", default="hf/bundled")
    parser.add_argument("--llama-server", action="store_true", help="serve the bundled GGUF with llama-server")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--log-dir", default=None)
    args = parser.parse_args()
    canonical() if args.what == "canonical" else model(args)


if __name__ == "__main__":
    main()
