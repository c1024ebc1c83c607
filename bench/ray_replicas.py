"""1 vs 2 Ray replicas of the bundled SmolLM2-135M-Instruct (`hf/bundled -M replicas=N`).

    .venv/bin/python bench/ray_replicas.py [--prompts 64] [--tokens 32] [--connections 64] [--rounds 2]

The prompts of `bench/local_throughput.py`, greedy, fp32, through `evalkit.eval`. Modes, all
loaded once and run interleaved `--rounds` times (the machine is shared; the best run counts):
(a) the hf provider in this process (no Ray); (b) `-M replicas=1` (one actor with every core);
(c) `-M replicas=2` (two actors, the cores split between them). One local Ray is started here
with twice the machine's cores as logical CPUs so all three fit at once; `replica_cpus` sets
each actor's OMP_NUM_THREADS (cores / replicas). Prints wall time, tokens/s, how requests were
spread and whether every greedy answer equals (a)'s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_throughput import prompts, through_evalkit  # noqa: E402


def load_modes(cores: int) -> dict[str, Any]:
    from evalkit import get_model

    modes = {"(a) in process": get_model("hf/bundled", dtype="float32")}
    for count in (1, 2):
        start = time.perf_counter()
        modes[f"({'bc'[count - 1]}) replicas={count}"] = get_model(
            "hf/bundled", dtype="float32", replicas=count, replica_cpus=max(1, cores // count)
        )
        print(f"replicas={count}: loaded in {time.perf_counter() - start:.1f} s", flush=True)
    return modes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import anyio
    import ray

    cores = os.cpu_count() or 1
    ray.init(address="local", num_cpus=2 * cores, include_dashboard=False, object_store_memory=128 * 2**20,
             log_to_driver=False)
    batch = prompts(args.prompts)
    modes = load_modes(cores)
    best: dict[str, float] = {}
    answers: dict[str, list[str]] = {}
    for round in range(args.rounds):
        for name, model in modes.items():
            texts, tokens, wall = through_evalkit(model, batch, args.tokens, args.connections)
            answers[name] = texts
            best[name] = max(best.get(name, 0.0), tokens / wall)
            print(f"round {round + 1} {name}: {wall:.1f} s, {tokens / wall:.1f} tokens/s", flush=True)
    reference = answers["(a) in process"]
    for name, model in modes.items():
        same = sum(a == b for a, b in zip(answers[name], reference))
        spread = ""
        if hasattr(model.api, "replica_stats"):
            spread = ", served per replica: " + str([s["served"] for s in anyio.run(model.api.replica_stats)])
        print(f"{name}: best {best[name]:.1f} tokens/s, greedy equal to (a): {same}/{len(reference)}{spread}")
    for model in modes.values():
        anyio.run(model.aclose)
    ray.shutdown()
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    main()
