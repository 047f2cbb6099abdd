"""The service contract's batch, history, app-listing and metadata methods (docs/history.md).

A base class of SessionService, split out of service.py to keep each module
small. As there, every public method checks its arguments once, here, then
calls the backend's ``_``-method; bad input raises a typed error and changes
nothing.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .arguments import add_in_seq_order, checked_count, checked_key, checked_limit
from .cursor import Cursor
from .errors import InvalidArgumentError, InvalidEventError, InvalidKeyError
from .events import PreparedEvent, copy_delta, copy_event, prepare_event
from .keys import Key, check_identifier
from .metadata import UNSET, Unset, check_metadata_delta, check_title
from .options import ServiceOptions
from .records import Event, EventPage, Session, SessionPage
from .state import apply_delta, check_delta

MAX_BATCH_EVENTS = 1000
"""Most events one append_events call takes."""


class HistoryAndMetadata(abc.ABC):
    """append_events, delete_event, list_events, clear/trim_session_events,
    list_app_sessions and set_session_metadata."""

    options: ServiceOptions

    @abc.abstractmethod
    def _now(self) -> datetime: ...

    # ------------------------------------------------------------------ batch append

    async def append_events(
        self,
        session: Session,
        events: Sequence[Event],
        *,
        expected_version: int | None = None,
    ) -> list[Event]:
        """Store several events in one transaction: all of them or none.

        Each event is treated as append_event treats it (partial events are
        skipped and returned with seq None; an id already stored in the
        session is not stored again, the stored event is returned; state
        deltas apply in list order), and every event is checked before
        anything is written. Returns the stored events in the order given,
        with consecutive seqs. The batch is one write: the session's version
        goes up by one. With ``expected_version``, raises ConflictError if
        the version moved on, unless every event is already stored (a retried
        batch, which returns the stored events). ``session`` gets the events,
        deltas and new version once the batch has committed.
        """
        if not isinstance(session, Session):
            raise InvalidKeyError(f"append_events needs a Session, got {type(session).__name__}")
        key = Key(session.app_name, session.user_id, session.id).require_session_id()
        if expected_version is not None:
            checked_count(expected_version, "expected_version")
        if isinstance(events, (str, bytes)) or not isinstance(events, Sequence):
            raise InvalidArgumentError(f"events must be a list of Event, got {type(events).__name__}")
        if len(events) > MAX_BATCH_EVENTS:
            raise InvalidArgumentError(f"append_events takes at most {MAX_BATCH_EVENTS} events, got {len(events)}")
        prepared = [prepare_event(event, self.options.max_event_bytes) for event in events]
        to_store = [p for p in prepared if not p.event.partial]
        seen: set[str] = set()
        for p in to_store:
            if p.event.id in seen:
                raise InvalidEventError(f"event id {p.event.id!r} appears twice in one batch")
            seen.add(p.event.id)
        if not to_store:
            return [copy_event(p.event) for p in prepared]
        caller_deltas = {
            event.id: copy_delta(check_delta(event.state_delta)) for event in events if not event.partial
        }
        now = self._now()
        stored, version, duplicates = await self._append_events(key, to_store, expected_version, now)
        fresh = False
        for event, duplicate in zip(stored, duplicates, strict=True):
            if not duplicate or all(e.id != event.id for e in session.events):
                add_in_seq_order(session.events, copy_event(event))
                apply_delta(session.state, caller_deltas[event.id])
                fresh = fresh or not duplicate
        if fresh:
            session.version = max(session.version, version)
            session.updated_at = max(session.updated_at, now)
        by_id = {event.id: event for event in stored}
        return [by_id[p.event.id] if not p.event.partial else copy_event(p.event) for p in prepared]

    # ------------------------------------------------------------------ history

    async def delete_event(self, key: Key, event_id: str) -> bool:
        """Remove one stored event from an active session's history; True if it was there.

        The session's state, version, updated_at and seq counter stay as they
        are (the event's state delta is not undone; seqs are never reused).
        A missing session or event gives False.
        """
        key = checked_key(key).require_session_id()
        check_identifier(event_id, "event_id", error=InvalidArgumentError)
        return await self._delete_event(key, event_id, self._now())

    async def list_events(
        self,
        key: Key,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int = 100,
    ) -> EventPage:
        """One page of a session's stored history, events in ascending seq order.

        Going forward: ``after_seq=n`` gives the oldest ``limit`` events with
        seq > n (``after_seq=0`` starts at the beginning). Going back:
        ``before_seq=n`` gives the newest ``limit`` events with seq < n; with
        neither, the newest ``limit`` events. Both: the events between them,
        going forward. ``page.next_cursor`` is the seq to pass back in the
        same argument for the next page (None at the end). Raises
        SessionNotFoundError if the session is not active.
        """
        key = checked_key(key).require_session_id()
        if after_seq is not None:
            checked_count(after_seq, "after_seq")
        if before_seq is not None:
            checked_count(before_seq, "before_seq")
        checked_limit(limit)
        forward = after_seq is not None
        found = await self._list_events(key, after_seq, before_seq, limit + 1, forward, self._now())
        more = len(found) > limit
        page = found[:limit]
        cursor = page[-1].seq if more and page else None
        if not forward:
            page.reverse()
        return EventPage(page, cursor)

    async def clear_session_events(self, key: Key) -> int:
        """Drop an active session's whole history, keeping the session and its state; returns
        how many events were removed. Raises SessionNotFoundError if the session is not active."""
        key = checked_key(key).require_session_id()
        return await self._trim_events(key, 0, self._now())

    async def trim_session_events(self, key: Key, keep_last: int) -> int:
        """Keep only the newest ``keep_last`` events of an active session; returns how many were
        removed. Raises SessionNotFoundError if the session is not active."""
        key = checked_key(key).require_session_id()
        checked_count(keep_last, "keep_last")
        return await self._trim_events(key, keep_last, self._now())

    # ------------------------------------------------------------------ listing and metadata

    async def list_app_sessions(self, app_name: str, *, limit: int = 50, cursor: str | None = None) -> SessionPage:
        """One page of an app's sessions across all its users, most recently updated first.

        The order and cursor rules of list_sessions (ties on updated_at go by
        session id, then user id, descending); each Session names its user.
        Cursors of list_sessions are not accepted here, nor the reverse.
        """
        check_identifier(app_name, "app_name")
        checked_limit(limit)
        after = Cursor.decode(cursor, across_users=True) if cursor is not None else None
        sessions = await self._list_app_sessions(app_name, limit + 1, after, self._now())
        if len(sessions) <= limit:
            return SessionPage(sessions, None)
        sessions = sessions[:limit]
        last = sessions[-1]
        return SessionPage(sessions, Cursor(last.updated_at, last.id, last.user_id).encode())

    async def set_session_metadata(
        self,
        key: Key,
        *,
        title: str | None | Unset = UNSET,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Change an active session's title and/or metadata (docs/history.md).

        ``title``: a str sets it, None clears it, not given keeps it.
        ``metadata``: a delta (top-level keys replace, DELETE removes, others
        stay). Neither touches state, version, updated_at or expiry. Raises
        SessionNotFoundError if the session is not active.
        """
        key = checked_key(key).require_session_id()
        title = check_title(title)
        delta = check_metadata_delta(metadata, self.options.max_event_bytes)
        await self._set_session_metadata(key, title, delta, self._now())

    # ------------------------------------------------------------------ backend work

    @abc.abstractmethod
    async def _append_events(
        self, key: Key, prepared: list[PreparedEvent], expected_version: int | None, now: datetime
    ) -> tuple[list[Event], int, list[bool]]:
        """Store the events atomically; return (each stored event in the given order, the
        session version after, which of them were already stored)."""

    @abc.abstractmethod
    async def _delete_event(self, key: Key, event_id: str, now: datetime) -> bool: ...

    @abc.abstractmethod
    async def _list_events(
        self, key: Key, after_seq: int | None, before_seq: int | None, limit: int, forward: bool, now: datetime
    ) -> list[Event]:
        """Up to `limit` events with after_seq < seq < before_seq (a None bound: open), by seq
        ascending if `forward` else descending. SessionNotFoundError if the session is not active."""

    @abc.abstractmethod
    async def _trim_events(self, key: Key, keep_last: int, now: datetime) -> int:
        """Remove all but the newest `keep_last` events; return how many went.
        SessionNotFoundError if the session is not active."""

    @abc.abstractmethod
    async def _list_app_sessions(
        self, app_name: str, limit: int, after: Cursor | None, now: datetime
    ) -> list[Session]: ...

    @abc.abstractmethod
    async def _set_session_metadata(
        self, key: Key, title: str | None | Unset, delta: dict[str, Any], now: datetime
    ) -> None:
        """Apply the title (UNSET: keep) and the metadata delta. SessionNotFoundError if not active."""
