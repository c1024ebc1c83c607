"""fewshot(): k examples drawn from a dataset, rendered into the prompt, through eval() and
the CLI; never the sample itself; the same draw on every run for a seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit import MemoryDataset, Sample, Task, eval, fewshot, read_eval_log
from evalkit.errors import DefinitionError
from evalkit.scorer import match
from evalkit.solver import generate, system_message
from tests.conftest import run_cli

QUESTIONS = MemoryDataset([Sample(input=f"What is {i}+{i}?", target=str(2 * i), metadata={"level": i % 3}) for i in range(1, 9)],
                          name="sums")


def run(tmp_path: Path, *solvers, dataset: MemoryDataset = QUESTIONS) -> dict:
    """Each sample's logged messages, by id."""
    [log] = eval(Task(dataset=dataset, solver=list(solvers), scorer=match()), model="mockllm/m", log_dir=tmp_path,
                 display="none")
    return {s.id: s.messages for s in read_eval_log(log.location).samples}


def examples_in(prompt: str) -> list[str]:
    return [block for block in prompt.split("\n\n") if block.startswith("Q: ")]


def test_examples_precede_the_question_and_never_include_it(tmp_path: Path) -> None:
    messages = run(tmp_path, fewshot(QUESTIONS, 3), generate())
    for sample_id, logged in messages.items():
        prompt = logged[0]["content"]
        shown = examples_in(prompt)
        question = f"What is {sample_id}+{sample_id}?"
        assert len(shown) == 3 and prompt.endswith("\n\n" + question)
        assert f"Q: {question}\nA: {2 * sample_id}" not in shown
    # without a seed: the first three examples other than the sample itself
    assert examples_in(messages[2][0]["content"]) == ["Q: What is 1+1?\nA: 2", "Q: What is 3+3?\nA: 6", "Q: What is 4+4?\nA: 8"]


def test_a_seed_draws_the_same_examples_for_a_sample_every_run(tmp_path: Path) -> None:
    first = run(tmp_path / "a", fewshot(QUESTIONS, 2, seed=4), generate())
    second = run(tmp_path / "b", fewshot(QUESTIONS, 2, seed=4), generate())
    other = run(tmp_path / "c", fewshot(QUESTIONS, 2, seed=5), generate())
    assert first == second and first != other
    draws = {tuple(examples_in(m[0]["content"])) for m in first.values()}
    assert len(draws) > 1  # drawn per sample, not one set for all


def test_system_role_template_fields_and_metadata(tmp_path: Path) -> None:
    pool = MemoryDataset([Sample(input="Pick one", target="B", choices=["x", "y"], metadata={"why": "y is right"})])
    messages = run(tmp_path, system_message("You answer quizzes."),
                   fewshot(pool, 1, template="{input}\n{choices}\nAnswer: {target} ({why})", role="system"), generate())
    logged = messages[1]
    assert [m["role"] for m in logged[:3]] == ["system", "system", "user"]
    assert logged[1]["content"] == "Pick one\nA) x\nB) y\nAnswer: B (y is right)"
    assert logged[2]["content"] == "What is 1+1?"


def test_too_few_examples_and_unknown_template_fields_are_refused() -> None:
    with pytest.raises(DefinitionError, match=r"k=9 but the dataset has 8 sample"):
        fewshot(QUESTIONS, 9)
    with pytest.raises(DefinitionError, match=r"the template uses \{answer\}, which example 1 \(id 1\) lacks"):
        fewshot(QUESTIONS, 1, template="Q: {input}\nA: {answer}")
    with pytest.raises(DefinitionError, match="k must be a positive whole number"):
        fewshot(QUESTIONS, 0)


def test_k_equal_to_the_evaluated_dataset_leaves_one_too_few(tmp_path: Path) -> None:
    [log] = eval(Task(dataset=QUESTIONS, solver=[fewshot(QUESTIONS, 8), generate()], scorer=match()), model="mockllm/m",
                 log_dir=tmp_path, display="none", fail_on_error=False)
    errors = [s.error for s in read_eval_log(log.location).samples]
    assert all(e and "k=8 but only 7 example(s) differ from sample" in e for e in errors)


def test_the_fewshot_dataset_is_part_of_the_task_identity(tmp_path: Path) -> None:
    [log] = eval(Task(dataset=QUESTIONS, solver=[fewshot(QUESTIONS, 2, seed=1), generate()], scorer=match()),
                 model="mockllm/m", log_dir=tmp_path, display="none")
    [step] = [s for s in log.header["solver"] if s["name"] == "fewshot"]
    assert step["args"]["dataset"] == {"name": "sums", "fingerprint": QUESTIONS.fingerprint()}
    assert step["args"]["k"] == 2 and step["args"]["seed"] == 1


def test_fewshot_from_an_hf_dataset_split_through_the_cli(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    rows = [{"question": f"q{i}", "answer": str(i)} for i in range(1, 7)]
    (tmp_path / "dev.json").write_text(json.dumps(rows[:3]))
    (tmp_path / "test.json").write_text(json.dumps([{**r, "question": r["question"] + " ANSWER: " + r["answer"]} for r in rows[3:]]))
    (tmp_path / "t.py").write_text(f"""
from evalkit import task, Task, FieldSpec, hf_dataset, fewshot
from evalkit.scorer import match
from evalkit.solver import generate

def split(name):
    return hf_dataset("json", data_files={{name: name + ".json"}}, split=name, cache_dir={str(tmp_path / 'cache')!r},
                      sample_fields=FieldSpec(input="question", target="answer"))

@task
def quiz():
    return Task(dataset=split("test"), solver=[fewshot(split("dev"), 2, seed=0), generate()], scorer=match())
""")
    result = run_cli("eval", "t.py", "--model", "mockllm/m", "--log-dir", "logs", "--display", "none", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [path] = (tmp_path / "logs").glob("*.jsonl")
    log = read_eval_log(path)
    assert log.footer["results"]["match"]["accuracy"] == 1.0 and log.header["dataset"]["name"] == "test"
    [step] = [s for s in log.header["solver"] if s["name"] == "fewshot"]
    assert step["args"]["dataset"]["name"] == "dev"
    for sample in log.samples:
        shown = examples_in(sample.messages[0]["content"])
        assert len(shown) == 2 and all(block in {"Q: q1\nA: 1", "Q: q2\nA: 2", "Q: q3\nA: 3"} for block in shown)
