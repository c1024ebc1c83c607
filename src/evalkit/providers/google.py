"""`google` (Gemini API) and `vertex` (Gemini on Vertex AI), on google-genai.

`google/<model>`: API key from GOOGLE_API_KEY (or GEMINI_API_KEY), endpoint from GOOGLE_BASE_URL
(or `base_url=`). `vertex/<model>`: project and location from GOOGLE_CLOUD_PROJECT and
GOOGLE_CLOUD_LOCATION (default `global`) with Application Default Credentials, or, without a
project, an express-mode API key from GOOGLE_API_KEY; endpoint from GOOGLE_VERTEX_BASE_URL.

`-M safety_settings={harassment: block_none, ...}` sets a threshold (block_none,
block_only_high, block_medium_and_above, block_low_and_above, off) per category (harassment,
hate_speech, sexually_explicit, dangerous_content; any other HARM_CATEGORY_* name also works).
Every other `-M` goes to `genai.Client` (e.g. `-M project=...`, `-M http_options={api_version:
v1}`, or from Python `credentials=`); the SDK's own retries are off, `Model` retries.

Request: `models/{model}:generateContent` with system messages as `systemInstruction`, other
turns as `contents` (assistant -> role "model") and generationConfig maxOutputTokens,
temperature, topP, topK, stopSequences, seed, candidateCount (num_choices), presencePenalty,
frequencyPenalty, responseLogprobs (logprobs) and logprobs (top_logprobs). finishReason STOP ->
stop, MAX_TOKENS -> max_tokens, SAFETY/RECITATION/BLOCKLIST/PROHIBITED_CONTENT/SPII/... ->
content_filter, a blocked prompt -> content_filter; usage from usageMetadata
(candidates + thoughts count as output).
"""

from __future__ import annotations

from typing import Any

import httpx
from google import genai
from google.auth.exceptions import DefaultCredentialsError
from google.genai import errors, types

from evalkit.errors import ModelArgsError
from evalkit.model.api import ModelAPI
from evalkit.model.types import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    GenerateConfig,
    Logprob,
    ModelOutput,
    ModelUsage,
    StopReason,
    TopLogprob,
)
from evalkit.providers.per_loop import PerLoop
from evalkit.providers.http_errors import MissingCredentialsError, is_retryable_status, retry_after_from_headers
from evalkit.secrets import get_secret

try:
    import aiohttp

    _TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.TransportError, aiohttp.ClientError)
except ImportError:  # google-genai falls back to httpx
    _TRANSPORT_ERRORS = (httpx.TransportError,)

FINISH_REASONS: dict[str, StopReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "max_tokens",
    **dict.fromkeys(
        ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
         "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR"),
        "content_filter",
    ),
}


def parse_safety_settings(settings: dict[str, str] | None) -> list[types.SafetySetting] | None:
    """`{category: threshold}` (short or HARM_CATEGORY_* names) as SafetySettings."""
    if settings is None:
        return None
    if not isinstance(settings, dict):
        raise ModelArgsError("-M safety_settings must be a mapping, e.g. {harassment: block_none}")
    parsed = []
    for category, threshold in settings.items():
        name = str(category).upper()
        name = name if name.startswith("HARM_CATEGORY_") else f"HARM_CATEGORY_{name}"
        level = str(threshold).upper()
        if name not in types.HarmCategory.__members__ or level not in types.HarmBlockThreshold.__members__:
            raise ModelArgsError(
                f"-M safety_settings: {category}: {threshold} is not a known category/threshold "
                "(categories: harassment, hate_speech, sexually_explicit, dangerous_content; thresholds: "
                "block_none, block_only_high, block_medium_and_above, block_low_and_above, off)"
            )
        parsed.append(types.SafetySetting(category=types.HarmCategory[name], threshold=types.HarmBlockThreshold[level]))
    return parsed


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

    async def generate(self, messages: list[ChatMessage], config: GenerateConfig) -> ModelOutput:
        contents = [
            types.Content(role="model" if m.role == "assistant" else "user", parts=[types.Part(text=m.content)])
            for m in messages
            if m.role != "system"
        ]
        response = await self._client.get().aio.models.generate_content(
            model=self.model_name, contents=contents, config=self.generation_config(messages, config)
        )
        return gemini_output(response, self.label)

    def generation_config(self, messages: list[ChatMessage], config: GenerateConfig) -> types.GenerateContentConfig:
        """System instruction, safety settings and every GenerateConfig field Gemini takes."""
        system = [types.Part(text=m.content) for m in messages if m.role == "system"]
        return types.GenerateContentConfig(
            system_instruction=types.Content(role="user", parts=system) if system else None,
            safety_settings=self.safety_settings,
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

    def _auth_args(self, api_key: str | None, args: dict[str, Any]) -> dict[str, Any]:
        args = {"vertexai": True, **args}
        args["project"] = args.get("project") or get_secret("GOOGLE_CLOUD_PROJECT")
        if args["project"]:
            args["location"] = args.get("location") or get_secret("GOOGLE_CLOUD_LOCATION") or "global"
        elif not args.get("credentials"):
            args["api_key"] = api_key or get_secret("GOOGLE_API_KEY")
        return args


def gemini_output(response: types.GenerateContentResponse, model: str) -> ModelOutput:
    """The ModelOutput for a generateContent response."""
    choices = [_choice(candidate) for candidate in response.candidates or []]
    if not choices:
        blocked = bool(response.prompt_feedback and response.prompt_feedback.block_reason)
        choices = [ChatCompletionChoice(ChatMessageAssistant(content=""), "content_filter" if blocked else "unknown")]
    return ModelOutput(model=model, choices=choices, usage=_usage(response.usage_metadata))


def _choice(candidate: types.Candidate) -> ChatCompletionChoice:
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    text = "".join(part.text for part in parts if part.text and not part.thought)
    reason = candidate.finish_reason.value if candidate.finish_reason else ""
    return ChatCompletionChoice(
        message=ChatMessageAssistant(content=text),
        stop_reason=FINISH_REASONS.get(reason, "unknown"),
        logprobs=_logprobs(candidate.logprobs_result),
    )


def _logprobs(result: types.LogprobsResult | None) -> tuple[Logprob, ...] | None:
    if result is None or result.chosen_candidates is None:
        return None
    tops = result.top_candidates or []
    logprobs = []
    for index, chosen in enumerate(result.chosen_candidates):
        alternatives = (tops[index].candidates or []) if index < len(tops) else []
        logprobs.append(Logprob(
            token=chosen.token or "",
            logprob=chosen.log_probability or 0.0,
            top_logprobs=tuple(TopLogprob(c.token or "", c.log_probability or 0.0) for c in alternatives),
        ))
    return tuple(logprobs)


def _usage(metadata: types.GenerateContentResponseUsageMetadata | None) -> ModelUsage | None:
    if metadata is None:
        return None
    prompt = metadata.prompt_token_count or 0
    output = (metadata.candidates_token_count or 0) + (metadata.thoughts_token_count or 0)
    return ModelUsage(prompt, output, metadata.total_token_count or prompt + output)
