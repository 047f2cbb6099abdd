"""The hot reads of one service: which statement of sql/reads.py (or sql/batched_reads.py)
answers each, with what parameters, and the decoding of its rows to records; and the
rare read of the event a retried append had stored.

The service runs the statements (its `read` and `read_sets`, which route to a
replica when the read names the scopes it depends on, see sql/replicas.py);
this module only chooses and decodes, as sql/appends.py does for the writes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from ..cursor import Cursor
from ..errors import DatabaseError
from ..keys import Key, UserKey
from ..records import Event, Session
from .appends import SessionWrites
from .native import DriverRow, DriverTx, NativeSQL
from .queries import Queries, event_from_row
from .reads import ReadSQL, decode_batched_session, decode_page, decode_session, decode_state
from .replicas import session_scopes, user_scopes

T = TypeVar("T")

Scopes = tuple[Hashable, ...] | None
"""What a read depends on (None: read the primary)."""


class Read(Protocol):
    def __call__(self, stmt: NativeSQL, params: dict[str, Any], scopes: Scopes = None, /) -> Awaitable[list[DriverRow]]: ...


class ReadSets(Protocol):
    def __call__(
        self, stmt: NativeSQL, params: dict[str, Any], count: int, scopes: Scopes, /
    ) -> Awaitable[list[list[DriverRow]]]: ...


class ReadCore(Protocol):
    """Run `work` on a SQLAlchemy connection, retried (the service's `_read`)."""

    def __call__(self, work: Callable[[AsyncConnection], Awaitable[T]], /) -> Awaitable[T]: ...


class SessionReads:
    """get_session, the list pages and the shared-state reads of one SQL service."""

    def __init__(
        self, r: ReadSQL, q: Queries, tx_class: type[DriverTx], writes: SessionWrites, *,
        read: Read, read_sets: ReadSets, read_core: ReadCore,
    ) -> None:
        self.r = r
        self.q = q
        self._read_core = read_core
        self._tx_class = tx_class
        self._writes = writes
        self._read = read
        self._read_sets = read_sets

    async def session(
        self, key: Key, limit: int, after: datetime | None, now: datetime, *, replica_ok: bool = False
    ) -> tuple[Session, int] | None:
        """The session with its newest `limit` events and merged state, and its pk; one query."""
        time = self._tx_class.time
        params: dict[str, Any] = {
            "app_name": key.app_name, "user_id": key.user_id, "session_id": key.session_id, "now": time(now),
        }
        if limit != 0:
            params["limit"] = limit
            if after is not None:
                params["after"] = time(after)
        scopes = session_scopes(key.app_name, key.user_id, key.session_id) if replica_ok else None
        batched = self.r.batched
        if batched is None:
            stmt = self.r.session_only if limit == 0 else self.r.session[after is not None]
            return decode_session(await self._read(stmt, params, scopes), self._tx_class, key)
        # MySQL/MariaDB: the same parts as separate SELECTs in one query (sql/batched_reads.py).
        stmt = batched.session_only if limit == 0 else batched.session[after is not None]
        sets = await self._read_sets(stmt, params, 2 if limit == 0 else 3, scopes)
        found = decode_batched_session(sets, self._tx_class, key)
        if found is not None:
            self._writes.remember_pk(key, found[1])  # appends find the row by it (sql/appends.py)
        return found

    async def user_page(self, user_key: UserKey, limit: int, after: Cursor | None, now: datetime) -> list[Session]:
        time = self._tx_class.time
        params: dict[str, Any] = {
            "app_name": user_key.app_name, "user_id": user_key.user_id, "now": time(now), "limit": limit,
        }
        if after is not None:
            params.update(c_updated=time(after.updated_at), c_id=after.session_id)
        scopes = user_scopes(user_key.app_name, user_key.user_id)
        batched = self.r.batched_page
        if batched is None:
            rows = await self._read(self.r.page[after is not None], params, scopes)
        else:  # MySQL/MariaDB: the page and the shared state as separate SELECTs in one query
            page, shared = await self._read_sets(batched[after is not None], params, 2, scopes)
            rows = [*page, *shared]
        return decode_page(rows, self._tx_class, user_key.app_name, by_position=self.r.page_in_position_order)

    async def app_page(self, app_name: str, limit: int, after: Cursor | None, now: datetime) -> list[Session]:
        time = self._tx_class.time
        params: dict[str, Any] = {"app_name": app_name, "now": time(now), "limit": limit}
        if after is not None:
            params.update(c_updated=time(after.updated_at), c_id=after.session_id, c_user=after.user_id)
        rows = await self._read(self.r.app_page[after is not None], params)
        return decode_page(rows, self._tx_class, app_name, by_position=self.r.page_in_position_order)

    async def app_state(self, app_name: str, now: datetime) -> dict[str, Any]:
        params = {"app_name": app_name, "now": self._tx_class.time(now)}
        return decode_state(await self._read(self.r.app_state, params), self._tx_class)

    async def user_state(self, user_key: UserKey, now: datetime) -> dict[str, Any]:
        params = {"app_name": user_key.app_name, "user_id": user_key.user_id, "now": self._tx_class.time(now)}
        return decode_state(await self._read(self.r.user_state, params), self._tx_class)

    async def stored_event(self, key: Key, event_id: str, now: datetime) -> tuple[Event, int, bool]:
        """The event a retried append had already stored, with the session's current version
        (rare: read through SQLAlchemy Core, sql/queries.py)."""
        session_params = {"app_name": key.app_name, "user_id": key.user_id, "session_id": key.session_id, "now": now}

        async def work(conn: AsyncConnection) -> tuple[Event, int, bool]:
            session = (await conn.execute(self.q.read_session, session_params)).first()
            stored = None
            if session is not None:
                event_params = {"session_pk": session.pk, "event_id": event_id}
                stored = (await conn.execute(self.q.read_event_by_id, event_params)).first()
            if session is None or stored is None:  # the clash was on another unique index: not a retry
                raise DatabaseError(f"event {event_id!r} clashed with a stored row, but no event with that id is stored")
            return event_from_row(stored), session.version, True

        return await self._read_core(work)
