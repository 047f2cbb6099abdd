"""A scripted ChatModel for runner tests: it records every input and answers from a function.

Not a stand-in for a database or an HTTP client: the runner's contract is
with the ChatModel protocol, and this is one more model that fits it (the
real HTTP path is tests/agent/test_openai_model.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from sessionstore.agent import Message, ModelReply, StreamChunk


def last_user(messages: Sequence[Message]) -> str:
    return next((m.content for m in reversed(messages) if m.role == "user"), "")


class ScriptedModel:
    name = "scripted"

    def __init__(self, answer: Callable[[Sequence[Message]], ModelReply | str] | None = None, *,
                 delay: float = 0.0, supports_tools: bool = True) -> None:
        self.seen: list[list[Message]] = []
        self._answer = answer or (lambda messages: f"reply to: {last_user(messages)}")
        self.delay = delay
        self.supports_tools = supports_tools
        self.tools_seen: list[Any] = []

    def _reply(self, messages: Sequence[Message], tools: Any) -> ModelReply:
        self.seen.append(list(messages))
        self.tools_seen.append(tools)
        answer = self._answer(messages)
        return ModelReply(answer) if isinstance(answer, str) else answer

    async def complete(self, messages: Sequence[Message], *, tools: Sequence[Mapping[str, Any]] | None = None,
                       state: Mapping[str, Any] | None = None) -> ModelReply:
        reply = self._reply(messages, tools)
        if self.delay:
            await asyncio.sleep(self.delay)
        return reply

    async def stream(self, messages: Sequence[Message], *, tools: Sequence[Mapping[str, Any]] | None = None,
                     state: Mapping[str, Any] | None = None) -> AsyncIterator[StreamChunk]:
        reply = self._reply(messages, tools)
        words = reply.text.split(" ")
        for i, word in enumerate(words):
            if self.delay:
                await asyncio.sleep(self.delay)
            yield StreamChunk(text=word if i == len(words) - 1 else word + " ")
        yield StreamChunk(tool_calls=reply.tool_calls, state_delta=reply.state_delta)
