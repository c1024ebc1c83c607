"""The Gemini wire shape (google-genai types): tools and tool choice, thinking config, messages
to Contents (tool calls and results, images, thought signatures) and a response back to a
ModelOutput. Shared by the `google` and `vertex` providers (providers/google/gemini.py)."""

from __future__ import annotations

import base64
import re

from google.genai import types

from evalkit.model.content import Content, ContentImage, ContentReasoning, ContentText, image_bytes, text_of
from evalkit.model.types import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageTool,
    GenerateConfig,
    Logprob,
    ModelOutput,
    ModelUsage,
    StopReason,
    TopLogprob,
)
from evalkit.tool.types import ToolCall, ToolChoice, ToolFunction, ToolInfo

FINISH_REASONS: dict[str, StopReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "max_tokens",
    **dict.fromkeys(
        ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
         "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR"),
        "content_filter",
    ),
}

LOCAL_CALL_ID = "evalkit-call-"
"""How the ids evalkit gives function calls that came without one begin."""

EFFORT_BUDGETS = {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
"""reasoning_effort as a thinking budget, for models before Gemini 3 (which have no thinkingLevel)."""

_BUDGET_ONLY = re.compile(r"gemini-[12]\.")

_MODES = {"auto": types.FunctionCallingConfigMode.AUTO, "any": types.FunctionCallingConfigMode.ANY,
          "none": types.FunctionCallingConfigMode.NONE}


def gemini_tool(tools: list[ToolInfo]) -> types.Tool:
    """One Tool declaring every function (parameters as JSON schema; none when it takes none)."""
    return types.Tool(function_declarations=[
        types.FunctionDeclaration(
            name=info.name, description=info.description,
            parameters_json_schema=info.parameters if info.parameters.get("properties") else None,
        )
        for info in tools
    ])


def gemini_tool_config(choice: ToolChoice) -> types.ToolConfig:
    """functionCallingConfig for a tool_choice: AUTO, ANY, NONE, or ANY restricted to one function."""
    if isinstance(choice, ToolFunction):
        calling = types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=[choice.name])
    else:
        calling = types.FunctionCallingConfig(mode=_MODES[choice])
    return types.ToolConfig(function_calling_config=calling)


def thinking_config(model_name: str, config: GenerateConfig) -> types.ThinkingConfig | None:
    """thinkingConfig from reasoning_tokens (a budget) or reasoning_effort (a level, or a budget
    for gemini-1.x/2.x models); thoughts are included either way."""
    if config.reasoning_tokens is not None:
        return types.ThinkingConfig(thinking_budget=config.reasoning_tokens, include_thoughts=True)
    effort = config.reasoning_effort
    if effort is None:
        return None
    if _BUDGET_ONLY.search(model_name):
        return types.ThinkingConfig(thinking_budget=EFFORT_BUDGETS[effort], include_thoughts=True)
    return types.ThinkingConfig(thinking_level=types.ThinkingLevel[effort.upper()], include_thoughts=True)


async def gemini_contents(messages: list[ChatMessage]) -> list[types.Content]:
    """The conversation as Contents: assistant turns as role "model" (text, thoughts, function
    calls), tool results as functionResponse parts, one user Content per run of results."""
    contents: list[types.Content] = []
    functions: dict[str, str] = {}  # call id -> function, for results that do not name it
    previous = ""
    for message in messages:
        if isinstance(message, ChatMessageTool):
            name = message.function or functions.get(message.tool_call_id or "", "")
            parts = await _tool_result_parts(message, name)
            if previous == "tool":
                contents[-1].parts = [*(contents[-1].parts or []), *parts]
            else:
                contents.append(types.Content(role="user", parts=parts))
        elif isinstance(message, ChatMessageAssistant):
            functions.update((call.id, call.function) for call in message.tool_calls or [])
            contents.append(types.Content(role="model", parts=await _assistant_parts(message)))
        elif message.role == "user":
            contents.append(types.Content(role="user", parts=await _parts(message.content) or [types.Part(text="")]))
        previous = message.role
    return contents


async def _parts(content: str | list[Content]) -> list[types.Part]:
    """Text and image parts of user or tool content (reasoning is the model's own, not sent)."""
    if isinstance(content, str):
        return [types.Part(text=content)]
    parts = []
    for item in content:
        if isinstance(item, ContentText):
            parts.append(types.Part(text=item.text))
        elif isinstance(item, ContentImage):
            mime, data = await image_bytes(item.image)
            parts.append(types.Part(inline_data=types.Blob(mime_type=mime, data=data)))
    return parts


async def _assistant_parts(message: ChatMessageAssistant) -> list[types.Part]:
    """A model turn's parts: thoughts, text and function calls, each signature back on its part."""
    parts: list[types.Part] = []
    signature: str | None = None
    items = [ContentText(message.content)] if isinstance(message.content, str) else message.content
    for item in items:
        if isinstance(item, ContentReasoning) and not item.reasoning:
            signature = item.signature  # kept from a part that was not a thought: belongs to the next part
            continue
        if isinstance(item, ContentReasoning):
            parts.append(types.Part(text=item.reasoning, thought=True, thought_signature=_signature_bytes(item.signature)))
            continue
        if isinstance(item, ContentText) and not item.text:
            continue
        [part] = await _parts([item])
        part.thought_signature, signature = _signature_bytes(signature), None
        parts.append(part)
    for call in message.tool_calls or []:
        function_call = types.FunctionCall(id=_gemini_id(call.id), name=call.function, args=call.arguments)
        parts.append(types.Part(function_call=function_call, thought_signature=_signature_bytes(signature)))
        signature = None
    return parts or [types.Part(text="")]


async def _tool_result_parts(message: ChatMessageTool, function: str) -> list[types.Part]:
    """A functionResponse ({"output": text} or {"error": message}, the keys Gemini reads) and the
    result's images."""
    response = {"error": message.error.message} if message.error else {"output": message.text}
    function_response = types.FunctionResponse(id=_gemini_id(message.tool_call_id), name=function, response=response)
    images = [part for part in message.content if isinstance(part, ContentImage)] if isinstance(message.content, list) else []
    return [types.Part(function_response=function_response), *await _parts(images)]


def _gemini_id(call_id: str | None) -> str | None:
    """The id Gemini gave a call (None for one evalkit named)."""
    return None if call_id is None or call_id.startswith(LOCAL_CALL_ID) else call_id


def _signature_bytes(signature: str | None) -> bytes | None:
    """A thoughtSignature kept as base64 (one that is not base64 came from elsewhere: dropped)."""
    if not signature:
        return None
    try:
        return base64.b64decode(signature, validate=True)
    except ValueError:
        return None


def gemini_output(response: types.GenerateContentResponse, model: str, first_call: int = 0) -> ModelOutput:
    """The ModelOutput for a generateContent response; calls without an id are numbered from
    `first_call` (the calls already in the conversation)."""
    choices = [_choice(candidate, first_call) for candidate in response.candidates or []]
    if not choices:
        blocked = bool(response.prompt_feedback and response.prompt_feedback.block_reason)
        choices = [ChatCompletionChoice(ChatMessageAssistant(content=""), "content_filter" if blocked else "unknown")]
    return ModelOutput(model=model, choices=choices, usage=_usage(response.usage_metadata))


def _choice(candidate: types.Candidate, first_call: int) -> ChatCompletionChoice:
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    content: list[Content] = []
    calls: list[ToolCall] = []
    for part in parts:
        signature = base64.b64encode(part.thought_signature).decode() if part.thought_signature else None
        if part.thought:
            content.append(ContentReasoning(part.text or "", signature))
            continue
        if signature:  # before the text this part continues: text parts are sent back joined
            joins = not part.function_call and content and isinstance(content[-1], ContentText)
            content.insert(len(content) - 1 if joins else len(content), ContentReasoning("", signature))
        if part.function_call:
            call = part.function_call
            calls.append(ToolCall(id=call.id or f"{LOCAL_CALL_ID}{first_call + len(calls)}", function=call.name or "",
                                  arguments=dict(call.args or {})))
        elif part.text:
            _append_text(content, part.text)
    reason = candidate.finish_reason.value if candidate.finish_reason else ""
    return ChatCompletionChoice(
        message=ChatMessageAssistant(content=_simplest(content), tool_calls=calls or None),
        stop_reason="tool_calls" if calls else FINISH_REASONS.get(reason, "unknown"),
        logprobs=_logprobs(candidate.logprobs_result),
    )


def _append_text(content: list[Content], text: str) -> None:
    """Add text, joined to the text just before it (Gemini splits one answer into parts)."""
    if content and isinstance(content[-1], ContentText):
        content[-1] = ContentText(content[-1].text + text)
    else:
        content.append(ContentText(text))


def _simplest(content: list[Content]) -> str | list[Content]:
    """Plain text as a string; reasoning and signatures keep the list."""
    if all(isinstance(item, ContentText) for item in content):
        return text_of(content)
    return content


def _logprobs(result: types.LogprobsResult | None) -> tuple[Logprob, ...] | None:
    if result is None or result.chosen_candidates is None:
        return None
    tops = result.top_candidates or []
    logprobs = []
    for index, chosen in enumerate(result.chosen_candidates):
        alternatives = (tops[index].candidates or []) if index < len(tops) else []
        logprobs.append(Logprob(
            token=chosen.token or "",
            logprob=chosen.log_probability or 0.0,
            top_logprobs=tuple(TopLogprob(c.token or "", c.log_probability or 0.0) for c in alternatives),
        ))
    return tuple(logprobs)


def _usage(metadata: types.GenerateContentResponseUsageMetadata | None) -> ModelUsage | None:
    if metadata is None:
        return None
    prompt = metadata.prompt_token_count or 0
    thoughts = metadata.thoughts_token_count or 0
    output = (metadata.candidates_token_count or 0) + thoughts
    return ModelUsage(prompt, output, metadata.total_token_count or prompt + output, reasoning_tokens=thoughts)
