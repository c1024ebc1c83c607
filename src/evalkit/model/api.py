"""The provider contract: one `ModelAPI` subclass per provider family."""

from __future__ import annotations

import hashlib
import inspect
from abc import ABC, abstractmethod
from typing import Any

from evalkit.errors import EmbeddingsUnsupportedError
from evalkit.model.types import ChatMessage, GenerateConfig, ModelOutput
from evalkit.tool.types import ToolChoice, ToolInfo


class SampleActivity:
    """How many samples are running against one model right now.

    The runner keeps it current; local backends that batch read it to know whether more
    requests can still arrive before they start a batch.
    """

    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active = 0


class ModelAPI(ABC):
    """One provider: turns exactly one request into one `ModelOutput`.

    Everything every provider needs once (connection pools, retries, rate limits, usage
    totals) lives in `Model`, not here.

    `generate(input, tools, tool_choice, config)` is the contract; a provider written to the
    older `generate(messages, config)` form keeps working, without tools.
    """

    supports_tools: bool = True
    """Whether `generate` can send tools (False for the two-argument form, and for a provider
    whose API has none); a tool request to one that cannot fails with one line."""

    two_argument_generate: bool = False
    """Set for subclasses written to the older `generate(messages, config)` form."""

    local: bool = False
    """Whether the model runs in this process (hf, vllm): an eval runs local models one at a
    time, so only one holds memory, and hosted ones side by side."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "generate" in cls.__dict__:
            cls.two_argument_generate = _positional_count(cls.__dict__["generate"]) == 2
            if cls.two_argument_generate:
                cls.supports_tools = False

    def __init__(
        self,
        model_name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        **model_args: Any,
    ) -> None:
        self.model_name = model_name
        self.base_url = base_url
        self.api_key = api_key
        self.config = config
        self.model_args = model_args
        self.activity = SampleActivity()

    @abstractmethod
    async def generate(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> ModelOutput:
        """Make exactly one request for `input` offering `tools` (none: an empty list), with
        `config` already merged."""

    async def request(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> ModelOutput:
        """Call `generate` in whichever form the subclass implements."""
        if self.two_argument_generate:
            for name in _NEWER_FIELDS:
                if getattr(config, name) is not None:
                    warn_unsupported(self.provider or type(self).__name__, name)
            return await self.generate(input, config)  # type: ignore[call-arg]
        return await self.generate(input, tools, tool_choice, config)

    provider: str = ""
    """The provider's registered name, for messages (subclasses set it)."""

    @property
    def label(self) -> str:
        """`provider/model` as used in error messages."""
        return f"{self.provider}/{self.model_name}"

    def weights(self) -> dict[str, str] | None:
        """What actually answers, for the log header: local backends give the weights' name
        and a content hash (`{"name": ..., "sha256": ...}`); hosted providers give None."""
        return None

    def max_connections(self) -> int:
        """Default number of concurrent requests."""
        return 10

    def connection_key(self) -> str:
        """Requests with the same key (and max_connections) share one connection pool."""
        return f"{type(self).__name__}:{self.base_url or ''}:{self.model_name}"

    def credential(self) -> str | None:
        """What identifies the account requests are billed and rate-limited to (the API key by
        default); only its hash is kept."""
        return self.api_key

    def rate_limit_key(self) -> str:
        """Requests with the same key share requests_per_sec and tokens_per_sec limits: one
        endpoint with one credential, whatever the model name or limit values."""
        credential = self.credential()
        digest = hashlib.sha256(credential.encode()).hexdigest()[:16] if credential else ""
        return f"{self.provider or type(self).__name__}|{self.base_url or ''}|{digest}"

    def is_retryable(self, error: BaseException) -> bool:
        """Whether `error` is transient (rate limit, 5xx, timeout, dropped connection)."""
        return False

    def is_rate_limit(self, error: BaseException) -> bool:
        """Whether `error` is the server's rate limit (HTTP 429 or the API's throttling error)."""
        return False

    def retry_after(self, error: BaseException) -> float | None:
        """The server's hint, in seconds, of when to retry after `error`."""
        return None

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """Embed `texts` in exactly one request (at most `embed_batch_size()` of them), one
        vector per text, in order. Providers with an embeddings API override this."""
        raise EmbeddingsUnsupportedError(
            f"provider '{self.provider or type(self).__name__}' has no embeddings ({self.label}); "
            "use a model whose provider supports embed()")

    def batch_protocol(self) -> Any:
        """The provider's batch API (a `model.batch.protocol.BatchProtocol`) for batch
        mode, or None when it has none. Providers that return one also implement
        `batch_body(input, tools, tool_choice, config)` and `batch_output(reply)`."""
        return None

    def embed_batch_size(self) -> int:
        """The most texts one `embed` request may carry."""
        return 96

    async def aclose(self) -> None:
        """Release clients, threads and memory."""


_NEWER_FIELDS = ("reasoning_effort", "reasoning_tokens", "response_schema")
"""Settings a provider written to the two-argument form cannot know of."""


def _positional_count(function: Any) -> int:
    """How many positional parameters `function` takes besides `self`."""
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = [p for p in inspect.signature(function).parameters.values() if p.kind in kinds]
    return len(params) - 1


_warned: set[tuple[str, str]] = set()


def warn_unsupported(provider: str, field: str, reason: str = "") -> None:
    """Warn once per process that `provider` ignores GenerateConfig `field`."""
    if (provider, field) in _warned:
        return
    _warned.add((provider, field))
    import warnings

    detail = f" ({reason})" if reason else ""
    warnings.warn(f"provider '{provider}' does not support {field}; it is dropped{detail}", UserWarning, stacklevel=2)
