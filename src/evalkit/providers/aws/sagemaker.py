"""`sagemaker`: a model on an Amazon SageMaker real-time endpoint, through InvokeEndpoint.

Use `sagemaker/<endpoint-name>`. Credentials and region as for `bedrock` (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_DEFAULT_REGION); endpoint URL from
SAGEMAKER_BASE_URL (or `base_url=`). `-M api=tgi|messages` picks the body shape (default
`tgi`); every other `-M` goes to `session.client("sagemaker-runtime", ...)`. Each request is
`POST /endpoints/{name}/invocations` with `Content-Type: application/json`.

Text only: each message is sent as its text (reasoning parts left out); a message holding an
image fails its sample with one line, and a task that offers tools stops with one line (the
endpoint's body has no place for either).

`api=tgi`, the Hugging Face TGI / LLM container's generate shape:

    {"inputs": "<prompt>",
     "parameters": {"max_new_tokens": 256, "temperature": 0.7, "do_sample": true, "top_p": 0.9,
                    "top_k": 40, "stop": ["..."], "seed": 1, "frequency_penalty": 0.1,
                    "details": true, "return_full_text": false}}
    -> [{"generated_text": "...", "details": {"finish_reason": "length"|"eos_token"|
        "stop_sequence", "generated_tokens": 12}}]       (a bare object is accepted too)

The prompt is the only user message's text as is; a conversation is rendered as
"System: ...\\n\\nUser: ...\\n\\nAssistant: ...\\n\\nAssistant:" (use `api=messages` for chat
templates). temperature 0 is sent as `do_sample: false`. presence_penalty, num_choices and
logprobs are dropped with a warning. Usage counts output tokens only (`generated_tokens`).

`api=messages`, the OpenAI chat-completions shape (TGI messages API, LMI, vLLM containers):
the body is `{"model": "<endpoint-name>", "messages": [...], "max_tokens": ..., ...}` and the
reply an OpenAI chat completion, exactly as for the `azureml` provider.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Literal

from botocore.exceptions import ClientError

from evalkit.errors import ModelArgsError
from evalkit.model.api import warn_unsupported
from evalkit.model.types import ChatMessage, GenerateConfig, ModelOutput, ModelUsage, StopReason
from evalkit.providers.aws.session import AWSAPI
from evalkit.providers.common.http_errors import MalformedResponseError, is_retryable_status
from evalkit.providers.openai.wire import chat_output, chat_request, text_prompt
from evalkit.secrets import excerpt

Api = Literal["tgi", "messages"]

TGI_FINISH_REASONS: dict[str, StopReason] = {
    "eos_token": "stop",
    "stop_sequence": "stop",
    "length": "max_tokens",
}
TGI_UNSUPPORTED = ("presence_penalty", "num_choices", "logprobs", "top_logprobs")


class SageMakerAPI(AWSAPI):
    """A SageMaker endpoint called with a JSON body (see the module docstring)."""

    provider = "sagemaker"
    service = "sagemaker-runtime"
    base_url_env = "SAGEMAKER_BASE_URL"

    def __init__(
        self,
        model_name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        api: Api = "tgi",
        **model_args: Any,
    ) -> None:
        if api not in ("tgi", "messages"):
            raise ModelArgsError(f"-M api must be tgi or messages (got {api!r})")
        super().__init__(model_name, base_url=base_url, api_key=api_key, config=config, **model_args)
        self.api = api

    async def generate(self, messages: list[ChatMessage], config: GenerateConfig) -> ModelOutput:
        plain = [replace(m, content=text_prompt(m, self.label)) for m in messages]
        if self.api == "messages":
            body: Any = await chat_request(self.model_name, plain, config)
        else:
            body = tgi_request(plain, config)
        response = await self.call(
            "invoke_endpoint",
            EndpointName=self.model_name,
            ContentType="application/json",
            Accept="application/json",
            Body=json.dumps(body).encode(),
        )
        raw = await response["Body"].read()
        try:
            data = json.loads(raw)
        except ValueError:
            raise MalformedResponseError(f"{self.label}: response is not JSON: {excerpt(raw.decode(errors='replace'))!r}") from None
        return chat_output(data, self.label) if self.api == "messages" else tgi_output(data, self.label)

    def is_retryable(self, error: BaseException) -> bool:
        if isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") == "ModelError":
            return is_retryable_status(error.response.get("OriginalStatusCode"))
        return super().is_retryable(error)


def tgi_prompt(messages: list[ChatMessage]) -> str:
    """The `inputs` text: a lone user message's text as is, else a plain role-labelled transcript."""
    if len(messages) == 1 and messages[0].role == "user":
        return messages[0].text
    turns = [f"{m.role.capitalize()}: {m.text}" for m in messages]
    return "\n\n".join([*turns, "Assistant:"])


def tgi_request(messages: list[ChatMessage], config: GenerateConfig) -> dict[str, Any]:
    """The TGI generate body for `messages` and `config`."""
    parameters: dict[str, Any] = {"details": True, "return_full_text": False}
    if config.temperature == 0:
        parameters["do_sample"] = False
    elif config.temperature is not None:
        parameters.update(temperature=config.temperature, do_sample=True)
    named = {
        "max_new_tokens": config.max_tokens,
        "top_p": config.top_p,
        "top_k": config.top_k,
        "stop": list(config.stop_seqs) if config.stop_seqs is not None else None,
        "seed": config.seed,
        "frequency_penalty": config.frequency_penalty,
    }
    parameters.update({key: value for key, value in named.items() if value is not None})
    for field in TGI_UNSUPPORTED:
        if getattr(config, field) is not None:
            warn_unsupported("sagemaker", field, "api=tgi")
    return {"inputs": tgi_prompt(messages), "parameters": parameters}


def tgi_output(data: Any, model: str) -> ModelOutput:
    """The ModelOutput for a TGI generate reply (a list of one object, or the object)."""
    item = data[0] if isinstance(data, list) and data else data
    if not isinstance(item, dict) or not isinstance(item.get("generated_text"), str):
        raise MalformedResponseError(f"{model}: response has no generated_text: {excerpt(json.dumps(data))}")
    details = item.get("details") or {}
    generated = details.get("generated_tokens")
    return ModelOutput.from_text(
        model,
        item["generated_text"],
        stop_reason=TGI_FINISH_REASONS.get(details.get("finish_reason", ""), "unknown"),
        usage=ModelUsage(0, generated, generated) if isinstance(generated, int) else None,
    )
