"""``SessionStoreSessionService``: Google ADK's ``BaseSessionService`` on sessionstore.

The one-line switch (docs/adapters.md)::

    session_service = SessionStoreSessionService("postgresql://app@db/agents")

ADK's semantics, kept: ``app:``/``user:`` state shared per app and per user,
``temp:`` applied to the caller's session object and never stored, partial
events not stored, ``GetSessionConfig`` filters, ADK's own error types
(``AlreadyExistsError``, ``SessionNotFoundError``, ``StaleSessionError``),
``list_sessions`` without a user id listing every user's sessions of the app,
oldest update first.

Concurrency differs on purpose: ADK's ``DatabaseSessionService`` refuses an
append through a session object loaded before another write landed
(``StaleSessionError``), so of two copies appending at once one fails. Here
both land, in one order, losing nothing (sessionstore's contract). Pass
``strict=True`` for ADK's behaviour: an append through a stale session
object raises ``StaleSessionError`` and stores nothing.
"""

from __future__ import annotations

import asyncio
import weakref
from datetime import datetime, timezone
from typing import Any

from google.adk.errors import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError as AdkSessionNotFoundError
from google.adk.events.event import Event as AdkEvent
from google.adk.sessions import BaseSessionService
from google.adk.sessions import Session as AdkSession
from google.adk.sessions.base_session_service import GetSessionConfig, ListSessionsResponse
from google.adk.sessions.state import State

from ..adapters import ServiceHandle
from ..errors import ConflictError, SessionExistsError, SessionNotFoundError
from ..keys import Key, UserKey
from ..records import Event, Session
from ..service import MAX_PAGE_SIZE, SessionService
from .events import ensure_id, floor_to_microsecond, json_safe, persisted_delta, to_adk_event, to_store_event

STALE_MESSAGE = (
    "The session has been modified in storage since it was loaded. "
    "Please reload the session before appending more events."
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class SessionStoreSessionService(BaseSessionService):
    """ADK's session service interface, stored by a sessionstore ``SessionService``.

    ``service_or_url``: a ``SessionService`` you own (start and close it
    yourself), or a URL (``sqlite:///…``, ``postgresql://…``, ``mysql://…``,
    ``memory://``) opened with ``**options`` (those of ``open_service``),
    started on first use and closed by ``close()``. ``strict=True``: ADK's
    stale-session check (see the module docstring).
    """

    def __init__(self, service_or_url: SessionService | str, *, strict: bool = False, **options: Any) -> None:
        self._handle = ServiceHandle(service_or_url, options)
        self.strict = bool(strict)
        self._versions: dict[int, tuple[weakref.ref[AdkSession], int]] = {}
        self._locks: weakref.WeakValueDictionary[tuple[str, str, str], asyncio.Lock] = weakref.WeakValueDictionary()

    @property
    def service(self) -> SessionService:
        """The sessionstore service underneath (for TTL cleanup, migrations, other tools)."""
        return self._handle.service

    async def close(self) -> None:
        """Close the service if this adapter opened it from a URL."""
        await self._handle.close()

    async def __aenter__(self) -> SessionStoreSessionService:
        await self._handle.get()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ sessions

    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> AdkSession:
        svc = await self._handle.get()
        try:
            stored = await svc.create_session(Key(app_name, user_id, session_id or ""), json_safe(state or {}))
        except SessionExistsError as exc:
            raise AlreadyExistsError(f"Session with id {session_id} already exists.") from exc
        return self._to_adk(stored)

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> AdkSession | None:
        svc = await self._handle.get()
        event_num = config.num_recent_events if config else None
        after = config.after_timestamp if config else None
        stored = await svc.get_session(
            Key(app_name, user_id, session_id),
            event_num=event_num,
            after=floor_to_microsecond(after) if after is not None else None,
        )
        if stored is None:
            return None
        session = self._to_adk(stored)
        if after is not None:  # the database filtered at microseconds; ADK's timestamps are floats
            session.events = [e for e in session.events if e.timestamp >= after]
        return session

    async def list_sessions(self, *, app_name: str, user_id: str | None = None) -> ListSessionsResponse:
        """Every session of the user (or, without ``user_id``, of every user of the app), without
        events, oldest update first (ADK's order), read in pages of MAX_PAGE_SIZE."""
        svc = await self._handle.get()
        found: list[Session] = []
        cursor: str | None = None
        while True:
            if user_id is None:
                page = await svc.list_app_sessions(app_name, limit=MAX_PAGE_SIZE, cursor=cursor)
            else:
                page = await svc.list_sessions(UserKey(app_name, user_id), limit=MAX_PAGE_SIZE, cursor=cursor)
            found.extend(page.sessions)
            cursor = page.next_cursor
            if cursor is None:
                break
        sessions = [self._to_adk(s) for s in found]
        sessions.sort(key=lambda s: (s.last_update_time, s.user_id, s.id))
        return ListSessionsResponse(sessions=sessions)

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        svc = await self._handle.get()
        await svc.delete_session(Key(app_name, user_id, session_id))

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        svc = await self._handle.get()
        return await svc.list_user_state(UserKey(app_name, user_id))

    # ------------------------------------------------------------------ events

    async def append_event(self, session: AdkSession, event: AdkEvent) -> AdkEvent:
        """Store `event` and apply its state delta (``temp:`` keys only on `session`), then
        add it to `session`. Partial events are returned untouched and not stored."""
        if event.partial:
            return event
        ensure_id(event)
        self._apply_temp(session, event)
        delta = persisted_delta(event)
        if event.actions and event.actions.state_delta:
            event.actions.state_delta = {k: v for k, v in event.actions.state_delta.items() if not k.startswith(State.TEMP_PREFIX)}
        svc = await self._handle.get()
        stored = to_store_event(event, delta)
        if self.strict:  # ADK serialises a process's appends to one session, so its own never conflict
            ident = (session.app_name, session.user_id, session.id)
            lock = self._locks.get(ident)
            if lock is None:
                lock = self._locks[ident] = asyncio.Lock()
            async with lock:
                record = await self._store(svc, session, stored)
        else:
            record = await self._store(svc, session, stored)
        if all(e.id != event.id for e in session.events):
            if event.actions and event.actions.state_delta:
                session.state.update(event.actions.state_delta)
            session.events.append(event)
        if record.updated_at > _EPOCH:  # (a retried event already stored leaves it untouched)
            session.last_update_time = record.updated_at.timestamp()
            self._remember(session, record.version)
        return event

    # ------------------------------------------------------------------ helpers

    async def _store(self, svc: SessionService, session: AdkSession, event: Event) -> Session:
        """Append `event`; in strict mode only if `session` still reflects the stored version."""
        known = self._known_version(session)
        expected: int | None = None
        if self.strict:
            expected = known if known is not None else await self._check_unloaded(svc, session)
        record = Session(session.id, session.app_name, session.user_id, version=known or 0, updated_at=_EPOCH)
        try:
            await svc.append_event(record, event, expected_version=expected)
        except SessionNotFoundError as exc:
            raise AdkSessionNotFoundError(f"Session {session.id} not found.") from exc
        except ConflictError as exc:
            raise StaleSessionError(STALE_MESSAGE) from exc
        return record

    def _to_adk(self, stored: Session) -> AdkSession:
        session = AdkSession(
            id=stored.id,
            app_name=stored.app_name,
            user_id=stored.user_id,
            state=stored.state,
            events=[to_adk_event(e) for e in stored.events],
            last_update_time=stored.updated_at.timestamp(),
        )
        self._remember(session, stored.version)
        return session

    def _remember(self, session: AdkSession, version: int) -> None:
        """Keep the store version `session` reflects (for strict mode), as long as it lives."""
        key = id(session)
        versions = self._versions
        versions[key] = (weakref.ref(session, lambda _ref: versions.pop(key, None)), version)

    def _known_version(self, session: AdkSession) -> int | None:
        entry = self._versions.get(id(session))
        if entry is None or entry[0]() is not session:
            return None
        return entry[1]

    async def _check_unloaded(self, svc: SessionService, session: AdkSession) -> int:
        """Strict mode for a session object this adapter did not load: ADK's fallback check
        (the newest stored event is the object's newest), then the version read."""
        current = await svc.get_session(session_key(session), event_num=1)
        if current is None:
            raise AdkSessionNotFoundError(f"Session {session.id} not found.")
        newest = current.events[-1].id if current.events else None
        if newest != (session.events[-1].id if session.events else None):
            raise StaleSessionError(STALE_MESSAGE)
        return current.version

    @staticmethod
    def _apply_temp(session: AdkSession, event: AdkEvent) -> None:
        if event.actions and event.actions.state_delta:
            for key, value in event.actions.state_delta.items():
                if key.startswith(State.TEMP_PREFIX):
                    session.state[key] = value


def session_key(session: AdkSession) -> Key:
    return Key(session.app_name, session.user_id, session.id)
