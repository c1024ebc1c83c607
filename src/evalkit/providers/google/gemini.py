"""`google` (Gemini API) and `vertex` (Gemini on Vertex AI), on google-genai.

`google/<model>`: API key from GOOGLE_API_KEY (or GEMINI_API_KEY), endpoint from GOOGLE_BASE_URL
(or `base_url=`). `vertex/<model>`: project and location from GOOGLE_CLOUD_PROJECT and
GOOGLE_CLOUD_LOCATION (default `global`) with Application Default Credentials, or, without a
project, an express-mode API key from GOOGLE_API_KEY; endpoint from GOOGLE_VERTEX_BASE_URL.

`-M safety_settings={harassment: low_and_above, ...}` sets a threshold per category, in
Inspect's short forms (none, only_high or high, medium_and_above, low_and_above, off) or the
API's names (block_none, BLOCK_ONLY_HIGH, ...); categories harassment, hate_speech,
sexually_explicit, dangerous_content, or any HARM_CATEGORY_* name. As in Inspect, the four
categories are at none (BLOCK_NONE) unless set.
Every other `-M` goes to `genai.Client` (e.g. `-M project=...`, `-M http_options={api_version:
v1}`, or from Python `credentials=`); the SDK's own retries are off, `Model` retries.

Request: `models/{model}:generateContent` with system messages as `systemInstruction`, other
turns as `contents` (assistant -> role "model") and generationConfig maxOutputTokens,
temperature, topP, topK, stopSequences, seed, candidateCount (num_choices), presencePenalty,
frequencyPenalty, responseLogprobs (logprobs) and logprobs (top_logprobs). finishReason STOP ->
stop, MAX_TOKENS -> max_tokens, SAFETY/RECITATION/BLOCKLIST/PROHIBITED_CONTENT/SPII/... ->
content_filter, a blocked prompt -> content_filter; usage from usageMetadata
(candidates + thoughts count as output, thoughts also as reasoning_tokens).

Tools: one Tool of functionDeclarations (parameters as parametersJsonSchema) and toolConfig
functionCallingConfig mode AUTO / ANY / NONE (ToolFunction: ANY with allowedFunctionNames). A
reply's functionCall parts become ToolCalls (stop reason tool_calls); calls without an id get
`evalkit-call-<n>`, n counting the conversation's calls, and are sent back without one. Tool
results go back as functionResponse parts ({"output": text} or {"error": message}), the results
of one turn in one user Content. Images are sent inline (URLs fetched first); an image in a
system message fails in one line (systemInstruction is text only).

Thinking: reasoning_tokens -> thinkingConfig.thinkingBudget; reasoning_effort -> thinkingLevel,
or for gemini-1.x/2.x models a budget (minimal 512, low 1024, medium 8192, high 24576);
includeThoughts is set with either. Thought parts become ContentReasoning (thoughtSignature as its
signature); a signature on another part is kept as a ContentReasoning without text standing just
before what it was on, and sent back on that part. response_schema -> responseMimeType
application/json and responseJsonSchema. Gemini has no parallel_tool_calls switch (False warns).

Embeddings: `embed_content`, i.e. `models/{model}:batchEmbedContents` on the Gemini API (96
texts a request) and, on Vertex, `:predict` (text-embedding-*, 96) or `:embedContent`
(gemini-embedding-*, one text a request).
"""

from __future__ import annotations

from typing import Any

import httpx
from google import genai
from google.auth.exceptions import DefaultCredentialsError
from google.genai import errors, types

from evalkit.errors import BatchUnsupportedError, ModelArgsError
from evalkit.model.api import ModelAPI, warn_unsupported
from evalkit.model.types import ChatMessage, ChatMessageAssistant, GenerateConfig, ModelOutput
from evalkit.tool.types import ToolChoice, ToolInfo
from evalkit.providers.batch.google import GeminiBatches, inlined_request, inlined_response
from evalkit.model.batch.protocol import BatchProtocol
from evalkit.providers.google.wire import gemini_contents, gemini_output, gemini_tool, gemini_tool_config, thinking_config
from evalkit.providers.common.per_loop import PerLoop
from evalkit.providers.common.http_errors import (
    MalformedResponseError, MissingCredentialsError, is_retryable_status, retry_after_from_headers,
)
from evalkit.providers.common.turns import system_text
from evalkit.secrets import get_secret

try:
    import aiohttp

    _TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.TransportError, aiohttp.ClientError)
except ImportError:  # google-genai falls back to httpx
    _TRANSPORT_ERRORS = (httpx.TransportError,)



DEFAULT_SAFETY_SETTINGS = dict.fromkeys(("harassment", "hate_speech", "sexually_explicit", "dangerous_content"), "none")
"""Inspect's default: no blocking in the four main categories."""
_THRESHOLD_ALIASES = {"HIGH": "BLOCK_ONLY_HIGH", "NONE": "BLOCK_NONE", "OFF": "OFF"}


def parse_safety_settings(settings: dict[str, str] | None) -> list[types.SafetySetting]:
    """`{category: threshold}` (short or API names) over the defaults, as SafetySettings."""
    if settings is not None and not isinstance(settings, dict):
        raise ModelArgsError("-M safety_settings must be a mapping, e.g. {harassment: low_and_above}")
    merged: dict[str, str] = {}
    for category, threshold in {**DEFAULT_SAFETY_SETTINGS, **(settings or {})}.items():
        merged[_category(category)] = str(threshold)  # a short and a long name for one category: the later wins
    return [types.SafetySetting(category=types.HarmCategory[name], threshold=_threshold(name, level))
            for name, level in merged.items()]


def _category(category: str) -> str:
    name = str(category).upper()
    name = name if name.startswith("HARM_CATEGORY_") else f"HARM_CATEGORY_{name}"
    if name not in types.HarmCategory.__members__:
        raise ModelArgsError(
            f"-M safety_settings: {category} is not a known category "
            "(harassment, hate_speech, sexually_explicit, dangerous_content, or a HARM_CATEGORY_* name)"
        )
    return name


def _threshold(category: str, threshold: str) -> types.HarmBlockThreshold:
    level = threshold.upper()
    level = _THRESHOLD_ALIASES.get(level) or (level if level.startswith("BLOCK_") else f"BLOCK_{level}")
    if level not in types.HarmBlockThreshold.__members__:
        raise ModelArgsError(
            f"-M safety_settings: {category.removeprefix('HARM_CATEGORY_').lower()}: {threshold} is not a known threshold "
            "(none, only_high, medium_and_above, low_and_above, off)"
        )
    return types.HarmBlockThreshold[level]


def _calls_so_far(messages: list[ChatMessage]) -> int:
    """The tool calls already in the conversation (a reply's calls without an id are numbered on)."""
    return sum(len(m.tool_calls or []) for m in messages if isinstance(m, ChatMessageAssistant))


class GoogleAPI(ModelAPI):
    """Gemini through google-genai (see the module docstring)."""

    provider = "google"
    base_url_env = "GOOGLE_BASE_URL"

    def __init__(
        self,
        model_name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        safety_settings: dict[str, str] | None = None,
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url=base_url or get_secret(self.base_url_env), api_key=api_key, config=config, **model_args)
        self.safety_settings = parse_safety_settings(safety_settings)
        self._batches: GeminiBatches | None = None
        args = self._auth_args(api_key, dict(model_args))
        self._credential = args.get("api_key") or f"{args.get('project')}/{args.get('location')}"
        args["http_options"] = self._http_options(args.get("http_options"))
        try:
            self._client = PerLoop(lambda: genai.Client(**args), initial=genai.Client(**args))  # made now: bad -M fails at once
        except DefaultCredentialsError:
            raise MissingCredentialsError(
                self.provider,
                "GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION with Application Default Credentials "
                "(gcloud auth application-default login, or GOOGLE_APPLICATION_CREDENTIALS)",
                "GOOGLE_API_KEY (express mode)",
            ) from None
        except ValueError as ex:
            raise ModelArgsError(f"-M rejected by google-genai: {str(ex).splitlines()[0]}") from None

    def _auth_args(self, api_key: str | None, args: dict[str, Any]) -> dict[str, Any]:
        """Client arguments with the credentials filled in from the environment."""
        key = api_key or get_secret("GOOGLE_API_KEY") or get_secret("GEMINI_API_KEY")
        if not key:
            raise MissingCredentialsError(self.provider, "GOOGLE_API_KEY", "GEMINI_API_KEY")
        return {"vertexai": False, "api_key": key, **args}

    def _http_options(self, user: Any) -> types.HttpOptions:
        options = types.HttpOptions.model_validate(user) if isinstance(user, dict) else (user or types.HttpOptions())
        if options.base_url is None and self.base_url:
            options.base_url = self.base_url
        if options.retry_options is None:
            options.retry_options = types.HttpRetryOptions(attempts=1)
        return options

    async def generate(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> ModelOutput:
        response = await self._client.get().aio.models.generate_content(**await self._request(input, tools, tool_choice, config))
        return gemini_output(response, self.label, first_call=_calls_so_far(input))

    async def _request(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> dict[str, Any]:
        """generate_content's arguments: model, contents and config."""
        config_ = self.generation_config(input, tools, tool_choice, config)
        return {"model": self.model_name, "contents": await gemini_contents(input), "config": config_}

    def batch_protocol(self) -> BatchProtocol:
        """Gemini API batches of inlined requests, on this client."""
        if self._batches is None:
            self._batches = GeminiBatches(self._client.get, self.label)
        return self._batches

    async def batch_body(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> dict[str, Any]:
        """generate()'s request as an inlined batch request (google-genai's JSON)."""
        return inlined_request(await self._request(input, tools, tool_choice, config), first_call=_calls_so_far(input))

    def batch_output(self, body: dict[str, Any]) -> ModelOutput:
        """The ModelOutput for a batch result (a generateContent response), as generate() builds it."""
        response, first_call = inlined_response(body)
        return gemini_output(response, self.label, first_call=first_call)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """`embed_content`: batchEmbedContents (Gemini API), predict or embedContent (Vertex)."""
        response = await self._client.get().aio.models.embed_content(model=self.model_name, contents=list(texts))
        vectors = [list(each.values or ()) for each in response.embeddings or ()]
        if not all(vectors):
            raise MalformedResponseError(f"{self.label}: an embedding without values")
        return vectors

    def generation_config(
        self, messages: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> types.GenerateContentConfig:
        """System instruction, safety settings, tools and every GenerateConfig field Gemini takes."""
        system = [types.Part(text=system_text(m, self.provider, "systemInstruction")) for m in messages if m.role == "system"]
        if config.parallel_tool_calls is False:
            warn_unsupported(self.provider, "parallel_tool_calls", "Gemini has no switch for parallel function calls")
        schema = config.response_schema
        return types.GenerateContentConfig(
            system_instruction=types.Content(role="user", parts=system) if system else None,
            safety_settings=self.safety_settings,
            tools=[gemini_tool(tools)] if tools else None,
            tool_config=gemini_tool_config(tool_choice) if tools and tool_choice is not None else None,
            thinking_config=thinking_config(self.model_name, config),
            response_mime_type="application/json" if schema else None,
            response_json_schema=schema.json_schema if schema else None,
            max_output_tokens=config.max_tokens,
            temperature=config.temperature,
            top_p=config.top_p,
            top_k=config.top_k,
            stop_sequences=list(config.stop_seqs) if config.stop_seqs is not None else None,
            seed=config.seed,
            candidate_count=config.num_choices,
            presence_penalty=config.presence_penalty,
            frequency_penalty=config.frequency_penalty,
            response_logprobs=True if config.top_logprobs is not None else config.logprobs,
            logprobs=config.top_logprobs,
        )

    def is_retryable(self, error: BaseException) -> bool:
        if isinstance(error, errors.APIError):
            return is_retryable_status(error.code)
        return isinstance(error, _TRANSPORT_ERRORS)

    def is_rate_limit(self, error: BaseException) -> bool:
        return isinstance(error, errors.APIError) and error.code == 429

    def credential(self) -> str | None:
        return self._credential

    def retry_after(self, error: BaseException) -> float | None:
        if isinstance(error, errors.APIError):
            return retry_after_from_headers(getattr(error.response, "headers", None))
        return None

    async def aclose(self) -> None:
        client = self._client.take()
        if client is not None:
            await client.aio.aclose()


class VertexAPI(GoogleAPI):
    """Gemini on Vertex AI: project/location with ADC, or an express-mode API key."""

    provider = "vertex"
    base_url_env = "GOOGLE_VERTEX_BASE_URL"

    def batch_protocol(self) -> BatchProtocol:
        """Not available: Vertex AI batch prediction takes no inlined requests (only Cloud Storage or BigQuery)."""
        raise BatchUnsupportedError("vertex: batch mode is not supported (Vertex AI batch jobs read Cloud Storage or BigQuery); run without --batch")

    def _auth_args(self, api_key: str | None, args: dict[str, Any]) -> dict[str, Any]:
        args = {"vertexai": True, **args}
        args["project"] = args.get("project") or get_secret("GOOGLE_CLOUD_PROJECT")
        if args["project"]:
            args["location"] = args.get("location") or get_secret("GOOGLE_CLOUD_LOCATION") or "global"
        elif not args.get("credentials"):
            args["api_key"] = api_key or get_secret("GOOGLE_API_KEY")
        return args

    def embed_batch_size(self) -> int:
        """Vertex's embedContent (gemini-embedding models) takes one text a request; predict 96 here."""
        return 1 if "gemini" in self.model_name.rsplit("/", 1)[-1] else 96
