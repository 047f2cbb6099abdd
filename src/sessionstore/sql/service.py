"""SQLSessionService: the contract on SQLite, PostgreSQL and MySQL/MariaDB.

Every write is one short transaction. Appends lock the session row
(SELECT ... FOR UPDATE; on SQLite the IMMEDIATE transaction holds the write
lock), so concurrent appends from any number of processes queue on that row
and each gets the next seq: no lost event, no lost state key. Deadlocks and
busy errors are retried a few times with backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .. import jsonvalue
from ..cursor import Cursor
from ..errors import (
    ConfigurationError,
    ConflictError,
    DatabaseError,
    SessionExistsError,
    SessionNotFoundError,
)
from ..events import PreparedEvent
from ..keys import Key, UserKey
from ..options import ServiceOptions, expiry
from ..records import CleanupProgress, CleanupResult, Event, Session
from ..service import SessionService
from ..state import DELETE, ScopedDelta, apply_delta
from .cleanup import run_cleanup
from .database import Database
from .engine import make_engine, prepare_engine
from .errors import ConnectionLost, translate_errors
from .models import DEFAULT_PREFIX
from .native import DRIVER_TX, DriverRow, DriverTx, NativeSQL, driver_fetchone, driver_read, run_transaction
from .queries import Queries
from .reads import ReadSQL, decode_page, decode_session, decode_state
from .writes import WriteSQL

T = TypeVar("T")

ENGINE_OPTIONS = frozenset(
    {"pool_size", "max_overflow", "pool_timeout", "pool_recycle", "pool_pre_ping", "echo", "connect_args", "poolclass"}
)


class SQLSessionService(SessionService):
    """The contract on a relational database through a SQLAlchemy AsyncEngine."""

    def __init__(
        self,
        engine: AsyncEngine,
        options: ServiceOptions | None = None,
        *,
        table_prefix: str = DEFAULT_PREFIX,
        schema: str | None = None,
        auto_migrate: bool = False,
        owns_engine: bool = False,
    ) -> None:
        super().__init__(options)
        self.db = Database(engine, self.options, table_prefix=table_prefix, schema=schema)
        self.engine = engine
        self.rules = self.db.rules
        self.table_prefix = self.db.table_prefix
        self.schema = schema
        self.auto_migrate = auto_migrate
        self.tables = self.db.tables
        self.q = Queries(self.tables, self.rules)
        self._tx_class = DRIVER_TX[self.rules.name]
        self.r = ReadSQL(self.tables, self.rules, engine.dialect, self._tx_class.style)
        self.w = WriteSQL(self.tables, self.rules, engine.dialect, self._tx_class.style)
        self._owns_engine = owns_engine
        self._ready = False
        self._ready_lock = asyncio.Lock()

    @classmethod
    def from_target(cls, target: str | URL | AsyncEngine, options: ServiceOptions, **rest: Any) -> SQLSessionService:
        """Build from a URL (we own and dispose the engine) or a caller's AsyncEngine (we never dispose it)."""
        service_kw = {k: rest.pop(k) for k in ("table_prefix", "schema", "auto_migrate") if k in rest}
        unknown = set(rest) - ENGINE_OPTIONS
        if unknown:
            raise ConfigurationError(f"unknown options: {', '.join(sorted(unknown))}")
        if isinstance(target, AsyncEngine):
            if rest:
                raise ConfigurationError("engine options cannot be applied to an AsyncEngine you pass in")
            prepare_engine(target)
            return cls(target, options, owns_engine=False, **service_kw)
        if not isinstance(target, (str, URL)):
            raise ConfigurationError(f"open_service needs a URL or an AsyncEngine, got {type(target).__name__}")
        engine_options = {"json_serializer": jsonvalue.dumps_str, "json_deserializer": jsonvalue.loads, **rest}
        return cls(make_engine(target, **engine_options), options, owns_engine=True, **service_kw)

    # ------------------------------------------------------------------ lifecycle

    async def _start(self) -> None:
        await self._ensure_ready()

    async def _close(self) -> None:
        if self._owns_engine:
            await self.engine.dispose()

    async def _ensure_ready(self) -> None:
        """Check the schema once (or migrate it, with auto_migrate) before the first use."""
        if self._ready:
            return
        async with self._ready_lock:
            if self._ready:
                return
            from .migrate import ensure_schema

            with translate_errors(self.engine):
                await ensure_schema(
                    self.engine, table_prefix=self.table_prefix, schema=self.schema, auto_migrate=self.auto_migrate
                )
            self._ready = True

    async def _write(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run `work` in one SQLAlchemy write transaction (deletes, expiry refreshes)."""

        async def attempt(fresh: bool) -> T:
            committing = False
            try:
                async with self.db.writer.begin() as conn:
                    result = await work(conn)
                    committing = True
                return result
            except DBAPIError as exc:
                # SQLAlchemy has invalidated the connection (and the pool's older ones).
                if exc.connection_invalidated:
                    raise ConnectionLost(exc, maybe_committed=committing) from exc
                raise

        return await self._retrying(attempt)

    async def _read(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async def attempt(fresh: bool) -> T:
            try:
                async with self.engine.connect() as conn:
                    return await work(conn)
            except DBAPIError as exc:
                if exc.connection_invalidated:  # a read commits nothing: always safe to rerun
                    raise ConnectionLost(exc, maybe_committed=False) from exc
                raise

        return await self._retrying(attempt, write=False)

    async def _driver_read(self, stmt: NativeSQL, params: dict[str, Any]) -> list[DriverRow]:
        """Run one read statement (sql/reads.py) on a leased driver connection."""
        return await self._retrying(
            lambda fresh: driver_read(self.engine, self._tx_class, stmt, params, verify=fresh), write=False
        )

    async def _native(self, work: Callable[[DriverTx], Awaitable[T]]) -> T:
        """Run `work` in one write transaction on the driver connection."""

        return await self._retrying(lambda fresh: run_transaction(self.engine, self._tx_class, work, verify=fresh))

    async def _retrying(self, attempt: Callable[[bool], Awaitable[T]], *, write: bool = True) -> T:
        """Run an operation, rerunning it once on a fresh connection if its connection died
        (see _rerun_if_lost), and, for a write, after a deadlock, serialization failure or
        busy database (Database.retrying, which also holds this process's write gate).
        """
        await self._ensure_ready()
        with translate_errors(self.engine):
            if not write:
                return await self._rerun_if_lost(attempt)
            return await self.db.retrying(lambda: self._rerun_if_lost(attempt))

    @staticmethod
    async def _rerun_if_lost(attempt: Callable[[bool], Awaitable[T]]) -> T:
        """`attempt(False)`; again as `attempt(True)` if its connection died before anything
        could be committed.

        True asks for a connection checked with a round trip: after a restart the
        pool may hold more dead ones. A connection lost once the commit may have
        been sent is not rerun: its ConnectionLost becomes OutcomeUnknownError.
        """
        try:
            return await attempt(False)
        except ConnectionLost as exc:
            if exc.maybe_committed:
                raise
        return await attempt(True)

    # ------------------------------------------------------------------ sessions

    async def _create_session(self, key: Key, scoped: ScopedDelta, now: datetime) -> Session:
        w = self.w

        async def work(tx: DriverTx) -> None:
            params = {
                "app_name": key.app_name, "user_id": key.user_id, "session_id": key.session_id,
                "now": tx.time(now), "expires_at": tx.time(expiry(now, self.options.session_ttl)),
                "state": jsonvalue.dumps_str(scoped.session),
            }
            await tx.execute(w.soft_retire_expired if self.options.soft_delete else w.hard_retire_expired, params)
            try:
                await tx.execute(w.insert_session, params)
            except Exception as exc:
                if self.rules.is_unique_violation(exc):
                    raise SessionExistsError(f"session {key.session_id!r} already exists") from None
                raise
            await self._apply_shared(tx, scoped, key.app_name, key.user_id, now)

        await self._native(work)
        found = await self._read_session(key, 0, None, now)
        if found is not None:
            return found[0]
        # Gone already (a concurrent delete, or a TTL shorter than the clock's step): what was created.
        return Session(
            id=key.session_id, app_name=key.app_name, user_id=key.user_id, state=dict(scoped.session),
            events=[], version=0, created_at=now, updated_at=now,
        )

    async def _get_session(self, key: Key, limit: int, after: datetime | None, now: datetime) -> Session | None:
        found = await self._read_session(key, limit, after, now)
        if found is None:
            return None
        session, pk = found
        if self.options.refresh_on_read and self.options.session_ttl is not None:
            new_expiry = expiry(now, self.options.session_ttl)
            await self._write(lambda conn: conn.execute(self.q.refresh_expiry(pk, new_expiry)))
        return session

    async def _read_session(
        self, key: Key, limit: int, after: datetime | None, now: datetime
    ) -> tuple[Session, int] | None:
        """The session with its newest `limit` events and merged state, and its pk; one statement."""
        time = self._tx_class.time
        params: dict[str, Any] = {
            "app_name": key.app_name, "user_id": key.user_id, "session_id": key.session_id, "now": time(now),
        }
        if limit == 0:
            stmt = self.r.session_only
        else:
            stmt = self.r.session[after is not None]
            params["limit"] = limit
            if after is not None:
                params["after"] = time(after)
        return decode_session(await self._driver_read(stmt, params), self._tx_class, key)

    async def _list_sessions(self, user_key: UserKey, limit: int, after: Cursor | None, now: datetime) -> list[Session]:
        time = self._tx_class.time
        params: dict[str, Any] = {
            "app_name": user_key.app_name, "user_id": user_key.user_id, "now": time(now), "limit": limit,
        }
        if after is not None:
            params.update(c_updated=time(after.updated_at), c_id=after.session_id)
        rows = await self._driver_read(self.r.page[after is not None], params)
        return decode_page(rows, self._tx_class, user_key, by_position=self.r.page_in_position_order)

    async def _delete_session(self, key: Key, now: datetime) -> None:
        stmt = self.q.delete_session(key.app_name, key.user_id, key.session_id, now, soft=self.options.soft_delete)
        await self._write(lambda conn: conn.execute(stmt))

    # ------------------------------------------------------------------ events

    async def _append_event(
        self, key: Key, prepared: PreparedEvent, expected_version: int | None, now: datetime, known_version: int
    ) -> tuple[Event, int, bool]:
        """Store the event: the dialect's fast path if it applies, else the general transaction.

        A fast path either stores the event exactly as the general path would,
        or changes nothing and returns None (missing session, another version,
        a retried id); the general path then tells those cases apart.
        """
        fast = None
        if self.w.append_in_one is not None:
            fast = await self._append_in_one(key, prepared, expected_version, now)
        elif self.w.claim_at_version is not None and not prepared.scoped.session:
            fast = await self._append_at_version(key, prepared, known_version, now)
        if fast is not None:
            return fast
        return await self._append_in_transaction(key, prepared, expected_version, now)

    async def _append_in_transaction(
        self, key: Key, prepared: PreparedEvent, expected_version: int | None, now: datetime
    ) -> tuple[Event, int, bool]:
        """The general append: claim the row, check, set session state, insert, write shared state."""
        scoped, event, w = prepared.scoped, prepared.event, self.w

        async def work(tx: DriverTx) -> int:
            pk, version, seq, state = await self._claim(tx, key, now, seq_step=1, with_state=bool(scoped.session))
            if expected_version is not None and version != expected_version:
                if await tx.fetchone(w.event_exists, {"pk": pk, "event_id": event.id}):
                    raise _AlreadyStored  # the id check comes first: a retry never conflicts
                raise ConflictError(
                    f"session {key.session_id!r} is at version {version}, not {expected_version}",
                    expected=expected_version, actual=version,
                )
            if scoped.session:
                new_state = apply_delta(state, scoped.session)
                await tx.execute(w.set_state, {"pk": pk, "state": jsonvalue.dumps_str(new_state)})
            await self._insert_event(tx, w.insert_event, _event_row(prepared, tx.time, now) | {"session_pk": pk, "seq": seq})
            await self._apply_shared(tx, scoped, key.app_name, key.user_id, now)
            event.seq = seq
            return version + 1

        try:
            version = await self._native(work)
        except _AlreadyStored:
            return await self._stored_event(key, event.id, now)
        return event, version, False

    async def _append_at_version(
        self, key: Key, prepared: PreparedEvent, known_version: int, now: datetime
    ) -> tuple[Event, int, bool] | None:
        """MySQL/MariaDB, no session-state delta: append at the version the caller saw, without a SELECT."""
        scoped, event, w = prepared.scoped, prepared.event, self.w
        claim, insert_by_key = w.claim_at_version, w.insert_event_by_key
        assert claim is not None and insert_by_key is not None
        owner = {"app_name": key.app_name, "user_id": key.user_id, "session_id": key.session_id}

        async def work(tx: DriverTx) -> int | None:
            seq = await tx.update_for_id(claim, owner | {
                "now": tx.time(now), "expires_at": tx.time(expiry(now, self.options.session_ttl)),
                "known_version": known_version,
            })
            if seq is None:
                return None  # nothing was written
            await self._insert_event(tx, insert_by_key, _event_row(prepared, tx.time, now) | owner)
            await self._apply_shared(tx, scoped, key.app_name, key.user_id, now)
            return seq

        try:
            seq = await self._native(work)
        except _AlreadyStored:
            return await self._stored_event(key, event.id, now)
        if seq is None:
            return None
        event.seq = seq
        return event, known_version + 1, False

    async def _append_in_one(
        self, key: Key, prepared: PreparedEvent, expected_version: int | None, now: datetime
    ) -> tuple[Event, int, bool] | None:
        """PostgreSQL: the whole append as one statement."""
        scoped, event = prepared.scoped, prepared.event
        assert self.w.append_in_one is not None
        at = self._tx_class.time
        params = _event_row(prepared, at, now) | {
            "app_name": key.app_name, "user_id": key.user_id, "session_id": key.session_id,
            "now": at(now), "expires_at": at(expiry(now, self.options.session_ttl)), "expected": expected_version,
        }
        for scope, delta, ttl in (
            ("state", scoped.session, self.options.session_ttl),
            ("app", scoped.app, self.options.app_state_ttl),
            ("user", scoped.user, self.options.user_state_ttl),
        ):
            params[f"{scope}_sets"] = jsonvalue.dumps_str({k: v for k, v in delta.items() if v is not DELETE})
            params["state_removed_keys" if scope == "state" else f"{scope}_removed"] = [
                k for k, v in delta.items() if v is DELETE
            ]
            params[f"{scope}_expires_at"] = at(expiry(now, ttl))
        stmt = self.w.append_in_one[self.options.soft_delete]

        async def attempt(fresh: bool) -> DriverRow | None:
            try:
                return await driver_fetchone(self.engine, self._tx_class, stmt, params, verify=fresh)
            except Exception as exc:
                if self.rules.is_unique_violation(exc):  # most likely a retried id
                    return None
                raise

        row = await self._retrying(attempt)
        if row is None:
            return None
        event.seq = row[2]
        return event, row[1], False

    async def _insert_event(self, tx: DriverTx, stmt: NativeSQL, row: dict[str, Any]) -> None:
        try:
            await tx.execute(stmt, row)
        except Exception as exc:
            if self.rules.is_unique_violation(exc):  # (session, event_id): a retried append
                raise _AlreadyStored from None
            raise

    async def _stored_event(self, key: Key, event_id: str, now: datetime) -> tuple[Event, int, bool]:
        """The event a retried append had already stored, with the session's current version."""
        session_params = {"app_name": key.app_name, "user_id": key.user_id, "session_id": key.session_id, "now": now}

        async def work(conn: AsyncConnection) -> tuple[Event, int, bool]:
            session = (await conn.execute(self.q.read_session, session_params)).first()
            stored = None
            if session is not None:
                event_params = {"session_pk": session.pk, "event_id": event_id}
                stored = (await conn.execute(self.q.read_event_by_id, event_params)).first()
            if session is None or stored is None:  # the clash was on another unique index: not a retry
                raise DatabaseError(f"event {event_id!r} clashed with a stored row, but no event with that id is stored")
            return _event(stored), session.version, True

        return await self._read(work)

    # ------------------------------------------------------------------ state

    async def _update_session_state(self, key: Key, scoped: ScopedDelta, now: datetime) -> None:

        async def work(tx: DriverTx) -> None:
            pk, _, _, state = await self._claim(tx, key, now, seq_step=0, with_state=True)
            new_state = apply_delta(state, scoped.session)
            await tx.execute(self.w.set_state, {"pk": pk, "state": jsonvalue.dumps_str(new_state)})
            await self._apply_shared(tx, scoped, key.app_name, key.user_id, now)

        await self._native(work)

    async def _update_shared_state(self, scoped: ScopedDelta, app_name: str, user_id: str | None, now: datetime) -> None:
        await self._native(lambda tx: self._apply_shared(tx, scoped, app_name, user_id, now))

    async def _list_app_state(self, app_name: str, now: datetime) -> dict[str, Any]:
        params = {"app_name": app_name, "now": self._tx_class.time(now)}
        return decode_state(await self._driver_read(self.r.app_state, params), self._tx_class)

    async def _list_user_state(self, user_key: UserKey, now: datetime) -> dict[str, Any]:
        params = {"app_name": user_key.app_name, "user_id": user_key.user_id, "now": self._tx_class.time(now)}
        return decode_state(await self._driver_read(self.r.user_state, params), self._tx_class)

    # ------------------------------------------------------------------ cleanup

    async def _cleanup(self, dry_run: bool, progress: CleanupProgress | None) -> CleanupResult:
        await self._ensure_ready()
        with translate_errors(self.engine):
            return await run_cleanup(self.db, dry_run=dry_run, progress=progress)

    # ------------------------------------------------------------------ internals

    async def _claim(
        self, tx: DriverTx, key: Key, now: datetime, *, seq_step: int, with_state: bool
    ) -> tuple[int, int, int, dict[str, Any]]:
        """Lock and bump the session row: (pk, version before, new last_seq, session state or {}).

        Raises SessionNotFoundError if the session is not active.
        """
        w = self.w
        params = {
            "app_name": key.app_name, "user_id": key.user_id, "session_id": key.session_id,
            "now": tx.time(now), "expires_at": tx.time(expiry(now, self.options.session_ttl)),
            "seq_step": seq_step,
        }
        row = await tx.fetchone(w.claim_with_state if with_state else w.claim, params)
        if row is None:
            raise SessionNotFoundError(f"session {key.session_id!r} not found")
        if w.bump is not None:
            await tx.execute(w.bump, {**params, "pk": row[0]})
        return row[0], row[1], row[2], _json(row[3]) if with_state else {}

    async def _apply_shared(self, tx: DriverTx, scoped: ScopedDelta, app_name: str, user_id: str | None, now: datetime) -> None:
        """Write the app: and user: parts of a delta, one statement per key, in sorted key order."""
        targets = [(self.w.app_state, {"app_name": app_name}, scoped.app, self.options.app_state_ttl)]
        if user_id is not None:
            targets.append((self.w.user_state, {"app_name": app_name, "user_id": user_id}, scoped.user, self.options.user_state_ttl))
        at = tx.time(now)
        for sql, owner, delta, ttl in targets:
            expires_at = tx.time(expiry(now, ttl))
            for name in sorted(delta, key=lock_order):
                value = delta[name]
                params = {**owner, "state_key": name, "now": at}
                if value is not DELETE:
                    params.update(value=jsonvalue.dumps_str(value), created_at=at, updated_at=at, expires_at=expires_at)
                    await tx.execute(sql.upsert, params)
                else:
                    await tx.execute(sql.soft_delete if self.options.soft_delete else sql.hard_delete, params)


def _event(row: Any) -> Event:
    delta = dict(row.state_delta or {})
    for name in row.state_removed or ():
        delta[name] = DELETE
    return Event(
        id=row.event_id, author=row.author, content=row.content, invocation_id=row.invocation_id,
        timestamp=row.timestamp, state_delta=delta, partial=False, branch=row.branch,
        metadata=row.meta if row.meta is not None else {}, seq=row.seq,
    )


def lock_order(state_key: str) -> tuple[int, bytes]:
    """The order shared-state keys are written (and so locked) in: PostgreSQL's jsonb key
    order (shorter first, then bytewise), which the one-statement append follows too."""
    raw = state_key.encode()
    return len(raw), raw


class _AlreadyStored(Exception):  # noqa: N818 - a control-flow signal inside this module, not an error
    """Internal: the event id is already stored in the session; roll back and return that event."""


def _event_row(
    prepared: PreparedEvent, time: Callable[[datetime | None], datetime | str | None], now: datetime
) -> dict[str, Any]:
    """The event's column values as the hand-written SQL binds them (all but session_pk and seq)."""
    event = prepared.event
    content_json, meta_json, delta_json = prepared.json
    removed = [k for k, v in event.state_delta.items() if v is DELETE]
    return {
        "event_id": event.id, "author": event.author, "invocation_id": event.invocation_id,
        "branch": event.branch, "timestamp": time(event.timestamp), "content": content_json,
        "state_delta": delta_json, "state_removed": jsonvalue.dumps_str(removed) if removed else None,
        "meta": meta_json, "created_at": time(now), "updated_at": time(now),
    }


def _json(value: Any) -> Any:
    """A JSON column as the driver returned it (text on every driver we use), decoded."""
    return jsonvalue.loads(value) if isinstance(value, (str, bytes)) else value


async def _rows_to_dict(conn: AsyncConnection, stmt: Any) -> dict[str, Any]:
    return {name: value for name, value in await conn.execute(stmt)}


__all__ = ["SQLSessionService"]
