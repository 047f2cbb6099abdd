"""The records the service reads and writes: Event, Session, SessionPage."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(slots=True)
class Event:
    """One turn of a conversation: a message, a tool call, a result.

    `seq` is assigned by the store (1, 2, 3 ... per session) when the event is
    stored; partial events are never stored and keep seq None.
    """

    author: str
    content: Any = None
    id: str = field(default_factory=new_id)
    invocation_id: str | None = None
    timestamp: datetime = field(default_factory=utcnow)
    state_delta: dict[str, Any] = field(default_factory=dict)
    partial: bool = False
    branch: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    seq: int | None = None


@dataclass(slots=True)
class Session:
    """A conversation: its merged state view, its (newest) events and its version."""

    id: str
    app_name: str
    user_id: str
    state: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    version: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    @property
    def key(self):  # -> Key; imported lazily to keep this module dependency-free
        from .keys import Key

        return Key(self.app_name, self.user_id, self.id)


@dataclass(slots=True)
class SessionPage:
    """One page of list_sessions: sessions without events, newest first."""

    sessions: list[Session]
    next_cursor: str | None
