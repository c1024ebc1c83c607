"""Shared fixtures: offline Hugging Face, a temporary log dir, and running the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent


def sigint_as_in_a_terminal() -> None:
    """`preexec_fn` for a child the test sends SIGINT: Ctrl-C's default action, even where the
    test run itself was started in the background (a shell then ignores SIGINT for it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "logs"


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run `evalkit ARGS` in a subprocess (the installed console script's module)."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "evalkit", *args], capture_output=True, text=True, cwd=cwd, env=full_env, timeout=timeout
    )
