"""Stored events to model messages and back: the one place the runner's event shapes are defined.

The runner stores each turn as ordinary events, readable by any other tool:

- the user's message: ``author="user"``, ``content={"text": ...}``;
- the model's reply: ``author="assistant"``, ``content={"text": ..., "tool_calls": [...]}``
  (``tool_calls`` only when the model asked for some), ``metadata={"model": name}``;
- a tool's result: ``author="tool"``, ``content={"tool_call_id": ..., "name": ..., "result": ...}``.

Events written by other code are still read: any author other than
``user``/``tool`` counts as the assistant, and content that is not a dict
with ``text`` is shown as its JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import orjson

from ..records import Event
from .models import Message, ToolCall

USER: Final = "user"
ASSISTANT: Final = "assistant"
TOOL: Final = "tool"

__all__ = [
    "ASSISTANT",
    "TOOL",
    "USER",
    "event_text",
    "events_to_messages",
    "reply_event",
    "summary_message",
    "tool_result_event",
    "user_event",
]


def user_event(text: str, invocation_id: str) -> Event:
    return Event(author=USER, content={"text": text}, invocation_id=invocation_id)


def reply_event(text: str, tool_calls: Sequence[ToolCall], model: str, invocation_id: str,
                state_delta: dict[str, Any] | None = None) -> Event:
    content: dict[str, Any] = {"text": text}
    if tool_calls:
        content["tool_calls"] = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in tool_calls]
    return Event(author=ASSISTANT, content=content, invocation_id=invocation_id,
                 metadata={"model": model}, state_delta=dict(state_delta or {}))


def tool_result_event(call: ToolCall, result: Any, invocation_id: str) -> Event:
    return Event(author=TOOL, content={"tool_call_id": call.id, "name": call.name, "result": result},
                 invocation_id=invocation_id)


def event_text(event: Event) -> str:
    """The text a person would read for this event (its ``text``, else its content as JSON)."""
    content = event.content
    if isinstance(content, str):
        return content
    if isinstance(content, dict) and isinstance(content.get("text"), str):
        return str(content["text"])
    if content is None:
        return ""
    return orjson.dumps(content).decode()


def summary_message(summary: str) -> Message:
    return Message("system", f"Summary of the earlier part of this conversation:\n{summary}")


def events_to_messages(events: Iterable[Event]) -> list[Message]:
    """The model's view of `events` (oldest first), made consistent for chat-completions APIs.

    A window of history can start in the middle of a tool exchange, and a
    crashed turn can leave a call without its result; hosted models reject
    both, so tool results whose call is not in view are dropped, and calls
    without all their results keep only their text.
    """
    raw: list[Message] = []
    for event in events:
        if event.partial:
            continue
        content = event.content
        if event.author == TOOL and isinstance(content, dict) and isinstance(content.get("tool_call_id"), str):
            raw.append(Message(TOOL, orjson.dumps(content.get("result")).decode(),
                               tool_call_id=content["tool_call_id"], name=str(content.get("name") or "")))
        elif event.author == USER:
            raw.append(Message(USER, event_text(event)))
        else:
            raw.append(Message(ASSISTANT, event_text(event), tool_calls=_tool_calls(content)))
    return _consistent(raw)


def _tool_calls(content: object) -> tuple[ToolCall, ...]:
    if not isinstance(content, dict) or not isinstance(content.get("tool_calls"), list):
        return ()
    calls = []
    for item in content["tool_calls"]:
        if isinstance(item, dict) and isinstance(item.get("id"), str) and isinstance(item.get("name"), str):
            args = item.get("arguments")
            calls.append(ToolCall(item["id"], item["name"], args if isinstance(args, str) else "{}"))
    return tuple(calls)


def _consistent(messages: list[Message]) -> list[Message]:
    answered = {m.tool_call_id for m in messages if m.role == TOOL}
    out: list[Message] = []
    open_calls: set[str] = set()
    for m in messages:
        if m.role == ASSISTANT and m.tool_calls:
            if all(c.id in answered for c in m.tool_calls):
                open_calls = {c.id for c in m.tool_calls}
                out.append(m)
            else:
                open_calls = set()
                out.append(Message(ASSISTANT, m.content))
        elif m.role == TOOL:
            if m.tool_call_id in open_calls:
                out.append(m)
        else:
            open_calls = set()
            out.append(m)
    return [m for m in out if m.role != ASSISTANT or m.content or m.tool_calls]
