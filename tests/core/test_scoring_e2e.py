"""Built-in scorers and multiple_choice(shuffle=...) through eval(): logged score values and metrics.

Replies come from `mockllm` (`model_args={"outputs": [...]}`) or, where the reply depends on the
prompt shown, from a small ModelAPI that answers multiple-choice prompts. Each defect of issue 8
item 2 has its own assertion on the logged score.
"""

from __future__ import annotations

import json
import math
import random
import re
import statistics
from pathlib import Path
from typing import Any, Callable

import pytest

from evalkit import Model, ModelAPI, ModelOutput, Sample, Task, eval, read_eval_log
from evalkit.errors import DefinitionError
from evalkit.log.schema import EvalLog
from evalkit.model.types import ChatMessage, GenerateConfig
from evalkit.scorer import Scorer, answer, choice, exact, f1, match, pattern
from evalkit.solver import multiple_choice
from tests.conftest import REPO, run_cli

NINE = ["3", "4", "5", "6", "7", "8", "9", "10", "11"]  # nine options: "I" is one of the letters


def run(task: Task, log_dir: Path, replies: list[str] | None = None, **kwargs: Any) -> EvalLog:
    model_args = {"outputs": replies} if replies else {}
    [log] = eval(task, model="mockllm/x", model_args=model_args, max_samples=1, log_dir=log_dir, display="none", **kwargs)
    assert log.status == "success", log.error
    return log


def logged(log: EvalLog, scorer_name: str) -> dict[str, tuple[Any, Any]]:
    """{reply: (score value, answer read)} as read back from the log file."""
    samples = read_eval_log(log.location).samples
    return {s.output["completion"]: (s.scores[scorer_name]["value"], s.scores[scorer_name].get("answer")) for s in samples}


def same_target(replies: list[str], target: str, scorer: Scorer | list[Scorer], **sample: Any) -> Task:
    """One sample per reply, all with the same target (so the order replies go out in does not matter)."""
    return Task(dataset=[Sample(input=f"q{i}", target=target, **sample) for i in range(len(replies))], scorer=scorer)


def expected_stderr(values: list[float]) -> float:
    return statistics.stdev(values) / math.sqrt(len(values))


# --- issue 8, item 2: each defect through eval() ------------------------------------------

def test_choice_reads_the_letter_the_reply_picks(log_dir: Path) -> None:
    replies = ["The answer is B. A is wrong because 3 is too small.", "B) 4. I am confident.", "b",
               "the answer is (b)", "ANSWER: A"]
    task = same_target(replies, "B", choice(), choices=NINE)
    task.solver = multiple_choice()
    log = run(task, log_dir, replies)
    scores = logged(log, "choice")
    assert scores["The answer is B. A is wrong because 3 is too small."] == ("C", "B")  # was read as A
    assert scores["B) 4. I am confident."] == ("C", "B")  # with nine options, was read as I
    assert scores["b"] == ("C", "B")  # lowercase was missed
    assert scores["the answer is (b)"] == ("C", "B")
    assert scores["ANSWER: A"] == ("I", "A")
    values = [1.0, 1.0, 1.0, 1.0, 0.0]
    assert log.results["choice"] == {"accuracy": 0.8, "stderr": pytest.approx(expected_stderr(values))}


def test_match_target_4_is_not_found_in_4500(log_dir: Path) -> None:
    replies = ["4,500 people", "There are 4"]
    scorers = [match(), match("begin"), match("any"), match(numeric=True), match("any", numeric=True)]
    log = run(same_target(replies, "4", scorers), log_dir, replies)
    assert logged(log, "match")["4,500 people"][0] == "I"
    assert logged(log, "match1")["4,500 people"][0] == "I"  # begin: was correct
    assert logged(log, "match2")["4,500 people"][0] == "I"  # any: was correct
    assert logged(log, "match3")["4,500 people"] == ("I", "4500")
    assert logged(log, "match4")["4,500 people"][0] == "I"
    assert logged(log, "match")["There are 4"][0] == "C"
    assert {name: r["accuracy"] for name, r in log.results.items()} == {
        "match": 0.5, "match1": 0.0, "match2": 0.5, "match3": 0.5, "match4": 0.5}


def test_numeric_match_reads_point_5_as_a_half(log_dir: Path) -> None:
    replies = ["The ratio is .5", "The ratio is 5"]
    log = run(same_target(replies, "0.5", match(numeric=True)), log_dir, replies)
    scores = logged(log, "match")
    assert scores["The ratio is .5"] == ("C", ".5")  # was read as 5
    assert scores["The ratio is 5"] == ("I", "5")
    assert log.results["match"] == {"accuracy": 0.5, "stderr": pytest.approx(expected_stderr([1.0, 0.0]))}


def test_numeric_match_does_not_read_a_range_as_a_negative_number(log_dir: Path) -> None:
    replies = ["The range is 10-15", "It is -15."]
    log = run(same_target(replies, "-15", match(numeric=True)), log_dir, replies)
    scores = logged(log, "match")
    assert scores["The range is 10-15"][0] == "I" and scores["The range is 10-15"][1] != "-15"  # was -15
    assert scores["It is -15."] == ("C", "-15")
    assert log.results["match"]["accuracy"] == 0.5


def test_match_exact_needs_the_whole_reply(log_dir: Path) -> None:
    replies = ["The answer is Paris", "  paris. "]
    log = run(same_target(replies, "Paris", [match("exact"), match("end")]), log_dir, replies)
    assert logged(log, "match")["The answer is Paris"][0] == "I"  # acted like "end"
    assert logged(log, "match")["  paris. "][0] == "C"
    assert logged(log, "match1")["The answer is Paris"][0] == "C"
    assert log.results["match"]["accuracy"] == 0.5 and log.results["match1"]["accuracy"] == 1.0


def test_exact_ignores_case_articles_and_punctuation(log_dir: Path) -> None:
    replies = ["eiffel tower", "THE EIFFEL TOWER!", "An Eiffel tower.", "Eiffel Tower, Paris"]
    log = run(same_target(replies, "The Eiffel Tower", exact()), log_dir, replies)
    scores = logged(log, "exact")
    assert scores["eiffel tower"][0] == "C"  # was case-sensitive
    assert scores["THE EIFFEL TOWER!"][0] == "C"
    assert scores["An Eiffel tower."][0] == "C"
    assert scores["Eiffel Tower, Paris"][0] == "I"
    values = [1.0, 1.0, 1.0, 0.0]
    assert log.results["exact"] == {"mean": 0.75, "stderr": pytest.approx(expected_stderr(values))}


# --- the other built-in scorers -------------------------------------------------------------

def test_pattern_gives_noanswer_when_nothing_matches(log_dir: Path) -> None:
    replies = ["so ANSWER: 42", "ANSWER: 41", "I cannot say"]
    log = run(same_target(replies, "42", pattern(r"ANSWER:\s*(\d+)")), log_dir, replies)
    assert logged(log, "pattern") == {"so ANSWER: 42": ("C", "42"), "ANSWER: 41": ("I", "41"), "I cannot say": ("N", None)}
    assert log.results["pattern"]["accuracy"] == pytest.approx(1 / 3)  # NOANSWER counts as 0


def test_answer_and_f1(log_dir: Path) -> None:
    replies = ["Thinking.\nANSWER: Yes, surely", "ANSWER: no", "yes"]
    log = run(same_target(replies, "yes", [answer("word"), f1()]), log_dir, replies)
    assert logged(log, "answer") == {replies[0]: ("C", "Yes"), replies[1]: ("I", "no"), replies[2]: ("N", None)}
    f1_values = {reply: v for reply, (v, _) in logged(log, "f1").items()}
    assert f1_values == {replies[0]: 0.4, replies[1]: 0.0, replies[2]: 1.0}  # "thinking answer yes surely" vs "yes"
    assert log.results["f1"]["mean"] == pytest.approx(statistics.mean(f1_values.values()))
    assert read_eval_log(log.location).header["scorers"] == [
        {"name": "answer", "args": {"pattern": "word"}}, {"name": "f1", "args": {"answer_fn": None, "stop_words": None}}]


# --- multiple_choice(shuffle=...) -----------------------------------------------------------

RIGHT = "the right one"


class MultipleChoiceAnswerer(ModelAPI):
    """Answers a multiple-choice prompt with `ANSWER: X`, X the letter shown beside the option
    `pick(prompt)` returns."""

    def __init__(self, model_name: str, pick: Callable[[str], str], **kwargs: Any) -> None:
        super().__init__(model_name, **kwargs)
        self.pick = pick

    async def generate(self, messages: list[ChatMessage], config: GenerateConfig) -> ModelOutput:
        prompt = messages[-1].content
        letter = re.search(rf"^([A-Z])\) {re.escape(self.pick(prompt))}$", prompt, re.MULTILINE)
        return ModelOutput.from_text("answerer", f"ANSWER: {letter.group(1) if letter else '?'}")


def answerer(pick: Callable[[str], str] = lambda prompt: RIGHT) -> Model:
    return Model("answerer/x", MultipleChoiceAnswerer("x", pick))


def mc_samples(n: int = 8) -> list[Sample]:
    """`n` questions whose right option sits at position i % 4 of four."""
    samples = []
    for i in range(n):
        options = [f"wrong {k}" for k in range(3)]
        options.insert(i % 4, RIGHT)
        samples.append(Sample(input=f"Question {i}?", choices=options, target="ABCD"[i % 4], id=f"q{i}"))
    return samples


def shown(log: EvalLog) -> dict[tuple[str, int], list[str]]:
    """The options each (sample, epoch) was shown, in order, from the logged prompt."""
    return {(s.id, s.epoch): re.findall(r"^[A-Z]\) (.+)$", s.messages[0]["content"], re.MULTILINE)
            for s in read_eval_log(log.location).samples}


def test_shuffled_choices_are_scored_in_the_dataset_letters(log_dir: Path) -> None:
    samples = mc_samples()
    task = Task(dataset=samples, solver=multiple_choice(shuffle=True), scorer=choice(), epochs=2)
    [log] = eval(task, model=answerer(), log_dir=log_dir, display="none")
    records = read_eval_log(log.location).samples
    assert len(records) == 16 and log.results["choice"]["accuracy"] == 1.0
    for record in records:
        assert record.scores["choice"]["answer"] == record.target  # the dataset's letter, not the shown one
    orders = shown(log)
    originals = {s.id: s.choices for s in samples}
    assert all(sorted(order) == sorted(originals[key[0]]) for key, order in orders.items())
    assert any(order != originals[key[0]] for key, order in orders.items())  # shuffled
    assert any(orders[(s.id, 1)] != orders[(s.id, 2)] for s in samples)  # drawn per epoch
    assert all(s.choices == mc_samples()[i].choices for i, s in enumerate(samples))  # the dataset is untouched
    for record in records:  # the explanation names the shown order in the dataset's letters
        letters = ", ".join("ABCD"[originals[record.id].index(o)] for o in orders[(record.id, record.epoch)])
        assert f"options shown in the order of the dataset's {letters};" in record.scores["choice"]["explanation"]


def test_shuffle_is_the_same_on_every_rerun_and_subset(log_dir: Path) -> None:
    task = Task(dataset=mc_samples(), solver=multiple_choice(shuffle=True), scorer=choice(), epochs=2)
    [first] = eval(task, model=answerer(), log_dir=log_dir, display="none")
    [again] = eval(task, model=answerer(), log_dir=log_dir, display="none", max_samples=1)
    [part] = eval(task, model=answerer(), log_dir=log_dir, display="none", limit="3-4")
    assert shown(first) == shown(again)
    assert shown(part) == {key: order for key, order in shown(first).items() if key[0] in ("q2", "q3")}


def test_shuffle_with_a_random_generator_is_reproducible(log_dir: Path) -> None:
    def orders(seed: int) -> dict[tuple[str, int], list[str]]:
        task = Task(dataset=mc_samples(), solver=multiple_choice(shuffle=random.Random(seed)), scorer=choice())
        [log] = eval(task, model=answerer(), log_dir=log_dir, display="none")
        assert log.results["choice"]["accuracy"] == 1.0
        return shown(log)

    assert orders(7) == orders(7)
    assert orders(7) != orders(8)


def test_a_wrong_pick_is_recorded_as_the_dataset_letter_of_what_was_shown(log_dir: Path) -> None:
    task = Task(dataset=mc_samples(), solver=multiple_choice(shuffle=True), scorer=choice())
    log = run(task, log_dir, ["ANSWER: A"])  # always the option shown first
    originals = {s.id: s.choices for s in mc_samples()}
    right = 0
    for record in read_eval_log(log.location).samples:
        first_shown = shown(log)[(record.id, record.epoch)][0]
        dataset_letter = "ABCD"[originals[record.id].index(first_shown)]
        assert record.scores["choice"]["answer"] == dataset_letter
        right += first_shown == RIGHT
    assert log.results["choice"]["accuracy"] == right / 8


def test_without_shuffle_the_dataset_order_is_shown(log_dir: Path) -> None:
    task = Task(dataset=mc_samples(4), solver=multiple_choice(), scorer=choice())
    [log] = eval(task, model=answerer(), log_dir=log_dir, display="none")
    assert all(order == mc_samples(4)[int(key[0][1:])].choices for key, order in shown(log).items())
    prompt = read_eval_log(log.location).samples[0].messages[0]["content"]
    assert "ANSWER: $LETTER" in prompt and "A,B,C,D" in prompt


def test_cot_asks_for_reasoning_before_the_answer_line(log_dir: Path) -> None:
    reply = "B cannot be right and C is a trap, so... ANSWER: A"
    log = run(Task(dataset=mc_samples(1), solver=multiple_choice(cot=True), scorer=choice()), log_dir, [reply])
    assert logged(log, "choice") == {reply: ("C", "A")}
    assert "step by step" in read_eval_log(log.location).samples[0].messages[0]["content"]


def test_multiple_correct(log_dir: Path) -> None:
    replies = ["ANSWER: C, A", "ANSWER: A"]
    task = same_target(replies, "A,C", choice(), choices=["4", "5", "9", "10"])
    task.solver = multiple_choice(multiple_correct=True)
    log = run(task, log_dir, replies)
    assert logged(log, "choice") == {"ANSWER: C, A": ("C", "A, C"), "ANSWER: A": ("I", "A")}
    prompt = read_eval_log(log.location).samples[0].messages[0]["content"]
    assert "more than one option may be correct" in prompt


def test_the_bundled_task_shuffles_on_request(log_dir: Path) -> None:
    rows = [json.loads(line) for line in (REPO / "tasks/data/multiple_choice.jsonl").read_text().splitlines()]
    right = {row["input"]: row["choices"]["ABCD".index(row["target"])] for row in rows}
    model = answerer(lambda prompt: next(text for question, text in right.items() if question in prompt))
    [log] = eval(str(REPO / "tasks/multiple_choice.py"), model=model, task_args={"shuffle": True}, log_dir=log_dir,
                 display="none")
    assert log.results["choice"]["accuracy"] == 1.0
    orders = shown(log)
    assert any(orders[(row["id"], 1)] != row["choices"] for row in rows)
    assert read_eval_log(log.location).header["solver"] == [{"name": "multiple_choice", "args": {
        "template": None, "cot": False, "multiple_correct": False, "shuffle": True}}]


def test_bad_multiple_choice_arguments_fail_when_made() -> None:
    with pytest.raises(DefinitionError, match=r"\{question\} and \{choices\}"):
        multiple_choice(template="Pick one: {choices}")
    with pytest.raises(DefinitionError, match="shuffle"):
        multiple_choice(shuffle="yes")  # type: ignore[arg-type]


def test_cli_shuffled_task_records_the_dataset_letters(tmp_path: Path) -> None:
    result = run_cli("eval", str(REPO / "tasks/multiple_choice.py"), "--model", "mockllm/x", "-M", 'outputs=["ANSWER: A"]',
                     "-T", "shuffle=true", "--epochs", "2", "--log-dir", str(tmp_path), "--display", "none")
    assert result.returncode == 0, result.stderr
    [path] = tmp_path.glob("*.jsonl")
    log = read_eval_log(path)
    rows = {row["id"]: row for row in map(json.loads, (REPO / "tasks/data/multiple_choice.jsonl").read_text().splitlines())}
    picked = {key: "ABCD"[rows[key[0]]["choices"].index(order[0])] for key, order in shown(log).items()}
    assert len(picked) == 24 and len(set(picked.values())) > 1  # "A" as shown is not always the dataset's A
    assert {(s.id, s.epoch): s.scores["choice"]["answer"] for s in log.samples} == picked
    right = sum(picked[(s.id, s.epoch)] == rows[s.id]["target"] for s in log.samples)
    assert log.footer["results"]["choice"]["accuracy"] == pytest.approx(right / 24)


def test_cli_bad_scorer_argument_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(
        "from evalkit import Task, Sample, task\nfrom evalkit.scorer import pattern\n"
        "@task\ndef t():\n    return Task(dataset=[Sample(input='q', target='x')], scorer=pattern('(unclosed'))\n")
    result = run_cli("eval", str(tmp_path / "bad.py"), "--model", "mockllm/x", "--log-dir", str(tmp_path / "logs"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: task 't': pattern(): '(unclosed' is not a valid regular expression: missing ), unterminated subpattern at position 0"]
