"""`goodfire`: Goodfire's Llama models through its chat completions API, on httpx.

The `goodfire` SDK (0.3.x) pins httpx below 0.28, older than evalkit's, so this speaks the
HTTP API that SDK calls. `goodfire/<model>` names the model as Goodfire does
(`goodfire/meta-llama/Llama-3.3-70B-Instruct`); a name without an organisation gets
`meta-llama/` in front (`goodfire/Llama-3.3-70B-Instruct`), as Inspect does. Environment:
GOODFIRE_API_KEY (sent as `Authorization: Bearer <key>`) and GOODFIRE_BASE_URL (default
`https://api.goodfire.ai`). Every `-M` goes in the chat completions request, as the SDK's
`chat.completions.create(...)` arguments would: e.g. a variant's feature edits as
`-M controller=<variant.controller.json()>`; `headers`/`extra_headers` are merged over the
provider's headers and `extra_body` into the body.

    POST {base}/api/inference/v1/chat/completions
    {"model": "meta-llama/Llama-3.3-70B-Instruct", "stream": false,
     "messages": [{"role": "system"|"user"|"assistant", "content": "..."}],
     "max_completion_tokens": 4096, "temperature": 0.6, "top_p": 0.9, "stop": ["..."], "seed": 42}

    {"id": "...", "object": "chat.completion", "model": "...",
     "choices": [{"index": 0, "message": {"role": "assistant", "content": "..."}, "finish_reason": "stop"}],
     "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}}

`max_completion_tokens` is 4096 unless set (Inspect's default). The API has no tools, top_k,
penalties, choices, logprobs, reasoning or structured output: a tool request fails with one
line and the rest are dropped with a warning. Messages are text only.
"""

from __future__ import annotations

from typing import Any

from evalkit.model.api import warn_unsupported
from evalkit.model.types import ChatMessage, ChatMessageTool, GenerateConfig
from evalkit.providers.http.json_chat import JSONChatAPI, auth_header
from evalkit.providers.openai.wire import request_params, text_prompt
from evalkit.secrets import get_secret
from evalkit.tool.types import ToolChoice, ToolInfo

API_KEY_ENV = "GOODFIRE_API_KEY"
BASE_URL_ENV = "GOODFIRE_BASE_URL"
DEFAULT_BASE_URL = "https://api.goodfire.ai"
CHAT_PATH = "/api/inference/v1/chat/completions"
DEFAULT_MAX_TOKENS = 4096
PARAMS = {"max_tokens": "max_completion_tokens", "temperature": "temperature", "top_p": "top_p",
          "stop_seqs": "stop", "seed": "seed"}
"""GenerateConfig field -> Goodfire chat completions parameter."""
UNSUPPORTED = ("top_k", "frequency_penalty", "presence_penalty", "num_choices", "logprobs", "top_logprobs",
               "reasoning_effort", "reasoning_tokens", "response_schema")


class GoodfireAPI(JSONChatAPI):
    """Goodfire's chat completions endpoint, called with its JSON body."""

    provider = "goodfire"
    key_env = API_KEY_ENV
    supports_tools = False

    def __init__(
        self,
        model_name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        **model_args: Any,
    ) -> None:
        root = (base_url or get_secret(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        super().__init__(model_name, base_url=root, api_key=api_key, config=config, **model_args)
        headers = auth_header(self.provider, api_key, API_KEY_ENV, required=True)
        self._connect_body_args(f"{root}{CHAT_PATH}", headers, model_args)
        self.request_model = model_name if "/" in model_name else f"meta-llama/{model_name}"

    async def openai_request(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.request_model, "messages": [_message(m) for m in input], "stream": False,
                                **request_params(config, PARAMS)}
        body.setdefault("max_completion_tokens", DEFAULT_MAX_TOKENS)
        for field in UNSUPPORTED:
            if getattr(config, field) is not None:
                warn_unsupported(self.provider, field)
        return body

    def response_data(self, data: Any) -> Any:
        """The reply, a choice with text but no finish_reason counting as stopped (Goodfire
        leaves it out)."""
        for choice in data.get("choices") or () if isinstance(data, dict) else ():
            message = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(message, dict) and isinstance(message.get("content"), str) and not choice.get("finish_reason"):
                choice["finish_reason"] = "stop"
        return data


def _message(message: ChatMessage) -> dict[str, str]:
    """A message with text content; a tool result (from a conversation made elsewhere) becomes
    a user message naming the tool, as Inspect sends it."""
    if isinstance(message, ChatMessageTool):
        return {"role": "user", "content": f"Tool {message.function}: {message.text}"}
    return {"role": message.role, "content": text_prompt(message, "Goodfire")}
