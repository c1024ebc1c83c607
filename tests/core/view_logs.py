"""Real logs for the viewer, log CLI and analysis tests, made with `eval()` and mockllm:
two runs of one task whose scores differ on one sample, and a run with tool calls, reasoning,
a failed tool call and an image."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from evalkit import Sample, Task, eval
from evalkit.model.content import ContentImage, ContentText
from evalkit.model.types import ChatMessageUser
from evalkit.scorer import match
from evalkit.solver import generate, use_tools
from tests.tools import add

PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQ"
         "GAhKmMIQAAAABJRU5ErkJggg==")
LONG = "a long question " * 40


def quiz() -> Task:
    """Six samples: 1-4 carry their answer (mockllm replies with it), 5 does not, 6 fails."""
    samples = [Sample(input=f"{LONG if i == 1 else ''}question {i} ANSWER: {i}", target=str(i), id=i,
                      metadata={"level": "easy" if i % 2 else "hard"}) for i in range(1, 5)]
    samples.append(Sample(input="question 5 without an answer", target="5", id=5, metadata={"level": "easy"}))
    samples.append(Sample(input="question 6 boom", target="6", id=6, metadata={"level": "hard"}))
    return Task(dataset=samples, scorer=match(), name="quiz")




TURNS = [
    {"content": "Let me add.", "reasoning": "I should call add.",
     "tool_calls": [{"function": "add", "arguments": {"x": 1, "y": 2}}, {"function": "nope", "arguments": "{bad"}]},
    {"content": "The answer is 3"},
]


def tools_task() -> Task:
    samples = [Sample(input=[ChatMessageUser(content=[ContentText(f"What is 1+2? ({i})"), ContentImage(PIXEL)])],
                      target="3", id=f"t{i}") for i in range(3)]
    return Task(dataset=samples, solver=[use_tools(add()), generate()], scorer=match(), name="tools")


def make_runs(log_dir: Path) -> dict[str, Path]:
    """Three logs in `log_dir`: "a" and "b" (task quiz, sample 5 flips I -> C) and "tools"."""
    common = {"log_dir": log_dir, "display": "none", "fail_on_error": False, "max_samples": 1}
    [a] = eval(quiz(), model="mockllm/first", model_args={"error_on": "boom"}, **common)
    [b] = eval(quiz(), model="mockllm/second", model_args={"error_on": "boom", "default_output": "5"}, **common)
    [tools] = eval(tools_task(), model="mockllm/tools", model_args={"outputs": TURNS}, **common)
    return {"a": a.location, "b": b.location, "tools": tools.location}


class ViewServer:
    """`evalkit view` running in a subprocess on a free port; `url` is the address it printed."""

    def __init__(self, log_dir: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "evalkit", "view", "--log-dir", str(log_dir), "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "EVALKIT_VIEW_TOKEN": ""})
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        found = re.search(r"(http://\S+?/)(\?token=(\S+))?(\s|$)", line)
        if not found:
            self.process.kill()
            raise AssertionError(f"evalkit view printed {line!r}; stderr: {self.process.stderr.read() if self.process.stderr else ''}")
        self.url, self.token = found.group(1), found.group(3)
        self.base = self.url.replace("0.0.0.0", "127.0.0.1").rstrip("/")

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.base + path, timeout=30, **kwargs)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
