"""`-M replicas=N`: a local provider's model as N Ray actors, each request to the least loaded.

A provider opts in by listing `Replicable` first among its bases. Then `-M replicas=N` (and/or
`-M ray_address=ADDRESS`) builds a `ReplicatedAPI` instead: N Ray actors, each holding one
instance of the same provider class built with the same arguments (less the replica ones), so
each replica keeps its own batcher. Each request goes to the replica with the fewest requests
in flight (ties: the one that has served fewest); its reply, or its error, comes back as the
provider's own.

Ray: an already initialised Ray in this process is reused; else `-M ray_address=` (or Ray's
`RAY_ADDRESS`) connects to an existing cluster, and without either a local Ray instance is
started (no dashboard, a small object store) and shut down again by `aclose`. Per replica
`-M replica_gpus=` (default 1 when the cluster has GPUs, else 0) and `-M replica_cpus=`
(default: the CPUs Ray has free shared out among CPU-only replicas, at least 1; Ray sets each actor's
OMP_NUM_THREADS to it). Cluster nodes need evalkit and the provider's extras installed.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from typing import Any

from evalkit.errors import EvalkitError, ModelArgsError
from evalkit.model.api import ModelAPI
from evalkit.model.types import ChatMessage, GenerateConfig, ModelOutput
from evalkit.tool.types import ToolChoice, ToolInfo

REPLICA_ARGS = ("replicas", "ray_address", "replica_cpus", "replica_gpus")
"""`-M` arguments taken by the replica layer; the provider never sees them."""

REPLICA_BATCH_WAIT = 0.25
"""Default `batch_wait` of a replica's batcher: requests reach it one RPC at a time, so a batch
waits longer for company; it starts at once when every running sample's request is queued."""

OBJECT_STORE_BYTES = 128 * 2**20
"""Object store of a local Ray started here: prompts and replies are small."""


class ReplicaError(EvalkitError):
    """A replica's actor died or could not be reached."""


class Replicable:
    """Mixin for a local `ModelAPI`: with any of `REPLICA_ARGS` the class builds a
    `ReplicatedAPI` of Ray actors instead of loading the model in this process."""

    def __new__(cls, model_name: str, *args: Any, **kwargs: Any) -> Any:
        if any(name in kwargs for name in REPLICA_ARGS):
            return ReplicatedAPI(cls, model_name, **kwargs)
        return super().__new__(cls)


class ReplicaActor:
    """Runs in a Ray actor: one provider instance. Its methods are coroutines, so concurrent
    requests meet in the provider's own batcher."""

    def __init__(self, api_class: type[ModelAPI], model_name: str, args: dict[str, Any]) -> None:
        self.served = 0
        try:
            self.api: ModelAPI | None = api_class(model_name, **args)
            self.error: Exception | None = None
        except Exception as error:  # raised by `info`, so the caller gets the provider's own error
            self.api, self.error = None, error

    async def info(self) -> dict[str, Any]:
        api = self._api()
        return {
            "max_connections": api.max_connections(), "weights": api.weights(),
            "embed_batch_size": api.embed_batch_size(), "supports_tools": api.supports_tools, "pid": os.getpid(),
        }

    async def generate(
        self, running: int, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None,
        config: GenerateConfig,
    ) -> ModelOutput:
        return await self._serve(running).request(input, tools, tool_choice, config)

    async def embed(self, running: int, texts: list[str]) -> list[list[float]]:
        return await self._serve(running).embed(texts)

    def _serve(self, running: int) -> ModelAPI:
        """Count a request; `running`: this replica's share of the samples running against the
        model, so its batcher starts a batch once they all wait (as it would in process)."""
        api = self._api()
        self.served += 1
        api.activity.active = running
        return api

    async def stats(self) -> dict[str, int]:
        return {"pid": os.getpid(), "served": self.served}

    def _api(self) -> ModelAPI:
        if self.api is None:
            assert self.error is not None
            raise self.error
        return self.api


class ReplicatedAPI(ModelAPI):
    """N replicas of a local provider as Ray actors; each request goes to the least loaded."""

    local = True

    def __init__(self, api_class: type[ModelAPI], model_name: str, **kwargs: Any) -> None:
        options = {name: kwargs.pop(name, None) for name in REPLICA_ARGS}
        provider_args = {k: v for k, v in kwargs.items() if k not in ("base_url", "api_key", "config")}
        super().__init__(model_name, base_url=kwargs.get("base_url"), api_key=kwargs.get("api_key"),
                         config=kwargs.get("config", GenerateConfig()), **provider_args)
        self.api_class = api_class
        self.provider = getattr(api_class, "provider", "")
        count = _count(options["replicas"])
        if "batch_wait" in inspect.signature(api_class.__init__).parameters:
            kwargs.setdefault("batch_wait", REPLICA_BATCH_WAIT)
        self.started_ray = connect_ray(options["ray_address"])
        self.actors = start_actors(api_class, model_name, kwargs, count, options["replica_cpus"], options["replica_gpus"])
        self.in_flight = [0] * count
        self.served = [0] * count
        self.alive = [True] * count
        self.infos = self._wait_ready()
        self.supports_tools = self.infos[0]["supports_tools"]

    def _wait_ready(self) -> list[dict[str, Any]]:
        import ray

        try:
            return list(ray.get([actor.info.remote() for actor in self.actors]))
        except BaseException as error:
            self._stop()
            raise _provider_error(error, "starting", self.label) from None

    def max_connections(self) -> int:
        return sum(int(info["max_connections"]) for info in self.infos)

    def weights(self) -> dict[str, str] | None:
        return self.infos[0]["weights"]  # type: ignore[no-any-return]

    def embed_batch_size(self) -> int:
        return int(self.infos[0]["embed_batch_size"])

    async def generate(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice | None, config: GenerateConfig
    ) -> ModelOutput:
        return await self._call("generate", input, tools, tool_choice, config)  # type: ignore[no-any-return]

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return await self._call("embed", texts)  # type: ignore[no-any-return]

    async def replica_stats(self) -> list[dict[str, int]]:
        """Each live replica's process id and the requests it has served."""
        return list(await asyncio.gather(*(a.stats.remote() for a, up in zip(self.actors, self.alive) if up)))

    async def aclose(self) -> None:
        self._stop()

    def _pick(self) -> int:
        live = [index for index, up in enumerate(self.alive) if up]
        if not live:
            raise ReplicaError(f"every replica of {self.label} has stopped")
        return min(live, key=lambda index: (self.in_flight[index], self.served[index]))

    async def _call(self, method: str, *args: Any) -> Any:
        import ray

        index = self._pick()
        self.in_flight[index] += 1
        self.served[index] += 1
        running = -(-self.activity.active // sum(self.alive))  # this replica's share, rounded up
        reference = getattr(self.actors[index], method).remote(running, *args)
        try:
            return await reference
        except asyncio.CancelledError:
            ray.cancel(reference)  # the replica's batcher stops generating for it
            raise
        except ray.exceptions.RayActorError as error:
            self.alive[index] = False
            raise ReplicaError(f"replica {index + 1} of {self.label} stopped: {_first_line(error)}") from None
        except ray.exceptions.RayTaskError as error:
            raise _provider_error(error, method, self.label) from None
        finally:
            self.in_flight[index] -= 1

    def _stop(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors, self.alive = [], []
        if self.started_ray:
            ray.shutdown()
            self.started_ray = False


def connect_ray(address: str | None) -> bool:
    """Make sure Ray is initialised: reuse this process's, connect to `address` (or Ray's
    RAY_ADDRESS), else start a local instance. Returns whether this call initialised Ray."""
    try:
        import ray
    except ImportError as ex:
        raise ModelArgsError("-M replicas needs Ray: pip install 'evalkit-ai[ray]'") from ex
    if ray.is_initialized():
        return False
    target = address or os.environ.get("RAY_ADDRESS")
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    if target:
        ray.init(address=str(target), **quiet)
    else:
        ray.init(address="local", include_dashboard=False, object_store_memory=OBJECT_STORE_BYTES, **quiet)
    return True


def start_actors(
    api_class: type[ModelAPI], model_name: str, args: dict[str, Any], count: int, cpus: Any, gpus: Any
) -> list[Any]:
    """`count` Ray actors, each building `api_class(model_name, **args)` (loading starts now)."""
    import ray

    resources = ray.available_resources()
    num_gpus = float(gpus) if gpus is not None else (1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0)
    default_cpus = 1 if num_gpus else max(1, int(resources.get("CPU", 0)) // count)
    num_cpus = float(cpus) if cpus is not None else default_cpus
    actor_class = ray.remote(ReplicaActor).options(num_cpus=num_cpus, num_gpus=num_gpus, max_concurrency=1000)
    return [actor_class.remote(api_class, model_name, args) for _ in range(count)]


def _count(replicas: Any) -> int:
    if replicas is None:
        return 1
    try:
        count = int(replicas)
    except (TypeError, ValueError):
        count = 0
    if count < 1 or str(count) != str(replicas).strip():
        raise ModelArgsError(f"-M replicas={replicas} is not a whole number of at least 1")
    return count


def _provider_error(error: BaseException, doing: str, label: str) -> BaseException:
    """The provider's own exception from a replica's task error; else a one-line ReplicaError."""
    import ray

    cause = getattr(error, "cause", None)
    if isinstance(error, ray.exceptions.RayTaskError) and isinstance(cause, Exception):
        return cause
    if not isinstance(error, Exception):
        return error
    return ReplicaError(f"a replica of {label} failed while {doing}: {_first_line(error)}")


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def ray_engine_args(engine_args: dict[str, Any]) -> dict[str, Any]:
    """vLLM engine arguments that put vLLM's own parallelism on Ray: `distributed_executor_backend`
    "ray" when `tensor_parallel_size` or `pipeline_parallel_size` is above 1, and
    `data_parallel_backend` "ray" when `data_parallel_size` is; arguments given win."""
    def above_one(name: str) -> bool:
        return int(engine_args.get(name) or 1) > 1

    extra: dict[str, Any] = {}
    if above_one("tensor_parallel_size") or above_one("pipeline_parallel_size"):
        extra["distributed_executor_backend"] = "ray"
    if above_one("data_parallel_size"):
        extra["data_parallel_backend"] = "ray"
    return {k: v for k, v in extra.items() if k not in engine_args}
