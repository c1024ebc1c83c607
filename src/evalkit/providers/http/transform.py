"""`transform`: any non-OpenAI HTTP inference API, described by a JMESPath transform spec.

Use `transform/<model>` with `-M spec=...` or the EVALKIT_TRANSFORM_SPEC variable, either
holding a path to a YAML or JSON file or the JSON text itself (as Snorkel keeps it in a
secret); a mapping also works from Python. `-M headers=`/`extra_headers=` are merged over the
spec's headers, `-M extra_body=` and `-M logit_bias=` join the OpenAI-style request (so the
spec's expressions can read them), and every other `-M` goes to `httpx.AsyncClient`. One
request is one `POST {base_url}{custom_path}` with the JSON body that
`openai_to_custom_request` builds; the reply goes through `custom_to_openai_response`.

    base_url: https://api.example.com      # else -M base_url= or TRANSFORM_BASE_URL
    custom_path: /v1/generate              # appended to base_url (default "")
    headers: {X-Client: evalkit}           # extra request headers (default none)
    api_key_env: EXAMPLE_API_KEY           # default TRANSFORM_API_KEY; unset -> no key sent,
                                           # unless the spec names the variable itself
    api_key_header: Authorization          # default Authorization
    api_key_scheme: Bearer                 # default Bearer; "" sends the bare key
    openai_to_custom_request:              # evaluated over the OpenAI-style request
      model: model
      prompt: messages[-1].content
      system: "messages[?role=='system'].content | [0]"
      params: {temp: temperature, max_new_tokens: max_tokens, stop: stop}
      stream: false
    custom_to_openai_response:             # evaluated over the custom JSON reply
      choices: "[{message: {role: 'assistant', content: output.text}, finish_reason: output.reason}]"
      usage: {prompt_tokens: meta.tokens_in, completion_tokens: meta.tokens_out}

The spec may instead be keyed by the OpenAI endpoint it transforms, as in Snorkel's form:
`{"/chat/completions": {openai_to_custom_request: ..., custom_to_openai_response: ...},
"/completions": {...}}`, other top-level keys applying to both. `/chat/completions` is used
when present, else `/completions`; `-M endpoint=/completions` chooses. Under a root key,
custom_path defaults to that key. For `/completions` the OpenAI-style request holds `prompt`
(the messages' text joined by blank lines) instead of `messages`, and the mapped response is
a completions response (`choices[].text`, `finish_reason`, `usage`).

Map values: a string is a JMESPath expression (write constants as JMESPath literals, e.g.
`"'my-model'"`), a mapping is a nested map, and a number, boolean or null is a constant. Keys
whose expression yields null are left out, so unset settings are not sent.

The OpenAI-style request holds `model` (the part after `transform/`), `messages` (a list of
`{role, content}`, content as text), and those of `max_tokens`, `temperature`, `top_p`,
`top_k`, `stop`, `seed`, `frequency_penalty`, `presence_penalty`, `n`, `logprobs`,
`top_logprobs`, `reasoning_effort`, `response_format` that are set. A set field that no
request expression reads is dropped with a warning. The provider has no tools (a tool request
fails with one line) and takes text only (an image in a message is an error).

The mapped response must look like an OpenAI chat completion: `choices[].message.content`,
`choices[].finish_reason` (stop, length, content_filter), optional `choices[].logprobs.content`
and `usage.{prompt_tokens, completion_tokens, total_tokens}`. A spec that does not parse, or an
expression that does not compile, is rejected before any request with the key path at fault.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from evalkit.errors import EvalkitError, ModelArgsError
from evalkit.model.api import warn_unsupported
from evalkit.model.types import ChatMessage, GenerateConfig
from evalkit.providers.http.json_chat import JSONChatAPI, auth_header
from evalkit.providers.openai.wire import OUTPUT_PARAMS, PARAMS, output_params, request_params, text_prompt
from evalkit.secrets import get_secret
from evalkit.tool.types import ToolChoice, ToolInfo

SPEC_ENV = "EVALKIT_TRANSFORM_SPEC"
DEFAULT_API_KEY_ENV = "TRANSFORM_API_KEY"
BASE_URL_ENV = "TRANSFORM_BASE_URL"
ENDPOINTS = ("/chat/completions", "/completions")


class TransformSpecError(EvalkitError):
    """A transform spec that is missing, does not parse, or holds an invalid expression."""


# --- transform specs --------------------------------------------------------------------

_SPEC_KEYS = {
    "base_url", "custom_path", "headers", "api_key_env", "api_key_header", "api_key_scheme",
    "openai_to_custom_request", "custom_to_openai_response",
}
CompiledMap = dict[str, Any]  # values: ParsedResult, nested CompiledMap, or a constant


@dataclass(frozen=True)
class TransformSpec:
    """A parsed and compiled transform spec."""

    source: str
    endpoint: str
    base_url: str | None
    custom_path: str
    headers: dict[str, str]
    api_key_env: str
    api_key_required: bool
    api_key_header: str
    api_key_scheme: str
    request: CompiledMap
    response: CompiledMap
    request_fields: frozenset[str] | None  # None: some expression reads the whole request

    def build_request(self, request: dict[str, Any]) -> dict[str, Any]:
        """The custom request for an OpenAI-style `request`."""
        return apply_map(self.request, request)

    def build_response(self, data: Any) -> dict[str, Any]:
        """The OpenAI-shaped response for the custom reply `data`."""
        return apply_map(self.response, data)


def load_spec(spec: str | Mapping[str, Any] | None, endpoint: str | None = None) -> TransformSpec:
    """Read and compile a spec: a mapping, JSON text, or a path to a YAML/JSON file; `None`
    reads EVALKIT_TRANSFORM_SPEC. `endpoint` picks a root key of an endpoint-keyed spec."""
    source = "-M spec"
    if spec is None:
        spec, source = os.environ.get(SPEC_ENV), SPEC_ENV
    if spec is None:
        raise TransformSpecError(f"transform needs a spec: pass -M spec=PATH or set {SPEC_ENV} (a path or the JSON text)")
    if isinstance(spec, Mapping):
        return compile_spec(dict(spec), "<mapping>", endpoint)
    if spec.lstrip().startswith("{"):
        return compile_spec(_parse(spec, f"{source} (JSON text)"), f"{source} (JSON text)", endpoint)
    path = Path(spec)
    if not path.is_file():
        raise TransformSpecError(f"transform spec {spec}: file not found (give a path, or the spec's JSON text)")
    return compile_spec(_parse(path.read_text(encoding="utf-8"), spec), spec, endpoint)


def _parse(text: str, source: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as ex:
        raise TransformSpecError(f"transform spec {source}: not valid YAML or JSON ({str(ex).splitlines()[0]})") from None


def _select_endpoint(data: dict[str, Any], endpoint: str | None, fail: Any) -> tuple[str, dict[str, Any], str]:
    """The endpoint, its flat spec and its key path, for a flat or endpoint-keyed spec."""
    roots = [key for key in data if str(key).startswith("/")]
    if not roots:
        if endpoint not in (None, "/chat/completions"):
            raise fail("(top level)", f"has no {endpoint!r} key for -M endpoint={endpoint}")
        return "/chat/completions", data, ""
    unknown = [key for key in roots if key not in ENDPOINTS]
    if unknown:
        raise fail(unknown[0], f"unknown endpoint (known: {', '.join(ENDPOINTS)})")
    chosen = endpoint or next(key for key in ENDPOINTS if key in roots)
    if chosen not in roots:
        raise fail("(top level)", f"has no {chosen!r} key for -M endpoint={chosen} (it has {', '.join(roots)})")
    if not isinstance(data[chosen], dict):
        raise fail(chosen, "must be a mapping")
    shared = {key: value for key, value in data.items() if key not in roots}
    return chosen, {"custom_path": chosen, **shared, **data[chosen]}, f"{chosen}."


def compile_spec(data: Any, source: str, endpoint: str | None = None) -> TransformSpec:
    """Validate a spec mapping and compile its expressions; errors name the key path."""
    prefix = ""

    def fail(path: str, problem: str) -> TransformSpecError:
        return TransformSpecError(f"transform spec {source}: {prefix}{path}: {problem}")

    if not isinstance(data, dict):
        raise fail("(top level)", "must be a mapping")
    endpoint, data, prefix = _select_endpoint(data, endpoint, fail)
    unknown = sorted(set(data) - _SPEC_KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown key (known: {', '.join(sorted(_SPEC_KEYS))}, or the endpoint keys {', '.join(ENDPOINTS)})")
    for key in ("openai_to_custom_request", "custom_to_openai_response"):
        if key not in data:
            raise fail(key, "missing")
    for key in ("base_url", "custom_path", "api_key_env", "api_key_header", "api_key_scheme"):
        if key in data and not isinstance(data[key], str):
            raise fail(key, "must be a string")
    headers = data.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise fail("headers", "must be a mapping of header name to string value")
    request = _compile_map(data["openai_to_custom_request"], "openai_to_custom_request", fail)
    response = _compile_map(data["custom_to_openai_response"], "custom_to_openai_response", fail)
    if "choices" not in response:
        raise fail("custom_to_openai_response.choices", "missing (the mapped response needs choices)")
    return TransformSpec(
        source=source,
        endpoint=endpoint,
        base_url=data.get("base_url"),
        custom_path=data.get("custom_path", ""),
        headers={str(k): v for k, v in headers.items()},
        api_key_env=data.get("api_key_env", DEFAULT_API_KEY_ENV),
        api_key_required="api_key_env" in data,
        api_key_header=data.get("api_key_header", "Authorization"),
        api_key_scheme=data.get("api_key_scheme", "Bearer"),
        request=request,
        response=response,
        request_fields=_read_fields(request),
    )


def _compile_map(tree: Any, path: str, fail: Any) -> CompiledMap:
    if not isinstance(tree, dict):
        raise fail(path, "must be a mapping of key to JMESPath expression")
    compiled: CompiledMap = {}
    for key, value in tree.items():
        where = f"{path}.{key}"
        if isinstance(value, dict):
            compiled[str(key)] = _compile_map(value, where, fail)
        elif isinstance(value, str):
            try:
                compiled[str(key)] = jmespath.compile(value)
            except JMESPathError as ex:
                raise fail(where, f"invalid JMESPath {value!r} ({str(ex).splitlines()[0]})") from None
        elif value is None or isinstance(value, (bool, int, float)):
            compiled[str(key)] = value
        else:
            raise fail(where, "must be a JMESPath string, a nested mapping, or a number/boolean/null constant")
    return compiled


def apply_map(compiled: CompiledMap, data: Any) -> dict[str, Any]:
    """Evaluate a compiled map over `data`, leaving out keys whose value is null."""
    result: dict[str, Any] = {}
    for key, value in compiled.items():
        if isinstance(value, dict):
            value = apply_map(value, data)
        elif isinstance(value, ParsedResult):
            value = value.search(data)
        if value is not None:
            result[key] = value
    return result


def _read_fields(compiled: CompiledMap) -> frozenset[str] | None:
    """Every field name the map's expressions read; None when one reads the whole input."""
    names: set[str] = set()
    for value in _expressions(compiled):
        if value.parsed["type"] == "current":
            return None
        names.update(_field_names(value.parsed))
    return frozenset(names)


def _expressions(compiled: CompiledMap) -> Iterator[ParsedResult]:
    for value in compiled.values():
        if isinstance(value, dict):
            yield from _expressions(value)
        elif isinstance(value, ParsedResult):
            yield value


def _field_names(node: dict[str, Any]) -> Iterator[str]:
    if node.get("type") == "field":
        yield node["value"]
    for child in node.get("children", ()):
        if isinstance(child, dict):
            yield from _field_names(child)


# --- the provider -----------------------------------------------------------------------


class TransformAPI(JSONChatAPI):
    """A custom HTTP inference API described by a transform spec (see the module docstring)."""

    provider = "transform"
    supports_tools = False

    def __init__(
        self,
        model_name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        spec: str | Mapping[str, Any] | None = None,
        endpoint: str | None = None,
        **model_args: Any,
    ) -> None:
        if endpoint is not None and endpoint not in ENDPOINTS:
            raise ModelArgsError(f"-M endpoint must be one of {', '.join(ENDPOINTS)} (got {endpoint!r})")
        self.spec = load_spec(spec, endpoint)
        base = base_url or self.spec.base_url or get_secret(BASE_URL_ENV)
        if not base:
            raise TransformSpecError(
                f"transform spec {self.spec.source}: base_url: missing (add it, pass -M base_url=URL, or set {BASE_URL_ENV})"
            )
        base = base.rstrip("/")
        super().__init__(model_name, base_url=base, api_key=api_key, config=config, **model_args)
        auth = auth_header(
            self.provider, api_key, self.spec.api_key_env, required=self.spec.api_key_required,
            header=self.spec.api_key_header, scheme=self.spec.api_key_scheme,
        )
        self.key_env = self.spec.api_key_env
        self._connect(base + self.spec.custom_path, {**self.spec.headers, **auth}, dict(model_args))

    async def openai_request(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> dict[str, Any]:
        texts = [(m.role, text_prompt(m, self.label)) for m in input]
        if self.spec.endpoint == "/completions":
            prompt: dict[str, Any] = {"prompt": "\n\n".join(text for _, text in texts)}
        else:
            prompt = {"messages": [{"role": role, "content": text} for role, text in texts]}
        return {"model": self.model_name, **prompt, **request_params(config), **output_params(config, self.provider)}

    def request_body(self, request: dict[str, Any], config: GenerateConfig) -> Any:
        used = self.spec.request_fields
        if used is not None:
            for field, name in {**PARAMS, **OUTPUT_PARAMS}.items():
                if getattr(config, field) is not None and name not in used:
                    warn_unsupported("transform", field, f"no openai_to_custom_request expression reads '{name}'")
        return self.spec.build_request(request)

    def response_data(self, data: Any) -> Any:
        response = self.spec.build_response(data)
        if self.spec.endpoint == "/completions" and isinstance(response.get("choices"), list):
            response["choices"] = [_completion_as_chat(choice) for choice in response["choices"]]
        return response


def _completion_as_chat(choice: Any) -> Any:
    """A completions choice (`text`) in the chat shape `chat_output` reads."""
    if not isinstance(choice, dict) or "message" in choice:
        return choice
    return {"message": {"role": "assistant", "content": choice.get("text")}, "finish_reason": choice.get("finish_reason")}
