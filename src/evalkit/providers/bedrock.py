"""`bedrock`: Amazon Bedrock models through the Converse API, on aioboto3.

Use `bedrock/<model-id>` (e.g. `bedrock/anthropic.claude-3-5-haiku-20241022-v1:0` or an
inference profile id). Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
AWS_SESSION_TOKEN (else the usual AWS chain: profiles, SSO, instance roles), region from
AWS_DEFAULT_REGION (or AWS_REGION), endpoint from BEDROCK_BASE_URL (or `base_url=`). Every `-M`
goes to `session.client("bedrock-runtime", ...)` (e.g. `-M region_name=eu-west-1`), except
`-M client_config={connect_timeout: 5, ...}`, the client's botocore `Config` as a mapping (the
name `config` is taken by the generate config). botocore's own retries are off: `Model` retries.

Request: `POST /model/{modelId}/converse` with system messages as `system`, the other turns as
`messages` (consecutive turns of one role merged), max_tokens/temperature/top_p/stop_seqs as
`inferenceConfig` maxTokens/temperature/topP/stopSequences and top_k as
`additionalModelRequestFields.top_k`. seed, penalties, num_choices and logprobs are dropped with
a warning. stopReason end_turn/stop_sequence -> stop, max_tokens -> max_tokens,
content_filtered/guardrail_intervened -> content_filter; usage from inputTokens/outputTokens/
totalTokens.
"""

from __future__ import annotations

from typing import Any

from evalkit.model.api import warn_unsupported
from evalkit.model.types import ChatMessage, GenerateConfig, ModelOutput, ModelUsage, StopReason
from evalkit.providers.aws import AWSAPI
from evalkit.providers.http_errors import MalformedResponseError
from evalkit.providers.turns import split_turns

STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "max_tokens",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
}

UNSUPPORTED = ("seed", "frequency_penalty", "presence_penalty", "num_choices", "logprobs", "top_logprobs")


class BedrockAPI(AWSAPI):
    """Bedrock's Converse API (see the module docstring)."""

    provider = "bedrock"
    service = "bedrock-runtime"
    base_url_env = "BEDROCK_BASE_URL"

    async def generate(self, messages: list[ChatMessage], config: GenerateConfig) -> ModelOutput:
        response = await self.call("converse", **converse_request(self.model_name, messages, config))
        return converse_output(response, self.label)


def converse_request(model_id: str, messages: list[ChatMessage], config: GenerateConfig) -> dict[str, Any]:
    """The Converse parameters for `messages` and `config`."""
    system, turns = split_turns(messages)
    request: dict[str, Any] = {
        "modelId": model_id,
        "messages": [{"role": role, "content": [{"text": text} for text in texts]} for role, texts in turns],
    }
    if system:
        request["system"] = [{"text": text} for text in system]
    inference = {
        "maxTokens": config.max_tokens,
        "temperature": config.temperature,
        "topP": config.top_p,
        "stopSequences": list(config.stop_seqs) if config.stop_seqs is not None else None,
    }
    inference = {key: value for key, value in inference.items() if value is not None}
    if inference:
        request["inferenceConfig"] = inference
    if config.top_k is not None:
        request["additionalModelRequestFields"] = {"top_k": config.top_k}
    for field in UNSUPPORTED:
        if getattr(config, field) is not None:
            warn_unsupported("bedrock", field)
    return request


def converse_output(response: dict[str, Any], model: str) -> ModelOutput:
    """The ModelOutput for a Converse response."""
    message = response.get("output", {}).get("message")
    if message is None or "stopReason" not in response:
        raise MalformedResponseError(f"{model}: Converse response without output.message or stopReason")
    text = "".join(block["text"] for block in message.get("content", []) if "text" in block)
    usage = response.get("usage") or {}
    return ModelOutput.from_text(
        model,
        text,
        stop_reason=STOP_REASONS.get(response["stopReason"], "unknown"),
        usage=ModelUsage(usage.get("inputTokens", 0), usage.get("outputTokens", 0), usage.get("totalTokens", 0)),
    )
