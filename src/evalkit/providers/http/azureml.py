"""`azureml`: a chat model deployed to an Azure Machine Learning online endpoint.

Use `azureml/<deployment>` (or `azureml/default` to let the endpoint route the request).
Environment: AZUREML_BASE_URL, the endpoint's full scoring URL as Azure ML studio shows it
(e.g. `https://my-endpoint.eastus2.inference.ml.azure.com/score`, used as is; `base_url=`
overrides it), and AZUREML_API_KEY, the endpoint key, sent as `Authorization: Bearer <key>`.
A deployment other than `default` is named in the `azureml-model-deployment` header. Every
`-M` goes to `httpx.AsyncClient` (e.g. `-M timeout=120`, `-M verify=false`).

Request (chat-completions style, as served by the vLLM, TGI messages-API and Azure AI
catalog chat containers):

    POST <scoring URL>
    {"messages": [{"role": "system"|"user"|"assistant"|"tool", "content": "..."}],
     "max_tokens": 256, "temperature": 0.0, "top_p": 1.0, "top_k": 40, "stop": ["..."],
     "seed": 1, "frequency_penalty": 0, "presence_penalty": 0, "n": 1,
     "logprobs": true, "top_logprobs": 2,           # only the settings that are set
     "tools": [...], "tool_choice": "auto", "reasoning_effort": "low",
     "response_format": {"type": "json_schema", ...}}

Messages, tools, images and the reply's tool calls take OpenAI's chat-completions form (see
openai_format.py), for the containers that serve them.

Response (an OpenAI chat completion):

    {"choices": [{"message": {"role": "assistant", "content": "...", "tool_calls": [...]},
                  "finish_reason": "stop"|"length"|"content_filter"|"tool_calls",
                  "logprobs": {"content": [{"token", "logprob", "top_logprobs"}]}}],
     "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}}
"""

from __future__ import annotations

from typing import Any

from evalkit.model.types import GenerateConfig
from evalkit.providers.common.http_errors import MissingCredentialsError
from evalkit.providers.http.json_chat import JSONChatAPI, auth_header
from evalkit.secrets import get_secret

BASE_URL_ENV = "AZUREML_BASE_URL"
API_KEY_ENV = "AZUREML_API_KEY"
DEFAULT_DEPLOYMENT = "default"


class AzureMLAPI(JSONChatAPI):
    """An Azure ML online endpoint's scoring URL, called with the chat-completions body."""

    provider = "azureml"
    key_env = API_KEY_ENV

    def __init__(
        self,
        model_name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        **model_args: Any,
    ) -> None:
        url = base_url or get_secret(BASE_URL_ENV)
        if not url:
            raise MissingCredentialsError(self.provider, f"{BASE_URL_ENV} (the endpoint's scoring URL)")
        super().__init__(model_name, base_url=url, api_key=api_key, config=config, **model_args)
        headers = auth_header(self.provider, api_key, API_KEY_ENV, required=True)
        if model_name != DEFAULT_DEPLOYMENT:
            headers["azureml-model-deployment"] = model_name
        self._connect(url, headers, dict(model_args))

    def request_body(self, request: dict[str, Any], config: GenerateConfig) -> Any:
        return {key: value for key, value in request.items() if key != "model"}
