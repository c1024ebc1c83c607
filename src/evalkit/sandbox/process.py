"""Runs one command as a child process in its own session: a wall-clock timeout, stdout and
stderr read as they come and capped in size, and the whole process group killed when either
limit is hit or the caller is cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from typing import Any

from evalkit.sandbox.environment import ExecResult, OutputLimitExceededError, size_text

_CHUNK = 64 * 1024
_DRAIN_AFTER_EXIT = 0.5
"""Seconds to keep reading after the command exits (a process it left running in the
background may hold the pipes open; what it prints later is not waited for)."""


class _Capped:
    """The first `limit` bytes of one output stream."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.overflowed = False

    def add(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        self.data += chunk[:room]
        self.overflowed = self.overflowed or len(chunk) > room

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


def kill_group(pgid: int) -> None:
    """SIGKILL every process of the group (gone already is fine)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def run_process(
    argv: list[str],
    *,
    input: str | bytes | None,
    cwd: str | None,
    env: dict[str, str] | None,
    timeout: float | None,
    output_limit: int,
    preexec_fn: Callable[[], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> ExecResult:
    """Run `argv` to completion; TimeoutError after `timeout` seconds, OutputLimitExceededError
    when stdout or stderr passes `output_limit` bytes (the group is killed in both cases)."""
    loop = asyncio.get_running_loop()
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=out_write, stderr=err_write, cwd=cwd, env=env, start_new_session=True, preexec_fn=preexec_fn,
        )
    except BaseException:
        for fd in (out_read, err_read):
            os.close(fd)
        raise
    finally:
        os.close(out_write)
        os.close(err_write)
    if on_start is not None:
        on_start(process.pid)
    stdout, stderr = _Capped(output_limit), _Capped(output_limit)
    unread, readers = [out_read, err_read], []
    try:
        for fd, capped in ((out_read, stdout), (err_read, stderr)):
            unread.remove(fd)  # the transport owns it from here
            readers.append(await _reader(loop, fd, capped, process.pid))
        async with asyncio.timeout(timeout):
            if input is not None:
                await _feed(process, input.encode() if isinstance(input, str) else input)
            returncode = await process.wait()
        await _drain(readers)
    except TimeoutError:
        raise TimeoutError(f"the command did not finish within {timeout:g} seconds and was stopped") from None
    finally:
        running = process.returncode is None
        if running:
            kill_group(process.pid)
        for transport, task in readers:
            task.cancel()
            transport.close()
        for fd in unread:
            os.close(fd)
        if running:  # last: under cancellation this await may be interrupted too
            with contextlib.suppress(ProcessLookupError):
                await asyncio.shield(process.wait())
    for capped in (stdout, stderr):
        if capped.overflowed:
            raise OutputLimitExceededError(size_text(output_limit), capped.text)
    return ExecResult(returncode == 0, returncode, stdout.text, stderr.text)


async def _reader(loop: asyncio.AbstractEventLoop, fd: int, capped: _Capped, pgid: int) -> tuple[Any, asyncio.Task[None]]:
    """Start reading `fd` into `capped`; past the cap the command's group is killed."""
    stream = asyncio.StreamReader(limit=_CHUNK)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream), os.fdopen(fd, "rb", 0))

    async def read() -> None:
        while chunk := await stream.read(_CHUNK):
            capped.add(chunk)
            if capped.overflowed:
                kill_group(pgid)
                return

    return transport, asyncio.ensure_future(read())


async def _drain(readers: list[tuple[Any, asyncio.Task[None]]]) -> None:
    """Let the readers reach the end of output, but not wait on background processes."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_DRAIN_AFTER_EXIT):
            await asyncio.gather(*(task for _, task in readers))


async def _feed(process: asyncio.subprocess.Process, data: bytes) -> None:
    """Write `data` to stdin and close it (a command that stops reading early is fine)."""
    assert process.stdin is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        process.stdin.write(data)
        await process.stdin.drain()
    process.stdin.close()
