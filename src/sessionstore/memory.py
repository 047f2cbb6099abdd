"""InMemorySessionService: the whole contract, in process memory, for tests and development.

Every operation runs without awaiting in the middle, so on one event loop it
is atomic: many concurrent tasks appending to one session all land, in order.
Stored data is copied in and out; callers never share dicts with the store.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from datetime import datetime
from time import perf_counter
from typing import Any

from . import jsonvalue
from .cursor import Cursor
from .errors import ConflictError, SessionExistsError, SessionNotFoundError
from .events import PreparedEvent, copy_delta, copy_event
from .keys import Key, UserKey
from .metadata import Unset, apply_metadata
from .options import ServiceOptions, expiry
from .records import CleanupProgress, CleanupResult, Event, Session
from .service import SessionService
from .state import DELETE, ScopedDelta, apply_delta, merged_view

log = logging.getLogger("sessionstore.cleanup")


@dataclass(slots=True)
class _Cell:
    """One app- or user-state key."""

    value: Any
    expires_at: datetime | None


@dataclass(slots=True)
class _StoredSession:
    incarnation: int
    state: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    version: int = 0
    last_seq: int = 0
    events: list[Event] = field(default_factory=list)
    event_ids: dict[str, Event] = field(default_factory=dict)
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def _alive(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is None or expires_at > now


class InMemorySessionService(SessionService):
    """The contract in memory. Data lives as long as the object does."""

    def __init__(self, options: ServiceOptions | None = None) -> None:
        super().__init__(options)
        self._sessions: dict[Key, _StoredSession] = {}
        self._tombstones: list[tuple[datetime, _StoredSession]] = []
        # Soft-deleted app/user state keys: only when they were deleted matters
        # (they are invisible), kept so that purges count as on the SQL backend.
        self._state_tombstones: list[datetime] = []
        self._app_state: dict[str, dict[str, _Cell]] = {}
        self._user_state: dict[UserKey, dict[str, _Cell]] = {}
        self._incarnations = itertools.count(1)

    # ------------------------------------------------------------------ sessions

    async def _create_session(self, key: Key, scoped: ScopedDelta, now: datetime) -> Session:
        if self._active(key, now) is not None:
            raise SessionExistsError(f"session {key.session_id!r} already exists")
        self._retire(key, now)
        stored = _StoredSession(
            incarnation=next(self._incarnations),
            state=jsonvalue.copy_json(scoped.session),
            created_at=now,
            updated_at=now,
            expires_at=expiry(now, self.options.session_ttl),
        )
        self._sessions[key] = stored
        self._apply_shared(scoped, key.app_name, key.user_id, now)
        return self._view(key, stored, [], now)

    async def _get_session(
        self, key: Key, limit: int, after: datetime | None, now: datetime
    ) -> Session | None:
        stored = self._active(key, now)
        if stored is None:
            return None
        if self.options.refresh_on_read:
            stored.expires_at = expiry(now, self.options.session_ttl)
        events = stored.events
        if after is not None:
            events = [e for e in events if e.timestamp >= after]
        events = events[-limit:] if limit else []
        return self._view(key, stored, events, now)

    async def _list_sessions(
        self, user_key: UserKey, limit: int, after: Cursor | None, now: datetime
    ) -> list[Session]:
        rows = [
            (stored.updated_at, key.session_id, key, stored)
            for key, stored in self._sessions.items()
            if key.app_name == user_key.app_name
            and key.user_id == user_key.user_id
            and _alive(stored.expires_at, now)
            and (after is None or (stored.updated_at, key.session_id) < after.sort_key())
        ]
        rows.sort(key=lambda row: (row[0], row[1]), reverse=True)
        return [self._view(key, stored, [], now) for _, _, key, stored in rows[:limit]]

    async def _delete_session(self, key: Key, now: datetime) -> None:
        self._retire(key, now)

    async def _list_app_sessions(self, app_name: str, limit: int, after: Cursor | None, now: datetime) -> list[Session]:
        rows = [
            ((stored.updated_at, key.session_id, key.user_id), key, stored)
            for key, stored in self._sessions.items()
            if key.app_name == app_name
            and _alive(stored.expires_at, now)
            and (after is None or (stored.updated_at, key.session_id, key.user_id) < after.app_sort_key())
        ]
        rows.sort(key=lambda row: row[0], reverse=True)
        return [self._view(key, stored, [], now) for _, key, stored in rows[:limit]]

    async def _set_session_metadata(
        self, key: Key, title: str | None | Unset, delta: dict[str, Any], now: datetime
    ) -> None:
        stored = self._must(key, now)
        if not isinstance(title, Unset):
            stored.title = title
        apply_metadata(stored.metadata, delta)

    # ------------------------------------------------------------------ events

    async def _append_event(
        self, key: Key, prepared: PreparedEvent, expected_version: int | None, now: datetime, known_version: int
    ) -> tuple[Event, int, bool]:
        stored = self._must(key, now)
        duplicate = stored.event_ids.get(prepared.event.id)
        if duplicate is not None:
            return copy_event(duplicate), stored.version, True
        self._check_version(key, stored, expected_version)
        stored.last_seq += 1
        event = prepared.event
        event.seq = stored.last_seq
        stored.events.append(event)
        stored.event_ids[event.id] = event
        self._trim(stored)
        apply_delta(stored.state, copy_delta(prepared.scoped.session))
        self._apply_shared(prepared.scoped, key.app_name, key.user_id, now)
        self._touch(stored, now)
        return copy_event(event), stored.version, False

    async def _append_events(
        self, key: Key, prepared: list[PreparedEvent], expected_version: int | None, now: datetime
    ) -> tuple[list[Event], int, list[bool]]:
        stored = self._must(key, now)
        known = [stored.event_ids.get(p.event.id) for p in prepared]
        if all(e is not None for e in known):  # a retried batch: no conflict, nothing stored again
            return [copy_event(e) for e in known if e is not None], stored.version, [True] * len(prepared)
        self._check_version(key, stored, expected_version)
        result: list[Event] = []
        for p, already in zip(prepared, known, strict=True):
            if already is not None:
                result.append(copy_event(already))
                continue
            stored.last_seq += 1
            event = p.event
            event.seq = stored.last_seq
            stored.events.append(event)
            stored.event_ids[event.id] = event
            apply_delta(stored.state, copy_delta(p.scoped.session))
            self._apply_shared(p.scoped, key.app_name, key.user_id, now)
            result.append(copy_event(event))
        self._trim(stored)
        self._touch(stored, now)
        return result, stored.version, [e is not None for e in known]

    async def _delete_event(self, key: Key, event_id: str, now: datetime) -> bool:
        stored = self._active(key, now)
        if stored is None or stored.event_ids.pop(event_id, None) is None:
            return False
        stored.events = [e for e in stored.events if e.id != event_id]
        return True

    async def _list_events(
        self, key: Key, after_seq: int | None, before_seq: int | None, limit: int, forward: bool, now: datetime
    ) -> list[Event]:
        stored = self._must(key, now)
        low = -1 if after_seq is None else after_seq
        high = None if before_seq is None else before_seq
        chosen = [e for e in stored.events if (e.seq or 0) > low and (high is None or (e.seq or 0) < high)]
        if not forward:
            chosen.reverse()
        return [copy_event(e) for e in chosen[:limit]]

    async def _trim_events(self, key: Key, keep_last: int, now: datetime) -> int:
        stored = self._must(key, now)
        excess = max(0, len(stored.events) - keep_last)
        for old in stored.events[:excess]:
            del stored.event_ids[old.id]
        del stored.events[:excess]
        return excess

    # ------------------------------------------------------------------ state

    async def _update_session_state(self, key: Key, scoped: ScopedDelta, now: datetime) -> None:
        stored = self._active(key, now)
        if stored is None:
            raise SessionNotFoundError(f"session {key.session_id!r} not found")
        apply_delta(stored.state, copy_delta(scoped.session))
        self._apply_shared(scoped, key.app_name, key.user_id, now)
        self._touch(stored, now)

    async def _update_shared_state(
        self, scoped: ScopedDelta, app_name: str, user_id: str | None, now: datetime
    ) -> None:
        self._apply_shared(scoped, app_name, user_id, now)

    async def _list_app_state(self, app_name: str, now: datetime) -> dict[str, Any]:
        return _live_values(self._app_state.get(app_name), now)

    async def _list_user_state(self, user_key: UserKey, now: datetime) -> dict[str, Any]:
        return _live_values(self._user_state.get(user_key), now)

    # ------------------------------------------------------------------ cleanup

    async def _cleanup(self, dry_run: bool, progress: CleanupProgress | None) -> CleanupResult:
        """One cleanup round, in the SQL backend's order: expire sessions, purge
        session tombstones, expire app and user state keys, purge their tombstones.

        Events beyond event_limit are evicted at write time here, so
        events_trimmed is always 0. Never skipped: there is no other process.
        """
        started = perf_counter()
        now = self._now()
        soft = self.options.soft_delete
        result = CleanupResult(dry_run=dry_run)
        for key, stored in list(self._sessions.items()):
            if not _alive(stored.expires_at, now):
                result.sessions_expired += 1
                if not soft:
                    result.events_removed += len(stored.events)
                if not dry_run:
                    self._retire(key, now)
        horizon = now - self.options.tombstone_retention
        purgeable = [stored for deleted_at, stored in self._tombstones if deleted_at <= horizon]
        result.tombstones_purged = len(purgeable)
        result.events_removed += sum(len(stored.events) for stored in purgeable)
        if not dry_run:
            self._tombstones = [(t, stored) for t, stored in self._tombstones if t > horizon]
        result.app_state_expired = self._expire_cells(self._app_state.values(), now, dry_run)
        result.user_state_expired = self._expire_cells(self._user_state.values(), now, dry_run)
        # In a real run the keys just expired are tombstones of `now`, never old enough.
        result.tombstones_purged += sum(1 for t in self._state_tombstones if t <= horizon)
        if not dry_run:
            self._state_tombstones = [t for t in self._state_tombstones if t > horizon]
        if progress is not None:
            for step, field_name in _STEP_FIELDS:
                progress(step, getattr(result, field_name))
        result.seconds = perf_counter() - started
        log.info("sessionstore cleanup %s", result.log_line(), extra={"cleanup": result.as_dict()})
        return result

    def _expire_cells(self, scopes: Any, now: datetime, dry_run: bool) -> int:
        """Drop expired state keys (unless dry_run), keeping tombstones if soft_delete; count them."""
        expired = 0
        for cells in scopes:
            for name in [n for n, cell in cells.items() if not _alive(cell.expires_at, now)]:
                expired += 1
                if not dry_run:
                    del cells[name]
                    if self.options.soft_delete:
                        self._state_tombstones.append(now)
        return expired

    # ------------------------------------------------------------------ internals

    def _active(self, key: Key, now: datetime) -> _StoredSession | None:
        stored = self._sessions.get(key)
        if stored is None or not _alive(stored.expires_at, now):
            return None
        return stored

    def _must(self, key: Key, now: datetime) -> _StoredSession:
        stored = self._active(key, now)
        if stored is None:
            raise SessionNotFoundError(f"session {key.session_id!r} not found")
        return stored

    @staticmethod
    def _check_version(key: Key, stored: _StoredSession, expected_version: int | None) -> None:
        if expected_version is not None and expected_version != stored.version:
            raise ConflictError(
                f"session {key.session_id!r} is at version {stored.version}, not {expected_version}",
                expected=expected_version,
                actual=stored.version,
            )

    def _retire(self, key: Key, now: datetime) -> None:
        """Remove whatever row holds `key` (active or expired), keeping a tombstone if soft_delete."""
        stored = self._sessions.pop(key, None)
        if stored is not None and self.options.soft_delete:
            self._tombstones.append((now, stored))

    def _touch(self, stored: _StoredSession, now: datetime) -> None:
        stored.version += 1
        stored.updated_at = now
        stored.expires_at = expiry(now, self.options.session_ttl)

    def _trim(self, stored: _StoredSession) -> None:
        excess = len(stored.events) - self.options.event_limit
        if excess > 0:
            for old in stored.events[:excess]:
                del stored.event_ids[old.id]
            del stored.events[:excess]

    def _apply_shared(self, scoped: ScopedDelta, app_name: str, user_id: str | None, now: datetime) -> None:
        removed = 0
        if scoped.app:
            cells = self._app_state.setdefault(app_name, {})
            removed += _apply_cells(cells, scoped.app, expiry(now, self.options.app_state_ttl))
        if scoped.user and user_id is not None:
            cells = self._user_state.setdefault(UserKey(app_name, user_id), {})
            removed += _apply_cells(cells, scoped.user, expiry(now, self.options.user_state_ttl))
        if removed and self.options.soft_delete:
            self._state_tombstones.extend([now] * removed)

    def _view(self, key: Key, stored: _StoredSession, events: list[Event], now: datetime) -> Session:
        state = merged_view(
            stored.state,
            _live_values(self._app_state.get(key.app_name), now, copy=False),
            _live_values(self._user_state.get(key.user_key), now, copy=False),
        )
        return Session(
            id=key.session_id,
            app_name=key.app_name,
            user_id=key.user_id,
            state=jsonvalue.copy_json(state),
            events=[copy_event(e) for e in events],
            version=stored.version,
            created_at=stored.created_at,
            updated_at=stored.updated_at,
            title=stored.title,
            metadata=jsonvalue.copy_json(stored.metadata),
        )


def _apply_cells(cells: dict[str, _Cell], delta: dict[str, Any], expires_at: datetime | None) -> int:
    """Apply a delta of bare keys; return how many stored keys it removed (expired ones too)."""
    removed = 0
    for name, value in delta.items():
        if value is DELETE:
            removed += cells.pop(name, None) is not None
        else:
            cells[name] = _Cell(jsonvalue.copy_json(value), expires_at)
    return removed


def _live_values(cells: dict[str, _Cell] | None, now: datetime, *, copy: bool = True) -> dict[str, Any]:
    if not cells:
        return {}
    live = {name: cell.value for name, cell in cells.items() if _alive(cell.expires_at, now)}
    return jsonvalue.copy_json(live) if copy else live


_STEP_FIELDS = (
    ("sessions expired", "sessions_expired"),
    ("events removed", "events_removed"),
    ("tombstones purged", "tombstones_purged"),
    ("app state expired", "app_state_expired"),
    ("user state expired", "user_state_expired"),
)
"""What the in-memory round reports to a progress callback, all at once at its end."""

