"""`hf-pipeline`: each task with a tiny random model built offline (SmolLM2 tokenizer)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import anyio
import pytest

import evalkit
from evalkit import ChatMessageSystem, ChatMessageUser, GenerateConfig, Sample, Task, get_model
from evalkit.errors import ModelArgsError
from evalkit.scorer import choice
from evalkit.solver import multiple_choice

SMALL = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4}


def save(folder: Path, model: Any, tokenizer: Any) -> str:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory, smol_tokenizer: Any) -> Callable[..., str]:
    """Builds a tiny random model of `cls` from `config_cls(**kwargs)` and saves it."""
    import torch

    def make(name: str, config_cls: Any, cls: Any, tokenizer: Any = smol_tokenizer, **kwargs: Any) -> str:
        torch.manual_seed(0)
        config = config_cls(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **kwargs)
        return save(tmp_path_factory.mktemp(name), cls(config), tokenizer)

    return make


def generate(model: evalkit.Model, *inputs: str | list[Any], config: GenerateConfig = GenerateConfig()) -> list[evalkit.ModelOutput]:
    async def main() -> list[evalkit.ModelOutput]:
        results: list[Any] = [None] * len(inputs)

        async def one(index: int) -> None:
            model.api.activity.active += 1
            try:
                results[index] = await model.generate(inputs[index], config)
            finally:
                model.api.activity.active -= 1

        async with anyio.create_task_group() as group:
            for index in range(len(inputs)):
                group.start_soon(one, index)
        return results

    return anyio.run(main)


def test_text_classification(build: Callable[..., str]) -> None:
    from transformers import LlamaConfig, LlamaForSequenceClassification

    path = build("classify", LlamaConfig, LlamaForSequenceClassification, num_labels=2,
                 id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1}, **SMALL)
    model = get_model("hf-pipeline/sentiment-analysis/local", model_path=path)
    outputs = generate(model, "I loved it", "A dreadful, boring and far too long film")
    assert model.api.batcher.batches == [2]
    for output in outputs:
        ranked = output.metadata["output"]
        assert output.metadata["task"] == "text-classification"
        assert {r["label"] for r in ranked} == {"NEGATIVE", "POSITIVE"}
        assert output.completion == max(ranked, key=lambda r: r["score"])["label"]
        assert abs(sum(r["score"] for r in ranked) - 1) < 1e-4
        assert output.usage.input_tokens > 0 and output.usage.output_tokens == 0
    assert outputs[0].model == "hf-pipeline/sentiment-analysis/local"


@pytest.fixture(scope="module")
def nli(build: Callable[..., str]) -> str:
    from transformers import LlamaConfig, LlamaForSequenceClassification

    labels = {0: "contradiction", 1: "neutral", 2: "entailment"}
    return build("nli", LlamaConfig, LlamaForSequenceClassification, num_labels=3, id2label=labels,
                 label2id={v: k for k, v in labels.items()}, **SMALL)


def test_zero_shot_labels_from_model_args_and_from_the_prompt(nli: str) -> None:
    model = get_model("hf-pipeline/zero-shot-classification/local", model_path=nli, candidate_labels="sports, politics, food")
    output = generate(model, "The match ended in a draw.")[0]
    assert output.completion == output.metadata["output"]["labels"][0]
    assert sorted(output.metadata["output"]["labels"]) == ["food", "politics", "sports"]

    from_prompt = get_model("hf-pipeline/zero-shot-classification/local", model_path=nli)
    outputs = generate(from_prompt, "Which animal barks?\n\nA) cat\nB) dog", "Pick a fruit\n\nA) apple\nB) stone\nC) pear")
    assert from_prompt.api.batcher.batches == [1, 1]  # different candidate labels never share a batch
    assert sorted(outputs[0].metadata["output"]["labels"]) == ["cat", "dog"]
    assert outputs[0].metadata["output"]["sequence"] == "Which animal barks?"
    assert outputs[1].completion in {"apple", "stone", "pear"}


def test_zero_shot_through_eval_logs_the_pipeline_output(nli: str, tmp_path: Path) -> None:
    task = Task(
        dataset=[Sample(input="Which animal barks?", choices=["cat", "dog"], target="B"),
                 Sample(input="Which one is a fruit?", choices=["apple", "stone"], target="A")],
        solver=multiple_choice(template="{question}\n\n{choices}"),
        scorer=choice(),
        name="zero-shot",
    )
    log = evalkit.eval(task, "hf-pipeline/zero-shot-classification/local", model_args={"model_path": nli},
                       log_dir=tmp_path, display="none")[0]
    assert log.footer["status"] == "success" and log.footer["counts"]["completed"] == 2
    for line in log.location.read_text().splitlines()[1:-1]:
        sample = json.loads(line)
        pipeline_output = sample["output"]["metadata"]["output"]
        assert sample["output"]["completion"] == pipeline_output["labels"][0]
        assert sample["scores"]["choice"]["answer"] in {"A", "B"}  # the label text maps back to its letter


@pytest.fixture(scope="module")
def qa(build: Callable[..., str]) -> str:
    from transformers import LlamaConfig, LlamaForQuestionAnswering

    return build("qa", LlamaConfig, LlamaForQuestionAnswering, **SMALL)


def test_question_answering_context_from_system_message_or_sections(qa: str) -> None:
    model = get_model("hf-pipeline/question-answering/local", model_path=qa)
    context = "Tokyo is the capital of Japan. It has about fourteen million people."
    by_system = [ChatMessageSystem(content=context), ChatMessageUser(content="What is the capital of Japan?")]
    by_sections = f"Context: {context}\nQuestion: How many people live in Tokyo?"
    outputs = generate(model, by_system, by_sections)
    for output in outputs:
        found = output.metadata["output"]
        assert found["answer"] and found["answer"] in context
        assert context[found["start"]:found["end"]] == found["answer"]
        assert output.completion == found["answer"].strip() and 0 < found["score"] <= 1
    with pytest.raises(ValueError, match="needs a context"):
        anyio.run(model.generate, "What is the capital of Japan?")


def test_question_answering_top_k_gives_the_best_spans_as_choices(qa: str) -> None:
    context = "Tokyo is the capital of Japan. It has about fourteen million people."
    question = "What is the capital of Japan?"
    single = generate(get_model("hf-pipeline/question-answering/local", model_path=qa), question_and(context))[0]
    model = get_model("hf-pipeline/question-answering/local", model_path=qa, top_k=3)
    signature = json.dumps({"question": question, "context": context})  # the Snowflake signature's inputs
    by_system, by_signature = generate(model, question_and(context), signature)
    assert model.api.batcher.batches == [2]
    assert by_system.choices == by_signature.choices and by_system.metadata == by_signature.metadata
    spans = by_system.metadata["output"]
    assert len(spans) == len(by_system.choices) == 3
    assert [choice.message.text for choice in by_system.choices] == [span["answer"].strip() for span in spans]
    assert spans[0]["score"] >= spans[1]["score"] >= spans[2]["score"] > 0
    assert len({(span["start"], span["end"]) for span in spans}) == 3
    assert all(context[span["start"]:span["end"]] == span["answer"] for span in spans)
    best = single.metadata["output"]
    assert (spans[0]["start"], spans[0]["end"]) == (best["start"], best["end"]) and by_system.completion == single.completion
    assert spans[0]["score"] == pytest.approx(best["score"])
    with pytest.raises(ModelArgsError, match="top_k=0 must be a whole number of at least 1"):
        get_model("hf-pipeline/question-answering/local", model_path=qa, top_k=0)


def test_question_answering_top_k_from_the_command_line(qa: str, tmp_path: Path) -> None:
    from tests.conftest import run_cli

    signature = {"question": "What is the capital of Japan?", "context": "Tokyo is the capital of Japan."}
    (tmp_path / "spans.py").write_text(
        "from evalkit import Sample, Task, task\nfrom evalkit.scorer import exact\nfrom evalkit.solver import generate\n\n"
        f"@task\ndef spans():\n    return Task(dataset=[Sample(input={json.dumps(signature)!r}, target='Tokyo')], "
        "solver=[generate()], scorer=exact())\n"
    )
    args = ["eval", "spans.py", "--model", "hf-pipeline/question-answering/local", "-M", f"model_path={qa}"]
    result = run_cli(*args, "--top-k", "2", "--log-dir", "logs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (log,) = (tmp_path / "logs").glob("*.jsonl")
    output = json.loads(log.read_text().splitlines()[1])["output"]
    spans = output["metadata"]["output"]  # the log keeps the choices after the first under "choices"
    assert [output["completion"], *output["choices"]] == [span["answer"].strip() for span in spans]
    assert len(spans) == 2
    refused = run_cli(*args, "-M", "top_k=2", cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
        "error: -M top_k is a generation setting, not a model argument: use --top-k 2"]


def question_and(context: str) -> list[Any]:
    return [ChatMessageSystem(content=context), ChatMessageUser(content="What is the capital of Japan?")]


def test_text_classification_of_a_text_pair(nli: str) -> None:
    from transformers import pipeline

    premise, hypothesis = "A man is playing a guitar on stage.", "Someone is making music."
    model = get_model("hf-pipeline/text-classification/local", model_path=nli)
    pair, alone = generate(model, json.dumps({"text": premise, "text_pair": hypothesis}), premise)
    assert model.api.batcher.batches == [2]
    reference = pipeline("text-classification", model=nli, tokenizer=nli, device="cpu")
    for output, text in ((pair, {"text": premise, "text_pair": hypothesis}), (alone, premise)):
        expected = reference(text, top_k=None)
        assert [r["label"] for r in output.metadata["output"]] == [r["label"] for r in expected]
        scores = [r["score"] for r in output.metadata["output"]]
        assert scores == pytest.approx([r["score"] for r in expected], abs=1e-4)
        assert output.completion == expected[0]["label"]
    assert pair.metadata["output"] != alone.metadata["output"]  # the pair is read, not just its text
    assert pair.usage.input_tokens == len(model.api.tokenizer(premise, hypothesis)["input_ids"])
    assert alone.usage.input_tokens == len(model.api.tokenizer(premise)["input_ids"])
    top_one = get_model("hf-pipeline/text-classification/local", model_path=nli, top_k=1)
    (best,) = generate(top_one, json.dumps({"text": premise, "text_pair": hypothesis}))[0].metadata["output"]
    assert best["label"] == pair.completion and best["score"] == pytest.approx(pair.metadata["output"][0]["score"])


TAPAS_WORDS = "city population country paris tokyo lima france japan peru which what has the most is of how many ?"
CITIES = {"City": ["Paris", "Tokyo", "Lima"], "Population": ["2", "14", "10"]}


@pytest.fixture(scope="module")
def tapas(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny random TAPAS with an aggregation head and a WordPiece vocabulary written here;
    its cell bias selects every cell of the column it picks, so answers are never empty."""
    import torch
    from transformers import TapasConfig, TapasForQuestionAnswering, TapasTokenizer

    folder = tmp_path_factory.mktemp("tapas")
    digits = [str(d) for d in range(10)] + [f"##{d}" for d in range(10)]
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[EMPTY]"]
    (folder / "vocab.txt").write_text("\n".join(special + TAPAS_WORDS.split() + digits) + "\n")
    tokenizer = TapasTokenizer(str(folder / "vocab.txt"))
    torch.manual_seed(0)
    config = TapasConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_aggregation_labels=4, no_aggregation_label_index=0,
                         aggregation_labels={0: "NONE", 1: "SUM", 2: "AVERAGE", 3: "COUNT"})
    model = TapasForQuestionAnswering(config)
    with torch.no_grad():
        model.output_bias.fill_(50.0)
    return save(folder, model, tokenizer)


def test_table_question_answering_reads_each_table_form_and_matches_the_pipeline(tapas: str) -> None:
    from transformers import pipeline

    query = "Which city has the most population?"
    csv = "City,Population\nParis,2\nTokyo,14\nLima,10"
    countries = [{"Country": "France"}, {"Country": "Japan"}, {"Country": "Peru"}]
    model = get_model("hf-pipeline/table-question-answering/local", model_path=tapas)
    by_json, by_csv, by_signature, by_rows = generate(
        model,
        [ChatMessageSystem(content=json.dumps(CITIES)), ChatMessageUser(content=query)],
        [ChatMessageSystem(content=csv), ChatMessageUser(content=query)],
        json.dumps({"query": query, "table": json.dumps(CITIES)}),  # the Snowflake signature: table as JSON text
        [ChatMessageSystem(content=json.dumps(countries)), ChatMessageUser(content="What is the country?")],
    )
    assert model.api.batcher.batches == [4]
    reference = pipeline("table-question-answering", model=tapas, tokenizer=tapas, device="cpu")
    expected_cities = reference(table=CITIES, query=query)
    expected_countries = reference(table={"Country": ["France", "Japan", "Peru"]}, query="What is the country?")
    for output, expected in ((by_json, expected_cities), (by_csv, expected_cities), (by_signature, expected_cities),
                             (by_rows, expected_countries)):
        found = output.metadata["output"]
        assert output.metadata["task"] == "table-question-answering"
        assert found["answer"] == expected["answer"] and found["cells"] == expected["cells"] and found["cells"]
        assert found["coordinates"] == [list(c) for c in expected["coordinates"]]
        assert found["aggregator"] == expected.get("aggregator", "NONE")
        prefix = "" if found["aggregator"] == "NONE" else f"{found['aggregator']} > "
        assert output.completion == prefix + ", ".join(found["cells"])
        assert output.usage.input_tokens > 0 and output.usage.output_tokens == 0
    assert set(by_json.metadata["output"]["cells"]) <= {*CITIES["City"], *CITIES["Population"]}
    with pytest.raises(ValueError, match="table-question-answering needs a table"):
        anyio.run(model.generate, query)
    with pytest.raises(ValueError, match="the table has no rows"):
        anyio.run(model.generate, [ChatMessageSystem(content="City,Population"), ChatMessageUser(content=query)])


def test_table_question_answering_through_eval(tapas: str, tmp_path: Path) -> None:
    from transformers import pipeline

    from evalkit.scorer import exact
    from evalkit.solver import generate as generate_solver, system_message

    query = "Which city has the most population?"
    right = pipeline("table-question-answering", model=tapas, tokenizer=tapas, device="cpu")(table=CITIES, query=query)
    task = Task(
        dataset=[Sample(input=query, target=right["answer"], metadata={"table": CITIES}),
                 Sample(input=query, target="Nowhere", metadata={"table": CITIES})],
        solver=[system_message("{table}"), generate_solver()],  # a dict in metadata renders as a Python literal
        scorer=exact(),
        name="table-qa",
    )
    log = evalkit.eval(task, "hf-pipeline/table-question-answering/local", model_args={"model_path": tapas},
                       log_dir=tmp_path, display="none")[0]
    assert log.footer["status"] == "success" and log.footer["counts"]["completed"] == 2
    samples = [json.loads(line) for line in log.location.read_text().splitlines()[1:-1]]
    assert sorted(sample["scores"]["exact"]["value"] for sample in samples) == ["C", "I"]
    for sample in samples:
        assert sample["output"]["completion"] == right["answer"]
        assert sample["output"]["metadata"]["output"]["cells"] == right["cells"]


@pytest.fixture(scope="module")
def t5(build: Callable[..., str]) -> str:
    from transformers import T5Config, T5ForConditionalGeneration

    return build("t5", T5Config, T5ForConditionalGeneration, d_model=32, d_ff=64, num_layers=2, num_heads=2, d_kv=16,
                 decoder_start_token_id=0, eos_token_id=2,
                 task_specific_params={"summarization": {"prefix": "summarize: "},
                                       "translation_en_to_fr": {"prefix": "translate English to French: "}})


@pytest.mark.parametrize(("task", "prefix"), [
    ("summarization", "summarize: "), ("translation_en_to_fr", "translate English to French: "), ("text2text-generation", ""),
])
def test_seq2seq_tasks(t5: str, task: str, prefix: str) -> None:
    model = get_model(f"hf-pipeline/{task}/local", model_path=t5)
    config = GenerateConfig(temperature=0, max_tokens=6)
    outputs = generate(model, "The cat sat on the mat all day long.", "Hello", config=config)
    assert model.api.batcher.batches == [2]
    for output, text in zip(outputs, ["The cat sat on the mat all day long.", "Hello"]):
        assert output.metadata["output"]["input"] == prefix + text
        assert output.completion == output.metadata["output"]["generated_text"]
        assert 0 < output.usage.output_tokens <= 6 and output.usage.input_tokens > 0
    alone = generate(model, "Hello", config=config)[0]
    assert alone.completion == outputs[1].completion  # right padding does not change the answer


def test_seq2seq_num_choices_each_input_gets_its_own_sequences(t5: str) -> None:
    model = get_model("hf-pipeline/text2text-generation/local", model_path=t5)
    prompts = ["The cat sat on the mat all day long.", "Hello"]
    greedy = [generate(model, prompt, config=GenerateConfig(temperature=0, max_tokens=6))[0] for prompt in prompts]
    assert greedy[0].completion != greedy[1].completion  # the inputs' answers tell them apart
    near_greedy = GenerateConfig(temperature=1e-4, max_tokens=6, num_choices=2)  # sampling, but sure of its pick
    outputs = generate(model, *prompts, config=near_greedy)
    assert model.api.batcher.batches[-1] == 2
    for output, alone in zip(outputs, greedy):
        assert [choice.message.text for choice in output.choices] == [alone.completion] * 2
        assert [choice.stop_reason for choice in output.choices] == [alone.stop_reason] * 2
        assert output.usage.output_tokens == 2 * alone.usage.output_tokens
        assert output.usage.input_tokens == alone.usage.input_tokens


def test_fill_mask(build: Callable[..., str], smol_tokenizer: Any, tmp_path: Path) -> None:
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    smol_tokenizer.save_pretrained(tmp_path)
    masked = AutoTokenizer.from_pretrained(tmp_path)
    masked.add_special_tokens({"mask_token": "<mask>"})
    path = build("mlm", BertConfig, BertForMaskedLM, tokenizer=masked, hidden_size=64, intermediate_size=128,
                 num_hidden_layers=2, num_attention_heads=4)
    model = get_model("hf-pipeline/fill-mask/local", model_path=path, top_k=3)
    outputs = generate(model, "Paris is the [MASK] of France.", "The sky is <mask>.")
    for output in outputs:
        ranked = output.metadata["output"]
        assert len(ranked) == 3 and output.completion == ranked[0]["token_str"].strip()
        assert ranked[0]["score"] >= ranked[1]["score"] >= ranked[2]["score"]


def test_token_classification(build: Callable[..., str]) -> None:
    import torch
    from transformers import AutoModelForTokenClassification, BertConfig, BertForTokenClassification

    labels = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC"}
    path = build("ner", BertConfig, BertForTokenClassification, num_labels=4, id2label=labels,
                 label2id={v: k for k, v in labels.items()}, hidden_size=64, intermediate_size=128,
                 num_hidden_layers=2, num_attention_heads=4)
    tagger = AutoModelForTokenClassification.from_pretrained(path)
    with torch.no_grad():  # make every token a person's name, so the answer is predictable
        tagger.classifier.bias.copy_(torch.tensor([0.0, 50.0, 0.0, 0.0]))
    tagger.save_pretrained(path)
    model = get_model("hf-pipeline/ner/local", model_path=path)
    output = generate(model, "Alice met Bob")[0]
    entities = output.metadata["output"]
    assert entities and all(e["entity_group"] == "PER" for e in entities)
    assert output.completion == ", ".join(f"{e['word'].strip()} (PER)" for e in entities)
    assert "Alice" in output.completion and "Bob" in output.completion


def test_text_generation_matches_the_hf_provider(tiny_llama: Path) -> None:
    config = GenerateConfig(temperature=0, max_tokens=8)
    pipeline = get_model("hf-pipeline/text-generation/local", model_path=str(tiny_llama))
    direct = get_model("hf/local", model_path=str(tiny_llama))
    prompts = ["Hi", "What is the capital of Japan?"]
    piped = generate(pipeline, *prompts, config=config)
    plain = generate(direct, *prompts, config=config)
    assert pipeline.api.batcher.batches == [2]
    for a, b in zip(piped, plain):
        assert a.completion == b.completion
        assert a.usage.input_tokens == b.usage.input_tokens
        assert a.stop_reason == b.stop_reason == "max_tokens"


def test_text_generation_trims_at_stop_sequences(tiny_llama: Path) -> None:
    greedy = GenerateConfig(temperature=0, max_tokens=12)
    pipeline = get_model("hf-pipeline/text-generation/local", model_path=str(tiny_llama))
    direct = get_model("hf/local", model_path=str(tiny_llama))
    prompts = ["Hi", "What is the capital of Japan?", "Name a colour."]
    full = generate(pipeline, *prompts, config=greedy)
    stop = full[1].completion.split()[2]  # a word from the middle of one answer
    stopped = greedy.merge(GenerateConfig(stop_seqs=(stop,)))
    piped = generate(pipeline, *prompts, config=stopped)
    plain = generate(direct, *prompts, config=stopped)
    for whole, cut, reference in zip(full, piped, plain):
        if stop in whole.completion:
            assert cut.completion == whole.completion[: whole.completion.index(stop)]
            assert cut.stop_reason == "stop"
        else:
            assert cut.completion == whole.completion and cut.stop_reason == "max_tokens"
        assert cut.completion == reference.completion and cut.stop_reason == reference.stop_reason
    assert stop not in piped[1].completion and piped[1].completion


def test_text_generation_num_choices_each_input_gets_its_own_sequences(tiny_llama: Path) -> None:
    model = get_model("hf-pipeline/text-generation/local", model_path=str(tiny_llama))
    prompts = ["Hi", "What is the capital of Japan?"]
    greedy = [generate(model, prompt, config=GenerateConfig(temperature=0, max_tokens=6))[0] for prompt in prompts]
    assert greedy[0].completion != greedy[1].completion
    outputs = generate(model, *prompts, config=GenerateConfig(temperature=1e-4, max_tokens=6, num_choices=2))
    assert model.api.batcher.batches[-1] == 2
    for output, alone in zip(outputs, greedy):
        assert [choice.message.text for choice in output.choices] == [alone.completion] * 2
        assert output.usage.output_tokens == 2 * alone.usage.output_tokens
        assert output.usage.input_tokens == alone.usage.input_tokens


def test_weights_name_and_hash(tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path))
    model = get_model("hf-pipeline/text-generation/local", model_path=str(tiny_llama))
    digest = hashlib.sha256((tiny_llama / "model.safetensors").read_bytes()).hexdigest()
    assert model.api.weights() == {"name": tiny_llama.name, "sha256": digest}


def test_unknown_task_is_a_model_args_error(tiny_llama: Path) -> None:
    with pytest.raises(ModelArgsError, match="must be <task>/<model>"):
        get_model("hf-pipeline/image-classification/local", model_path=str(tiny_llama))


def test_tools_fail_with_one_line_and_images_fail_their_request(tiny_llama: Path, tmp_path: Path) -> None:
    from evalkit.errors import ImagesUnsupportedError, ToolsUnsupportedError
    from evalkit.model.content import ContentImage, ContentText
    from evalkit.solver import generate as generate_solver, use_tools
    from evalkit.tool import ToolDef

    async def echo(text: str) -> str:
        """Echo the text.

        Args:
            text: The text.
        """
        return text

    pipeline = get_model("hf-pipeline/text-generation/local", model_path=str(tiny_llama))
    task = Task(dataset=[Sample(input="Hi", target="x")], solver=[use_tools(ToolDef.of(echo)), generate_solver()],
                scorer=choice(), name="pipeline-tools")
    log = evalkit.eval(task, pipeline, log_dir=tmp_path, display="none")[0]
    assert log.footer["status"] == "error"
    assert f"{ToolsUnsupportedError.__name__}: provider 'hf-pipeline' cannot call tools" in log.footer["error"]
    greedy = GenerateConfig(temperature=0, max_tokens=4)
    parts = [ContentText("What is the capital of Japan?")]
    text_parts, plain = generate(pipeline, [ChatMessageUser(parts)], "What is the capital of Japan?", config=greedy)
    assert text_parts.completion == plain.completion and text_parts.usage == plain.usage
    with pytest.raises(ImagesUnsupportedError, match=r"provider 'hf-pipeline' \(a text-only local model\) takes text only"):
        anyio.run(pipeline.generate, [ChatMessageUser([*parts, ContentImage("data:image/png;base64,iVBORw0KGgo=")])])
