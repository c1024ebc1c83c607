"""Sandboxes through eval(): each sample's own environment from sandbox(), the local sandbox's
limits (time, output, memory, processes, writes outside its folder, credentials), clean-up after
scoring, on errors and on Ctrl-C, the bash()/python() tools, and the docker sandbox where a
daemon runs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import psutil
import pytest

from evalkit import Sample, Task, eval, read_eval_log
from evalkit.errors import DefinitionError
from evalkit.sandbox import cgroup
from evalkit.scorer import Score, Target, includes, scorer
from evalkit.solver import Generate, TaskState, generate, solver, use_tools
from evalkit.tool import bash, python
from evalkit.util import OutputLimitExceededError, SandboxEnvironmentLimits, sandbox
from tests.conftest import sigint_as_in_a_terminal
from tests.core.conftest import sandbox_processes


def run(solve: Any, log_dir: Path, *, scorer_fn: Any = None, samples: int = 1, **task: Any) -> Any:
    """One eval of `solve` over `samples` samples with mockllm; the log."""
    dataset = [Sample(input=f"sample {i}", target="", id=i) for i in range(1, samples + 1)]
    [log] = eval(Task(dataset=dataset, solver=solve, scorer=scorer_fn or includes(), **{"sandbox": "local", **task}),
                 model="mockllm/x", log_dir=log_dir, display="none", fail_on_error=False)
    return log


def exec_solver(check: Any) -> Any:
    """A solver that runs `check(sandbox)` and keeps what it returns in the state's metadata."""

    @solver
    def probe() -> Any:
        async def solve(state: TaskState, generate: Generate) -> TaskState:
            state.metadata["seen"] = await check(sandbox())
            return state

        return solve

    return probe()


def seen(log: Any) -> list[Any]:
    assert [s.error for s in log.samples] == [None] * len(log.samples)
    return [s.state_metadata["seen"] for s in log.samples]


def test_each_sample_gets_its_own_folder_with_exec_and_files(sandboxes: Path, log_dir: Path) -> None:
    async def check(box: Any) -> Any:
        await box.write_file("sub/note.txt", "from the solver")
        piped = await box.exec(["python3", "-c", "import sys; print(sys.stdin.read().upper())"], input="shout")
        listing = await box.exec(["bash", "-c", "ls; cat note.txt; echo $GREETING; exit 3"], cwd="sub", env={"GREETING": "hi"})
        await box.exec(["bash", "-c", "printf '\\x00\\xff' > data.bin"])
        return {"piped": piped.stdout, "listing": [listing.success, listing.returncode, listing.stdout],
                "binary": list(await box.read_file("data.bin", text=False)), "text": await box.read_file("sub/note.txt"),
                "cwd": (await box.exec(["pwd"])).stdout.strip()}

    log = run(exec_solver(check), log_dir, samples=3)
    results = seen(log)
    assert results[0]["piped"] == "SHOUT\n"
    assert results[0]["listing"] == [False, 3, "note.txt\nfrom the solverhi\n"]  # only this sample's file
    assert results[0]["binary"] == [0, 255] and results[0]["text"] == "from the solver"
    folders = {r["cwd"] for r in results}
    assert len(folders) == 3 and all(Path(f).parent == sandboxes for f in folders)
    assert read_eval_log(log.location).header["sandbox"]["type"] == "local"


def test_files_outside_the_folder_are_refused(sandboxes: Path, log_dir: Path) -> None:
    async def check(box: Any) -> Any:
        await box.exec(["ln", "-s", "/etc", "etc-link"])
        refused = []
        for name in ("../escape.txt", "/etc/hostname", "etc-link/hostname"):
            for action in (box.read_file(name), box.write_file(name, "x")):
                try:
                    await action
                except PermissionError as ex:
                    refused.append(str(ex))
        return refused

    [refused] = seen(run(exec_solver(check), log_dir))
    assert len(refused) == 6 and all("outside the sandbox folder" in r for r in refused)
    assert not (sandboxes / "escape.txt").exists()


def test_links_fifos_and_devices_are_not_followed_or_read(sandboxes: Path, log_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside")

    async def check(box: Any) -> Any:
        await box.exec(["bash", "-c", f"mkfifo fifo; ln -s {outside} d; ln -s {outside}/secret.txt s.txt; mkdir sub; "
                                      "echo inside > a.txt; ln a.txt hard.txt"])
        outcomes = {}
        for name, action in {"read fifo": box.read_file("fifo"), "write fifo": box.write_file("fifo", "x"),
                             "read dir link": box.read_file("d/secret.txt"), "write dir link": box.write_file("d/pwned.txt", "x"),
                             "read link": box.read_file("s.txt"), "write link": box.write_file("s.txt", "x"),
                             "write hard link": box.write_file("hard.txt", "x"),
                             "read folder": box.read_file("sub"), "read missing": box.read_file("nope.txt"),
                             "device": box.read_file("/dev/zero")}.items():
            try:
                outcomes[name] = ["read", await action]
            except OSError as ex:
                outcomes[name] = [type(ex).__name__, str(ex)]
        outcomes["mknod"] = (await box.exec(["mknod", "zero", "c", "1", "5"])).returncode
        return outcomes

    [outcomes] = seen(run(exec_solver(check), log_dir))
    for name in ("read fifo", "write fifo", "read dir link", "write dir link", "read link", "write link", "write hard link",
                 "device"):
        assert outcomes[name][0] == "PermissionError", (name, outcomes[name])
    assert "not a regular file" in outcomes["read fifo"][1] and "links are not followed" in outcomes["read link"][1]
    assert outcomes["read folder"][0] == "IsADirectoryError" and outcomes["read missing"][0] == "FileNotFoundError"
    assert outcomes["mknod"] != 0  # no CAP_MKNOD, even as root
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"] and (outside / "secret.txt").read_text() == "outside"


def test_a_link_swapped_in_while_writing_never_leads_outside(sandboxes: Path, log_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()

    async def check(box: Any) -> Any:
        await box.exec(["bash", "-c", f"(while true; do rm -rf d; mkdir d; rm -rf d; ln -s {outside} d; done) &"])
        written = 0
        for _ in range(300):
            try:
                await box.write_file("d/pwned.txt", "x")
                written += 1
            except OSError:
                pass
        return written

    [written] = seen(run(exec_solver(check), log_dir))
    assert written > 0  # the race ran: some writes landed inside, in the real folder
    assert list(outside.iterdir()) == []


def test_the_environment_carries_no_credentials(sandboxes: Path, log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-for-children")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-test-secret")

    async def check(box: Any) -> Any:
        return json.loads((await box.exec(["python3", "-c", "import json, os; print(json.dumps(dict(os.environ)))"])).stdout)

    [environment] = seen(run(exec_solver(check), log_dir))
    assert "OPENAI_API_KEY" not in environment and "AWS_SECRET_ACCESS_KEY" not in environment
    assert "sk-test" not in json.dumps(environment)
    assert environment["HOME"] == environment["TMPDIR"] and Path(environment["HOME"]).parent == sandboxes


_PARENT_ENVIRON_TASK = """
import json, sys
from evalkit import Sample, Task, eval
from evalkit.solver import solver
from evalkit.util import sandbox

@solver
def probe():
    async def solve(state, generate):
        found = await sandbox().exec(["bash", "-c", "grep -a -c sk-parent-secret /proc/$PPID/environ /proc/1/environ; "
                                      "grep CapEff /proc/self/status"])
        state.metadata["seen"] = [found.stdout, found.stderr]
        return state
    return solve

[log] = eval(Task(dataset=[Sample(input="x")], solver=probe(), sandbox="local"), model="mockllm/x",
             log_dir=sys.argv[1], display="none")
print(json.dumps(log.samples[0].state_metadata["seen"]))
"""


def test_commands_cannot_read_the_eval_process_environment(tmp_path: Path) -> None:
    # The secret is in the environment the eval process started with (what /proc/PID/environ shows).
    script = tmp_path / "probe.py"
    script.write_text(_PARENT_ENVIRON_TASK)
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "logs")], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "OPENAI_API_KEY": "sk-parent-secret", "TMPDIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    stdout, stderr = json.loads(done.stdout.strip().splitlines()[-1])
    assert "sk-parent-secret" not in stdout + stderr
    assert "environ: Permission denied" in stderr  # the eval's own environ
    if os.geteuid() == 0:  # root without capabilities cannot read another root process's environ either
        assert stderr.count("Permission denied") == 2
        assert "CapEff:\t0000000000000000" in stdout


def test_a_command_past_its_timeout_is_killed_with_its_children(sandboxes: Path, log_dir: Path) -> None:
    marker = f"{uuid.uuid4().int % 10**6 + 10**6}"

    async def check(box: Any) -> Any:
        begin = time.monotonic()
        try:
            await box.exec(["bash", "-c", f"sleep {marker} & sleep {marker}"], timeout=1)
        except TimeoutError as ex:
            took = time.monotonic() - begin
            deadline = time.monotonic() + 5  # the killed background sleep may take a moment to go on a loaded machine
            while (left := [p.pid for p in psutil.process_iter(["cmdline", "status"])
                            if p.info["cmdline"] == ["sleep", marker] and p.info["status"] != psutil.STATUS_ZOMBIE]):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            return [str(ex), took, left]
        return None

    [(message, took, left)] = seen(run(exec_solver(check), log_dir))
    assert "did not finish within 1 seconds" in message and took < 5
    assert left == []


def test_output_is_capped_and_the_command_stopped(sandboxes: Path, log_dir: Path) -> None:
    async def check(box: Any) -> Any:
        begin = time.monotonic()
        try:  # would print gigabytes, forever
            await box.exec(["python3", "-c", "import sys\nwhile True: sys.stdout.write('y' * 65536)"], timeout=60)
        except OutputLimitExceededError as ex:
            return [ex.limit_str, len(ex.truncated_output or ""), set(ex.truncated_output or ""), time.monotonic() - begin]
        return None

    [(limit, kept, chars, took)] = seen(run(exec_solver(check), log_dir))
    assert limit == "10 MiB" and kept == SandboxEnvironmentLimits.MAX_EXEC_OUTPUT_SIZE and chars == ["y"]
    assert took < 30


def test_memory_processes_and_writes_outside_are_limited(sandboxes: Path, log_dir: Path) -> None:
    outside = Path(tempfile.gettempdir()).parent / f"escape-{uuid.uuid4().hex}"

    async def check(box: Any) -> Any:
        results = {}
        for name, code in {
            "memory": "x = []\nwhile True: x.append(bytearray(10**7))",
            "raise_limit": "import resource; resource.setrlimit(resource.RLIMIT_AS, (-1, -1))",
            "write_outside": f"open({str(outside)!r}, 'w').write('x')",
            "fork_bomb": "import os\nfor _ in range(1000): os.fork() or __import__('time').sleep(30)",
        }.items():
            result = await box.exec(["python3", "-c", code], timeout=20)
            results[name] = [result.returncode, result.stderr.strip().splitlines()[-1]]
        results["ulimit"] = (await box.exec(["bash", "-c", "ulimit -v; ulimit -t; ulimit -f"])).stdout.split()
        return results

    [results] = seen(run(exec_solver(check), log_dir, sandbox=("local", {"memory_mb": 256, "max_processes": 32})))
    assert results["memory"] == [1, "MemoryError"]
    assert results["raise_limit"][1].startswith("ValueError: not allowed to raise maximum limit")
    assert results["write_outside"][1].startswith("PermissionError") and not outside.exists()
    assert results["fork_bomb"][0] == 1 and "BlockingIOError" in results["fork_bomb"][1]
    assert results["ulimit"] == [str(256 * 1024), "60", str(256 * 1024)]


def test_root_without_a_pids_cgroup_is_warned_once(sandboxes: Path, log_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgroup, "_ROOTS", (tmp_path / "no-cgroup-fs",))  # as on a host where none can be made

    async def check(box: Any) -> Any:
        return (await box.exec(["true"])).returncode

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log = run(exec_solver(check), log_dir, samples=3)
    assert seen(log) == [0, 0, 0]
    said = [str(w.message) for w in caught if "pids cgroup" in str(w.message)]
    assert len(said) == (1 if os.geteuid() == 0 else 0)
    assert all("nothing bounds the number of processes" in s for s in said)


def test_processes_left_running_are_killed_and_the_folder_removed_after_scoring(sandboxes: Path, log_dir: Path) -> None:
    scored_while_running = []

    async def check(box: Any) -> Any:
        # One stays in the sandbox's session, one leaves it (setsid) under an env= that tries to
        # replace the sandbox's marker: clean-up finds both.
        started = await box.exec(["bash", "-c", "sleep 1000 & setsid sleep 1001 & echo $EVALKIT_SANDBOX"],
                                 env={"EVALKIT_SANDBOX": "not-the-marker"})
        return started.stdout

    @scorer(metrics=[])
    def still_running() -> Any:
        async def score(state: TaskState, target: Target) -> Score:
            scored_while_running.append(len(sandbox_processes(sandboxes)))
            return Score("C")

        return score

    [marker] = seen(run(exec_solver(check), log_dir, scorer_fn=still_running()))
    assert len(marker.strip()) == 32 and marker.strip() != "not-the-marker"
    assert scored_while_running == [2]  # the fixture checks both are gone, and the folder


def test_clean_up_spares_a_process_that_got_a_pid_the_sandbox_once_had(sandboxes: Path, log_dir: Path) -> None:
    if not os.access("/proc/sys/kernel/ns_last_pid", os.W_OK):
        pytest.skip("choosing the next pid (/proc/sys/kernel/ns_last_pid) needs root")
    bystanders: list[subprocess.Popen[bytes]] = []

    async def check(box: Any) -> Any:
        leader = int((await box.exec(["bash", "-c", "echo $$"])).stdout)  # a session the sandbox started; it ended
        for _ in range(50):  # an unrelated session leader outside the sandbox reuses its pid
            Path("/proc/sys/kernel/ns_last_pid").write_text(str(leader - 1))
            bystanders.append(subprocess.Popen(["sleep", "1000"], start_new_session=True, env={"PATH": os.defpath}))
            if bystanders[-1].pid == leader:
                return True
        return False

    try:
        assert seen(run(exec_solver(check), log_dir)) == [True]
        assert bystanders[-1].poll() is None  # still running after the sandbox's clean-up
    finally:
        for process in bystanders:
            process.kill()
            process.wait()


def test_the_sandbox_is_cleaned_up_when_the_solver_fails(sandboxes: Path, log_dir: Path) -> None:
    @solver
    def crash() -> Any:
        async def solve(state: TaskState, generate: Generate) -> TaskState:
            await sandbox().exec(["bash", "-c", "sleep 1000 &"])
            await sandbox().write_file("big.txt", "x" * 1000)
            raise RuntimeError("the solver broke")

        return solve

    log = run(crash(), log_dir, samples=2)
    assert all("the solver broke" in s.error for s in log.samples)


def test_sandbox_outside_a_sample_or_without_one_is_a_clear_error(log_dir: Path) -> None:
    with pytest.raises(ProcessLookupError, match="no sandbox for this sample"):
        sandbox()

    async def check(box: Any) -> Any:
        return None

    log = run(exec_solver(check), log_dir, sandbox=None)
    assert "NoSandboxError: no sandbox for this sample" in log.samples[0].error
    assert 'sandbox="local"' in log.samples[0].error


def test_a_sample_sandbox_overrides_the_task_sandbox(sandboxes: Path, log_dir: Path) -> None:
    async def check(box: Any) -> Any:
        return (await box.exec(["bash", "-c", "ulimit -v"])).stdout.strip()

    samples = [Sample(input="a", id="own", sandbox=("local", {"memory_mb": 300})), Sample(input="b", id="task's")]
    [log] = eval(Task(dataset=samples, solver=exec_solver(check), sandbox="local"), model="mockllm/x", log_dir=log_dir,
                 display="none")
    seen(log)  # no sample failed
    assert {s.id: s.state_metadata["seen"] for s in log.samples} == {"own": str(300 * 1024), "task's": str(1024 * 1024)}


def test_bad_sandbox_specs_fail_when_the_task_is_made() -> None:
    with pytest.raises(DefinitionError, match=r"unknown type 'dockr' \(known: docker, local\)"):
        Task(dataset=[Sample(input="x")], sandbox="dockr")
    with pytest.raises(DefinitionError, match="unknown option 'memory' .*options: memory_mb"):
        Task(dataset=[Sample(input="x")], sandbox=("local", {"memory": 5}))
    with pytest.raises(DefinitionError, match="memory_mb must be like 1024"):
        Sample(input="x", sandbox=("local", {"memory_mb": "lots"}))
    with pytest.raises(DefinitionError, match="a type name such as"):
        Task(dataset=[Sample(input="x")], sandbox=["local"])  # type: ignore[arg-type]


def test_a_bad_sandbox_on_the_command_line_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "boxed.py").write_text(
        "from evalkit import Task, Sample, task\n\n@task\ndef boxed(kind: str = 'local'):\n"
        "    return Task(dataset=[Sample(input='x')], sandbox=kind)\n")
    done = subprocess.run([sys.executable, "-m", "evalkit", "eval", str(tmp_path / "boxed.py"), "--model", "mockllm/x",
                           "-T", "kind=podman", "--log-dir", str(tmp_path / "logs")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: task 'boxed': Task sandbox: unknown type 'podman' (known: docker, local)"]


# --- bash() and python() ----------------------------------------------------------------------

def tool_call(function: str, **arguments: Any) -> dict[str, Any]:
    return {"function": function, "arguments": arguments}


def test_bash_and_python_tools_run_in_the_sample_sandbox(sandboxes: Path, log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SandboxEnvironmentLimits, "MAX_EXEC_OUTPUT_SIZE", 4096)
    outputs = [
        {"tool_calls": [tool_call("bash", cmd="echo hi > f.txt; cat f.txt; echo oops >&2")]},
        {"tool_calls": [tool_call("python", code="print(open('f.txt').read().strip() * 2)"),
                        tool_call("python", code="raise SystemExit('bad exit')"),
                        tool_call("bash", cmd="sleep 30"),
                        tool_call("bash", cmd="yes")]},
        "done: hihi",
    ]
    [log] = eval(Task(dataset=[Sample(input="go", target="hihi")], solver=[use_tools(bash(timeout=2), python(timeout=2)), generate()],
                      scorer=includes(), sandbox="local"),
                 model="mockllm/x", model_args={"outputs": outputs}, log_dir=log_dir, display="none")
    [sample] = log.samples
    tools = [m for m in sample.chat_messages if m.role == "tool"]
    assert [(m.function, m.text, m.error) for m in tools[:3]] == [
        ("bash", "oops\n\nhi\n", None), ("python", "hihi\n", None), ("python", "bad exit\n\n", None)]
    assert (tools[3].error.type, tools[3].error.message) == ("timeout", "the command did not finish within 2 seconds and was stopped")
    assert tools[4].error.type == "unknown" and tools[4].error.message.startswith("the output exceeded 4 KiB")
    assert "y\ny\n" in tools[4].error.message
    assert sample.scores["includes"]["value"] == "C"


def test_tools_without_a_sandbox_tell_the_model(log_dir: Path) -> None:
    [log] = eval(Task(dataset=[Sample(input="go")], solver=[use_tools(bash()), generate()]),
                 model="mockllm/x", model_args={"outputs": [{"tool_calls": [tool_call("bash", cmd="ls")]}, "ok"]},
                 log_dir=log_dir, display="none")
    [tool] = [m for m in log.samples[0].chat_messages if m.role == "tool"]
    assert "no sandbox for this sample" in tool.error.message


# --- Ctrl-C -------------------------------------------------------------------------------------

def test_ctrl_c_during_a_command_cleans_up_the_sandbox(tmp_path: Path) -> None:
    folder = tmp_path / "sandboxes"
    folder.mkdir()
    (tmp_path / "slow.py").write_text(
        "from evalkit import Task, Sample, task\nfrom evalkit.solver import generate, use_tools\n"
        "from evalkit.tool import bash\n\n@task\ndef slow():\n"
        "    return Task(dataset=[Sample(input='x')], solver=[use_tools(bash()), generate()], sandbox='local')\n")
    outputs = json.dumps([{"tool_calls": [{"function": "bash", "arguments": {"cmd": "sleep 1000 & sleep 1001"}}]}, "done"])
    child = subprocess.Popen([sys.executable, "-m", "evalkit", "eval", str(tmp_path / "slow.py"), "--model", "mockllm/x",
                              "-M", f"outputs={outputs}", "--log-dir", str(tmp_path / "logs")],
                             env={**os.environ, "TMPDIR": str(folder)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=sigint_as_in_a_terminal)
    deadline = time.monotonic() + 120
    while not any("'sleep', '1001'" in p for p in sandbox_processes(folder)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert any("'sleep', '1000'" in p for p in sandbox_processes(folder))
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode != 0, stderr
    assert sandbox_processes(folder) == []
    assert list(folder.iterdir()) == []


# --- docker -------------------------------------------------------------------------------------

def _docker_problem() -> str | None:
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as ex:
        return f"docker info failed: {ex}"
    return None if info.returncode == 0 else f"no Docker daemon: `docker info` said: {info.stderr.strip()[-200:]}"


def test_docker_without_a_daemon_fails_the_sample_with_dockers_words(log_dir: Path) -> None:
    problem = _docker_problem()
    if problem is None:
        pytest.skip("a Docker daemon runs here")

    async def check(box: Any) -> Any:
        return None

    log = run(exec_solver(check), log_dir, sandbox=("docker", {"image": "python:3.12-slim"}))
    error = log.samples[0].error
    assert error.startswith("DockerSandboxError: ")
    assert "docker run failed: " in error or "needs the docker command" in error


def test_docker_sandbox_one_container_per_sample_without_network(log_dir: Path) -> None:
    problem = _docker_problem()
    if problem:
        pytest.skip(problem)

    async def check(box: Any) -> Any:
        await box.write_file("in/data.txt", "container file")
        network = await box.exec(["python3", "-c", "import socket; socket.create_connection(('1.1.1.1', 53), 3)"])
        try:
            await box.exec(["sleep", "30"], timeout=1)
            timed_out = False
        except TimeoutError:
            timed_out = True
        return {"read": await box.read_file("in/data.txt"), "pwd": (await box.exec(["pwd"])).stdout.strip(),
                "host": (await box.exec(["hostname"])).stdout.strip(), "network": network.success, "timed_out": timed_out}

    log = run(exec_solver(check), log_dir, samples=2, sandbox="docker")
    results = seen(log)
    assert [r["read"] for r in results] == ["container file"] * 2
    assert results[0]["pwd"] == "/sandbox" and results[0]["host"] != results[1]["host"]
    assert [r["network"] for r in results] == [False, False] and all(r["timed_out"] for r in results)
    left = subprocess.run(["docker", "ps", "-aq", "--filter", "name=evalkit-"], capture_output=True, text=True)
    assert left.stdout.strip() == ""
