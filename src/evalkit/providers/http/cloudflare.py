"""`cf`: Cloudflare Workers AI text-generation models, through its REST API on httpx.

`cf/<model>` runs `@cf/<model>` (e.g. `cf/meta/llama-3.1-8b-instruct`); a name that starts
with `@` (`cf/@hf/nousresearch/hermes-2-pro-mistral-7b`) is run as written. Environment:
CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_TOKEN (sent as `Authorization: Bearer <token>`) and
CLOUDFLARE_BASE_URL (default `https://api.cloudflare.com/client/v4/accounts`, as Inspect).
Every `-M` goes in the request body (e.g. `-M repetition_penalty=1.1 -M lora=<adapter>`),
except `headers`/`extra_headers` (merged over the provider's headers) and `extra_body`.

    POST {base}/{account_id}/ai/run/@cf/<model>
    {"messages": [{"role": "system"|"user"|"assistant"|"tool", "content": "..."}],
     "max_tokens": 2048, "temperature": 0.5, "top_p": 0.9, "top_k": 40, "seed": 1,
     "frequency_penalty": 0, "presence_penalty": 0,                  # the settings that are set
     "tools": [{"name": "...", "description": "...", "parameters": {...}}],
     "response_format": {"type": "json_schema", "json_schema": {...}}}

    {"result": {"response": "...", "tool_calls": [{"name": "...", "arguments": {...}}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}},
     "success": true, "errors": [], "messages": []}

`max_tokens` is 2048 unless set (Workers AI's own default of 256 is too short for evals, as
Inspect notes). Workers AI has no stop sequences, choices, logprobs or tool choice: those
settings are dropped with a warning (the model decides when to call a tool). Messages are
text only; an image is an ImagesUnsupportedError.
"""

from __future__ import annotations

import json
from typing import Any

from evalkit.model.api import warn_unsupported
from evalkit.model.types import ChatMessage, ChatMessageAssistant, ChatMessageTool, GenerateConfig
from evalkit.providers.common.http_errors import MalformedResponseError, MissingCredentialsError, ProviderRequestError, body_detail
from evalkit.providers.http.json_chat import JSONChatAPI, auth_header
from evalkit.providers.openai.wire import chat_message, request_params, text_prompt
from evalkit.secrets import excerpt, get_secret
from evalkit.tool.types import ToolChoice, ToolFunction, ToolInfo

ACCOUNT_ENV = "CLOUDFLARE_ACCOUNT_ID"
API_TOKEN_ENV = "CLOUDFLARE_API_TOKEN"
BASE_URL_ENV = "CLOUDFLARE_BASE_URL"
DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4/accounts"
DEFAULT_MAX_TOKENS = 2048
PARAMS = {name: name for name in
          ("max_tokens", "temperature", "top_p", "top_k", "seed", "frequency_penalty", "presence_penalty")}
"""GenerateConfig fields Workers AI takes, under the same names."""
UNSUPPORTED = ("stop_seqs", "num_choices", "logprobs", "top_logprobs", "reasoning_effort", "reasoning_tokens",
               "parallel_tool_calls")


class CloudflareAPI(JSONChatAPI):
    """A Workers AI model run through `POST .../ai/run/<model>`."""

    provider = "cf"
    key_env = API_TOKEN_ENV

    def __init__(
        self,
        model_name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        **model_args: Any,
    ) -> None:
        account = get_secret(ACCOUNT_ENV)
        if not account:
            raise MissingCredentialsError(self.provider, ACCOUNT_ENV)
        root = (base_url or get_secret(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        super().__init__(model_name, base_url=root, api_key=api_key, config=config, **model_args)
        headers = auth_header(self.provider, api_key, API_TOKEN_ENV, required=True)
        run_model = model_name if model_name.startswith("@") else f"@cf/{model_name}"
        self._connect_body_args(f"{root}/{account}/ai/run/{run_model}", headers, model_args)

    def connection_key(self) -> str:
        """Workers AI limits requests per model for each account, and the URL names both."""
        return f"{type(self).__name__}:{self.url}"

    async def openai_request(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"messages": [await _message(m) for m in input], **request_params(config, PARAMS)}
        body.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
        if tools and tool_choice != "none":
            body["tools"] = [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in tools]
            if tool_choice == "any" or isinstance(tool_choice, ToolFunction):
                warn_unsupported(self.provider, "tool_choice", "Workers AI cannot force a tool call; the model decides")
        if config.response_schema is not None:
            body["response_format"] = {"type": "json_schema", "json_schema": config.response_schema.json_schema}
        for field in request_params(config, {name: name for name in UNSUPPORTED}):
            warn_unsupported(self.provider, field)
        return body

    def response_data(self, data: Any) -> Any:
        """The Workers AI envelope as one chat-completion choice."""
        result = data.get("result") if isinstance(data, dict) else None
        if isinstance(data, dict) and data.get("success") is False:
            detail = body_detail(data) or excerpt(json.dumps(data))
            raise ProviderRequestError(f"{self.label}: request failed: {detail}")
        if not isinstance(result, dict):
            raise MalformedResponseError(f"{self.label}: response has no result: {excerpt(json.dumps(data, default=str))}")
        text = result.get("response")
        if isinstance(text, (dict, list)):  # JSON mode answers with the object itself
            text = json.dumps(text)
        calls = [_tool_call(call) for call in result.get("tool_calls") or () if isinstance(call, dict)]
        finish = "tool_calls" if calls else "stop" if isinstance(text, str) else None
        message = {"role": "assistant", "content": text, "tool_calls": calls}
        return {"choices": [{"message": message, "finish_reason": finish}], "usage": result.get("usage")}


async def _message(message: ChatMessage) -> dict[str, Any]:
    """A message as Workers AI takes it: text content; tool calls and results in the
    chat-completions form, a result naming its function."""
    if isinstance(message, ChatMessageTool):
        return {**await chat_message(message), "name": message.function or ""}
    if isinstance(message, ChatMessageAssistant):
        return await chat_message(message)
    return {"role": message.role, "content": text_prompt(message, "Workers AI")}


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    """A Workers AI tool call (`{"name", "arguments"}`, or already OpenAI's shape) in OpenAI's shape."""
    if isinstance(call.get("function"), dict):
        return call
    return {"id": call.get("id"), "type": "function", "function": {"name": call.get("name"), "arguments": call.get("arguments")}}
