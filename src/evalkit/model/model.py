"""`Model`: one ModelAPI plus what every provider needs once (pools, limits, retries, usage)."""

from __future__ import annotations

import contextvars
import os
import time
from contextlib import nullcontext
from typing import Any, Callable

import anyio

from evalkit.errors import ModelArgsError
from evalkit.model.api import ModelAPI
from evalkit.model.limits import DEFAULT_MAX_RETRIES, backoff_delay, connection_limits
from evalkit.model.registry import provider_info, split_model_name
from evalkit.model.types import ChatMessage, ChatMessageUser, GenerateConfig, ModelOutput, ModelUsage
from evalkit.secrets import remember_secrets, scrub

DEFAULT_MODEL = "hf/bundled"
"""Used when neither `--model` nor EVALKIT_MODEL is given: the bundled SmolLM2-135M-Instruct."""

class RetryRecorder:
    """Collects one sample's retries and tells the progress display as each one happens."""

    def __init__(self, on_retry: Callable[[], None] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.on_retry = on_retry

    def record(self, attempt: int, error: BaseException, delay: float) -> None:
        self.events.append({"attempt": attempt, "error": scrub(f"{type(error).__name__}: {error}")[:300], "wait": round(delay, 3)})
        if self.on_retry is not None:
            self.on_retry()


retry_recorder: contextvars.ContextVar[RetryRecorder | None] = contextvars.ContextVar("evalkit_retry_recorder", default=None)
"""Set by the runner per sample; `Model` records each retry it makes there."""


class Model:
    """A provider's ModelAPI with shared connection pools, rate limits, retries and usage totals."""

    def __init__(
        self,
        name: str,
        api: ModelAPI,
        config: GenerateConfig = GenerateConfig(),
        model_args: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.api = api
        self.config = config
        self.model_args = model_args or {}
        self.usage = ModelUsage()
        self.retries = 0

    def __repr__(self) -> str:
        return f"Model({self.name!r})"

    def max_connections(self, config: GenerateConfig | None = None) -> int:
        """The pool size: the config's max_connections, else the provider's default."""
        merged = self.config.merge(config)
        return merged.max_connections or self.api.max_connections()

    async def generate(
        self, input: str | list[ChatMessage], config: GenerateConfig | None = None
    ) -> ModelOutput:
        """Generate a reply to `input` (text or messages), retrying transient errors."""
        messages = [ChatMessageUser(content=input)] if isinstance(input, str) else list(input)
        config = self.config.merge(config)
        limits = connection_limits(
            self.api.connection_key(),
            config.max_connections or self.api.max_connections(),
            config.requests_per_sec,
            config.tokens_per_sec,
        )
        max_retries = DEFAULT_MAX_RETRIES if config.max_retries is None else config.max_retries
        attempt = 0
        while True:
            start = time.monotonic()
            try:
                async with limits.pool:
                    estimate = 0.0
                    if limits.requests is not None:
                        await limits.requests.acquire()
                    if limits.tokens is not None:
                        estimate = _estimate_tokens(messages, config)
                        await limits.tokens.acquire(estimate)
                    with anyio.fail_after(config.timeout) if config.timeout else nullcontext():
                        output = await self.api.generate(messages, config)
                break
            except Exception as error:
                if attempt >= max_retries or not (isinstance(error, TimeoutError) or self.api.is_retryable(error)):
                    raise
                delay = backoff_delay(attempt, self.api.retry_after(error))
                self._record_retry(attempt, error, delay)
                attempt += 1
                await anyio.sleep(delay)
        if output.time is None:
            output.time = time.monotonic() - start
        if output.usage is not None:
            self.usage.add(output.usage)
            if limits.tokens is not None:
                limits.tokens.correct(output.usage.total_tokens - estimate)
        return output

    def _record_retry(self, attempt: int, error: BaseException, delay: float) -> None:
        self.retries += 1
        recorder = retry_recorder.get()
        if recorder is not None:
            recorder.record(attempt + 1, error, delay)

    async def aclose(self) -> None:
        """Release the provider's resources."""
        await self.api.aclose()


LIMIT_ARGS = frozenset({"max_connections", "max_retries", "requests_per_sec", "tokens_per_sec"})
"""`-M` arguments that set `Model`'s limits instead of going to the provider."""


def _estimate_tokens(messages: list[ChatMessage], config: GenerateConfig) -> float:
    """A cheap input+output token estimate (4 characters a token) for tokens_per_sec limits."""
    return sum(len(m.content) for m in messages) / 4 + (config.max_tokens or 256)


def resolve_model_name(model: str | None) -> str:
    """The model to use: the argument, else EVALKIT_MODEL, else the bundled default."""
    return model or os.environ.get("EVALKIT_MODEL") or DEFAULT_MODEL


def get_model(
    model: str | None = None,
    *,
    config: GenerateConfig = GenerateConfig(),
    base_url: str | None = None,
    api_key: str | None = None,
    **model_args: Any,
) -> Model:
    """A `Model` for `provider/model`; `model_args` go to the provider (its SDK client), except
    max_connections, max_retries, requests_per_sec and tokens_per_sec, which set `Model`'s limits."""
    return create_model(model, config, {**model_args, "base_url": base_url, "api_key": api_key})


def create_model(model: str | None, config: GenerateConfig, model_args: dict[str, Any]) -> Model:
    """`get_model` with the model arguments as one dict (as `-M` gives them)."""
    name = resolve_model_name(model)
    provider, model_name = split_model_name(name)
    if "config" in model_args:
        raise ModelArgsError(
            "-M config is reserved for evalkit's generate config; use the generation flags, or the "
            "provider's own name for an SDK config object (e.g. -M client_config={...} for bedrock)"
        )
    api_class = provider_info(provider).load()
    remember_secrets(model_args)
    logged_args = {k: v for k, v in model_args.items() if not (k in ("base_url", "api_key") and v is None)}
    provider_args = {k: v for k, v in logged_args.items() if k not in LIMIT_ARGS}
    limits = {k: v for k, v in logged_args.items() if k in LIMIT_ARGS}
    if limits:
        try:
            config = config.merge(GenerateConfig(**limits))
        except ValueError as ex:
            raise ModelArgsError(f"-M {ex}") from None
    try:
        api = api_class(model_name, config=config, **provider_args)
    except TypeError as ex:
        if "argument" not in str(ex):
            raise
        raise ModelArgsError(f"-M argument rejected by provider '{provider}': {ex}") from ex
    except ValueError as ex:
        raise ModelArgsError(f"provider '{provider}' rejected its arguments: {ex}") from ex
    return Model(name, api, config, logged_args)
