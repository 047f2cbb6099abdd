"""The service contract every backend implements, with the input checks they share.

Public methods validate their arguments here, once, so that every backend
rejects bad input with the same typed error before touching storage. The
storage work is in the abstract ``_``-methods each backend provides.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .arguments import MAX_PAGE_SIZE, add_in_seq_order, checked_key, checked_limit, checked_user_key
from .cursor import Cursor
from .errors import ConflictError, InvalidArgumentError, InvalidKeyError
from .events import PreparedEvent, copy_delta, copy_event, prepare_event
from .hooks import AppendEventContext, Chain, GetSessionContext
from .keys import Key, UserKey, check_identifier
from .opstats import note_duplicate
from .options import DEFAULT_PERSIST_WORKERS, ServiceOptions
from .records import CleanupProgress, CleanupResult, Event, Session, SessionPage, new_id
from .service_history import HistoryAndMetadata
from .state import (
    DELETE,
    ScopedDelta,
    apply_delta,
    check_bare_delta,
    check_delta,
    check_state_key,
    split_delta,
    split_initial_state,
)
from .summaries_and_tracks import SummariesAndTracks
from .telemetry import operation
from .timestamps import storable_utc
from .writebehind import WriteBehind

log = logging.getLogger("sessionstore")

__all__ = ["MAX_PAGE_SIZE", "SessionService"]



class SessionService(HistoryAndMetadata, SummariesAndTracks):
    """Durable sessions, events and app/user/session state behind one async interface.

    Use as ``async with svc:`` (starts and stops the background cleanup job),
    or call ``await svc.start()`` and ``await svc.close()`` yourself. Summaries and track
    events: summaries_and_tracks.py; hooks (options.append_event_hooks, get_session_hooks): hooks.py.
    """

    @property
    def db_system(self) -> str:
        """What telemetry reports as ``db.system`` (a SQL backend: its dialect)."""
        return "memory"

    def __init__(self, options: ServiceOptions | None = None) -> None:
        self.options = options or ServiceOptions()
        self._cleanup_task: asyncio.Task[None] | None = None
        self._append_chain: Chain[AppendEventContext, Event] = Chain(self.options.append_event_hooks, self._append_in_context)
        self._read_chain: Chain[GetSessionContext, Session | None] = Chain(self.options.get_session_hooks, self._read_in_context)
        o = self.options
        workers = DEFAULT_PERSIST_WORKERS if o.persist_workers is None else o.persist_workers
        self._persist = WriteBehind(self._append_event, workers, o.persist_queue_size) if o.async_persist else None
        if o.tracing:  # wraps this object's @operation methods in spans and metrics (telemetry.py)
            from .telemetry import instrument

            instrument(self)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> SessionService:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Prepare the backend and start the periodic cleanup job (if cleanup_interval is set)."""
        await self._start()
        interval = self.options.cleanup_interval
        if interval is not None and self._cleanup_task is None:
            self._cleanup_task = asyncio.create_task(
                self._cleanup_loop(interval.total_seconds()), name="sessionstore-cleanup"
            )

    async def close(self) -> None:
        """Store what is queued (async_persist), stop background work and release resources.

        Safe to call twice. Raises PersistError, once everything is closed, if queued writes failed.
        """
        if self._persist is not None:
            await self._persist.close()
        task, self._cleanup_task = self._cleanup_task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        await self._close_summary_jobs()
        await self._close()
        if self._persist is not None:
            self._persist.report()

    @operation("write")
    async def flush(self) -> None:
        """Wait until every event queued so far (async_persist) is durable.

        Raises PersistError for queued writes that failed since the last
        flush (then clears them). Without async_persist: nothing to do.
        """
        if self._persist is not None:
            await self._persist.settle()
            self._persist.report()

    @property
    def persist_errors(self) -> int:
        """Queued writes (async_persist) that failed since the service started."""
        return 0 if self._persist is None else self._persist.failed

    @property
    def persist_queue_depth(self) -> int:
        """Events queued (async_persist) and not yet stored."""
        return 0 if self._persist is None else self._persist.depth

    async def _settle(self, key: Key | None) -> None:
        """Before a synchronous write: let queued appends land first (of `key`'s session, or all)."""
        if self._persist is not None:
            await (self._persist.settle() if key is None else self._persist.settle_session(key))

    async def _cleanup_loop(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.cleanup()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep the loop alive; the next round retries
                log.exception("sessionstore cleanup round failed")

    # ------------------------------------------------------------------ sessions

    @operation("write")
    async def create_session(self, key: Key, state: Mapping[str, Any] | None = None) -> Session:
        """Create a session. An empty ``key.session_id`` generates one (uuid4 hex).

        ``state`` is a delta like an event's: ``app:``/``user:`` keys update the
        shared scopes, ``temp:`` keys are dropped. Raises SessionExistsError if
        the id is taken by an active session (expired or deleted ids are reusable).
        """
        key = checked_key(key)
        if not key.session_id:
            key = Key(key.app_name, key.user_id, new_id())
        scoped = split_initial_state(state)
        return await self._create_session(key, scoped, self._now())

    @operation("read")
    async def get_session(
        self,
        key: Key,
        *,
        event_num: int | None = None,
        after: datetime | None = None,
    ) -> Session | None:
        """Read a session with its merged state and newest events, or None if it is not active.

        ``event_num=N`` keeps the newest N events, ``after=t`` those with
        timestamp >= t; both: the newest N of those. Never more than event_limit
        (with event_limit=None, every stored event unless event_num says otherwise).
        """
        if self._read_chain.hooks:
            return await self._read_chain.run(GetSessionContext(self, key, event_num, after))
        return await self._read_checked(key, event_num, after)

    async def _read_in_context(self, ctx: GetSessionContext) -> Session | None:
        return await self._read_checked(ctx.key, ctx.event_num, ctx.after)

    async def _read_checked(self, key: Key, event_num: int | None, after: datetime | None) -> Session | None:
        key = checked_key(key).require_session_id()
        limit = self.options.events_read_limit()
        if event_num is not None:
            if type(event_num) is not int or event_num < 0:
                raise InvalidArgumentError(f"event_num must be an int >= 0, got {event_num!r}")
            limit = min(limit, event_num)
        if after is not None:
            after = storable_utc(after, "after", InvalidArgumentError)
        now = self._now()
        if self._persist is not None:
            return await self._persist.read(key, lambda: self._get_session(key, limit, after, now), limit, after)
        return await self._get_session(key, limit, after, now)

    @operation("read")
    async def list_sessions(
        self,
        user_key: UserKey,
        *,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SessionPage:
        """One page of a user's sessions, most recently updated first, without events.

        Pass ``page.next_cursor`` back to get the next page; it is None on the last one.
        """
        user_key = checked_user_key(user_key)
        checked_limit(limit)
        after = Cursor.decode(cursor) if cursor is not None else None
        sessions = await self._list_sessions(user_key, limit + 1, after, self._now())
        if len(sessions) <= limit:
            return SessionPage(sessions, None)
        sessions = sessions[:limit]
        last = sessions[-1]
        return SessionPage(sessions, Cursor(last.updated_at, last.id).encode())

    @operation("write")
    async def delete_session(self, key: Key) -> None:
        """Delete a session and its events. Deleting a missing session does nothing."""
        key = checked_key(key).require_session_id()
        await self._settle(key)
        await self._delete_session(key, self._now())

    # ------------------------------------------------------------------ events

    @operation("append")
    async def append_event(
        self,
        session: Session,
        event: Event,
        *,
        expected_version: int | None = None,
    ) -> Event:
        """Store ``event`` in ``session`` and apply its state delta, in one transaction.

        Returns the stored event (with ``seq``). Partial events are neither
        stored nor applied. An event whose id is already stored in the session
        is not stored again: the stored one is returned. With
        ``expected_version`` set, raises ConflictError if the session's
        version moved on since. ``session`` (the caller's object) gets the
        event, the delta (temp: keys included) and the new version once the
        write has committed.
        """
        if not isinstance(session, Session):
            raise InvalidKeyError(f"append_event needs a Session, got {type(session).__name__}")
        key = Key(session.app_name, session.user_id, session.id).require_session_id()
        if self._append_chain.hooks:
            return await self._append_chain.run(AppendEventContext(self, session, event, key, expected_version))
        return await self._append(session, event, expected_version, key)

    async def _append_in_context(self, ctx: AppendEventContext) -> Event:
        key = checked_key(ctx.key).require_session_id()
        session = ctx.session
        if key != session.key:  # a hook sent it elsewhere: the caller's object describes another session
            session = Session(key.session_id, key.app_name, key.user_id)
        return await self._append(session, ctx.event, ctx.expected_version, key)

    async def _append(self, session: Session, event: Event, expected_version: int | None, key: Key) -> Event:
        if expected_version is not None and (type(expected_version) is not int or expected_version < 0):
            raise InvalidArgumentError(f"expected_version must be an int >= 0, got {expected_version!r}")
        prepared = prepare_event(event, self.options.max_event_bytes)
        if event.partial:
            return copy_event(prepared.event)
        # What the caller's Session gets (temp: keys included), copied now: the
        # caller's dicts may change while the write is awaited, or afterwards.
        caller_delta = copy_delta(check_delta(event.state_delta))
        now = self._now()
        if self._persist is not None:
            if expected_version is None:
                return await self._persist.append(session, key, prepared, caller_delta, now)
            await self._settle(key)  # a version check needs this session's queued events stored first
        known_version = expected_version if expected_version is not None else session.version
        try:
            stored, version, duplicate = await self._append_event(key, prepared, expected_version, now, known_version)
        except ConflictError as exc:
            log.debug("append to session %r: version conflict (expected %s, found %s)",
                      key.session_id, exc.expected, exc.actual)
            raise
        if duplicate:
            note_duplicate()
        if not duplicate:
            # (a copy from the JSON already serialised when the backend stored the prepared event)
            add_in_seq_order(session.events, prepared.copy() if stored is prepared.event else copy_event(stored))
            apply_delta(session.state, caller_delta)
            session.version = max(session.version, version)  # replies may arrive out of commit order
            session.updated_at = max(session.updated_at, now)
        elif all(e.id != stored.id for e in session.events):
            # A retry whose first attempt committed but whose reply was lost: the
            # caller's object gets the event, but not the current version, which
            # may include other writers' changes it has not seen.
            add_in_seq_order(session.events, copy_event(stored))
            apply_delta(session.state, caller_delta)
        return stored

    # ------------------------------------------------------------------ state

    @operation("write")
    async def update_session_state(self, key: Key, delta: Mapping[str, Any]) -> None:
        """Apply a state delta to a session without an event (app:/user: keys route as usual).

        Raises SessionNotFoundError if the session is not active. Bumps the version.
        """
        key = checked_key(key).require_session_id()
        scoped = split_delta(delta)
        await self._settle(key)
        await self._update_session_state(key, scoped, self._now())

    @operation("write")
    async def update_app_state(self, app_name: str, delta: Mapping[str, Any]) -> None:
        """Apply a delta of bare keys to the app's shared state."""
        check_identifier(app_name, "app_name")
        scoped = ScopedDelta(app=check_bare_delta(delta))
        await self._settle(None)
        await self._update_shared_state(scoped, app_name, None, self._now())

    @operation("read")
    async def list_app_state(self, app_name: str) -> dict[str, Any]:
        """The app's shared state, bare keys (a session read shows them as ``app:<key>``)."""
        check_identifier(app_name, "app_name")
        return await self._list_app_state(app_name, self._now())

    @operation("write")
    async def delete_app_state(self, app_name: str, key: str) -> None:
        """Remove one key of the app's shared state (no-op if absent)."""
        check_identifier(app_name, "app_name")
        delta = {check_state_key(key): DELETE}
        await self._settle(None)
        await self._update_shared_state(ScopedDelta(app=delta), app_name, None, self._now())

    @operation("write")
    async def update_user_state(self, user_key: UserKey, delta: Mapping[str, Any]) -> None:
        """Apply a delta of bare keys to the user's state, shared by all their sessions."""
        user_key = checked_user_key(user_key)
        scoped = ScopedDelta(user=check_bare_delta(delta))
        await self._settle(None)
        await self._update_shared_state(scoped, user_key.app_name, user_key.user_id, self._now())

    @operation("read")
    async def list_user_state(self, user_key: UserKey) -> dict[str, Any]:
        """The user's state, bare keys (a session read shows them as ``user:<key>``)."""
        user_key = checked_user_key(user_key)
        return await self._list_user_state(user_key, self._now())

    @operation("write")
    async def delete_user_state(self, user_key: UserKey, key: str) -> None:
        """Remove one key of the user's state (no-op if absent)."""
        user_key = checked_user_key(user_key)
        scoped = ScopedDelta(user={check_state_key(key): DELETE})
        await self._settle(None)
        await self._update_shared_state(scoped, user_key.app_name, user_key.user_id, self._now())

    # ------------------------------------------------------------------ retention

    @operation("admin")
    async def cleanup(self, *, dry_run: bool = False, progress: CleanupProgress | None = None) -> CleanupResult:
        """Run one cleanup round now: expire, purge tombstones, trim (docs/ttl.md).

        ``dry_run`` counts what a round would remove and changes nothing.
        ``progress(step, rows)`` is called as the round goes, with a step name
        from CLEANUP_STEPS and the rows just removed (a progress bar's feed).
        The round is skipped (``result.skipped``) when another process holds
        the database's cleanup lock. The background job calls this too.
        """
        if progress is not None and not callable(progress):
            raise InvalidArgumentError("progress must be a callable taking (step, rows)")
        return await self._cleanup(bool(dry_run), progress)

    # ------------------------------------------------------------------ helpers

    def _now(self) -> datetime:
        return self.options.clock()

    # ------------------------------------------------------------------ backend work

    async def _start(self) -> None:  # noqa: B027 - optional hook, a no-op unless a backend needs it
        """Prepare the backend (connect, check the schema). Default: nothing."""

    async def _close(self) -> None:  # noqa: B027 - optional hook, a no-op unless a backend needs it
        """Release the backend's resources. Default: nothing."""

    @abc.abstractmethod
    async def _cleanup(self, dry_run: bool, progress: CleanupProgress | None) -> CleanupResult: ...

    @abc.abstractmethod
    async def _create_session(self, key: Key, scoped: ScopedDelta, now: datetime) -> Session: ...

    @abc.abstractmethod
    async def _get_session(
        self, key: Key, limit: int, after: datetime | None, now: datetime
    ) -> Session | None: ...

    @abc.abstractmethod
    async def _list_sessions(
        self, user_key: UserKey, limit: int, after: Cursor | None, now: datetime
    ) -> list[Session]: ...

    @abc.abstractmethod
    async def _delete_session(self, key: Key, now: datetime) -> None: ...

    @abc.abstractmethod
    async def _append_event(
        self, key: Key, prepared: PreparedEvent, expected_version: int | None, now: datetime, known_version: int
    ) -> tuple[Event, int, bool]:
        """Store the event; return (stored event, session version after, was it a duplicate).

        ``known_version`` is the version the caller last saw: a hint a backend
        may use for a faster path when it is still current, never a check.
        """

    @abc.abstractmethod
    async def _update_session_state(self, key: Key, scoped: ScopedDelta, now: datetime) -> None: ...

    @abc.abstractmethod
    async def _update_shared_state(
        self, scoped: ScopedDelta, app_name: str, user_id: str | None, now: datetime
    ) -> None:
        """Apply scoped.app to the app's state and scoped.user to (app_name, user_id)'s."""

    @abc.abstractmethod
    async def _list_app_state(self, app_name: str, now: datetime) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def _list_user_state(self, user_key: UserKey, now: datetime) -> dict[str, Any]: ...
