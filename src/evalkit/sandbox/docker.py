"""The `docker` sandbox: one container per sample (no network unless configured), commands
through `docker exec`, files through `docker cp`, the container removed at clean-up."""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import anyio

from evalkit.errors import EvalkitError
from evalkit.sandbox.environment import (
    ExecResult,
    SandboxEnvironment,
    SandboxEnvironmentLimits,
    config_from,
)
from evalkit.sandbox.files import read_beneath
from evalkit.sandbox.process import run_process

_CONTROL_TIMEOUT = 120.0
"""Seconds a docker command of our own (run, cp, rm) may take."""


class DockerSandboxError(EvalkitError):
    """Docker is missing, its daemon is not reachable, or it refused to start a container."""


@dataclass(frozen=True)
class DockerSandboxConfig:
    """The image, the container's working folder, network (`none`, or a docker network name such
    as `bridge`), memory (docker's syntax, e.g. `1g`), CPUs and process count limits."""

    image: str = "python:3.12-slim"
    workdir: str = "/sandbox"
    network: str = "none"
    memory: str = "1g"
    cpus: float = 1.0
    pids_limit: int = 256


class DockerSandboxEnvironment(SandboxEnvironment):
    """A running container made for one sample."""

    def __init__(self, container: str, config: DockerSandboxConfig) -> None:
        self.container = container
        self.config = config

    @classmethod
    def parse_config(cls, config: Any) -> DockerSandboxConfig:
        return config_from(DockerSandboxConfig, config, "docker")

    @classmethod
    async def create(cls, config: DockerSandboxConfig | None) -> DockerSandboxEnvironment:
        config = config or DockerSandboxConfig()
        name = f"evalkit-{uuid.uuid4().hex[:16]}"
        try:
            await _docker("run", "-d", "--name", name, "--network", config.network, "--memory", config.memory,
                          "--memory-swap", config.memory, "--cpus", f"{config.cpus:g}", "--pids-limit",
                          str(config.pids_limit), "-w", config.workdir, "--entrypoint", "sleep", config.image, "infinity")
        except BaseException:  # cancelled or failed: the daemon may have started it all the same
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CONTROL_TIMEOUT):
                await run_process(["docker", "rm", "-f", name], input=None, cwd=None, env=None,
                                  timeout=_CONTROL_TIMEOUT, output_limit=1 << 16)
            raise
        return cls(name, config)

    async def exec(
        self,
        cmd: list[str],
        input: str | bytes | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        timeout: int | None = None,
    ) -> ExecResult:
        options = ["-i"] if input is not None else []
        options += ["-w", self._path(cwd or ".")]
        for name, value in (env or {}).items():
            options += ["-e", f"{name}={value}"]
        # `timeout` inside the container stops the command there too, not only the docker client;
        # it exits 124 (or 137 after the KILL 2 s later), and only then has the time passed.
        inner = ["timeout", "-k", "2", str(timeout), *cmd] if timeout else cmd
        begin = time.monotonic()
        result = await run_process(["docker", "exec", *options, self.container, *inner], input=input, cwd=None, env=None,
                                   timeout=timeout + 10 if timeout else None,
                                   output_limit=SandboxEnvironmentLimits.MAX_EXEC_OUTPUT_SIZE)
        if timeout and result.returncode in (124, 137) and time.monotonic() - begin >= timeout:
            raise TimeoutError(f"the command did not finish within {timeout} seconds and was stopped")
        return result

    async def read_file(self, file: str, text: bool = True) -> Any:
        with tempfile.TemporaryDirectory(prefix="evalkit-docker-") as folder:
            # -L: the file a link points to in the container, never a link to follow on this host.
            await self._copy(f"{self.container}:{self._path(file)}", str(Path(folder) / "file"), file, "-L")
            data = read_beneath(folder, "file", SandboxEnvironmentLimits.MAX_READ_FILE_SIZE)
        return data.decode("utf-8") if text else data

    async def write_file(self, file: str, contents: str | bytes) -> None:
        target = self._path(file)
        await _docker("exec", self.container, "mkdir", "-p", str(PurePosixPath(target).parent))
        with tempfile.TemporaryDirectory(prefix="evalkit-docker-") as folder:
            local = Path(folder) / "file"
            local.write_bytes(contents.encode() if isinstance(contents, str) else contents)
            await self._copy(str(local), f"{self.container}:{target}", file)

    async def cleanup(self) -> None:
        await _docker("rm", "-f", self.container)

    def _path(self, file: str) -> str:
        return str(PurePosixPath(self.config.workdir) / file)

    async def _copy(self, source: str, destination: str, file: str, *options: str) -> None:
        result = await run_process(["docker", "cp", "-q", *options, source, destination], input=None, cwd=None, env=None,
                                   timeout=_CONTROL_TIMEOUT, output_limit=1 << 16)
        if not result.success:
            if "Could not find" in result.stderr or "No such" in result.stderr:
                raise FileNotFoundError(f"{file!r}: no such file in the container")
            raise DockerSandboxError(f"docker cp failed: {result.stderr.strip()[:300]}")


async def _docker(*args: str) -> ExecResult:
    """Run a docker command of our own; a failure is a DockerSandboxError with docker's words."""
    if shutil.which("docker") is None:
        raise DockerSandboxError("the docker sandbox needs the docker command: install Docker, or use sandbox=\"local\"")
    result = await run_process(["docker", *args], input=None, cwd=None, env=None, timeout=_CONTROL_TIMEOUT,
                               output_limit=1 << 16)
    if not result.success:
        raise DockerSandboxError(f"docker {args[0]} failed: {result.stderr.strip()[:300]}")
    return result
