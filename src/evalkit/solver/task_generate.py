"""The `generate` solvers receive: calls the model and runs the tool loop."""

from __future__ import annotations

from typing import Any, Literal

from evalkit.model.cache import CachePolicy, cache_policy
from evalkit.model.model import Model
from evalkit.model.types import GenerateConfig, ModelUsage
from evalkit.sample_limits import check_message_limit, check_token_limit
from evalkit.solver.state import TaskState
from evalkit.tool.execute import execute_tools
from evalkit.tool.definition import ToolDef
from evalkit.tool.types import ToolChoice

ToolCalls = Literal["loop", "single", "none"]


class TaskGenerate:
    """`await generate(state, tool_calls="loop", **config)` for one sample.

    Calls the model on `state.messages` with `state.tools`, appends its reply and sets
    `state.output`. With tool_calls="loop" it runs the tool calls the model asks for, appends
    their results and calls the model again until it stops calling tools; "single" runs one
    round of calls; "none" leaves them unrun. A forced `tool_choice` applies to the first call
    only, so the loop can end. `cache` (True, an expiry such as "1D", or a CachePolicy) serves
    each call from the output cache where it can; left out, the eval's `cache` applies.
    Keyword arguments are GenerateConfig fields for these calls. Each call first checks the
    sample's message and token limits.
    """

    def __init__(self, model: Model, config: GenerateConfig, usage: ModelUsage, cache: CachePolicy | None = None) -> None:
        self.model = model
        self.config = config
        self.usage = usage
        self.cache = cache

    async def __call__(self, state: TaskState, tool_calls: ToolCalls = "loop", cache: bool | str | CachePolicy | None = None,
                       **overrides: Any) -> TaskState:
        config = self.config.merge(GenerateConfig(**overrides)) if overrides else self.config
        policy = self.cache if cache is None else cache_policy(cache)
        tools = [ToolDef.of(t) for t in state.tools]
        infos = [t.info for t in tools]
        choice: ToolChoice | None = state.tool_choice
        while True:
            check_message_limit(len(state.messages), state.message_limit)
            check_token_limit(state.token_usage, state.token_limit)
            output = await self.model.generate(state.messages, infos, choice, config, cache=policy or False)
            self.usage.add(output.usage)
            state.token_usage += output.usage.total_tokens if output.usage else 0
            state.output = output
            if not output.choices:
                return state
            message = output.message
            state.messages.append(message)
            if tool_calls == "none" or not message.tool_calls:
                return state
            state.messages.extend(await execute_tools(message.tool_calls, tools, config.max_tool_output))
            if tool_calls == "single":
                return state
            choice = "auto" if choice is not None and choice != "none" else choice
