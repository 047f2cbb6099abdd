"""The model side of the agent layer: messages, tool calls, replies and the `ChatModel` protocol.

A model is anything with ``complete`` (one reply) and ``stream`` (the same
reply in chunks). The protocol is structural: `OpenAIChatModel`,
`OfflineModel` and a test's own class all fit it without inheriting from
anything. Messages follow the chat-completions roles (system, user,
assistant, tool) because that is what every hosted model speaks; the
runner turns stored events into them (``agent.history``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant", "tool"]

__all__ = ["ChatModel", "Message", "ModelReply", "Role", "StreamChunk", "ToolCall"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the model asks for. ``arguments`` is the model's JSON text, unparsed:
    the tool executor decides what to make of it (models invent arguments)."""

    id: str
    name: str
    arguments: str = "{}"


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message. ``tool_calls`` on assistant messages; ``tool_call_id`` on tool results."""

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ModelReply:
    """What one model call returns: text, tool calls, or both.

    ``state_delta`` lets a model that keeps facts in the session state (the
    offline model) ask the runner to store them with the reply event; hosted
    models leave it empty.
    """

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    state_delta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """A piece of a streamed reply: some text as it arrives, or (last) the whole reply's
    tool calls and state delta once they are complete."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    state_delta: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class ChatModel(Protocol):
    """An async chat model: messages in, a reply (or a stream of chunks) out.

    ``name`` is shown to users and stored with each reply; ``supports_tools``
    says whether passing ``tools`` (OpenAI function schemas) means anything.
    ``state`` is the session's merged state, for models that answer from it;
    hosted models ignore it. Failures raise `sessionstore.errors.ModelError`.
    """

    name: str
    supports_tools: bool

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> ModelReply: ...

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[StreamChunk]: ...
