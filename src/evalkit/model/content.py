"""Message content beyond plain text: text parts, images and a model's reasoning."""

from __future__ import annotations

import base64
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union


@dataclass(frozen=True, slots=True)
class ContentText:
    """A text part of a message."""

    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class ContentImage:
    """An image: a file path, an http(s) URL or a `data:` URI."""

    image: str
    detail: Literal["auto", "low", "high"] = "auto"
    type: Literal["image"] = "image"


@dataclass(frozen=True, slots=True)
class ContentReasoning:
    """A model's reasoning (thinking) before its answer; `signature` is the provider's token
    for sending it back, `redacted` marks reasoning the provider returned encrypted."""

    reasoning: str
    signature: str | None = None
    redacted: bool = False
    type: Literal["reasoning"] = "reasoning"


Content = Union[ContentText, ContentImage, ContentReasoning]

_CONTENT_TYPES: dict[str, type] = {"text": ContentText, "image": ContentImage, "reasoning": ContentReasoning}


def content_to_dict(part: Content) -> dict[str, Any]:
    """The JSON form of one content part (defaults left out)."""
    data: dict[str, Any] = {"type": part.type}
    if isinstance(part, ContentText):
        data["text"] = part.text
    elif isinstance(part, ContentImage):
        data["image"] = part.image
        if part.detail != "auto":
            data["detail"] = part.detail
    else:
        data["reasoning"] = part.reasoning
        if part.signature is not None:
            data["signature"] = part.signature
        if part.redacted:
            data["redacted"] = True
    return data


def content_from_dict(data: Any) -> Content:
    """A content part from its JSON form (`{"type": "text" | "image" | "reasoning", ...}`)."""
    kind = data.get("type") if isinstance(data, dict) else None
    if kind not in _CONTENT_TYPES:
        raise ValueError(f"content part type must be one of text, image, reasoning (got {kind!r})")
    fields = {k: v for k, v in data.items() if k != "type"}
    try:
        return _CONTENT_TYPES[kind](**fields)  # type: ignore[no-any-return]
    except TypeError as ex:
        raise ValueError(f"{kind} content part: {ex}") from None


def text_of(content: str | list[Content]) -> str:
    """The text of message content: the string, or its text parts joined by newlines."""
    if isinstance(content, str):
        return content
    return "\n".join(part.text for part in content if isinstance(part, ContentText))


def has_image(content: str | list[Content]) -> bool:
    """Whether message content holds an image."""
    return not isinstance(content, str) and any(isinstance(part, ContentImage) for part in content)


def with_text(content: str | list[Content], text: str) -> str | list[Content]:
    """`content` with its text replaced by `text` (images and reasoning kept, ahead of it)."""
    if isinstance(content, str):
        return text
    kept = [part for part in content if not isinstance(part, ContentText)]
    return [*kept, ContentText(text)] if kept else text


_DATA_URI = re.compile(r"data:(?P<mime>[\w/+.-]+)?(?P<base64>;base64)?,(?P<data>.*)", re.DOTALL)


def is_url(image: str) -> bool:
    """Whether an image reference is an http(s) URL."""
    return image.startswith(("http://", "https://"))


async def image_bytes(image: str) -> tuple[str, bytes]:
    """The MIME type and bytes of an image given as a data URI, a URL (fetched) or a file path."""
    if found := _DATA_URI.fullmatch(image):
        raw = found.group("data")
        data = base64.b64decode(raw) if found.group("base64") else raw.encode()
        return found.group("mime") or "image/png", data
    if is_url(image):
        import httpx

        async with httpx.AsyncClient(follow_redirects=True, timeout=60) as client:
            response = await client.get(image)
            response.raise_for_status()
        mime = response.headers.get("content-type", "").split(";")[0] or _guess_mime(image)
        return mime, response.content
    path = Path(image).expanduser()
    if not path.is_file():
        raise ValueError(f"image {image!r} is not a file, an http(s) URL or a data: URI")
    return _guess_mime(path.name), path.read_bytes()


async def image_data_uri(image: str) -> str:
    """An image as a URL a provider can fetch or a `data:` URI (file paths are read)."""
    if is_url(image) or image.startswith("data:"):
        return image
    mime, data = await image_bytes(image)
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _guess_mime(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "image/png"
