"""OpenAI-compatible services: the `openai` provider with each service's own key, base URL
and extras. `openai-api/<service>/<model>` reaches any other one via <SERVICE>_API_KEY and
<SERVICE>_BASE_URL."""

from __future__ import annotations

from typing import Any

from evalkit.errors import ModelNotFoundError
from evalkit.model.types import GenerateConfig, ModelOutput
from evalkit.providers.openai.api import OpenAIAPI, Service
from evalkit.providers.openai.wire import ChoiceParser


def _provider(service: Service) -> type[OpenAIAPI]:
    """An `OpenAIAPI` subclass bound to `service`."""
    name = "".join(part.capitalize() for part in service.name.replace("_", "-").split("-")) + "API"
    return type(name, (OpenAIAPI,), {"service": service, "__doc__": f"`{service.name}`: an OpenAI-compatible service."})


TogetherAPI = _provider(Service("together", "TOGETHER_API_KEY", "TOGETHER_BASE_URL", "https://api.together.xyz/v1", top_k=True, batches="batch-api"))
GrokAPI = _provider(Service("grok", "GROK_API_KEY", "GROK_BASE_URL", "https://api.x.ai/v1"))
FireworksAPI = _provider(
    Service("fireworks", "FIREWORKS_API_KEY", "FIREWORKS_BASE_URL", "https://api.fireworks.ai/inference/v1", top_k=True)
)
DeepSeekAPI = _provider(Service("deepseek", "DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL", "https://api.deepseek.com/v1"))
_OpenRouterBase = _provider(
    Service(
        "openrouter", "OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1",
        top_k=True, body_args=("models", "provider", "transforms"),
    )
)


class OpenRouterAPI(_OpenRouterBase):
    """`openrouter`: OpenRouter, with `-M models=a, b` (fallback models) as a list, as Inspect takes it."""

    def __init__(self, model_name: str, **kwargs: Any) -> None:
        models = kwargs.get("models")
        if isinstance(models, str):
            kwargs["models"] = [name.strip() for name in models.split(",") if name.strip()]
        super().__init__(model_name, **kwargs)
OllamaAPI = _provider(
    Service("ollama", "OLLAMA_API_KEY", "OLLAMA_BASE_URL", "http://localhost:11434/v1", key_required=False)
)
LlamaCppPythonAPI = _provider(
    Service(
        "llama-cpp-python", "LLAMA_CPP_PYTHON_API_KEY", "LLAMA_CPP_PYTHON_BASE_URL", "http://localhost:8000/v1",
        key_required=False, top_k=True,
    )
)
VLLMServerAPI = _provider(
    Service("vllm-server", "VLLM_API_KEY", "VLLM_BASE_URL", "http://localhost:8000/v1", key_required=False, top_k=True)
)
DatabricksAPI = _provider(Service("databricks", "DATABRICKS_API_KEY", "DATABRICKS_BASE_URL"))
_SGLangBase = _provider(
    Service("sglang", "SGLANG_API_KEY", "SGLANG_BASE_URL", "http://localhost:30000/v1", key_required=False, top_k=True)
)


class SGLangAPI(_SGLangBase):
    """`sglang`: a running SGLang server (SGLANG_BASE_URL, default SGLang's port 30000 on
    localhost); `-M port=N` means `http://localhost:N/v1`, as Inspect takes it."""

    def __init__(self, model_name: str, *, base_url: str | None = None, port: int | None = None, **kwargs: Any) -> None:
        if base_url is None and port is not None:
            base_url = f"http://localhost:{port}/v1"
        super().__init__(model_name, base_url=base_url, **kwargs)


_PerplexityBase = _provider(
    Service(
        "perplexity", "PERPLEXITY_API_KEY", "PERPLEXITY_BASE_URL", "https://api.perplexity.ai", top_k=True,
        body_args=("search_domain_filter", "search_recency_filter", "search_mode", "return_images",
                   "return_related_questions", "web_search_options"),
    )
)
PERPLEXITY_METADATA = ("citations", "search_results", "related_questions", "images")
"""Reply fields Perplexity adds beside the choices, kept in the output's metadata."""
PERPLEXITY_USAGE = ("search_context_size", "citation_tokens", "num_search_queries")
"""Usage fields Perplexity adds, kept in the output's metadata (as Inspect does)."""


class PerplexityAPI(_PerplexityBase):
    """`perplexity`: Perplexity's Sonar models. The reply's `citations` and `search_results`
    (and its search usage figures) go to the output's metadata; its API takes no tools, and
    `-M search_domain_filter=...` (and the other search options) go in the request body."""

    def __init__(self, model_name: str, **kwargs: Any) -> None:
        super().__init__(model_name, **kwargs)
        self.supports_tools = False

    def output(self, data: dict[str, Any], parse: ChoiceParser) -> ModelOutput:
        output = super().output(data, parse)
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        metadata = {name: data[name] for name in PERPLEXITY_METADATA if data.get(name)}
        metadata.update({name: usage[name] for name in PERPLEXITY_USAGE if name in usage})
        if output.usage is not None and isinstance(usage.get("reasoning_tokens"), int):
            output.usage.reasoning_tokens = usage["reasoning_tokens"]
        if metadata:
            output.metadata = {**(output.metadata or {}), **metadata}
        return output


class OpenAICompatibleAPI(OpenAIAPI):
    """`openai-api/<service>/<model>`: any OpenAI-compatible API at <SERVICE>_BASE_URL, with
    <SERVICE>_API_KEY when the service needs one."""

    def __init__(
        self,
        model_name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        **model_args: Any,
    ) -> None:
        service, _, model = model_name.partition("/")
        if not service or not model:
            raise ModelNotFoundError(f"openai-api models are written openai-api/<service>/<model> (got 'openai-api/{model_name}')")
        prefix = service.upper().replace("-", "_").replace(".", "_")
        self.service = Service(f"openai-api/{service}", f"{prefix}_API_KEY", f"{prefix}_BASE_URL", key_required=False)
        super().__init__(model, base_url=base_url, api_key=api_key, config=config, **model_args)
