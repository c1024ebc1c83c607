"""`hf` with tools: prompts built by the chat template (`tools=`, tool calls and results in the
history), requests with different tools in one batch, images refused; and the real bundled
model calling a tool through eval()."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

import evalkit
from evalkit import ChatMessageSystem, ChatMessageUser, GenerateConfig, Model, Sample, Task, get_model
from evalkit.errors import ImagesUnsupportedError
from evalkit.model.content import ContentImage, ContentText
from evalkit.model.types import ChatMessage, ChatMessageAssistant, ChatMessageTool
from evalkit.providers.local.chat_prompt import ChatRequest
from evalkit.scorer import includes
from evalkit.solver import generate, use_tools
from evalkit.tool import ToolCall, ToolCallError, ToolDef, ToolFunction, ToolInfo, tool
from tests.tools import add

TOOLS_TEMPLATE = (
    "{%- if tools %}<|im_start|>system\n"
    "{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}\n{% endif %}"
    "<tools>\n{% for t in tools %}{{ t | tojson }}\n{% endfor %}</tools><|im_end|>\n{% endif %}"
    "{%- for m in messages %}"
    "{%- if m['role'] == 'system' and tools %}"
    "{%- elif m['role'] == 'tool' %}<|im_start|>tool {{ m['name'] }} {{ m['tool_call_id'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{%- else %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
    "{% for c in m.get('tool_calls') or [] %}<tool_call>{{ c['function'] | tojson }}</tool_call>{% endfor %}"
    "<|im_end|>\n{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""A chat template that renders tools, calls and results (Hermes-like), for the tiny model."""

GREEDY = GenerateConfig(temperature=0.0, max_tokens=5)




@tool
def neg() -> Any:
    async def execute(x: int) -> int:
        """Negate an integer.

        Args:
            x: The integer.
        """
        return -x

    return execute


ADD = ToolDef.of(add()).info
NEG = ToolDef.of(neg()).info


@pytest.fixture(scope="module")
def tools_tokenizer(tmp_path_factory: pytest.TempPathFactory, smol_tokenizer: Any) -> Path:
    folder = tmp_path_factory.mktemp("tools-tokenizer")
    smol_tokenizer.save_pretrained(folder)
    config_file = folder / "tokenizer_config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "chat_template": TOOLS_TEMPLATE}))
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    return folder


@pytest.fixture(scope="module")
def tiny_tools(tiny_llama: Path, tools_tokenizer: Path) -> Model:
    return get_model("hf/local", model_path=str(tiny_llama), tokenizer_path=str(tools_tokenizer), batch_wait=5.0)


def schema(info: ToolInfo) -> dict[str, Any]:
    return {"type": "function", "function": {"name": info.name, "description": info.description,
                                             "parameters": info.parameters}}


def token_count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


HISTORY: list[ChatMessage] = [
    ChatMessageSystem("Be brief."),
    ChatMessageUser("Add 1 and 2, and add 5 and 6."),
    ChatMessageAssistant("Adding.", tool_calls=[ToolCall("c1", "add", {"x": 1, "y": 2}), ToolCall("c2", "add", {"x": 5})]),
    ChatMessageTool("3", tool_call_id="c1", function="add"),
    ChatMessageTool("", tool_call_id="c2", function="add", error=ToolCallError("parsing", "missing required argument(s): y")),
    ChatMessageAssistant("1 + 2 = 3."),
    ChatMessageUser("Add 3 and 4."),
]
HISTORY_AS_TEMPLATES_TAKE_IT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Add 1 and 2, and add 5 and 6."},
    {"role": "assistant", "content": "Adding.", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "add", "arguments": {"x": 1, "y": 2}}},
        {"id": "c2", "type": "function", "function": {"name": "add", "arguments": {"x": 5}}},
    ]},
    {"role": "tool", "content": "3", "name": "add", "tool_call_id": "c1"},
    {"role": "tool", "content": "Error: missing required argument(s): y", "name": "add", "tool_call_id": "c2"},
    {"role": "assistant", "content": "1 + 2 = 3."},
    {"role": "user", "content": "Add 3 and 4."},
]


def test_the_chat_template_renders_the_tools_and_the_tool_history_through_eval(
    tiny_tools: Model, tools_tokenizer: Path, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tools_tokenizer)
    expected = tokenizer.apply_chat_template(
        HISTORY_AS_TEMPLATES_TAKE_IT, tools=[schema(ADD)], add_generation_prompt=True, tokenize=False
    )
    assert '"description": "The first number."' in expected and '"arguments": {"x": 1, "y": 2}' in expected
    assert "<|im_start|>tool add c2\nError: missing required argument(s): y" in expected
    assert tiny_tools.api.prompt(ChatRequest(tuple(HISTORY), (ADD,))) == expected

    task = Task(dataset=[Sample(input=HISTORY, target="7")], solver=[use_tools(add()), generate()], scorer=includes(),
                config={"temperature": 0.0, "max_tokens": 5}, name="tools-template")
    log = evalkit.eval(task, tiny_tools, log_dir=tmp_path, display="none")[0]
    sample = evalkit.read_eval_log(log.location).samples[0]
    assert sample.error is None
    assert sample.usage["input_tokens"] == token_count(tokenizer, expected)  # the model read exactly that prompt
    assert sample.chat_messages[-1].role == "assistant" and sample.output["stop_reason"] == "max_tokens"


def test_requests_with_different_tools_share_a_batch_each_with_its_own_prompt(tiny_tools: Model) -> None:
    question = [ChatMessageUser("Add 3 and 4.")]
    offers: list[tuple[list[ToolInfo], Any]] = [([ADD], "auto"), ([NEG], "auto"), ([ADD, NEG], "auto"), ([ADD], "none")]
    before = len(tiny_tools.api.batcher.batches)

    async def main() -> list[evalkit.ModelOutput]:
        results: list[Any] = [None] * len(offers)

        async def one(index: int) -> None:
            tiny_tools.api.activity.active += 1
            try:
                tools, choice = offers[index]
                results[index] = await tiny_tools.generate(question, tools, choice, GREEDY)
            finally:
                tiny_tools.api.activity.active -= 1

        async with anyio.create_task_group() as group:
            for index in range(len(offers)):
                group.start_soon(one, index)
        return results

    outputs = anyio.run(main)
    assert tiny_tools.api.batcher.batches[before:] == [4]
    tokenizer = tiny_tools.api.tokenizer
    prompts = [
        tokenizer.apply_chat_template([{"role": "user", "content": "Add 3 and 4."}], tools=tools, add_generation_prompt=True,
                                      tokenize=False)
        for tools in ([schema(ADD)], [schema(NEG)], [schema(ADD), schema(NEG)], None)  # "none": no tools shown
    ]
    assert len(set(prompts)) == 4
    assert [o.usage.input_tokens for o in outputs] == [token_count(tokenizer, p) for p in prompts]


def test_a_forced_tool_choice_warns_that_it_is_offered_as_auto(tiny_tools: Model) -> None:
    with pytest.warns(UserWarning, match="provider 'hf' does not support tool_choice"):
        output = anyio.run(tiny_tools.generate, "Add 3 and 4.", [ADD], ToolFunction("add"), GREEDY)
    assert output.usage.input_tokens > 0


def test_reasoning_and_response_schema_warn_once_on_hf(tiny_tools: Model) -> None:
    config = GREEDY.merge(GenerateConfig(reasoning_effort="high", response_schema={"type": "object"}))
    with pytest.warns(UserWarning) as warned:
        anyio.run(tiny_tools.generate, "Hi", config)
    messages = {str(w.message) for w in warned}
    assert any("does not support reasoning_effort" in m for m in messages)
    assert any("does not support response_schema" in m for m in messages)


def test_tool_call_markers_survive_decoding_so_a_malformed_call_is_shown_its_error(bundled_folder: Path) -> None:
    from transformers import AutoTokenizer

    from evalkit.providers.local.hf import decode_generated, marker_ids
    from evalkit.providers.local.tool_parsing import parse_reply

    tokenizer = AutoTokenizer.from_pretrained(bundled_folder)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|python_tag|>"]})  # as Llama 3.x tokenizers have
    tokens = tokenizer.encode('<|python_tag|>{"name": "add", "parameters": {"x": 1', add_special_tokens=False)
    eos = {tokenizer.eos_token_id}
    without_tools = decode_generated(tokenizer, [*tokens, tokenizer.eos_token_id], eos, None)
    assert without_tools == ('{"name": "add", "parameters": {"x": 1', len(tokens) + 1, "stop")
    text, _, _ = decode_generated(tokenizer, [*tokens, tokenizer.eos_token_id], eos, None, marker_ids(tokenizer))
    assert text.startswith("<|python_tag|>{")
    (call,) = parse_reply(text, True).tool_calls or []
    assert call.function == "add" and "not valid JSON" in (call.parse_error or "")
    assert parse_reply(without_tools[0], True).tool_calls is None  # without the marker it is only text


IMAGE = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def test_an_image_fails_its_sample_with_one_line(tiny_tools: Model, tmp_path: Path) -> None:
    with pytest.raises(ImagesUnsupportedError, match=r"provider 'hf' \(a text-only local model\) takes text only, but a user message holds an image"):
        anyio.run(tiny_tools.generate, [ChatMessageUser([ContentText("What is this?"), ContentImage(IMAGE)])], GREEDY)
    dataset = [
        Sample(input=[ChatMessageUser([ContentText("What is this?"), ContentImage(IMAGE)])], target="x", id="image"),
        Sample(input="Hi", target="x", id="text"),
    ]
    task = Task(dataset=dataset, scorer=includes(), config={"temperature": 0.0, "max_tokens": 3}, name="images")
    log = evalkit.eval(task, tiny_tools, fail_on_error=False, log_dir=tmp_path, display="none")[0]
    samples = {s.id: s for s in evalkit.read_eval_log(log.location).samples}
    first_line = samples["image"].error.splitlines()[0]
    assert first_line.startswith("ImagesUnsupportedError: provider 'hf' (a text-only local model) takes text only, but a user message holds an image")
    assert samples["text"].error is None


FEW_SHOT: list[ChatMessage] = [
    message
    for index, (x, y) in enumerate([(1, 2), (5, 6)])
    for message in (
        ChatMessageUser(f"Add {x} and {y}."),
        ChatMessageAssistant("", tool_calls=[ToolCall(f"shot{index}", "add", {"x": x, "y": y})]),
        ChatMessageTool(str(x + y), tool_call_id=f"shot{index}", function="add"),
        ChatMessageAssistant(f"{x} + {y} = {x + y}."),
    )
]


@pytest.mark.slow
def test_the_bundled_model_calls_a_tool_through_eval(tmp_path: Path) -> None:
    """SmolLM2's template ignores tools: the tools are listed in a system message asking for
    Hermes <tool_call> lines. Shown two worked calls, the model (greedy) makes the third."""
    model = get_model("hf/bundled")
    assert not model.api.template_tools
    dataset = [
        Sample(input=[*FEW_SHOT, ChatMessageUser("Add 3 and 4.")], target="7", id="call"),
        Sample(input="What is the capital of Japan?", target="Tokyo", id="text"),
    ]
    task = Task(dataset=dataset, solver=[use_tools(add()), generate()], scorer=includes(),
                config={"temperature": 0.0, "max_tokens": 40}, name="bundled-tools")
    log = evalkit.eval(task, model, log_dir=tmp_path, display="none")[0]
    samples = {s.id: s for s in evalkit.read_eval_log(log.location).samples}

    called = samples["call"].chat_messages[len(FEW_SHOT) + 1 :]
    assert called[0].tool_calls and [(c.function, c.arguments) for c in called[0].tool_calls] == [("add", {"x": 3, "y": 4})]
    assert isinstance(called[1], ChatMessageTool) and called[1].text == "7" and called[1].error is None
    # the loop went on: a text reply after the tool's result (greedy SmolLM2-135M: "7 + 4 = 11.")
    assert called[2].role == "assistant" and not called[2].tool_calls and called[2].text
    assert len(called) == 3 and samples["call"].output["stop_reason"] == "stop"

    first_prompt = model.api.prompt(ChatRequest((*FEW_SHOT, ChatMessageUser("Add 3 and 4.")), (ADD,)))
    assert json.dumps(schema(ADD)) in first_prompt and "<tool_call>" in first_prompt
    assert '<tool_response>\n{"name": "add", "content": "3"}\n</tool_response>' in first_prompt
    second_prompt = model.api.prompt(ChatRequest(tuple(samples["call"].chat_messages[:-1]), (ADD,)))
    counted = token_count(model.api.tokenizer, first_prompt) + token_count(model.api.tokenizer, second_prompt)
    assert samples["call"].usage["input_tokens"] == counted  # the model read exactly these two prompts

    answered = samples["text"].chat_messages
    assert len(answered) == 2 and not answered[1].tool_calls and "Tokyo" in answered[1].text
