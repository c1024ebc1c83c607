"""`bedrock`: Amazon Bedrock models through the Converse API, on aioboto3.

Use `bedrock/<model-id>` (e.g. `bedrock/anthropic.claude-3-5-haiku-20241022-v1:0` or an
inference profile id). Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
AWS_SESSION_TOKEN (else the usual AWS chain: profiles, SSO, instance roles), region from
AWS_DEFAULT_REGION (or AWS_REGION), endpoint from BEDROCK_BASE_URL (or `base_url=`). Every `-M`
goes to `session.client("bedrock-runtime", ...)` (e.g. `-M region_name=eu-west-1`), except
`-M client_config={connect_timeout: 5, ...}`, the client's botocore `Config` as a mapping (the
name `config` is taken by the generate config). botocore's own retries are off: `Model` retries.

Request: `POST /model/{modelId}/converse` with system messages as `system`, the other turns as
`messages` (consecutive turns of one role merged; tool results go in a user turn),
max_tokens/temperature/top_p/stop_seqs as `inferenceConfig` maxTokens/temperature/topP/
stopSequences and top_k as `additionalModelRequestFields.top_k`. seed, penalties, num_choices
and logprobs are dropped with a warning.

Content: text as `text` blocks (a message or tool result with no content as "(empty)", since
Converse refuses blank text), images as `image` blocks (png, jpeg, gif or webp bytes; other
formats, and images in system messages, fail in one line), a model's reasoning as
`reasoningContent` blocks sent back unchanged (`reasoningText` with its signature, or
`redactedContent`, kept in the log as base64; reasoning without a signature is left out).

Tools: `toolConfig.tools` of `toolSpec`s, `toolChoice` auto/any/tool; the reply's `toolUse`
blocks become tool calls and tool results go back as `toolResult` blocks (`status: "error"`
for errors). Converse has no tool_choice "none": for it the tools are left out, and so are they
when none are offered; Converse refuses toolUse/toolResult blocks without a toolConfig, so in
those calls earlier tool calls and results are sent as text. parallel_tool_calls=False cannot be
asked for and warns. With Claude's thinking on, a forced choice ("any" or a ToolFunction) is
sent as auto with a warning, as Claude refuses forced tool use with thinking.

Reasoning: reasoning_tokens as `additionalModelRequestFields.thinking` (Claude's extended
thinking: `{"type": "enabled", "budget_tokens": N}`), with the budget added to max_tokens (or
to 4096) and temperature, top_p and top_k dropped with a warning, as Claude requires;
reasoning_effort as `additionalModelRequestFields.reasoningConfig.maxReasoningEffort` for
Amazon Nova models (`amazon.nova` in the id; "minimal" is sent as "low"). Each warns for the
other family. response_schema warns: Converse (bedrock-runtime 2023-09-30) has no
structured-output field.

stopReason end_turn/stop_sequence -> stop, tool_use -> tool_calls, max_tokens -> max_tokens,
model_context_window_exceeded -> model_length, content_filtered/guardrail_intervened ->
content_filter; usage from inputTokens/outputTokens/totalTokens.

Embeddings: `POST /model/{modelId}/invoke` (InvokeModel). Amazon Titan text embeddings
(`amazon.titan-embed-text-v2:0`): `{"inputText": ...}`, one text a request; Cohere Embed
(`cohere.embed-english-v3`, ...): `{"texts": [...], "input_type": "search_document"}`, up to 96.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from evalkit.errors import EmbeddingsUnsupportedError, ImagesUnsupportedError
from evalkit.model.api import warn_unsupported
from evalkit.model.content import Content, ContentImage, ContentReasoning, ContentText, image_bytes
from evalkit.model.types import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageTool,
    GenerateConfig,
    ModelOutput,
    ModelUsage,
    StopReason,
)
from evalkit.providers.aws.session import AWSAPI
from evalkit.providers.common.http_errors import MalformedResponseError
from evalkit.providers.common.turns import system_text, unforced
from evalkit.tool.types import ToolCall, ToolChoice, ToolFunction, ToolInfo, parse_tool_arguments

STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "max_tokens",
    "model_context_window_exceeded": "model_length",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
}

IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif", "image/webp": "webp"}

THINKING_ANSWER_TOKENS = 4096
"""maxTokens for the answer when thinking is on and max_tokens is not set: Claude counts its
thinking in maxTokens and requires maxTokens above the budget, so the budget is added."""

EMPTY_TEXT = {"text": "(empty)"}
"""Sent for a message or tool result with no content: Converse refuses blank text blocks."""

UNSUPPORTED = ("seed", "frequency_penalty", "presence_penalty", "num_choices", "logprobs", "top_logprobs")


class BedrockAPI(AWSAPI):
    """Bedrock's Converse API (see the module docstring)."""

    provider = "bedrock"
    service = "bedrock-runtime"
    base_url_env = "BEDROCK_BASE_URL"

    async def generate(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> ModelOutput:
        request = await converse_request(self.model_name, input, tools, tool_choice, config)
        return converse_output(await self.call("converse", **request), self.label)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """InvokeModel with an Amazon Titan or a Cohere embeddings body (see `embedding_family`)."""
        cohere = embedding_family(self.model_name, self.label) == "cohere"
        body = {"texts": texts, "input_type": "search_document"} if cohere else {"inputText": texts[0]}
        response = await self.call("invoke_model", modelId=self.model_name, body=json.dumps(body),
                                   contentType="application/json", accept="application/json")
        data = json.loads(await response["body"].read())
        vectors = data.get("embeddings") if cohere else [data.get("embedding")]
        if isinstance(vectors, dict):  # Cohere Embed v4 answers by embedding type
            vectors = vectors.get("float")
        if not isinstance(vectors, list) or not all(isinstance(v, list) for v in vectors):
            raise MalformedResponseError(f"{self.label}: InvokeModel reply without embeddings")
        return vectors

    def embed_batch_size(self) -> int:
        """Titan embeds one text a request; Cohere on Bedrock takes 96."""
        return 96 if embedding_family(self.model_name, self.label) == "cohere" else 1


def embedding_family(model_id: str, label: str) -> str:
    """"cohere" for Cohere Embed ids (`cohere.embed-...`, inference profiles too), "titan" for
    Amazon Titan text embeddings; other models have no embeddings."""
    if "cohere.embed" in model_id:
        return "cohere"
    if "titan-embed-text" in model_id:
        return "titan"
    raise EmbeddingsUnsupportedError(
        f"{label} is not a Bedrock embeddings model; use an Amazon Titan text embeddings id "
        "(amazon.titan-embed-text-v2:0) or a Cohere Embed id (cohere.embed-english-v3)")


async def converse_request(
    model_id: str, messages: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None,
    config: GenerateConfig,
) -> dict[str, Any]:
    """The Converse parameters for `messages`, `tools` and `config`."""
    offer_tools = bool(tools) and tool_choice != "none"
    request: dict[str, Any] = {
        "modelId": model_id,
        "messages": await converse_messages([m for m in messages if m.role != "system"], offer_tools),
    }
    system = [{"text": system_text(m, "bedrock", "Converse `system`")} for m in messages if m.role == "system"]
    if system:
        request["system"] = system
    budget = thinking_budget(model_id, config)
    if offer_tools:
        request["toolConfig"] = tool_config(tools, unforced(tool_choice, budget, "bedrock"))
    if inference := inference_config(config, budget):
        request["inferenceConfig"] = inference
    if fields := model_request_fields(model_id, config, budget):
        request["additionalModelRequestFields"] = fields
    warn_dropped(config)
    return request


def tool_config(tools: list[ToolInfo], tool_choice: ToolChoice | None) -> dict[str, Any]:
    """`toolConfig`: the tools as `toolSpec`s and the tool choice."""
    specs = []
    for tool in tools:
        spec: dict[str, Any] = {"name": tool.name, "inputSchema": {"json": tool.parameters}}
        if tool.description:  # Converse refuses an empty description
            spec["description"] = tool.description
        specs.append({"toolSpec": spec})
    if isinstance(tool_choice, ToolFunction):
        choice: dict[str, Any] = {"tool": {"name": tool_choice.name}}
    else:
        choice = {tool_choice or "auto": {}}
    return {"tools": specs, "toolChoice": choice}


def thinking_budget(model_id: str, config: GenerateConfig) -> int | None:
    """The extended-thinking budget: reasoning_tokens, except for Amazon Nova models."""
    if config.reasoning_tokens is not None and is_nova(model_id):
        warn_unsupported("bedrock", "reasoning_tokens", "Amazon Nova models take reasoning_effort")
        return None
    return config.reasoning_tokens


def is_nova(model_id: str) -> bool:
    """Whether the model (or inference profile) is an Amazon Nova model."""
    return "amazon.nova" in model_id


def inference_config(config: GenerateConfig, budget: int | None) -> dict[str, Any]:
    """`inferenceConfig`; with thinking on, the budget is added to max_tokens and temperature
    and top_p are dropped with a warning (Claude refuses them with thinking)."""
    inference = {
        "maxTokens": config.max_tokens,
        "temperature": config.temperature,
        "topP": config.top_p,
        "stopSequences": list(config.stop_seqs) if config.stop_seqs is not None else None,
    }
    if budget is not None:
        inference["maxTokens"] = (config.max_tokens or THINKING_ANSWER_TOKENS) + budget
        for field, key in (("temperature", "temperature"), ("top_p", "topP")):
            if inference.pop(key) is not None:
                warn_unsupported("bedrock", field, "not allowed with extended thinking")
    return {key: value for key, value in inference.items() if value is not None}


def model_request_fields(model_id: str, config: GenerateConfig, budget: int | None) -> dict[str, Any]:
    """`additionalModelRequestFields`: top_k and the reasoning settings the model family takes."""
    fields: dict[str, Any] = {}
    if config.top_k is not None:
        if budget is None:
            fields["top_k"] = config.top_k
        else:
            warn_unsupported("bedrock", "top_k", "not allowed with extended thinking")
    if budget is not None:
        fields["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if config.reasoning_effort is not None:
        if is_nova(model_id):
            effort = "low" if config.reasoning_effort == "minimal" else config.reasoning_effort
            fields["reasoningConfig"] = {"type": "enabled", "maxReasoningEffort": effort}
        else:
            warn_unsupported("bedrock", "reasoning_effort", "use reasoning_tokens, Claude's thinking budget")
    return fields


def warn_dropped(config: GenerateConfig) -> None:
    """Warn once for each set field Converse cannot honour."""
    for field in UNSUPPORTED:
        if getattr(config, field) is not None:
            warn_unsupported("bedrock", field)
    if config.response_schema is not None:
        warn_unsupported("bedrock", "response_schema", "Converse has no structured-output field")
    if config.parallel_tool_calls is False:
        warn_unsupported("bedrock", "parallel_tool_calls", "Converse has no switch for it")


async def converse_messages(messages: list[ChatMessage], offer_tools: bool) -> list[dict[str, Any]]:
    """The `messages` turns: tool results are user content, and consecutive turns of one role
    are merged (Converse wants user and assistant to alternate)."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = await message_blocks(message, offer_tools)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


async def message_blocks(message: ChatMessage, offer_tools: bool) -> list[dict[str, Any]]:
    """The content blocks of one message; tool calls and results as text when no tools are offered."""
    if isinstance(message, ChatMessageTool):
        if not offer_tools:
            outcome = "error" if message.error else "result"
            return [{"text": f"{message.function or 'tool'} {outcome}: {result_text(message)}"}]
        return [{"toolResult": await tool_result(message)}]
    blocks = await content_blocks(message.content)
    for call in (message.tool_calls or []) if isinstance(message, ChatMessageAssistant) else []:
        if offer_tools:
            blocks.append({"toolUse": {"toolUseId": call.id, "name": call.function, "input": call.arguments}})
        else:
            blocks.append({"text": f"called {call.function} with {json.dumps(call.arguments)}"})
    return blocks or [EMPTY_TEXT]


async def tool_result(message: ChatMessageTool) -> dict[str, Any]:
    """A `toolResult` block: the tool's output, or its error with status "error"."""
    result: dict[str, Any] = {"toolUseId": message.tool_call_id or ""}
    if message.error is not None:
        return {**result, "content": [{"text": message.error.message}], "status": "error"}
    return {**result, "content": await content_blocks(message.content) or [EMPTY_TEXT]}


def result_text(message: ChatMessageTool) -> str:
    """A tool result's text: its error message, or its output."""
    return message.error.message if message.error is not None else message.text


async def content_blocks(content: str | list[Content]) -> list[dict[str, Any]]:
    """Converse content blocks for message content. Blank text is left out (Converse refuses
    it), and so is reasoning without a signature (another provider's, which Claude refuses)."""
    parts = [ContentText(content)] if isinstance(content, str) else content
    blocks = []
    for part in parts:
        if isinstance(part, ContentText):
            if part.text.strip():
                blocks.append({"text": part.text})
        elif isinstance(part, ContentImage):
            blocks.append({"image": await image_block(part)})
        elif part.redacted or part.signature is not None:
            blocks.append({"reasoningContent": reasoning_block(part)})
    return blocks


async def image_block(image: ContentImage) -> dict[str, Any]:
    """An `image` block with the image's bytes (botocore base64-encodes them on the wire)."""
    mime, data = await image_bytes(image.image)
    image_format = IMAGE_FORMATS.get(mime.lower())
    if image_format is None:
        raise ImagesUnsupportedError(
            f"provider 'bedrock' takes png, jpeg, gif or webp images, not {mime} ({image.image[:80]}); convert the image")
    return {"format": image_format, "source": {"bytes": data}}


def reasoning_block(reasoning: ContentReasoning) -> dict[str, Any]:
    """A `reasoningContent` block, as the model returned it."""
    if reasoning.redacted:
        return {"redactedContent": base64.b64decode(reasoning.reasoning)}
    text: dict[str, Any] = {"text": reasoning.reasoning}
    if reasoning.signature is not None:
        text["signature"] = reasoning.signature
    return {"reasoningText": text}


def converse_output(response: dict[str, Any], model: str) -> ModelOutput:
    """The ModelOutput for a Converse response."""
    message = response.get("output", {}).get("message")
    if message is None or "stopReason" not in response:
        raise MalformedResponseError(f"{model}: Converse response without output.message or stopReason")
    texts: list[str] = []
    reasoning: list[Content] = []
    calls: list[ToolCall] = []
    for block in message.get("content", []):
        if "text" in block:
            texts.append(block["text"])
        elif "reasoningContent" in block:
            reasoning.append(reasoning_part(block["reasoningContent"]))
        elif "toolUse" in block:
            calls.append(tool_call(block["toolUse"]))
    text = "".join(texts)
    content: str | list[Content] = [*reasoning, ContentText(text)] if reasoning and text else reasoning or text
    usage = response.get("usage") or {}
    choice = ChatCompletionChoice(
        message=ChatMessageAssistant(content=content, tool_calls=calls or None),
        stop_reason=STOP_REASONS.get(response["stopReason"], "unknown"),
    )
    return ModelOutput(
        model=model, choices=[choice],
        usage=ModelUsage(usage.get("inputTokens", 0), usage.get("outputTokens", 0), usage.get("totalTokens", 0)),
    )


def reasoning_part(block: dict[str, Any]) -> ContentReasoning:
    """A `reasoningContent` block as ContentReasoning (redacted bytes kept as base64 text)."""
    if "redactedContent" in block:
        return ContentReasoning(base64.b64encode(block["redactedContent"]).decode(), redacted=True)
    text = block.get("reasoningText") or {}
    return ContentReasoning(text.get("text", ""), signature=text.get("signature"))


def tool_call(block: dict[str, Any]) -> ToolCall:
    """A `toolUse` block as a ToolCall; input that is not a JSON object becomes a parse error."""
    value = {} if block.get("input") is None else block["input"]
    arguments, error = (value, None) if isinstance(value, dict) else parse_tool_arguments(json.dumps(value))
    return ToolCall(id=block.get("toolUseId", ""), function=block.get("name", ""), arguments=arguments, parse_error=error)
