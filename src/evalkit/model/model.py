"""`Model`: one ModelAPI plus what every provider needs once (pools, limits, retries, usage)."""

from __future__ import annotations

import contextvars
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from functools import cached_property
from typing import Any, Awaitable, Callable, TypeVar

import anyio

from evalkit.errors import ModelArgsError, ToolsUnsupportedError
from evalkit.model.api import ModelAPI
from evalkit.model.cache import CachePolicy, cache_entry
from evalkit.model.deadlines import AttemptTimedOut, attempt_deadline
from evalkit.model.adaptive import pool_size
from evalkit.model.aliases import find_alias
from evalkit.model.limits import connection_slot, endpoint_limits
from evalkit.model.retry import DEFAULT_MAX_RETRIES, RequestClock, RequestTimeoutError, backoff_delay, refused
from evalkit.model.registry import provider_info, split_model_name
from evalkit.model.roles import current, record_usage
from evalkit.model.types import ChatMessage, ChatMessageUser, GenerateConfig, ModelOutput, ModelUsage
from evalkit.secrets import excerpt, remember_secrets
from evalkit.tool.definition import Tool, ToolDef, tool_infos
from evalkit.tool.types import ToolChoice, ToolInfo

T = TypeVar("T")

DEFAULT_MODEL = "hf/bundled"
"""Used when neither `--model` nor EVALKIT_MODEL is given: the bundled SmolLM2-135M-Instruct."""

class RetryRecorder:
    """Collects one sample's retries and tells the progress display as each one happens and
    while the sample waits on a server's rate limit."""

    def __init__(self, on_retry: Callable[[], None] | None = None, on_wait: Callable[[int], None] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.on_retry = on_retry
        self.on_wait = on_wait

    @contextmanager
    def retrying(self, attempt: int, error: str, delay: float, rate_limited: bool) -> Iterator[None]:
        """Record retry `attempt` and, for the block (the wait before it), count the sample as
        waiting on a rate limit if `rate_limited`."""
        notify = self.on_wait if rate_limited else None
        if notify is not None:
            notify(1)
        self.events.append({"attempt": attempt, "error": excerpt(error), "wait": round(delay, 3)})
        if self.on_retry is not None:
            self.on_retry()
        try:
            yield
        finally:
            if notify is not None:
                notify(-1)


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
        alias: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.api = api
        self.config = config
        self.model_args = model_args or {}
        self.alias = alias
        """The models-file alias this model was created from, as the log header records it."""
        self.usage = ModelUsage()
        self.retries = 0

    def __repr__(self) -> str:
        return f"Model({self.name!r})"

    def max_connections(self, config: GenerateConfig | None = None) -> int:
        """The pool size: the config's max_connections (the adaptive ceiling for "auto"), else the provider's default."""
        merged = self.config.merge(config)
        return pool_size(merged.max_connections, self.api.max_connections())

    async def generate(
        self,
        input: str | list[ChatMessage],
        tools: Sequence[Tool | ToolDef | ToolInfo] | None = None,
        tool_choice: ToolChoice | None = None,
        config: GenerateConfig | None = None,
        cache: bool | CachePolicy = False,
    ) -> ModelOutput:
        """One reply to `input` (text or messages), offering `tools`; transient errors are retried.
        With `cache` (True or a CachePolicy), a cached reply answers without a request and a
        successful reply is stored.

        The reply's tool calls are not run here (the solvers' `generate()` runs them). Each
        attempt may take `attempt_timeout` seconds (default 600); `timeout` bounds the whole
        request: its attempts and the waits between them, the server's Retry-After included.
        `generate(input, config)` (the older form) still works.
        """
        if isinstance(tools, GenerateConfig):
            tools, config = None, tools
        messages = [ChatMessageUser(content=input)] if isinstance(input, str) else list(input)
        infos = tool_infos(tools or [])
        if infos and not self.api.supports_tools:
            raise ToolsUnsupportedError(
                f"provider '{self.name.partition('/')[0]}' cannot call tools ({self.name}); "
                "evaluate a model whose provider supports tools, or drop use_tools() from the task")
        config = self.config.merge(config)
        entry = cache_entry(cache, self.name, self.api.base_url, self.model_args, messages, infos,
                            tool_choice if infos else None, config)
        output = await entry.fetch() if entry is not None else None
        if output is None:
            output = await self._retrying(lambda clock: self._generate_once(messages, infos, tool_choice, config, clock), config)
        if entry is not None:
            await entry.keep(output)
        self.usage.add(output.usage)
        record_usage(self.name, output.usage)
        return output

    async def embed(self, texts: list[str], config: GenerateConfig | None = None) -> list[list[float]]:
        """One embedding vector per text, in order. The texts go in batches of the provider's
        `embed_batch_size()`, sent concurrently through the same connection pool, rate limits,
        retries and timeouts as `generate` (`timeout` bounds each batch's request). A provider
        without embeddings raises EmbeddingsUnsupportedError."""
        config = self.config.merge(config)
        size = max(1, self.api.embed_batch_size())
        batches = [texts[start:start + size] for start in range(0, len(texts), size)]
        vectors: list[list[list[float]]] = [[] for _ in batches]
        failures: list[Exception] = []

        async def embed_batch(index: int) -> None:
            try:
                vectors[index] = await self._retrying(lambda clock: self._embed_once(batches[index], config, clock), config)
            except Exception as error:  # the first failure ends the other batches too
                failures.append(error)
                group.cancel_scope.cancel()

        async with anyio.create_task_group() as group:
            for index in range(len(batches)):
                group.start_soon(embed_batch, index)
        if failures:
            raise failures[0]
        return [vector for batch in vectors for vector in batch]

    async def _retrying(self, attempt: Callable[[RequestClock], Awaitable[T]], config: GenerateConfig) -> T:
        """`attempt(clock)` until it succeeds, retrying transient errors with backoff (the
        server's Retry-After honoured) up to max_retries, within the request's `timeout`."""
        max_retries = DEFAULT_MAX_RETRIES if config.max_retries is None else config.max_retries
        clock = RequestClock(config.timeout)
        tries = 0
        while True:
            try:
                return await attempt(clock)
            except Exception as error:
                retryable = self._transient(error)
                if tries >= max_retries or not retryable or clock.left() == 0:
                    clear = self._clear(error)
                    if clear is error:
                        raise
                    raise clear from None  # the SDK may call a refused connection a timeout
                await self._wait_to_retry(tries, error, clock)
                tries += 1

    @cached_property
    def _rate_limit_key(self) -> str:
        """The provider's rate-limit key (its credential does not change once it is built)."""
        return self.api.rate_limit_key()

    async def _generate_once(
        self, messages: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None,
        config: GenerateConfig, clock: RequestClock,
    ) -> ModelOutput:
        """One attempt at a reply, charged to the tokens_per_sec limit by estimate, then by its usage
        (in batch mode: a place in one of the provider's batches, outside the connection pool)."""
        if config.batch:
            from evalkit.model.batch.batcher import batcher_for

            batcher = batcher_for(self.api, config.batch)
            if batcher is not None:
                return await batcher.generate(messages, tools, tool_choice if tools else None, config)
        guess = _estimate_tokens(messages, config) if config.tokens_per_sec else 0.0
        before = clock.spent
        output, charged = await self._attempt(
            lambda: self.api.request(messages, tools, tool_choice if tools else None, config), config, clock, guess)
        if output.time is None:
            output.time = clock.spent - before  # the attempt's own time, without queueing for a slot
        if config.tokens_per_sec and output.usage is not None:
            endpoint_limits(self._rate_limit_key).tokens.settle(config.tokens_per_sec, guess, charged, output.usage.total_tokens)
        return output

    async def _embed_once(self, texts: list[str], config: GenerateConfig, clock: RequestClock) -> list[list[float]]:
        """One attempt at embedding one batch."""
        vectors, _ = await self._attempt(lambda: self.api.embed(texts), config, clock)
        if len(vectors) != len(texts):
            raise RuntimeError(f"{self.api.label}: embed() gave {len(vectors)} vectors for {len(texts)} texts")
        return vectors

    async def _attempt(
        self, send: Callable[[], Awaitable[T]], config: GenerateConfig, clock: RequestClock, tokens: float = 0.0,
    ) -> tuple[T, float]:
        """One request: a connection from the pool, a rate-limit turn (`tokens` estimated tokens
        under tokens_per_sec), then `send()` within the attempt's deadline; its result and the
        tokens charged."""
        rate_limits = endpoint_limits(self._rate_limit_key) if config.requests_per_sec or tokens else None
        connections = config.max_connections or self.api.max_connections()
        async with connection_slot(self.api.connection_key(), connections, self._transient):
            charged = 0.0
            if rate_limits is not None and config.requests_per_sec:
                await rate_limits.requests.acquire(config.requests_per_sec)
            if rate_limits is not None and tokens and config.tokens_per_sec:
                charged = await rate_limits.tokens.acquire(config.tokens_per_sec, tokens)
            limit, whole_request = clock.attempt_limit(config.attempt_timeout)
            start = time.monotonic()
            try:
                with attempt_deadline(limit):
                    result = await send()
            except AttemptTimedOut:
                raise RequestTimeoutError(self._timeout_message(limit, whole_request, config)) from None
            finally:
                clock.spent += time.monotonic() - start
        return result, charged

    def _transient(self, error: BaseException) -> bool:
        """Whether `error` is worth a retry: a timeout, a rate limit or another transient failure."""
        return isinstance(error, TimeoutError) or self.api.is_rate_limit(error) or self.api.is_retryable(error)

    async def _wait_to_retry(self, attempt: int, error: Exception, clock: RequestClock) -> None:
        """Sleep before retry `attempt + 1`, or give up at once if the wait would outlast `timeout`."""
        hint = self.api.retry_after(error)
        delay = backoff_delay(attempt, hint)
        left = clock.left()
        if left is not None and delay >= left:
            asked = "the server asked for" if hint is not None else "the backoff needs"
            raise RequestTimeoutError(
                f"{self.api.label}: gave up after {attempt + 1} attempts: the request's timeout of {clock.timeout:g} s "
                f"leaves {left:.1f} s, less than the {delay:.1f} s wait {asked}; last error: {self._describe(error)}"
            ) from error
        self.retries += 1
        recorder = retry_recorder.get()
        start = time.monotonic()
        try:
            retrying = nullcontext() if recorder is None else recorder.retrying(
                attempt + 1, self._describe(error), delay, self.api.is_rate_limit(error))
            with retrying:
                await anyio.sleep(delay)
        finally:
            clock.spent += time.monotonic() - start

    def _timeout_message(self, limit: float, whole_request: bool, config: GenerateConfig) -> str:
        if whole_request:
            return f"{self.api.label}: no reply within the request's timeout of {config.timeout:g} s (attempts and retry waits together)"
        which = "attempt_timeout" if config.attempt_timeout else "the default attempt_timeout"
        return f"{self.api.label}: no reply within {limit:g} s ({which}); the attempt is abandoned"

    def _clear(self, error: Exception) -> Exception:
        """The error to report for a request that failed for good."""
        return refused(error, self.api.base_url, self.api.label) or error

    def _describe(self, error: Exception) -> str:
        clear = self._clear(error)
        return f"{type(clear).__name__}: {clear}"

    async def aclose(self) -> None:
        """Release the provider's resources."""
        await self.api.aclose()


LIMIT_ARGS = frozenset({"max_connections", "max_retries", "requests_per_sec", "tokens_per_sec"})
"""`-M` arguments that set `Model`'s limits instead of going to the provider."""


def _estimate_tokens(messages: list[ChatMessage], config: GenerateConfig) -> float:
    """A cheap input+output token estimate (4 characters a token) for tokens_per_sec limits."""
    return sum(len(m.text) for m in messages) / 4 + (config.max_tokens or 256)


def resolve_model_name(model: str | None) -> str:
    """The model to use: the argument, else EVALKIT_MODEL, else the bundled default."""
    return model or os.environ.get("EVALKIT_MODEL") or DEFAULT_MODEL


def get_model(
    model: str | Model | None = None,
    *,
    role: str | None = None,
    default: str | Model | None = None,
    config: GenerateConfig = GenerateConfig(),
    base_url: str | None = None,
    api_key: str | None = None,
    **model_args: Any,
) -> Model:
    """A `Model` for `provider/model`; `model_args` go to the provider (its SDK client), except
    max_connections, max_retries, requests_per_sec and tokens_per_sec, which set `Model`'s limits.

    With `role` (e.g. "grader"), inside a running eval: the model given for that role
    (`eval(model_roles=...)`, `--model-role`), else `model` or `default` if given, else the
    model being evaluated.
    """
    if role is not None:
        active = current()
        if active is not None and role in active.roles:
            return active.roles[role]
        model = model if model is not None else default
        if model is None:
            if active is None:
                raise ModelArgsError(f"get_model(role='{role}') outside a running eval needs a model: pass default='provider/model'")
            return active.model
    if isinstance(model, Model):
        return model
    return create_model(model, config, {**model_args, "base_url": base_url, "api_key": api_key})


def create_model(model: str | None, config: GenerateConfig, model_args: dict[str, Any]) -> Model:
    """`get_model` with the model arguments as one dict (as `-M` gives them)."""
    name = resolve_model_name(model)
    alias, given_args = find_alias(name), model_args
    if alias is not None:
        name, (config, model_args) = alias.model, alias.resolve(config, model_args)
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
    api.provider = api.provider or provider  # for the messages of providers that do not name themselves
    return Model(name, api, config, logged_args, alias=alias.record(config, given_args) if alias else None)
