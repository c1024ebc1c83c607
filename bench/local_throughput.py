"""Local batching throughput on the bundled SmolLM2-135M-Instruct (CPU, fp32, greedy).

    .venv/bin/python bench/local_throughput.py [--prompts 64] [--tokens 32] [--connections 1,8,32,64] [--bf16]

(a) transformers `generate`, one prompt at a time; (b) transformers `generate` on the whole
batch by hand (left padding: the limit); (c) `evalkit.eval` through the `hf` provider at each
max_connections. Prints wall time and tokens/s for each, whether (c) at the largest
max_connections is within 15% of (b) and at least 5x (a), and how many greedy answers of (b)
and (c) equal (a)'s. dtype: float32, the hf provider's CPU default (bf16 batches ~1.4x
against ~7x for fp32 on AVX2 CPUs without native bf16, and changes batched greedy output).
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

    from evalkit.providers.bundled import bundled_gguf, convert_gguf
    from evalkit.providers.hf import load_tokenizer

    folder = convert_gguf(bundled_gguf(), "float32")
    return load_tokenizer(str(folder)), AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype)).eval()


_THREAD = ThreadPoolExecutor(max_workers=1)
"""(a) and (b) run in one worker thread, as the hf provider runs its model (under CPU contention
the main thread measured slower here, which would flatter evalkit)."""


def by_hand(tokenizer: Any, model: Any, batch: list[str], tokens: int) -> tuple[list[str], int]:
    """Greedy `generate` on `batch` in one call, in the worker thread: (answers, tokens
    generated without padding)."""
    return _THREAD.submit(_generate, tokenizer, model, batch, tokens).result()


def _generate(tokenizer: Any, model: Any, batch: list[str], tokens: int) -> tuple[list[str], int]:
    import torch

    from evalkit.providers.hf import decode_generated, eos_ids

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
    by_hand(tokenizer, model, batch[:4], 4)  # warm-up: the first generate call pays one-off costs
    rows: list[tuple[str, float, int, list[str]]] = []

    start = time.perf_counter()
    single = [by_hand(tokenizer, model, [p], args.tokens) for p in batch]
    rows.append(("(a) transformers, one at a time", time.perf_counter() - start, sum(n for _, n in single), [t[0] for t, _ in single]))
    start = time.perf_counter()
    texts, count = by_hand(tokenizer, model, batch, args.tokens)
    rows.append((f"(b) transformers, one batch of {len(batch)}", time.perf_counter() - start, count, texts))
    if args.bf16:
        _, half = load("bfloat16")
        by_hand(tokenizer, half, batch[:4], 4)
        start = time.perf_counter()
        texts, count = by_hand(tokenizer, half, batch, args.tokens)
        rows.append((f"(b') as (b), in bfloat16", time.perf_counter() - start, count, texts))
        del half
    hf = evalkit.get_model("hf/bundled", dtype="float32")
    through_evalkit(hf, batch[:4], 4, 4)  # warm-up
    hf.api.batcher.batches.clear()
    for connections in (int(c) for c in args.connections.split(",")):
        texts, count, wall = through_evalkit(hf, batch, args.tokens, connections)
        rows.append((f"(c) evalkit hf, max_connections {connections}", wall, count, texts))

    reference = rows[0][3]
    print(f"{'mode':<40} {'wall s':>8} {'tokens':>7} {'tok/s':>7} {'= (a)':>7}")
    for name, wall, count, texts in rows:
        same = sum(a == b for a, b in zip(texts, reference))
        print(f"{name:<40} {wall:8.2f} {count:7d} {count / wall:7.1f} {same:>3}/{len(batch)}")
    for name, _, _, texts in rows[1:]:
        differ = [i for i, (a, b) in enumerate(zip(texts, reference)) if a != b]
        print(f"{name}: greedy text equals (a) for every prompt: {'yes' if not differ else f'NO (prompts {differ})'}")
    rate = {name: count / wall for name, wall, count, _ in rows}
    best = rows[-1]
    print(f"\n{best[0]}: {rate[best[0]] / rate[rows[1][0]]:.2f} x (b) (target >= 0.85), "
          f"{rate[best[0]] / rate[rows[0][0]]:.2f} x (a) (target >= 5)")
    print(f"batches run by the hf provider: {hf.api.batcher.batches}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
