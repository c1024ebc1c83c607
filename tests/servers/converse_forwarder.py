"""A local Bedrock Converse endpoint that forwards to an OpenAI-compatible chat server.

`RecordingServer(ConverseForwarder("http://127.0.0.1:PORT"))` answers
`POST /model/{modelId}/converse` by translating the Converse request into a chat-completions
request (system, text content blocks, inferenceConfig maxTokens/temperature/topP/stopSequences,
additionalModelRequestFields.top_k) for the upstream (e.g. llama-server), and its reply back into
a Converse response. Chat completions say `stop` for both the end of the turn and a stop
sequence, so a `stop` with stopSequences in the request is reported as `stop_sequence`.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from tests.servers.converse_server import aws_error
from tests.servers.http import Reply, Request

CONVERSE_PATH = re.compile(r"^/model/(?P<model_id>[^/]+)/converse$")
INFERENCE_FIELDS = {"maxTokens": "max_tokens", "temperature": "temperature", "topP": "top_p", "stopSequences": "stop"}


class ConverseTranslationError(ValueError):
    """A Converse request the forwarder cannot translate (answered as a ValidationException)."""


@dataclass
class Exchange:
    """One forwarded call: the Converse request and response, and the upstream chat request."""

    model_id: str
    converse: dict[str, Any]
    chat: dict[str, Any]
    response: dict[str, Any]


def _text_parts(blocks: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Converse text blocks as chat-completions text parts."""
    if not all(set(block) == {"text"} for block in blocks):
        raise ConverseTranslationError("only text content blocks are supported")
    return [{"type": "text", "text": block["text"]} for block in blocks]


def chat_request(model_id: str, converse: dict[str, Any]) -> dict[str, Any]:
    """The chat-completions request for a Converse request to `model_id`."""
    messages: list[dict[str, Any]] = []
    if converse.get("system"):
        messages.append({"role": "system", "content": _text_parts(converse["system"])})
    for message in converse.get("messages", []):
        if message.get("role") not in ("user", "assistant"):
            raise ConverseTranslationError(f"unknown role {message.get('role')!r}")
        messages.append({"role": message["role"], "content": _text_parts(message.get("content", []))})
    request: dict[str, Any] = {"model": model_id, "messages": messages}
    inference = converse.get("inferenceConfig") or {}
    request.update({INFERENCE_FIELDS[key]: value for key, value in inference.items() if key in INFERENCE_FIELDS})
    top_k = (converse.get("additionalModelRequestFields") or {}).get("top_k")
    if top_k is not None:
        request["top_k"] = top_k
    return request


def converse_response(chat: dict[str, Any], stop_sequences: bool) -> dict[str, Any]:
    """The Converse response for a chat-completions reply (see the module docstring for stopReason)."""
    [choice] = chat["choices"]
    finish = choice.get("finish_reason")
    if finish == "length":
        stop_reason = "max_tokens"
    elif finish == "stop":
        stop_reason = "stop_sequence" if stop_sequences else "end_turn"
    else:
        raise ConverseTranslationError(f"unexpected finish_reason {finish!r}")
    usage = chat.get("usage") or {}
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": choice["message"].get("content") or ""}]}},
        "stopReason": stop_reason,
        "usage": {"inputTokens": usage.get("prompt_tokens", 0), "outputTokens": usage.get("completion_tokens", 0),
                  "totalTokens": usage.get("total_tokens", 0)},
        "metrics": {"latencyMs": 0},
    }


class ConverseForwarder:
    """A RecordingServer handler forwarding Converse calls to `{upstream}/v1/chat/completions`."""

    def __init__(self, upstream: str, timeout: float = 120) -> None:
        self.upstream = upstream.rstrip("/")
        self.timeout = timeout
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Reply:
        match = CONVERSE_PATH.match(request.path)
        if request.method != "POST" or match is None:
            return aws_error(404, "UnknownOperationException", f"no route for {request.method} {request.path}")
        model_id = unquote(match["model_id"])
        converse = request.json() or {}
        try:
            chat = chat_request(model_id, converse)
            reply = self._post(chat)
            response = converse_response(reply, bool(chat.get("stop")))
        except ConverseTranslationError as error:
            return aws_error(400, "ValidationException", str(error))
        except urllib.error.HTTPError as error:
            code = "ValidationException" if error.code < 500 else "ModelErrorException"
            return aws_error(error.code if error.code < 500 else 424, code, error.read().decode(errors="replace"))
        except urllib.error.URLError as error:
            return aws_error(503, "ServiceUnavailableException", f"upstream unreachable: {error.reason}")
        with self._lock:
            self.exchanges.append(Exchange(model_id, converse, chat, response))
        return Reply(body=response)

    def _post(self, chat: dict[str, Any]) -> dict[str, Any]:
        """POST `chat` to the upstream's chat completions and return its JSON reply."""
        http_request = urllib.request.Request(
            f"{self.upstream}/v1/chat/completions", json.dumps(chat).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(http_request, timeout=self.timeout) as reply:
            return json.load(reply)
