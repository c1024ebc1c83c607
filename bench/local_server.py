"""Pieces the benchmarks share: starting a server process that writes its port to a file, and
a scripted OpenAI-protocol server that answers with a tool call when asked to."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any, Callable


def start_process(command: list[str], port_file: Path, path: str = "", **popen: Any) -> tuple[subprocess.Popen[bytes], str]:
    """Run `command` (with `popen` options; it writes its port to `port_file` once listening)
    and return the process and its base URL (with `path` appended)."""
    process = subprocess.Popen(command, **popen)
    deadline = time.monotonic() + 30
    while not (port_file.exists() and port_file.read_text().strip()):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the server {command[1:3]} did not start")
        time.sleep(0.05)
    return process, f"http://127.0.0.1:{port_file.read_text().strip()}{path}"


def serve_tool_calls(port_file: str, latency: float, asks_tool: Callable[[dict[str, Any]], bool]) -> None:
    """An aiohttp chat-completions server, until killed: a request for which `asks_tool(body)`
    holds and whose last message is not a tool result gets an `add(1, 2)` call, any other the
    answer "The answer is 3"; GET /count says how many requests it served."""
    import asyncio

    from aiohttp import web

    count = 0

    async def chat(request: web.Request) -> web.Response:
        nonlocal count
        count += 1
        body = await request.json()
        if latency:
            await asyncio.sleep(latency)
        if asks_tool(body) and body["messages"][-1]["role"] != "tool":
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": f"call_{len(body['messages'])}", "type": "function",
                "function": {"name": "add", "arguments": json.dumps({"x": 1, "y": 2})}}]}
            finish = "tool_calls"
        else:
            message, finish = {"role": "assistant", "content": "The answer is 3"}, "stop"
        return web.json_response({
            "id": "chatcmpl-bench", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}})

    async def served(request: web.Request) -> web.Response:
        return web.json_response({"requests": count})

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        app.router.add_get("/count", served)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        Path(port_file).write_text(str(site._server.sockets[0].getsockname()[1]))  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(main())
