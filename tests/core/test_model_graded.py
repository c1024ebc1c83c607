"""model_graded_qa() and model_graded_fact() through eval(), with mockllm answering and grading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evalkit import Sample, Task, eval, read_eval_log
from evalkit.errors import DefinitionError
from evalkit.model.model import get_model
from evalkit.model.types import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser
from evalkit.scorer import model_graded_fact, model_graded_qa
from evalkit.solver import generate


def run(tmp_path: Path, scorer: Any, samples: list[Sample], **kwargs: Any) -> Any:
    """Evaluate mockllm (which replies with what follows ANSWER: in the input) and read the log back."""
    task = Task(dataset=samples, solver=generate(), scorer=scorer)
    [log] = eval(task, model="mockllm/answerer", display="none", max_samples=1, log_dir=tmp_path, **kwargs)
    assert log.status == "success", log.error
    return read_eval_log(log.location)


def scores(log: Any, name: str = "model_graded_qa") -> list[dict[str, Any]]:
    return [sample.scores[name] for sample in sorted(log.samples, key=lambda s: s.id)]


def grader(*replies: str) -> Any:
    return get_model("mockllm/grader", outputs=list(replies))


QUESTIONS = [Sample(id=i, input=f"What is {i} + {i}? ANSWER: {2 * i}", target=str(2 * i)) for i in (1, 2, 3)]


def test_grades_c_and_i_give_accuracy(tmp_path: Path) -> None:
    log = run(tmp_path, model_graded_qa(model=grader("Looks right.\nGRADE: C", "grade : i", "GRADE: C")), QUESTIONS)
    assert [s["value"] for s in scores(log)] == ["C", "I", "C"]
    assert log.results["model_graded_qa"]["accuracy"] == pytest.approx(2 / 3)
    assert "stderr" in log.results["model_graded_qa"]
    first = scores(log)[0]
    assert first["answer"] == "2" and first["explanation"] == "Looks right.\nGRADE: C"


def test_partial_credit_counts_p_as_half_and_asks_for_it(tmp_path: Path) -> None:
    log = run(tmp_path, model_graded_qa(partial_credit=True, model=grader("GRADE: P", "GRADE: C", "GRADE: I")), QUESTIONS)
    assert [s["value"] for s in scores(log)] == ["P", "C", "I"]
    assert log.results["model_graded_qa"]["accuracy"] == pytest.approx(0.5)
    assert "P if it is partly right" in scores(log)[0]["metadata"]["grading"][0]["content"]


def test_p_without_partial_credit_is_incorrect(tmp_path: Path) -> None:
    log = run(tmp_path, model_graded_qa(model=grader("GRADE: P")), QUESTIONS[:1])
    [score] = scores(log)
    assert score["value"] == "I" and "partial_credit=False" in score["explanation"]
    assert "GRADE: P" not in score["metadata"]["grading"][0]["content"]


def test_reply_without_grade_is_incorrect_and_explained(tmp_path: Path) -> None:
    log = run(tmp_path, model_graded_qa(model=grader("I cannot decide.")), QUESTIONS[:1])
    [score] = scores(log)
    assert score["value"] == "I"
    assert score["explanation"] == "no grade found in the grader's reply: I cannot decide."
    assert score["metadata"]["grading"][1] == {"role": "assistant", "content": "I cannot decide."}


def test_template_variables_and_metadata_reach_the_grader(tmp_path: Path) -> None:
    template = "Q={question}|A={answer}|T={criterion}|I={instructions}|topic={topic}|question-field-ignored"
    samples = [Sample(id=1, input="Capital of France? ANSWER: Paris", target="Paris",
                      metadata={"topic": "geography", "question": "not this"})]
    log = run(tmp_path, model_graded_qa(template=template, instructions="Say GRADE: C.", model=grader("GRADE: C")), samples)
    [score] = scores(log)
    prompt = "Q=Capital of France? ANSWER: Paris|A=Paris|T=Paris|I=Say GRADE: C.|topic=geography|question-field-ignored"
    assert score["metadata"]["grading"] == [{"role": "user", "content": prompt}, {"role": "assistant", "content": "GRADE: C"}]
    assert score["metadata"]["grader"] == "mockllm/grader"


def test_default_template_shows_question_answer_and_criterion(tmp_path: Path) -> None:
    log = run(tmp_path, model_graded_qa(model=grader("GRADE: C")), QUESTIONS[1:2])
    prompt = scores(log)[0]["metadata"]["grading"][0]["content"]
    assert "What is 2 + 2? ANSWER: 4" in prompt and "=== RESPONSE ===\n4\n" in prompt and "=== CRITERION ===\n4\n" in prompt
    assert "GRADE: X, where X is one of C or I" in prompt


def test_include_history_presents_the_conversation(tmp_path: Path) -> None:
    conversation = [ChatMessageSystem(content="Be brief."), ChatMessageUser(content="Hi"),
                    ChatMessageAssistant(content="Hello"), ChatMessageUser(content="ANSWER: bye")]
    samples = [Sample(id=1, input=conversation, target="bye")]
    log = run(tmp_path, model_graded_qa(template="{question}", include_history=True, model=grader("GRADE: C")), samples)
    assert scores(log)[0]["metadata"]["grading"][0]["content"] == "Hi\n\nAssistant: Hello\n\nUser: ANSWER: bye"
    own = model_graded_qa(template="{question}", include_history=lambda state: f"{len(state.messages)} messages", model=grader("GRADE: C"))
    log = run(tmp_path, own, samples)
    assert scores(log)[0]["metadata"]["grading"][0]["content"] == "5 messages"


def test_fact_uses_the_target_as_the_criterion(tmp_path: Path) -> None:
    samples = [Sample(id=1, input="Who wrote Hamlet? ANSWER: It was Shakespeare.", target="William Shakespeare")]
    log = run(tmp_path, model_graded_fact(model=grader("Same fact.\nGRADE: C")), samples)
    [score] = scores(log, "model_graded_fact")
    prompt = score["metadata"]["grading"][0]["content"]
    assert "=== REFERENCE ANSWER ===\nWilliam Shakespeare\n" in prompt and "=== RESPONSE ===\nIt was Shakespeare.\n" in prompt
    assert score["value"] == "C" and log.results["model_graded_fact"]["accuracy"] == 1.0


def test_majority_of_three_graders_decides(tmp_path: Path) -> None:
    panel = [grader("GRADE: C", "GRADE: I"), "mockllm/second", grader("GRADE: C", "GRADE: C")]
    # "mockllm/second" gets no outputs: it replies with its default text, which holds no grade (I)
    log = run(tmp_path, model_graded_qa(model=panel), QUESTIONS[:2])
    first, second = scores(log)
    assert first["value"] == "C" and second["value"] == "I"
    assert [v["grader"] for v in first["metadata"]["votes"]] == ["mockllm/grader", "mockllm/second", "mockllm/grader"]
    assert "[mockllm/second: I]\nno grade found" in first["explanation"]
    assert first["metadata"]["votes"][0]["grading"][1]["content"] == "GRADE: C"


def test_a_tie_goes_to_the_earliest_grader(tmp_path: Path) -> None:
    partial = model_graded_qa(partial_credit=True, model=[grader("GRADE: P"), grader("GRADE: C"), grader("GRADE: I")])
    log = run(tmp_path, partial, QUESTIONS[:1])
    assert scores(log)[0]["value"] == "P"


def test_a_grader_given_by_name_grades(tmp_path: Path) -> None:
    log = run(tmp_path, model_graded_qa(model="mockllm/named"), QUESTIONS)
    assert all(s["metadata"]["grader"] == "mockllm/named" for s in scores(log))
    assert [s["value"] for s in scores(log)] == ["I", "I", "I"]


def test_bad_definitions_fail_with_one_clear_line() -> None:
    with pytest.raises(DefinitionError, match="capture group"):
        model_graded_qa(grade_pattern="GRADE: C")
    with pytest.raises(DefinitionError, match="not a valid regular expression"):
        model_graded_qa(grade_pattern="GRADE: (")
    with pytest.raises(DefinitionError, match="model must be"):
        model_graded_fact(model=[3])
    with pytest.raises(DefinitionError, match="names no grader"):
        model_graded_fact(model=[])


def test_unknown_template_variable_is_named(tmp_path: Path) -> None:
    task = Task(dataset=QUESTIONS[:1], solver=generate(), scorer=model_graded_qa(template="{nope}", model=grader("GRADE: C")))
    [log] = eval(task, model="mockllm/answerer", display="none", log_dir=tmp_path)
    assert log.status == "error" and "{nope}" in log.error


def test_a_failing_grader_in_a_panel_fails_the_sample_with_its_own_error(tmp_path: Path) -> None:
    panel = [grader("GRADE: C"), get_model("mockllm/broken", error_on="GRADE")]
    task = Task(dataset=QUESTIONS[:1], solver=generate(), scorer=model_graded_qa(model=panel))
    [log] = eval(task, model="mockllm/answerer", display="none", log_dir=tmp_path)
    assert log.status == "error" and "mockllm was asked to fail on 'GRADE'" in log.error
    assert "ExceptionGroup" not in log.error and "TaskGroup" not in log.error


def test_without_a_model_the_grader_role_grades_else_the_evaluated_model(tmp_path: Path) -> None:
    samples = [Sample(id=1, input="Reply with a grade. ANSWER: GRADE: C", target="GRADE: C")]
    judge = grader("GRADE: I")
    log = run(tmp_path, model_graded_qa(), samples, model_roles={"grader": judge})
    assert scores(log)[0]["metadata"]["grader"] == "mockllm/grader" and scores(log)[0]["value"] == "I"
    # no grader role: the evaluated model (mockllm replies with what follows ANSWER:) grades
    log = run(tmp_path, model_graded_qa(), samples)
    assert scores(log)[0]["metadata"]["grader"] == "mockllm/answerer" and scores(log)[0]["value"] == "C"
