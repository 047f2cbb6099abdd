"""ADK ``Event`` <-> sessionstore ``Event``: lossless, by storing ADK's own JSON form.

An ADK event is stored as the JSON ADK's own ``DatabaseSessionService``
stores (``event.model_dump(mode="json", exclude_none=True)``: content parts,
function calls and responses, actions, bytes as base64, grounding and usage
metadata, custom metadata, the exact float timestamp) in the event's
``content``, and read back with ``Event.model_validate``, so every field
ADK has (and any it adds later) round-trips. The state delta is kept once,
in the sessionstore event's ``state_delta`` (where the store applies it),
and put back into ``actions.state_delta`` on read. The sessionstore columns
(author, invocation id, branch, timestamp) are filled too, so other tools
can read the conversation.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from google.adk.events.event import Event as AdkEvent
from google.adk.events.event_actions import EventActions
from google.adk.sessions.state import State
from google.genai import types
from pydantic_core import to_jsonable_python

from ..records import Event, new_id

MARKER = "adk_event"
"""The metadata key that marks an event stored from ADK (value: the format version)."""
FORMAT = 1
UNKNOWN_AUTHOR = "unknown"
"""Stored as the author column of an ADK event whose author is empty (ADK's default);
the ADK event read back still has its empty author."""


def json_safe(delta: dict[str, Any]) -> dict[str, Any]:
    """A state delta as JSON, as ADK's database service coerces it (rich values serialised,
    anything else by its str())."""
    result = to_jsonable_python(delta, fallback=str)
    assert isinstance(result, dict)
    return result


def persisted_delta(event: AdkEvent) -> dict[str, Any]:
    """The event's state delta without ``temp:`` keys, as JSON: what is stored and applied."""
    delta = event.actions.state_delta if event.actions else None
    if not delta:
        return {}
    return json_safe({k: v for k, v in delta.items() if not k.startswith(State.TEMP_PREFIX)})


def epoch_to_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def floor_to_microsecond(ts: float) -> datetime:
    """The latest stored (microsecond) timestamp not after `ts`: a database filter that
    keeps every event at or after `ts`, and a few just before it to drop client-side."""
    seconds = math.floor(ts)
    micros = math.floor((ts - seconds) * 1_000_000)
    return datetime.fromtimestamp(seconds, tz=timezone.utc).replace(microsecond=min(micros, 999_999))


def to_store_event(event: AdkEvent, delta: dict[str, Any]) -> Event:
    """The sessionstore event holding `event` (whose id is set), with `delta` as its state delta."""
    data = event.model_dump(mode="json", exclude_none=True)
    actions = data.get("actions")
    if isinstance(actions, dict):
        actions.pop("state_delta", None)
    return Event(
        author=event.author or UNKNOWN_AUTHOR,
        content=data,
        id=event.id,
        invocation_id=event.invocation_id or None,
        timestamp=epoch_to_datetime(event.timestamp),
        state_delta=delta,
        branch=event.branch,
        metadata={MARKER: FORMAT},
    )


def to_adk_event(stored: Event) -> AdkEvent:
    """The ADK event a stored event holds (one written by other code gets a plain text event)."""
    delta = {k: v for k, v in stored.state_delta.items()}
    if stored.metadata.get(MARKER) == FORMAT and isinstance(stored.content, dict):
        data = dict(stored.content)
        actions = dict(data.get("actions") or {})
        actions["state_delta"] = delta
        data["actions"] = actions
        return AdkEvent.model_validate(data)
    content = stored.content
    text = content if isinstance(content, str) else None
    return AdkEvent(
        id=stored.id,
        author="" if stored.author == UNKNOWN_AUTHOR else stored.author,
        invocation_id=stored.invocation_id or "",
        branch=stored.branch,
        timestamp=stored.timestamp.timestamp(),
        content=None if content is None else types.Content(
            role="user" if stored.author == "user" else "model",
            parts=[types.Part(text=text if text is not None else _json_text(content))],
        ),
        actions=EventActions(state_delta=delta),
        custom_metadata={"sessionstore_seq": stored.seq} if stored.seq is not None else None,
    )


def ensure_id(event: AdkEvent) -> None:
    """Give an event without an id one (ADK's Runner always sets one; hand-made events may not)."""
    if not event.id:
        event.id = new_id()


def _json_text(value: Any) -> str:
    from ..jsonvalue import dumps

    return dumps(value).decode()
