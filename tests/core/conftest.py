"""Fixtures shared by the sandbox tests: the folder sandboxes are made in, checked empty after."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import psutil
import pytest


def sandbox_processes(folder: Path) -> list[str]:
    """Live processes working inside `folder`, or whose HOME is there (a sandbox's, even after
    a chdir elsewhere); zombies are dead already."""
    found = []
    for process in psutil.process_iter(["pid", "cwd", "cmdline", "status"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            home = process.environ().get("HOME", "")
        except (psutil.Error, OSError):
            home = ""
        if (process.info["cwd"] or "").startswith(str(folder)) or home.startswith(str(folder)):
            found.append(f"{process.info['pid']} {process.info['cmdline']}")
    return found


@pytest.fixture
def sandboxes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The folder the sandboxes of the test are made in; empty, with nothing running there, after it."""
    folder = tmp_path / "sandboxes"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    assert sandbox_processes(folder) == []
    assert list(folder.iterdir()) == []
