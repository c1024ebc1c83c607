"""OpenAI-compatible services: the `openai` provider with each service's own key, base URL
and extras. `openai-api/<service>/<model>` reaches any other one via <SERVICE>_API_KEY and
<SERVICE>_BASE_URL."""

from __future__ import annotations

from typing import Any

from evalkit.errors import ModelNotFoundError
from evalkit.model.types import GenerateConfig
from evalkit.providers.openai.api import OpenAIAPI, Service


def _provider(service: Service) -> type[OpenAIAPI]:
    """An `OpenAIAPI` subclass bound to `service`."""
    name = "".join(part.capitalize() for part in service.name.replace("_", "-").split("-")) + "API"
    return type(name, (OpenAIAPI,), {"service": service, "__doc__": f"`{service.name}`: an OpenAI-compatible service."})


TogetherAPI = _provider(Service("together", "TOGETHER_API_KEY", "TOGETHER_BASE_URL", "https://api.together.xyz/v1", top_k=True))
GroqAPI = _provider(Service("groq", "GROQ_API_KEY", "GROQ_BASE_URL", "https://api.groq.com/openai/v1"))
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
