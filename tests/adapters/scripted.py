"""Scripted models for the frameworks' agent loops: each replies from a fixed script, no network.

They are models (the frameworks' own model interfaces, subclassed), not
stand-ins for a database: the sessions underneath are real.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any


def adk_model(replies: list[Any]) -> Any:
    """An ADK ``BaseLlm`` answering each call with the next reply: a str (text) or a
    ``types.Part`` (a function call, say)."""
    from google.adk.models.base_llm import BaseLlm
    from google.adk.models.llm_response import LlmResponse
    from google.genai import types

    script = list(replies)

    class ScriptedLlm(BaseLlm):
        async def generate_content_async(self, llm_request: Any, stream: bool = False) -> AsyncGenerator[LlmResponse, None]:
            reply = script.pop(0) if script else "(script exhausted)"
            part = types.Part(text=reply) if isinstance(reply, str) else reply
            yield LlmResponse(
                content=types.Content(role="model", parts=[part]),
                usage_metadata=types.GenerateContentResponseUsageMetadata(prompt_token_count=3, candidates_token_count=2),
            )

    return ScriptedLlm(model="scripted")


def run_process(*args: str) -> str:
    """Run tests.adapters.workers in a new Python process; return its stdout (fail on an error)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root / "src"), str(root)]))
    done = subprocess.run(
        [sys.executable, "-m", "tests.adapters.workers", *args],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


async def run_processes(*commands: list[str]) -> list[str]:
    """Run several worker processes at once (from an async test, without blocking its loop)."""
    import asyncio

    return list(await asyncio.gather(*(asyncio.to_thread(run_process, *c) for c in commands)))


def agents_model(replies: list[Any]) -> Any:
    """An Agents SDK ``Model`` answering each call with the next reply: a str (a message) or
    a (tool name, JSON arguments) pair (a function call)."""
    from agents.items import ModelResponse
    from agents.models.interface import Model
    from agents.usage import Usage
    from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

    script = list(replies)

    class ScriptedModel(Model):
        calls = 0

        async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
            ScriptedModel.calls += 1
            reply = script.pop(0) if script else "(script exhausted)"
            n = ScriptedModel.calls
            if isinstance(reply, str):
                item: Any = ResponseOutputMessage(
                    id=f"msg_{n}", type="message", role="assistant", status="completed",
                    content=[ResponseOutputText(type="output_text", text=reply, annotations=[])],
                )
            else:
                item = ResponseFunctionToolCall(
                    id=f"fc_{n}", call_id=f"call_{n}", type="function_call", name=reply[0], arguments=reply[1],
                )
            return ModelResponse(output=[item], usage=Usage(requests=1, input_tokens=3, output_tokens=2), response_id=None)

        def stream_response(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError("the tests run the non-streamed loop")

    return ScriptedModel()
