"""Embeddings: `Model.embed` (batches, pools, rate limits, retries, timeouts) and each provider's
request through its real SDK to a local server, the bundled model's own embeddings, and the
`embedding_similarity` scorer end to end through `eval()` and the CLI."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

from evalkit import GenerateConfig, Model, Sample, Task, eval, get_model, read_eval_log
from evalkit.errors import DefinitionError, EmbeddingsUnsupportedError, EvalkitError
from evalkit.model.retry import RequestTimeoutError
from evalkit.scorer import embedding_similarity
from tests.conftest import run_cli
from tests.providers.helpers import RETRY_AFTER, embed_and_close as embed, generate_and_close, isolate_env, set_fake_aws_env, waited_for_hint
from tests.servers.converse_server import aws_error
from tests.servers.embeddings_server import bedrock_invoke, gemini_embeddings, letter_vector, openai_embeddings
from tests.servers.gemini_server import google_error
from tests.servers.http import RecordingServer, Reply, Request
from tests.servers.openai_server import chat_reply, error_reply, scripted

os.environ.setdefault("HF_HUB_OFFLINE", "1")

KEY = "sk-embed-test-4Kd9Qx2"
ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "AZUREAI_OPENAI_API_KEY",
       "AZUREAI_OPENAI_BASE_URL", "OPENAI_API_VERSION", "DATABRICKS_API_KEY", "DATABRICKS_BASE_URL", "BEDROCK_BASE_URL",
       "GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_BASE_URL", "GOOGLE_VERTEX_BASE_URL", "GOOGLE_CLOUD_PROJECT",
       "GOOGLE_CLOUD_LOCATION", "GOOGLE_GENAI_USE_VERTEXAI", "EVALKIT_MODEL")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_env(monkeypatch, tmp_path, unset=ENV, OPENAI_API_KEY=KEY)


def words(n: int) -> list[str]:
    """`n` distinct texts: text i spells i's digits as letters (0 -> a, 1 -> b, ...)."""
    return [f"item {''.join('abcdefghij'[int(d)] for d in str(i))}" for i in range(n)]


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def slow(seconds: float, then: Any) -> Any:
    """A handler that waits `seconds` before answering as `then` does."""

    def handle(request: Request) -> Reply:
        time.sleep(seconds)
        return then(request)

    return handle


# Model.embed


def test_texts_go_in_concurrent_batches_and_come_back_in_order() -> None:
    texts = words(250)
    with RecordingServer(slow(0.4, openai_embeddings)) as server:
        vectors = embed(get_model("openai/text-embedding-3-small", base_url=server.url), texts)
    assert sorted(len(r.json()["input"]) for r in server.requests) == [58, 96, 96]
    sent = sorted((r.json()["input"] for r in server.requests), key=lambda batch: texts.index(batch[0]))
    assert [text for batch in sent for text in batch] == texts
    assert vectors == [letter_vector(t) for t in texts]
    arrivals = sorted(r.arrived for r in server.requests)
    assert arrivals[-1] - arrivals[0] < 0.3  # all three were in flight together


def test_batches_share_the_connection_pool_and_the_rate_limit() -> None:
    with RecordingServer(slow(0.3, openai_embeddings)) as server:
        embed(get_model("openai/text-embedding-3-small", base_url=server.url, max_connections=1), words(200))
    arrivals = sorted(r.arrived for r in server.requests)
    assert len(arrivals) == 3 and all(b - a >= 0.28 for a, b in zip(arrivals, arrivals[1:]))  # one at a time
    with RecordingServer(openai_embeddings) as server:
        embed(get_model("openai/text-embedding-3-small", base_url=server.url), words(6 * 96), GenerateConfig(requests_per_sec=5))
    arrivals = sorted(r.arrived for r in server.requests)
    assert len(arrivals) == 6 and arrivals[-1] - arrivals[0] >= 0.9  # 5 a second: the sixth a second after the first


def test_a_rate_limit_is_retried_after_the_servers_hint_and_a_server_error_with_backoff() -> None:
    limited = error_reply(429, "Rate limit reached", {"retry-after": str(RETRY_AFTER)})
    with RecordingServer(scripted([limited, error_reply(500, "boom")], openai_embeddings)) as server:
        model = get_model("openai/text-embedding-3-small", base_url=server.url)
        vectors = embed(model, ["alpha", "beta"])
    first, second, third = server.requests
    assert waited_for_hint(first, second) and first.json() == second.json() == third.json()
    assert vectors == [letter_vector("alpha"), letter_vector("beta")] and model.retries == 2


def test_errors_a_retry_cannot_fix_fail_at_once_in_one_line() -> None:
    with RecordingServer(lambda r: error_reply(401, "Incorrect API key provided")) as server:
        with pytest.raises(EvalkitError) as raised:
            embed(get_model("openai/text-embedding-3-small", base_url=server.url), words(200))
    assert "authentication failed (HTTP 401)" in str(raised.value) and "\n" not in str(raised.value)
    assert len(server.requests) <= 3  # one request per batch, none retried
    with RecordingServer(lambda r: Reply(body={"object": "list", "data": "nope"})) as server:
        with pytest.raises(RuntimeError, match="embeddings reply without a data list"):
            embed(get_model("openai/text-embedding-3-small", base_url=server.url), ["x"])


def test_an_attempt_that_takes_too_long_times_out() -> None:
    with RecordingServer(slow(3, openai_embeddings)) as server:
        start = time.monotonic()
        with pytest.raises(RequestTimeoutError, match="no reply within 0.5 s"):
            embed(get_model("openai/text-embedding-3-small", base_url=server.url), ["x"],
                  GenerateConfig(attempt_timeout=0.5, max_retries=0))
    assert time.monotonic() - start < 2.5


def test_a_provider_without_embeddings_says_so_in_one_line() -> None:
    with pytest.raises(EmbeddingsUnsupportedError) as raised:
        embed(get_model("mockllm/model"), ["x"])
    assert str(raised.value) == "provider 'mockllm' has no embeddings (mockllm/model); use a model whose provider supports embed()"


def test_no_texts_make_no_request() -> None:
    with RecordingServer(openai_embeddings) as server:
        assert embed(get_model("openai/text-embedding-3-small", base_url=server.url), []) == []
    assert server.requests == []


# Each provider's request


def test_openai_request_with_dimensions(monkeypatch: pytest.MonkeyPatch) -> None:
    with RecordingServer(lambda r: openai_embeddings(r) if r.path.endswith("/embeddings") else chat_reply(r)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
        model = get_model("openai/text-embedding-3-small", dimensions=256)
        vectors = embed(model, ["Tokyo", "Kyoto"])
        generate_and_close(model, "ANSWER: hi")
    embeddings, chat = server.requests
    assert embeddings.method == "POST" and embeddings.path == "/v1/embeddings"
    assert embeddings.headers["authorization"] == f"Bearer {KEY}"
    assert embeddings.json() == {"model": "text-embedding-3-small", "input": ["Tokyo", "Kyoto"], "dimensions": 256}
    assert "dimensions" not in chat.json()  # embeddings only
    assert vectors == [letter_vector("Tokyo"), letter_vector("Kyoto")]


def test_azure_openai_embeds_with_the_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZUREAI_OPENAI_API_KEY", "azure-key-0123456789")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    with RecordingServer(openai_embeddings) as server:
        monkeypatch.setenv("AZUREAI_OPENAI_BASE_URL", server.url)
        vectors = embed(get_model("openai/azure/my-embedder"), ["one"])
    [request] = server.requests
    assert request.path == "/openai/deployments/my-embedder/embeddings?api-version=2024-10-21"
    assert request.headers["api-key"] == "azure-key-0123456789" and request.json()["model"] == "my-embedder"
    assert vectors == [letter_vector("one")]


def test_databricks_embeds_at_its_serving_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABRICKS_API_KEY", "dapi-test-123")
    with RecordingServer(openai_embeddings) as server:
        monkeypatch.setenv("DATABRICKS_BASE_URL", f"{server.url}/serving-endpoints")
        vectors = embed(get_model("databricks/databricks-gte-large-en"), ["gte"])
    [request] = server.requests
    assert request.path == "/serving-endpoints/embeddings" and request.headers["authorization"] == "Bearer dapi-test-123"
    assert request.json() == {"model": "databricks-gte-large-en", "input": ["gte"]}
    assert vectors == [letter_vector("gte")]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    set_fake_aws_env(monkeypatch, "us-east-1")


@pytest.mark.usefixtures("aws")
def test_bedrock_titan_embeds_one_text_a_request() -> None:
    model_id = "amazon.titan-embed-text-v2:0"
    limited = aws_error(429, "ThrottlingException", "Too many requests", {"retry-after": "0.2"})
    with RecordingServer(scripted([limited], bedrock_invoke)) as server:
        vectors = embed(get_model(f"bedrock/{model_id}", base_url=server.url), ["red", "green", "blue"])
    assert len(server.requests) == 4  # three texts, one throttled and retried
    request = server.requests[-1]
    assert request.method == "POST" and request.path == f"/model/{model_id.replace(':', '%3A')}/invoke"
    assert request.headers["content-type"] == "application/json" and request.headers["accept"] == "application/json"
    assert "Credential=AKIDEVALKITTEST/" in request.headers["authorization"]
    assert sorted(r.json()["inputText"] for r in server.requests[1:]) == ["blue", "green", "red"]
    assert vectors == [letter_vector(t) for t in ("red", "green", "blue")]


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize("model_id", ["cohere.embed-english-v3", "us.cohere.embed-v4:0"])
def test_bedrock_cohere_embeds_a_batch_a_request(model_id: str) -> None:
    with RecordingServer(bedrock_invoke) as server:
        vectors = embed(get_model(f"bedrock/{model_id}", base_url=server.url), words(100))
    assert [len(r.json()["texts"]) for r in sorted(server.requests, key=lambda r: -len(r.json()["texts"]))] == [96, 4]
    assert {r.json()["input_type"] for r in server.requests} == {"search_document"}
    assert {r.path for r in server.requests} == {f"/model/{model_id.replace(':', '%3A')}/invoke"}
    assert vectors == [letter_vector(t) for t in words(100)]


@pytest.mark.usefixtures("aws")
def test_bedrock_chat_models_have_no_embeddings() -> None:
    with pytest.raises(EmbeddingsUnsupportedError, match="is not a Bedrock embeddings model; use an Amazon Titan"):
        embed(get_model("bedrock/anthropic.claude-3-5-haiku-20241022-v1:0", base_url="http://127.0.0.1:9"), ["x"])


def test_google_batch_embed_contents(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "gkey-embed-test")
    with RecordingServer(scripted([google_error(503, "UNAVAILABLE")], gemini_embeddings)) as server:
        vectors = embed(get_model("google/text-embedding-004", base_url=server.url), ["sun", "moon"])
    failed, request = server.requests
    assert request.path == "/v1/models/text-embedding-004:batchEmbedContents" and failed.json() == request.json()
    assert request.headers["x-goog-api-key"] == "gkey-embed-test"
    assert [r["content"]["parts"] for r in request.json()["requests"]] == [[{"text": "sun"}], [{"text": "moon"}]]
    assert {r["model"] for r in request.json()["requests"]} == {"models/text-embedding-004"}
    assert vectors == [letter_vector("sun"), letter_vector("moon")]


def test_vertex_predict_and_embed_content(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "gkey-embed-test")
    with RecordingServer(gemini_embeddings) as server:
        monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", server.url)
        predicted = embed(get_model("vertex/text-embedding-005"), ["sun", "moon"])
        one_by_one = embed(get_model("vertex/gemini-embedding-001"), ["sun", "moon"])
    predict, *contents = server.requests
    assert predict.path == "/v1beta1/publishers/google/models/text-embedding-005:predict"
    assert predict.json()["instances"] == [{"content": "sun"}, {"content": "moon"}]
    assert {r.path for r in contents} == {"/v1beta1/publishers/google/models/gemini-embedding-001:embedContent"}
    assert sorted(r.json()["content"]["parts"][0]["text"] for r in contents) == ["moon", "sun"]
    assert predicted == one_by_one == [letter_vector("sun"), letter_vector("moon")]


def test_the_bundled_model_embeds_mean_pooled_and_normalised() -> None:
    texts = ["The cat sat on the mat.", "A cat was sitting on a mat.", "Quarterly revenue rose by four percent.", ""]

    async def main() -> tuple[list[list[float]], list[list[float]], list[list[float]]]:
        model = get_model("hf/bundled")
        try:
            together = await model.embed(texts)
            alone = [vector for text in texts for vector in await model.embed([text])]
            return together, alone, await model.embed(texts)
        finally:
            await model.aclose()

    together, alone, again = anyio.run(main)
    matrix = np.array(together)
    assert matrix.shape == (4, 576)
    assert np.allclose(np.linalg.norm(matrix[:3], axis=1), 1.0, atol=1e-5) and not matrix[3].any()  # empty: zero vector
    assert again == together and np.allclose(alone, together, atol=1e-5)  # deterministic, whatever the batch
    assert cosine(together[0], together[0]) == pytest.approx(1.0, abs=1e-6)
    assert cosine(together[0], together[1]) > cosine(together[0], together[2])


# The embedding_similarity scorer


def test_scorer_end_to_end_through_eval(tmp_path: Path) -> None:
    samples = [Sample(input="ANSWER: Tokyo", target="tokyo"), Sample(input="ANSWER: Osaka", target=["Lyon", "Tokyo"]),
               Sample(input="ANSWER: Rome", target="Roma")]
    with RecordingServer(openai_embeddings) as server:
        task = Task(dataset=samples, scorer=embedding_similarity(get_model("openai/text-embedding-3-small", base_url=server.url),
                                                                  threshold=0.7), name="capitals")
        [log] = eval(task, model="mockllm/model", log_dir=str(tmp_path / "logs"), display="none")
    log = read_eval_log(log.location)
    assert log.status == "success" and len(server.requests) == 3
    assert sorted(r.json()["input"] for r in server.requests) == [["Osaka", "Lyon", "Tokyo"], ["Rome", "Roma"], ["Tokyo", "tokyo"]]
    by_answer = {s.output["completion"]: s.scores["embedding_similarity"] for s in log.samples}
    expected = {"Tokyo": 1.0, "Osaka": cosine(letter_vector("Osaka"), letter_vector("Tokyo")),
                "Rome": cosine(letter_vector("Rome"), letter_vector("Roma"))}
    assert expected["Osaka"] > cosine(letter_vector("Osaka"), letter_vector("Lyon"))
    for answer, similarity in expected.items():
        score = by_answer[answer]
        assert score["value"]["similarity"] == pytest.approx(similarity) and score["answer"] == answer
        assert f"cosine similarity {similarity:.4f}" in score["explanation"]
    assert [by_answer[a]["value"]["correct"] for a in ("Tokyo", "Osaka", "Rome")] == ["C", "I", "C"]
    assert "to 'Tokyo', below the threshold 0.7" in by_answer["Osaka"]["explanation"]  # the closer of its two targets
    results = log.footer["results"]
    assert results["embedding_similarity/similarity"]["mean"] == pytest.approx(sum(expected.values()) / 3)
    assert results["embedding_similarity/correct"]["accuracy"] == pytest.approx(2 / 3)


def test_scorer_with_the_bundled_model(tmp_path: Path) -> None:
    samples = [Sample(input="ANSWER: The cat sat on the mat.", target="The cat sat on the mat."),
               Sample(input="ANSWER: Quarterly revenue rose.", target="The cat sat on the mat."),
               Sample(input="ANSWER: ", target="anything")]
    task = Task(dataset=samples, scorer=embedding_similarity("hf/bundled", threshold=0.99), name="bundled")
    [log] = eval(task, model="mockllm/model", log_dir=str(tmp_path / "logs"), display="none")
    log = read_eval_log(log.location)
    assert log.status == "success", log.error
    scores = [s.scores["embedding_similarity"] for s in sorted(log.samples, key=lambda s: s.id)]
    assert scores[0]["value"]["similarity"] == pytest.approx(1.0, abs=1e-5) and scores[0]["value"]["correct"] == "C"
    assert 0 < scores[1]["value"]["similarity"] < 0.99 and scores[1]["value"]["correct"] == "I"
    assert scores[2]["value"] == {"similarity": 0.0, "correct": "I"} and "the reply is blank" in scores[2]["explanation"]
    assert log.footer["results"]["embedding_similarity/correct"]["accuracy"] == pytest.approx(1 / 3)


def test_scorer_arguments_are_checked() -> None:
    with pytest.raises(DefinitionError, match="threshold must be a number from -1 to 1"):
        embedding_similarity(threshold=1.5)
    with pytest.raises(DefinitionError, match="model must be 'provider/model' or a Model"):
        embedding_similarity(model=42)  # type: ignore[arg-type]


EMBEDDING_TASK = '''
from evalkit import Sample, Task, task
from evalkit.scorer import embedding_similarity

@task
def capitals(embedder: str = "openai/text-embedding-3-small"):
    return Task(
        dataset=[Sample(input="ANSWER: Tokyo", target="Tokyo"), Sample(input="ANSWER: Oslo", target="Tokyo")],
        scorer=embedding_similarity(model=embedder, threshold=0.9),
    )
'''


def test_cli_run_with_the_scorer(tmp_path: Path) -> None:
    (tmp_path / "capitals.py").write_text(EMBEDDING_TASK)
    with RecordingServer(openai_embeddings) as server:
        result = run_cli("eval", "capitals.py", "--model", "mockllm/model", "--log-dir", "logs", "--display", "none",
                         cwd=tmp_path, env={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": f"{server.url}/v1"}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert sorted(r.json()["input"][0] for r in server.requests) == ["Oslo", "Tokyo"]
    [path] = (tmp_path / "logs").glob("*.jsonl")
    log = read_eval_log(path)
    assert log.footer["results"]["embedding_similarity/correct"]["accuracy"] == 0.5
    assert log.footer["results"]["embedding_similarity/similarity"]["mean"] == pytest.approx(
        (1 + cosine(letter_vector("Oslo"), letter_vector("Tokyo"))) / 2)
    assert KEY not in path.read_text()


def test_cli_run_with_a_scorer_model_without_embeddings_stops_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "capitals.py").write_text(EMBEDDING_TASK)
    result = run_cli("eval", "capitals.py", "--model", "mockllm/model", "-T", "embedder=mockllm/other", "--log-dir", "logs",
                     "--display", "plain", cwd=tmp_path, timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if "has no embeddings" in line]
    assert "provider 'mockllm' has no embeddings (mockllm/other)" in line
    [path] = (tmp_path / "logs").glob("*.jsonl")
    assert read_eval_log(path).status == "error"
