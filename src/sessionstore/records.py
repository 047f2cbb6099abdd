"""The records the service reads and writes: Event, Session, SessionPage, EventPage, CleanupResult."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .keys import Key


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
    """A conversation: its merged state view, its (newest) events and its version.

    `title` and `metadata` describe the session for people and tools (a chat's
    session list, a link to an earlier session); set them with
    ``set_session_metadata``. They are not state: events never change them.
    """

    id: str
    app_name: str
    user_id: str
    state: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    version: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        from .keys import Key  # lazily, to keep this module dependency-free

        return Key(self.app_name, self.user_id, self.id)


@dataclass(slots=True)
class SessionPage:
    """One page of list_sessions: sessions without events, newest first."""

    sessions: list[Session]
    next_cursor: str | None


@dataclass(slots=True)
class EventPage:
    """One page of list_events: stored events, always in ascending seq order.

    ``next_cursor`` is the seq to pass back, in the same argument that asked
    for this page (``after_seq`` going forward, ``before_seq`` going back), to
    get the next page in that direction; None when there is nothing further.
    """

    events: list[Event]
    next_cursor: int | None

@dataclass(slots=True)
class CleanupResult:
    """Rows one cleanup round removed (or, with dry_run, would remove).

    ``skipped`` is True when another process held the cleanup lock, so this
    round did nothing.
    """

    sessions_expired: int = 0
    events_removed: int = 0
    events_trimmed: int = 0
    app_state_expired: int = 0
    user_state_expired: int = 0
    tombstones_purged: int = 0
    dry_run: bool = False
    skipped: bool = False
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return (
            self.sessions_expired
            + self.events_removed
            + self.events_trimmed
            + self.app_state_expired
            + self.user_state_expired
            + self.tombstones_purged
        )

    def as_dict(self) -> dict[str, object]:
        return asdict(self) | {"total": self.total}

    def log_line(self) -> str:
        """A one-line key=value summary for logs."""
        return " ".join(f"{k}={v}" for k, v in self.as_dict().items())


CLEANUP_STEPS = (
    "sessions expired",
    "events removed",
    "tombstones purged",
    "app state expired",
    "user state expired",
    "events trimmed",
)
"""The step names a CleanupProgress callback receives; each counts toward CleanupResult.total."""

CleanupProgress = Callable[[str, int], None]
"""Called during a cleanup round with (step name, rows that batch removed)."""

