"""`evalkit view` in a real browser: Debian's chromium driven by Playwright's Python package
(never a browser Playwright downloads). Opens the runs page, a run, filters it, opens a
transcript, compares two runs and watches a run that is still writing. Each test saves a
screenshot to docs/images/view-*.png (the README shows one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.core.view_logs import ViewServer, make_runs

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO / "docs" / "images"

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")
expect = playwright_api.expect


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_runs(tmp_path_factory.mktemp("browser") / "logs")


@pytest.fixture(scope="module")
def server(logs: dict[str, Path]) -> Iterator[ViewServer]:
    running = ViewServer(logs["a"].parent)
    yield running
    running.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    assert CHROMIUM.exists(), "the browser tests need Debian's chromium: apt-get install -y chromium (scripts/test.sh does)"
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1360, "height": 860})  # type: ignore[attr-defined]
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(str(error)))
    opened.on("console", lambda message: problems.append(message.text)
              if message.type == "error" and not message.text.startswith("Failed to load resource") else None)
    opened.on("response", lambda response: problems.append(f"{response.status} {response.url}")
              if response.status >= 400 and "/api/" not in response.url else None)  # API errors are shown in the page
    outside: list[str] = []
    opened.on("request", lambda request: outside.append(request.url) if not request.url.startswith(("http://127.0.0.1", "data:")) else None)
    yield opened
    context.close()
    assert problems == [], problems
    assert outside == [], f"the page fetched from elsewhere: {outside}"


def shot(page: object, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"view-{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_runs_page_lists_the_runs(page: object, server: ViewServer, logs: dict[str, Path]) -> None:
    page.goto(server.url)  # type: ignore[attr-defined]
    rows = page.locator("#runs tbody tr")  # type: ignore[attr-defined]
    rows.first.wait_for()
    assert rows.count() == 3
    row_a = page.locator(f'#runs tr[data-log="{logs["a"].name}"]')  # type: ignore[attr-defined]
    assert "quiz" in row_a.inner_text() and "mockllm/first" in row_a.inner_text() and "match/accuracy 0.8" in row_a.inner_text()
    shot(page, "runs")


def test_a_run_shows_metrics_and_samples_and_filters(page: object, server: ViewServer, logs: dict[str, Path]) -> None:
    page.goto(server.url)  # type: ignore[attr-defined]
    page.locator(f'#runs tr[data-log="{logs["a"].name}"] td:nth-child(3)').click()  # type: ignore[attr-defined]
    samples = page.locator("#samples tbody tr[data-position]")  # type: ignore[attr-defined]
    samples.first.wait_for()
    assert samples.count() == 6
    assert "0.8" in page.locator(".card.metric").first.inner_text()  # type: ignore[attr-defined]
    assert page.locator("#range").inner_text().startswith("1–6 of 6")  # type: ignore[attr-defined]
    shot(page, "run")

    page.select_option("#errors", "only")  # type: ignore[attr-defined]
    expect(page.locator("#range")).to_contain_text("filtered")  # type: ignore[attr-defined]
    assert samples.count() == 1 and "boom" in samples.first.inner_text()
    page.click("text=Clear")  # type: ignore[attr-defined]
    expect(page.locator("#range")).to_have_text("1–6 of 6")  # type: ignore[attr-defined]
    page.fill("#search", "without an answer")  # type: ignore[attr-defined]
    page.press("#search", "Enter")  # type: ignore[attr-defined]
    expect(page.locator("#range")).to_contain_text("1–1 of 1")  # type: ignore[attr-defined]
    assert samples.first.locator("td").first.inner_text() == "5"
    page.select_option("#score", "match=C")  # type: ignore[attr-defined]
    expect(page.locator("#range")).to_contain_text("0 of 0")  # type: ignore[attr-defined]
    page.click("text=Clear")  # type: ignore[attr-defined]
    expect(page.locator("#range")).to_have_text("1–6 of 6")  # type: ignore[attr-defined]
    page.click("#samples th:has-text('id')")  # type: ignore[attr-defined]
    page.click("#samples th:has-text('id')")  # type: ignore[attr-defined]  # descending
    page.locator("#samples th.sorted.desc").wait_for()  # type: ignore[attr-defined]
    assert samples.first.locator("td").first.inner_text() == "6"
    shot(page, "filter")


def test_a_sample_shows_its_whole_transcript(page: object, server: ViewServer, logs: dict[str, Path]) -> None:
    page.goto(f"{server.url}#/run?log={logs['tools'].name}")  # type: ignore[attr-defined]
    page.locator("#samples tbody tr[data-position]").first.click()  # type: ignore[attr-defined]
    transcript = page.locator("#transcript")  # type: ignore[attr-defined]
    transcript.locator(".message").first.wait_for()
    assert page.locator("#sample-title").inner_text().startswith("Sample t")  # type: ignore[attr-defined]
    assert transcript.locator(".message.user img.content").count() == 1
    assert "I should call add." in transcript.locator(".reasoning").first.inner_text()
    calls = transcript.locator(".toolcall")
    assert "add(" in calls.first.inner_text() and '"x": 1' in calls.first.inner_text()
    assert "arguments did not parse" in calls.nth(1).inner_text()
    failed = transcript.locator(".message.tool.failed")
    assert failed.count() >= 1 and "there is no tool named 'nope'" in failed.first.inner_text()
    assert "C" in page.locator("#scores").inner_text()  # type: ignore[attr-defined]
    shot(page, "sample")
    page.click("#next-sample")  # type: ignore[attr-defined]
    expect(page.locator("#prev-sample")).to_be_enabled()  # type: ignore[attr-defined]


def test_two_runs_are_compared(page: object, server: ViewServer, logs: dict[str, Path]) -> None:
    page.goto(server.url)  # type: ignore[attr-defined]
    for run in ("a", "b"):
        page.check(f'#runs tr[data-log="{logs[run].name}"] input[type=checkbox]')  # type: ignore[attr-defined]
    page.click("#compare")  # type: ignore[attr-defined]
    page.locator("#compare-samples").wait_for()  # type: ignore[attr-defined]
    metrics = page.locator("#compare-metrics").inner_text()  # type: ignore[attr-defined]
    assert "match / accuracy" in metrics and "0.8" in metrics and "+0.2" in metrics
    assert page.locator("#differing-title").inner_text() == "1 sample scores differently"  # type: ignore[attr-defined]
    row = page.locator("#compare-samples tbody tr").first  # type: ignore[attr-defined]
    assert row.locator("td").first.inner_text() == "5" and "I" in row.inner_text() and "C" in row.inner_text()
    shot(page, "compare")
    row.locator("a").nth(1).click()
    page.locator("#transcript .message").first.wait_for()  # type: ignore[attr-defined]
    assert page.locator("#sample-title").inner_text() == "Sample 5 · epoch 1"  # type: ignore[attr-defined]


def test_a_run_still_writing_refreshes(page: object, tmp_path: Path, logs: dict[str, Path]) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    lines = logs["a"].read_bytes().splitlines(keepends=True)
    live = folder / logs["a"].name
    live.write_bytes(b"".join(lines[:3]))
    running = ViewServer(folder, "--token", "let-me-in")
    try:
        page.goto(f"{running.url}?token=let-me-in#/run?log={live.name}")  # type: ignore[attr-defined]
        expect(page.locator("#range")).to_contain_text("1–2 of 2")  # type: ignore[attr-defined]
        assert "started" in page.locator("h1").inner_text()  # type: ignore[attr-defined]
        with live.open("ab") as handle:
            handle.write(b"".join(lines[3:-1]))
        expect(page.locator("#range")).to_contain_text("1–6 of 6", timeout=15000)  # type: ignore[attr-defined]
        with live.open("ab") as handle:
            handle.write(lines[-1])  # the footer: the run finished
        expect(page.locator("h1 .badge")).to_have_text("success", timeout=15000)  # type: ignore[attr-defined]
        expect(page.locator(".card.metric").first).to_contain_text("0.8")  # type: ignore[attr-defined]
        assert "token" not in page.url  # type: ignore[attr-defined]
    finally:
        running.close()


def test_a_missing_run_is_shown_as_an_error(page: object, server: ViewServer) -> None:
    page.goto(f"{server.url}#/run?log=../secret.jsonl")  # type: ignore[attr-defined]
    error = page.locator("#page-error")  # type: ignore[attr-defined]
    error.wait_for()
    assert "no log named" in error.inner_text()
