"""Embeddings in the OpenAI, Bedrock InvokeModel (Titan, Cohere) and Gemini / Vertex wire
formats for RecordingServer. A text's vector counts its letters a-z (case folded), so texts
with the same letters are identical (cosine 1) and the test can compute any expected cosine."""

from __future__ import annotations

from typing import Any

from tests.servers.http import Reply, Request

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def letter_vector(text: str) -> list[float]:
    """The test embedding of `text`: how often each letter a-z occurs in it."""
    folded = text.casefold()
    return [float(folded.count(letter)) for letter in LETTERS]


def openai_embeddings(request: Request) -> Reply:
    """`POST /embeddings`: one item per `input` text, listed last to first with their `index`
    (the API's order field; a client must not rely on the list's order)."""
    body = request.json()
    texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
    items = [{"object": "embedding", "index": i, "embedding": letter_vector(t)} for i, t in enumerate(texts)]
    tokens = sum(len(t.split()) for t in texts)
    return Reply(body={"object": "list", "data": items[::-1], "model": body["model"],
                       "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def bedrock_invoke(request: Request) -> Reply:
    """`POST /model/{id}/invoke` for Titan text embeddings (`inputText`) or Cohere Embed (`texts`;
    Embed v4 answers by embedding type)."""
    body = request.json()
    if "inputText" in body:
        return Reply(body={"embedding": letter_vector(body["inputText"]), "inputTextTokenCount": len(body["inputText"].split())})
    vectors = [letter_vector(t) for t in body["texts"]]
    if "embed-v4" in request.path:
        return Reply(body={"id": "emb-test", "response_type": "embeddings_by_type", "texts": body["texts"], "embeddings": {"float": vectors}})
    return Reply(body={"id": "emb-test", "response_type": "embeddings_floats", "texts": body["texts"], "embeddings": vectors})


def gemini_embeddings(request: Request) -> Reply:
    """`models/{m}:batchEmbedContents` (Gemini API), `:predict` and `:embedContent` (Vertex)."""
    body = request.json()
    path = request.path.split("?")[0]
    if path.endswith(":batchEmbedContents"):
        texts = [part_text(each["content"]) for each in body["requests"]]
        return Reply(body={"embeddings": [{"values": letter_vector(t)} for t in texts]})
    if path.endswith(":embedContent"):
        text = part_text(body["content"])
        return Reply(body={"embedding": {"values": letter_vector(text)}, "usageMetadata": {"promptTokenCount": len(text.split())}})
    instances = [each["content"] for each in body["instances"]]
    predictions = [{"embeddings": {"values": letter_vector(t), "statistics": {"token_count": len(t.split()), "truncated": False}}}
                   for t in instances]
    return Reply(body={"predictions": predictions, "metadata": {"billableCharacterCount": sum(map(len, instances))}})


def part_text(content: dict[str, Any]) -> str:
    """The text of a Content's parts."""
    return "".join(part.get("text", "") for part in content["parts"])
