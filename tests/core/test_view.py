"""`evalkit view`'s JSON API, through HTTP against the real server: runs, one run, paged,
filtered, sorted and searched samples, one transcript, compare, a log that grows or is
replaced while the server runs, path traversal, the access token and bad input."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import run_cli
from tests.core.view_logs import LONG, ViewServer, make_runs


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("view")
    runs = make_runs(root / "logs")
    (root / "logs" / "broken.jsonl").write_text("this is not an evalkit log\n")
    (root / "secret.jsonl").write_bytes(runs["a"].read_bytes())  # outside the log folder
    os.symlink(root / "secret.jsonl", root / "logs" / "escape.jsonl")
    return runs


@pytest.fixture(scope="module")
def server(logs: dict[str, Path]) -> Iterator[ViewServer]:
    running = ViewServer(logs["a"].parent)
    yield running
    running.close()


def name(path: Path) -> str:
    return path.name


def get_json(server: ViewServer, path: str, status: int = 200, **params: Any) -> Any:
    response = server.get(path, params=params)
    assert response.status_code == status, response.text
    return response.json()


def test_runs_lists_every_log_with_its_summary(server: ViewServer, logs: dict[str, Path]) -> None:
    runs = {run["log"]: run for run in get_json(server, "/api/runs")["runs"]}
    a = runs[name(logs["a"])]
    assert (a["task"], a["model"], a["status"], a["samples"], a["total"], a["errors"]) == ("quiz", "mockllm/first", "success", 6, 6, 1)
    assert a["metrics"]["match"]["accuracy"] == pytest.approx(0.8) and a["tokens"] > 0 and a["started"]
    assert runs[name(logs["b"])]["metrics"]["match"]["accuracy"] == 1.0
    assert runs["broken.jsonl"]["status"] == "unreadable" and "not valid JSON" in runs["broken.jsonl"]["error"]
    assert "escape.jsonl" not in runs  # a link to a log outside the folder


def test_run_has_metrics_settings_and_score_values(server: ViewServer, logs: dict[str, Path]) -> None:
    run = get_json(server, "/api/run", log=name(logs["a"]))
    assert run["metrics"]["match"]["accuracy"] == pytest.approx(0.8)
    assert run["settings"]["model_args"] == {"error_on": "boom"} and run["settings"]["dataset"]["samples"] == 6
    assert run["scorers"] == ["match"]
    assert dict(map(tuple, run["score_values"]["match"])) == {"C": 4, "I": 1}


def test_samples_page_has_excerpts_and_paging(server: ViewServer, logs: dict[str, Path]) -> None:
    page = get_json(server, "/api/samples", log=name(logs["a"]), sort="id", size=2, offset=0)
    assert (page["total"], page["samples"], [r["id"] for r in page["rows"]]) == (6, 6, [1, 2])
    first = page["rows"][0]
    assert first["input"].endswith("…") and len(first["input"]) == 301 and first["input"].startswith(LONG[:50])
    assert (first["target"], first["answer"], first["scores"], first["error"]) == ("1", "1", {"match": "C"}, None)
    assert first["total_tokens"] > 0 and "metadata" not in first and "messages" not in first
    assert [r["id"] for r in get_json(server, "/api/samples", log=name(logs["a"]), sort="id", size=2, offset=4)["rows"]] == [5, 6]


def test_samples_sort_filter_and_search(server: ViewServer, logs: dict[str, Path]) -> None:
    log = name(logs["a"])
    ids = lambda **query: [r["id"] for r in get_json(server, "/api/samples", log=log, **query)["rows"]]  # noqa: E731
    assert ids(sort="id", desc="1") == [6, 5, 4, 3, 2, 1]
    assert ids(sort="score:match")[:4] == sorted(ids(sort="score:match")[:4]) and ids(sort="score:match")[4] == 5
    assert ids(errors="only") == [6]
    assert sorted(ids(errors="none")) == [1, 2, 3, 4, 5]
    assert ids(score="match=I") == [5]
    assert ids(q="WITHOUT an answer") == [5]  # search ignores case
    assert ids(q="boom") == [6]
    assert ids(q="question", score="match=C", sort="id") == [1, 2, 3, 4]
    assert ids(q="nothing like this") == []
    error_row = get_json(server, "/api/samples", log=log, errors="only")["rows"][0]
    assert "boom" in error_row["error"] and "\n" not in error_row["error"]


def test_sample_has_the_whole_transcript(server: ViewServer, logs: dict[str, Path]) -> None:
    log = name(logs["tools"])
    rows = get_json(server, "/api/samples", log=log)["rows"]
    record = get_json(server, "/api/sample", log=log, position=rows[0]["position"])["record"]
    roles = [m["role"] for m in record["messages"]]
    assert roles[:2] == ["user", "assistant"] and "tool" in roles and roles[-1] == "assistant"
    user, assistant = record["messages"][0], record["messages"][1]
    assert [p["type"] for p in user["content"]] == ["text", "image"] and user["content"][1]["image"].startswith("data:image/png")
    assert [p["type"] for p in assistant["content"]] == ["reasoning", "text"]
    assert [c["function"] for c in assistant["tool_calls"]] == ["add", "nope"] and assistant["tool_calls"][1]["parse_error"]
    failed = next(m for m in record["messages"] if m["role"] == "tool" and m.get("error"))
    assert failed["function"] == "nope" and failed["error"]["message"]
    assert record["scores"]["match"]["value"] == "C" and record["usage"]["total_tokens"] > 0
    assert get_json(server, "/api/sample", 404, log=log, position=99)["error"].startswith("the log has 3 samples")


def test_compare_shows_metrics_and_the_sample_that_flipped(server: ViewServer, logs: dict[str, Path]) -> None:
    data = get_json(server, "/api/compare", log=[name(logs["a"]), name(logs["b"])])
    accuracy = next(m for m in data["metrics"] if m["metric"] == "accuracy")
    assert accuracy["values"] == [pytest.approx(0.8), 1.0]
    assert data["total"] == 1
    [row] = data["rows"]
    assert (row["id"], row["epoch"], row["scores"]) == (5, 1, [{"match": "I"}, {"match": "C"}])
    assert None not in row["positions"]
    wrong = get_json(server, "/api/compare", 400, log=[name(logs["a"]), name(logs["tools"])])
    assert "different tasks" in wrong["error"]
    assert "two or more" in get_json(server, "/api/compare", 400, log=[name(logs["a"])])["error"]


@pytest.mark.parametrize("path", ["../secret.jsonl", "escape.jsonl", "/etc/passwd", "%2e%2e/secret.jsonl",
                                  "..%2fsecret.jsonl", "../../../../../../etc/hostname", "", "broken.txt"])
def test_nothing_outside_the_log_folder_is_served(server: ViewServer, path: str) -> None:
    for endpoint in ("/api/run", "/api/samples", "/api/sample"):
        response = server.get(f"{endpoint}?log={path}")
        assert response.status_code == 404, (endpoint, path, response.text)
        assert "quiz" not in response.text


@pytest.mark.parametrize("path", ["/static/../../secret.jsonl", "/static/%2e%2e/%2e%2e/secret.jsonl", "/static/..%2f..%2fsecret.jsonl",
                                  "/static/../server.py", "/static/%2e%2e/server.py", "/static//etc/passwd", "/../secret.jsonl"])
def test_static_files_cannot_be_climbed_out_of(server: ViewServer, path: str) -> None:
    """Sent as is (an HTTP client would tidy the dots away first)."""
    host, port = server.base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    assert response.status in (400, 404), (path, response.status)
    assert b"quiz" not in body and b"import" not in body and b"root:" not in body


def test_page_and_assets_are_served_with_a_strict_policy(server: ViewServer) -> None:
    page = server.get("/")
    assert page.status_code == 200 and '<script src="/static/app.js"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("app.js", "style.css"):
        body = server.get(f"/static/{asset}").text
        assert "http://" not in body and "https://" not in body  # nothing fetched from elsewhere


def test_a_request_naming_another_host_is_refused(server: ViewServer) -> None:
    """A page on another site that rebinds its name to 127.0.0.1 cannot read the logs."""
    assert server.get("/api/runs", headers={"Host": "attacker.example"}).status_code == 400


def test_a_growing_log_is_read_as_it_grows_and_a_replaced_one_again(tmp_path: Path, logs: dict[str, Path]) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    lines = logs["a"].read_bytes().splitlines(keepends=True)
    live = folder / "live.jsonl"
    live.write_bytes(b"".join(lines[:3]))  # the header and two samples: the run is still going
    running = ViewServer(folder)
    try:
        assert get_json(running, "/api/samples", log="live.jsonl")["samples"] == 2
        [run] = get_json(running, "/api/runs")["runs"]
        assert (run["status"], run["samples"]) == ("started", 2)
        with live.open("ab") as handle:
            handle.write(b"".join(lines[3:5]) + lines[5][:20])  # two more and half of a line
        assert get_json(running, "/api/samples", log="live.jsonl")["samples"] == 4
        with live.open("ab") as handle:
            handle.write(lines[5][20:] + b"".join(lines[6:]))
        page = get_json(running, "/api/samples", log="live.jsonl")
        assert page["samples"] == 6 and get_json(running, "/api/run", log="live.jsonl")["status"] == "success"
        replacement = folder / "new.tmp"
        replacement.write_bytes(b"".join(lines[:2]))  # a resume rewrites the log with fewer samples
        os.replace(replacement, live)
        assert get_json(running, "/api/samples", log="live.jsonl")["samples"] == 1
        assert get_json(running, "/api/runs")["runs"][0]["status"] == "started"
    finally:
        running.close()


def _version(template: dict[str, Any], prefix: str, count: int, padding: str) -> bytes:
    """Sample lines whose id says which version of the log and which position they are."""
    records = [{**template, "id": f"{prefix}{i}", "metadata": {"pad": padding * (i % 7)}} for i in range(count)]
    return b"".join(json.dumps(record, ensure_ascii=False).encode() + b"\n" for record in records)


def _check_answer(response: Any, counts: dict[str, int]) -> None:
    """A 200 whose rows all come from one version of the log, each at its own position."""
    assert response.status_code in (200, 404), response.text  # 404: a position past the end of that version
    body = response.json()
    if "settings" in body:  # a run: as many samples as one version of the log has
        assert body["samples"] in counts.values()
        return
    if "runs" in body:  # a comparison: a row's id is the sample's position in each run that has it
        assert body["runs"][0]["samples"] in counts.values()
        for row in body["rows"]:
            assert {p for p in row["positions"] if p is not None} == {int(row["id"][1:])}, row
        return
    rows = body.get("rows") or ([body["record"] | {"position": body["position"]}] if "record" in body else [])
    prefixes = {str(row["id"])[0] for row in rows}
    assert len(prefixes) <= 1, f"rows from two versions of the log: {prefixes}"
    for row in rows:
        assert str(row["id"]) == f"{str(row['id'])[0]}{row['position']}", row["id"]
    if rows and "samples" in body:
        assert body["samples"] == counts[rows[0]["id"][0]]
    if "record" in body:
        assert body["count"] == counts[body["record"]["id"][0]]


def test_a_log_replaced_while_requests_run_never_gives_an_error_or_a_wrong_sample(tmp_path: Path, logs: dict[str, Path]) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    header, template = logs["a"].read_bytes().splitlines()[:2]
    counts = {"a": 1500, "b": 400}
    versions = {prefix: header + b"\n" + _version(json.loads(template), prefix, count, "x" if prefix == "a" else "é·")
                for prefix, count in counts.items()}
    live = folder / "live.jsonl"
    live.write_bytes(versions["a"])
    (folder / "fixed.jsonl").write_bytes(versions["a"])
    running = ViewServer(folder)
    requests = [("/api/samples", {"offset": 350, "size": 100}), ("/api/samples", {"q": "é·", "size": 40}),
                ("/api/samples", {"q": "question", "sort": "tokens", "offset": 380}), ("/api/sample", {"position": 399}),
                ("/api/sample", {"position": 1200}), ("/api/run", {}), ("/api/compare", {"log": ["live.jsonl", "fixed.jsonl"]})]
    stop = threading.Event()
    failures: list[str] = []

    def replace_again_and_again() -> None:
        for turn in itertools.count():
            if stop.is_set():
                return
            replacement = folder / "compacted.tmp"
            replacement.write_bytes(versions["ab"[turn % 2]])
            os.replace(replacement, live)  # as eval-retry's compaction does
            time.sleep(0.002)  # leave the server some of the CPU

    def ask(worker: int) -> None:
        with httpx.Client(base_url=running.base, timeout=30) as client:
            for turn in itertools.count(worker):
                if stop.is_set():
                    return
                path, params = requests[turn % len(requests)]
                response = client.get(path, params={"log": "live.jsonl", **params})
                try:
                    _check_answer(response, counts)
                except (AssertionError, ValueError, KeyError) as ex:
                    failures.append(f"{path} {params}: {response.status_code} {ex!r} {response.text[:300]}")
                    stop.set()

    try:
        threads = [threading.Thread(target=replace_again_and_again)] + [threading.Thread(target=ask, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        stop.wait(4)
        stop.set()
        for thread in threads:
            thread.join()
        assert not failures, failures[0]
        assert get_json(running, "/api/runs")["runs"]  # still serving
    finally:
        running.close()


def open_files(pid: int) -> list[str]:
    """What the process's open descriptors point at (one closed while listing is left out)."""
    links = []
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        try:
            links.append(os.readlink(descriptor))
        except FileNotFoundError:
            pass
    return links


def test_a_server_that_opened_many_logs_keeps_only_some_open(tmp_path: Path, logs: dict[str, Path]) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    for number in range(80):
        (folder / f"run{number:02d}.jsonl").write_bytes(logs["a"].read_bytes())
    running = ViewServer(folder)
    try:
        for number in range(80):
            assert get_json(running, "/api/samples", log=f"run{number:02d}.jsonl")["samples"] == 6
        open_logs = [link for link in open_files(running.process.pid) if link.endswith(".jsonl")]
        assert 0 < len(open_logs) <= 64
        assert get_json(running, "/api/sample", log="run00.jsonl", position=5)["record"]["id"] == 6  # opened again
        assert len(get_json(running, "/api/runs")["runs"]) == 80
    finally:
        running.close()


def test_damaged_lines_are_left_out_or_shown_raw(tmp_path: Path, logs: dict[str, Path]) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    lines = logs["a"].read_text().splitlines()
    records = [json.loads(line) for line in lines]
    records[1]["scores"] = ["not", "an", "object"]  # the table cannot use it: left out
    records[2]["messages"] = "not a list"  # the table can: opened, it is shown raw with the problem
    text = "\n".join([json.dumps(r) for r in records[:3]] + ["{cut sh", *lines[3:]]) + "\n"
    (folder / "damaged.jsonl").write_text(text)
    running = ViewServer(folder)
    try:
        run = get_json(running, "/api/run", log="damaged.jsonl")
        assert run["problems"] == ["line 2: sample field 'scores' should be an object whose entries are objects with a 'value' (found a list) (left out)",
                                   "line 4: not valid JSON (left out)"]
        page = get_json(running, "/api/samples", log="damaged.jsonl", sort="id")
        assert [row["id"] for row in page["rows"]] == sorted(r["id"] for r in records[2:-1])  # all but the first sample
        position = next(row["position"] for row in page["rows"] if row["id"] == records[2]["id"])
        opened = get_json(running, "/api/sample", log="damaged.jsonl", position=position)
        assert "sample field 'messages' should be a list" in opened["problem"] and opened["record"]["messages"] == "not a list"
    finally:
        running.close()


def test_samples_ended_by_a_limit_can_be_picked_out(tmp_path: Path, logs: dict[str, Path]) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    records = [json.loads(line) for line in logs["tools"].read_text().splitlines()]
    records[2]["limit"] = {"type": "message", "limit": 4}  # as the tool loop writes it
    (folder / "limited.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    running = ViewServer(folder)
    try:
        [row] = get_json(running, "/api/samples", log="limited.jsonl", limited="1")["rows"]
        assert (row["id"], row["limit"]) == (records[2]["id"], "message")
        assert get_json(running, "/api/samples", log="limited.jsonl")["total"] == 3
    finally:
        running.close()


def test_a_token_is_required_when_set(logs: dict[str, Path]) -> None:
    running = ViewServer(logs["a"].parent, "--token", "s3cret-token")
    try:
        assert running.token == "s3cret-token"
        assert running.get("/api/runs").status_code == 401
        assert running.get("/").status_code == 401
        assert running.get("/api/runs", params={"token": "wrong"}).status_code == 401
        opened = running.get("/", params={"token": "s3cret-token"})
        assert opened.status_code == 200 and "HttpOnly" in opened.headers["set-cookie"]
        assert running.get("/api/runs", cookies=dict(opened.cookies)).status_code == 200
        assert running.get("/api/runs", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    finally:
        running.close()


def test_bound_to_another_host_a_token_is_made_and_required(logs: dict[str, Path]) -> None:
    running = ViewServer(logs["a"].parent, "--host", "0.0.0.0")
    try:
        assert running.token and len(running.token) >= 20
        assert running.get("/api/runs").status_code == 401
        assert running.get("/api/runs", headers={"Authorization": f"Bearer {running.token}"}).status_code == 200
    finally:
        running.close()


def assert_one_line(result: Any, *parts: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "Traceback" not in result.stderr
    for part in parts:
        assert part in line, line


def test_a_missing_log_folder_is_one_line(tmp_path: Path) -> None:
    assert_one_line(run_cli("view", "--log-dir", str(tmp_path / "nope")), "does not exist", "--log-dir")
    (tmp_path / "file").write_text("")
    assert_one_line(run_cli("view", "--log-dir", str(tmp_path / "file")), "is a file")


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert_one_line(run_cli("view", "--log-dir", str(tmp_path), "--port", str(port)), f"port {port} is in use", "--port")


def test_an_unreadable_log_or_bad_query_is_an_error_not_a_crash(server: ViewServer, logs: dict[str, Path]) -> None:
    assert "no evalkit log header" in get_json(server, "/api/run", 422, log="broken.jsonl")["error"]
    assert get_json(server, "/api/samples", 400, log=name(logs["a"]), offset="x")["error"] == "offset must be a whole number"
    assert get_json(server, "/api/runs")["runs"]  # the server is still up


def test_view_shows_a_copy_of_a_log_dir_with_nested_folders(tmp_path: Path, logs: dict[str, Path]) -> None:
    nested = tmp_path / "logs" / "day1"
    nested.mkdir(parents=True)
    shutil.copy(logs["tools"], nested / logs["tools"].name)
    running = ViewServer(tmp_path / "logs")
    try:
        [run] = get_json(running, "/api/runs")["runs"]
        assert run["log"] == f"day1/{logs['tools'].name}"
        assert get_json(running, "/api/samples", log=run["log"])["samples"] == 3
        assert json.loads(running.get("/api/run", params={"log": run["log"]}).text)["task"] == "tools"
    finally:
        running.close()
