"""hf static batching vs transformers' own continuous batching (bundled SmolLM2, CPU, fp32, greedy).

    .venv/bin/python bench/hf_continuous.py [--prompts 64] [--tokens 32] [--rounds 2]

The 64 chat prompts of bench/local_throughput.py, up to 32 new tokens, greedy, float32:
(a) `evalkit.eval` through the hf provider as it is (static, left-padded batches formed by
providers/local/batching.py; max_connections = the prompt count, so one batch);
(b) transformers `model.generate_batch` over all prompts (paged attention cache, scheduler and
manager built, warmed up and torn down by the call, as a user of that API pays);
(b') a `ContinuousBatchingManager` already started and warmed up (`init_continuous_batching`),
fed every prompt with `add_request` and drained with `get_result`: continuous batching
without its set-up cost, the best case for adopting it in a long-lived provider;
(b'') as (b'), with the requests arriving one every `--gap` seconds, joining the running batch.
The modes run interleaved, `--rounds` times (the machine is shared); prints each run's wall
time and tokens/s, the best per mode, and how many greedy answers equal (a)'s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
from local_throughput import load, prompts, through_evalkit  # noqa: E402


def chat_ids(tokenizer: Any, batch: list[str]) -> list[list[int]]:
    """Each prompt through the chat template, as token ids (what the hf provider feeds `generate`)."""
    return [tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=True,
                                          return_dict=False) for p in batch]


def greedy_config(model: Any, tokenizer: Any, tokens: int) -> Any:
    from transformers import GenerationConfig

    return GenerationConfig(max_new_tokens=tokens, do_sample=False, eos_token_id=model.generation_config.eos_token_id,
                            pad_token_id=tokenizer.pad_token_id)


def answers(tokenizer: Any, model: Any, generated: list[list[int]]) -> tuple[list[str], int]:
    """(texts, tokens generated) from each request's generated tokens, decoded as the hf provider does."""
    from evalkit.providers.local.hf import decode_generated, eos_ids

    ends = eos_ids(model.generation_config, tokenizer)
    decoded = [decode_generated(tokenizer, tokens, ends, None) for tokens in generated]
    return [text for text, _, _ in decoded], sum(count for _, count, _ in decoded)


def generate_batch(tokenizer: Any, model: Any, ids: list[list[int]], tokens: int) -> tuple[list[str], int, float]:
    """(b): one `generate_batch` call over every prompt."""
    import torch

    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate_batch(ids, generation_config=greedy_config(model, tokenizer, tokens))
    wall = time.perf_counter() - start
    texts, count = answers(tokenizer, model, [o.generated_tokens for o in out.values()])
    return texts, count, wall


def through_manager(manager: Any, tokenizer: Any, model: Any, ids: list[list[int]], tokens: int,
                    gap: float) -> tuple[list[str], int, float]:
    """(b'), (b''): requests into a running manager, `gap` seconds apart, results drained as they finish."""
    start = time.perf_counter()
    names = []
    for number, prompt in enumerate(ids):
        if gap and number:
            time.sleep(gap)
        names.append(manager.add_request(prompt, request_id=f"r{number}-{start}", max_new_tokens=tokens))
    done: dict[str, list[int]] = {}
    while len(done) < len(names):
        result = manager.get_result(timeout=60)
        if result is None:
            raise RuntimeError("continuous batching manager stopped before every request finished")
        if result.is_finished():
            done[result.request_id] = result.generated_tokens
    wall = time.perf_counter() - start
    texts, count = answers(tokenizer, model, [done[name] for name in names])
    return texts, count, wall


def started_manager(model: Any, tokenizer: Any, tokens: int) -> Any:
    import torch

    with torch.inference_mode():
        manager = model.init_continuous_batching(generation_config=greedy_config(model, tokenizer, tokens))
        manager.warmup()
        manager.start()
    return manager


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between arrivals in (b'')")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    import evalkit

    batch = prompts(args.prompts)
    print(f"CPUs: {os.cpu_count()}, torch threads: {torch.get_num_threads()}, load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"bundled SmolLM2-135M-Instruct, float32, greedy, {len(batch)} prompts x {args.tokens} new tokens\n")
    tokenizer, model = load()
    ids = chat_ids(tokenizer, batch)
    hf = evalkit.get_model("hf/bundled", dtype="float32")
    through_evalkit(hf, batch[:4], 4, 4)  # warm-up
    generate_batch(tokenizer, model, ids[:4], 4)  # warm-up
    start = time.perf_counter()
    manager = started_manager(model, tokenizer, args.tokens)
    print(f"manager built, warmed up and started in {time.perf_counter() - start:.2f} s")
    modes = {
        "(a) evalkit hf, static batches": lambda: through_evalkit(hf, batch, args.tokens, len(batch)),
        "(b) transformers generate_batch": lambda: generate_batch(tokenizer, model, ids, args.tokens),
        "(b') running manager, all at once": lambda: through_manager(manager, tokenizer, model, ids, args.tokens, 0),
        f"(b'') running manager, one per {args.gap} s": lambda: through_manager(
            manager, tokenizer, model, ids, args.tokens, args.gap),
    }
    runs: dict[str, list[tuple[float, int, list[str]]]] = {name: [] for name in modes}
    try:
        for round_number in range(args.rounds):
            print(f"round {round_number + 1}, load {os.getloadavg()[0]:.2f}", flush=True)
            for name, run in modes.items():
                texts, count, wall = run()
                runs[name].append((wall, count, texts))
                print(f"  {name}: {wall:.2f} s, {count} tokens", flush=True)
    finally:
        manager.stop(block=True, timeout=10)
    report(runs, len(batch))


def report(runs: dict[str, list[tuple[float, int, list[str]]]], prompt_count: int) -> None:
    reference = runs["(a) evalkit hf, static batches"][0][2]
    print(f"\n{'mode':<42} {'best s':>7} {'tokens':>7} {'tok/s':>7} {'= (a)':>7}  runs (s)")
    for name, results in runs.items():
        wall, count, _ = min(results)
        same = min(sum(x == y for x, y in zip(texts, reference)) for _, _, texts in results)
        every = ", ".join(f"{w:.1f}" for w, _, _ in results)
        print(f"{name:<42} {wall:7.2f} {count:7d} {count / wall:7.1f} {same:>3}/{prompt_count}  [{every}]")
    for name, results in runs.items():
        for _, _, texts in results:
            differ = [i for i, (x, y) in enumerate(zip(texts, reference)) if x != y]
            if differ:
                print(f"{name}: greedy text differs from (a) for prompts {differ}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
