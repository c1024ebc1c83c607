"""The prompt a local chat model (hf, vllm) continues: the tokenizer's chat template with
`tools=` where the template renders tools, else the tools described in a system message
(Hermes `<tool_call>` format); and the reply parsed back into text, reasoning and tool calls."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from evalkit.model.api import warn_unsupported
from evalkit.model.types import ChatCompletionChoice, ChatMessage, ChatMessageTool, StopReason
from evalkit.providers.openai.wire import function_tool, text_prompt, tool_result_text
from evalkit.providers.local.tool_parsing import parse_reply
from evalkit.tool.types import ToolChoice, ToolInfo


@dataclass(frozen=True)
class ChatRequest:
    """One request to a local chat model: its messages and the tools its prompt offers."""

    messages: tuple[ChatMessage, ...]
    tools: tuple[ToolInfo, ...] = ()

    @property
    def length(self) -> int:
        """Its size in characters (requests of similar size are batched together)."""
        return sum(len(m.text) for m in self.messages) + sum(len(t.description) for t in self.tools)


def chat_request(
    provider: str, messages: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None
) -> ChatRequest:
    """The request for a text-only local model: images refused with one line; tools offered
    unless tool_choice is "none" (a local model cannot be forced to call one)."""
    refuse_images(provider, messages)
    if tools and tool_choice not in (None, "auto", "none"):
        warn_unsupported(provider, "tool_choice", "a local model cannot be forced to call a tool; offered as 'auto'")
    return ChatRequest(tuple(messages), tuple(tools) if tool_choice != "none" else ())


def refuse_images(provider: str, messages: list[ChatMessage]) -> None:
    """Fail with one line if `messages` hold an image (a text-only model would silently drop it)."""
    for message in messages:
        text_prompt(message, f"provider '{provider}' (a text-only local model)")


def reply_choice(text: str, stop_reason: StopReason, request: ChatRequest) -> ChatCompletionChoice:
    """One generated answer to `request`: reasoning and (when it offered tools) tool calls parsed out."""
    message = parse_reply(text, bool(request.tools), len(request.messages))
    return ChatCompletionChoice(message, stop_reason="tool_calls" if message.tool_calls else stop_reason)


def template_takes_tools(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template renders a `tools=` list."""
    template = tokenizer.chat_template
    if isinstance(template, dict):
        return "tool_use" in template or any("tools" in text for text in template.values())
    return "tools" in (template or "")


def render_prompt(tokenizer: Any, request: ChatRequest, use_template: bool, template_tools: bool) -> str:
    """The prompt for `request`: through the chat template (with `tools=` when it renders
    them, else with the tools described in a system message), or plain text for base models."""
    if use_template and template_tools:
        chat = [template_message(m) for m in request.messages]
        schemas = [function_tool(t) for t in request.tools] or None
        return tokenizer.apply_chat_template(chat, tools=schemas, add_generation_prompt=True, tokenize=False)
    chat = described_tools_chat(request.messages, request.tools)
    if use_template:
        return tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    return "\n\n".join(m["content"] for m in chat)


def template_message(message: ChatMessage) -> dict[str, Any]:
    """A message as chat templates that render tools expect it."""
    if isinstance(message, ChatMessageTool):
        return {"role": "tool", "content": tool_result_text(message), "name": message.function,
                "tool_call_id": message.tool_call_id}
    data: dict[str, Any] = {"role": message.role, "content": message.text}
    if message.role == "assistant" and message.tool_calls:
        data["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.function, "arguments": call.arguments}}
            for call in message.tool_calls
        ]
    return data


TOOLS_INSTRUCTION = (
    "You may call the tools below. To call one, reply with one line per call, exactly:\n"
    '<tool_call>{{"name": "<tool name>", "arguments": {{<arguments as JSON>}}}}</tool_call>\n'
    "The results come back in <tool_response> tags. Tools:\n<tools>\n{tools}\n</tools>"
)
"""The system message that offers tools to a model whose chat template ignores them (the
Hermes format, which `tool_parsing` reads back)."""


def described_tools_chat(messages: tuple[ChatMessage, ...], tools: tuple[ToolInfo, ...]) -> list[dict[str, str]]:
    """Plain role/content messages for a template that knows no tools: the tools listed in
    the system message, calls written as `<tool_call>` lines, results as a user turn of
    `<tool_response>` blocks."""
    chat: list[dict[str, str]] = []
    for index, message in enumerate(messages):
        if isinstance(message, ChatMessageTool):
            response = json.dumps({"name": message.function, "content": tool_result_text(message)})
            block = f"<tool_response>\n{response}\n</tool_response>"
            if index and isinstance(messages[index - 1], ChatMessageTool):
                chat[-1]["content"] += "\n" + block
            else:
                chat.append({"role": "user", "content": block})
        elif message.role == "assistant" and message.tool_calls:
            calls = [json.dumps({"name": c.function, "arguments": c.arguments}) for c in message.tool_calls]
            lines = [message.text, *(f"<tool_call>{call}</tool_call>" for call in calls)]
            chat.append({"role": "assistant", "content": "\n".join(line for line in lines if line)})
        else:
            chat.append({"role": message.role, "content": message.text})
    if tools:
        listed = "\n".join(json.dumps(function_tool(t)) for t in tools)
        offer = TOOLS_INSTRUCTION.format(tools=listed)
        if chat and chat[0]["role"] == "system":
            chat[0] = {"role": "system", "content": f"{chat[0]['content']}\n\n{offer}"}
        else:
            chat.insert(0, {"role": "system", "content": offer})
    return chat
