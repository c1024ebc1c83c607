"""Registers the `echo` provider with evalkit through the `evalkit` entry-point group."""

from __future__ import annotations

from typing import Callable

from evalkit import hookimpl


@hookimpl
def evalkit_providers(register: Callable[..., None]) -> None:
    register(
        "echo",
        "evalkit_echo.api:EchoAPI",
        summary="Repeats the prompt back (example third-party plugin)",
        pip="evalkit-echo",
    )
