"""`bash()` and `python()`: tools that run the model's code in the sample's sandbox (Inspect's names)."""

from __future__ import annotations

from evalkit.sandbox import ExecResult, OutputLimitExceededError, sandbox
from evalkit.tool.definition import Tool, ToolError, tool


@tool(name="bash")
def bash(timeout: int | None = None) -> Tool:
    """A tool that runs a bash command in the sample's sandbox, stopped after `timeout` seconds."""

    async def execute(cmd: str) -> str:
        """Use this function to execute bash commands.

        Args:
            cmd: The bash command to execute.
        """
        return _output(await _run(["bash", "-c", cmd], None, timeout))

    return execute


@tool(name="python")
def python(timeout: int | None = None) -> Tool:
    """A tool that runs a Python script in the sample's sandbox, stopped after `timeout` seconds."""

    async def execute(code: str) -> str:
        """Use the python function to execute Python code.

        Each call runs a new, independent script: no state is kept between calls, and only
        what the script prints (with print()) is returned.

        Args:
            code: The python code to execute.
        """
        return _output(await _run(["python3"], code, timeout))

    return execute


async def _run(cmd: list[str], input: str | None, timeout: int | None) -> ExecResult:
    try:
        return await sandbox().exec(cmd, input=input, timeout=timeout)
    except OutputLimitExceededError as ex:
        raise ToolError(f"the output exceeded {ex.limit_str}, so the command was stopped; it began with:\n"
                        f"{(ex.truncated_output or '')[:4096]}") from None


def _output(result: ExecResult) -> str:
    """stderr (when there is any) then stdout, as Inspect returns them."""
    return f"{result.stderr}\n{result.stdout}" if result.stderr else result.stdout

