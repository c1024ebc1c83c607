"""The third-party plugin under plugins/evalkit-echo, pip-installed, found through its entry point."""

from __future__ import annotations

from pathlib import Path

from evalkit import read_eval_log
from evalkit.model.registry import providers
from tests.conftest import REPO, run_cli


def test_plugin_registered_through_entry_point() -> None:
    info = providers()["echo"]
    assert info.plugin == "echo" and info.factory == "evalkit_echo.api:EchoAPI"
    assert providers()["mockllm"].plugin == "evalkit-builtin"


def test_plugin_provider_end_to_end_through_cli(log_dir: Path) -> None:
    result = run_cli("eval", str(REPO / "tasks" / "factual_qa.py"), "--model", "echo/loud", "-M", "mode=upper",
                     "--limit", "3", "--log-dir", str(log_dir))
    assert result.returncode == 0, result.stderr
    [path] = log_dir.glob("*.jsonl")
    log = read_eval_log(path)
    assert log.model == "echo/loud" and log.footer["counts"]["completed"] == 3
    assert log.samples[0].output["completion"] == log.samples[0].input.upper()
    assert "echo" in run_cli("list", "providers").stdout


def test_plugin_bad_argument_is_one_line() -> None:
    result = run_cli("eval", str(REPO / "tasks" / "factual_qa.py"), "--model", "echo/x", "-M", "mode=sideways")
    assert result.returncode == 2 and "mode must be one of" in result.stderr and "Traceback" not in result.stderr


def test_the_distribution_is_evalkit_ai_and_the_plugin_depends_on_it() -> None:
    """PyPI's `evalkit` is another project: ours installs as `evalkit-ai`, imported as `evalkit`."""
    from importlib.metadata import requires, version

    import evalkit

    assert version(evalkit.DISTRIBUTION) == evalkit.__version__
    assert evalkit.DISTRIBUTION == "evalkit-ai"
    assert requires("evalkit-echo") == ["evalkit-ai"]
