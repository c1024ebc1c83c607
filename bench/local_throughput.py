"""Local batching throughput on the bundled SmolLM2-135M-Instruct (CPU, fp32, greedy).

    .venv/bin/python bench/local_throughput.py [--prompts 64] [--tokens 32] [--connections 1,8,32,64]
        [--repeat 3] [--bf16]

(a) transformers `generate`, one prompt at a time; (b) transformers `generate` on the whole
batch by hand (left padding: the limit); (c) `evalkit.eval` through the `hf` provider at each
max_connections. (a), (b) and the provider each run the model in one worker thread, a fresh
one per run. (b) and (c) run `--repeat` times, interleaved, and the best run counts (the
machine is shared); (a) and (c) at max_connections 1 run once. Prints wall time and tokens/s,
whether (c) at the largest max_connections is within 15% of (b) and at least 5x (a), and
whether every greedy answer equals (a)'s. dtype: float32, the hf provider's CPU default: only
fp32 keeps batched greedy output equal to one-at-a-time output (`--bf16` shows the difference
and bf16's speed).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

TOPICS = ["Japan", "Canada", "Brazil", "Kenya", "Norway", "India", "Egypt", "Peru"]
QUESTIONS = [
    "What is the capital of {}?",
    "Name one famous food from {}.",
    "Which continent is {} in?",
    "Give one fact about the history of {}.",
    "What language is spoken in {}?",
    "Describe the weather in {} in one sentence.",
    "Name a river in {}.",
    "Write a short greeting for a visitor to {}.",
]


def prompts(count: int) -> list[str]:
    """`count` distinct questions of varied length."""
    every = [q.format(t) for q in QUESTIONS for t in TOPICS]
    return (every * (count // len(every) + 1))[:count]


def load(dtype: str = "float32") -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    from evalkit.providers.local.bundled import bundled_gguf, convert_gguf
    from evalkit.providers.local.hf import load_tokenizer

    folder = convert_gguf(bundled_gguf(), "float32")
    return load_tokenizer(str(folder)), AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype)).eval()


def by_hand(tokenizer: Any, model: Any, batch: list[str], tokens: int, thread: ThreadPoolExecutor) -> tuple[list[str], int]:
    """Greedy `generate` on `batch` in one call, in `thread` (the hf provider also runs its model
    in one worker thread per eval): (answers, tokens generated without padding)."""
    return thread.submit(_generate, tokenizer, model, batch, tokens).result()


def _generate(tokenizer: Any, model: Any, batch: list[str], tokens: int) -> tuple[list[str], int]:
    import torch

    from evalkit.providers.local.hf import decode_generated, eos_ids

    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False) for p in batch]
    encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(**encoded, max_new_tokens=tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    ends = eos_ids(model.generation_config, tokenizer)
    decoded = [decode_generated(tokenizer, row, ends, None) for row in out[:, encoded["input_ids"].shape[1]:].tolist()]
    return [text for text, _, _ in decoded], sum(count for _, count, _ in decoded)


def through_evalkit(model: Any, batch: list[str], tokens: int, connections: int) -> tuple[list[str], int, float]:
    """`evalkit.eval` of one task holding `batch`: (answers in prompt order, output tokens, wall s)."""
    import evalkit
    from evalkit import Sample, Task

    task = Task(dataset=[Sample(input=p, id=i) for i, p in enumerate(batch)], name="throughput")
    with tempfile.TemporaryDirectory() as logs:
        start = time.perf_counter()
        log = evalkit.eval(task, model, max_connections=connections, temperature=0.0, max_tokens=tokens,
                           log_dir=logs, display="none")[0]
        wall = time.perf_counter() - start
        answers = {s.id: s.output["completion"] for s in log.samples}
    return [answers[i] for i in range(len(batch))], log.footer["usage"][model.name]["output_tokens"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--connections", default="1,8,32,64")
    parser.add_argument("--repeat", type=int, default=3, help="runs of (b) and (c), interleaved; the best is reported")
    parser.add_argument("--bf16", action="store_true", help="also time (b) in bfloat16, to compare with fp32")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    import evalkit

    batch = prompts(args.prompts)
    print(f"CPUs: {os.cpu_count()}, torch threads: {torch.get_num_threads()}, load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"bundled SmolLM2-135M-Instruct, float32, greedy, {len(batch)} prompts x {args.tokens} new tokens\n")
    tokenizer, model = load()
    by_hand(tokenizer, model, batch[:4], 4, ThreadPoolExecutor(1))  # warm-up: the first generate pays one-off costs
    rows: list[tuple[str, float, int, list[str]]] = []

    def record(name: str, wall: float, count: int, texts: list[str]) -> None:
        rows.append((name, wall, count, texts))
        print(f"  {name}: {wall:.2f} s", flush=True)

    start = time.perf_counter()
    one_thread = ThreadPoolExecutor(1)
    single = [by_hand(tokenizer, model, [p], args.tokens, one_thread) for p in batch]
    record("(a) transformers, one at a time", time.perf_counter() - start, sum(n for _, n in single), [t[0] for t, _ in single])
    hf = evalkit.get_model("hf/bundled", dtype="float32")
    through_evalkit(hf, batch[:4], 4, 4)  # warm-up
    connections = [int(c) for c in args.connections.split(",")]
    for repeat in range(args.repeat):
        start = time.perf_counter()
        texts, count = by_hand(tokenizer, model, batch, args.tokens, ThreadPoolExecutor(1))
        record(f"(b) transformers, one batch of {len(batch)}", time.perf_counter() - start, count, texts)
        for each in connections:
            if each == 1 and repeat:
                continue  # as long as (a): once is enough
            texts, count, wall = through_evalkit(hf, batch, args.tokens, each)
            record(f"(c) evalkit hf, max_connections {each}", wall, count, texts)
    if args.bf16:
        _, half = load("bfloat16")
        by_hand(tokenizer, half, batch[:4], 4, ThreadPoolExecutor(1))
        start = time.perf_counter()
        texts, count = by_hand(tokenizer, half, batch, args.tokens, ThreadPoolExecutor(1))
        record("(b') as (b), in bfloat16", time.perf_counter() - start, count, texts)

    reference = rows[0][3]
    best: dict[str, tuple[float, int, list[str]]] = {}
    walls: dict[str, list[float]] = {}
    for name, wall, count, texts in rows:
        walls.setdefault(name, []).append(wall)
        if name not in best or wall < best[name][0]:
            best[name] = (wall, count, texts)
    print(f"\nbest of {args.repeat} runs for (b) and (c) at max_connections > 1 (all runs in brackets)")
    print(f"{'mode':<40} {'wall s':>8} {'tokens':>7} {'tok/s':>7} {'= (a)':>7}  runs")
    for name, (wall, count, texts) in best.items():
        same = sum(a == b for a, b in zip(texts, reference))
        runs = ", ".join(f"{w:.1f}" for w in walls[name])
        print(f"{name:<40} {wall:8.2f} {count:7d} {count / wall:7.1f} {same:>3}/{len(batch)}  [{runs}]")
    for name, _, _, texts in rows[1:]:
        differ = [i for i, (a, b) in enumerate(zip(texts, reference)) if a != b]
        if differ:
            print(f"{name}: greedy text differs from (a) for prompts {differ}")
    everything = all(texts == reference for name, _, _, texts in rows if name.startswith("(c)"))
    print(f"(c) greedy text equals (a) for every prompt in every run: {'yes' if everything else 'NO'}")
    rate = {name: count / wall for name, (wall, count, _) in best.items()}
    top = f"(c) evalkit hf, max_connections {connections[-1]}"
    hand = f"(b) transformers, one batch of {len(batch)}"
    print(f"\n{top}: {rate[top] / rate[hand]:.2f} x (b) (target >= 0.85), "
          f"{rate[top] / rate['(a) transformers, one at a time']:.2f} x (a) (target >= 5)")
    print(f"batch sizes run by the hf provider: {hf.api.batcher.batches}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
