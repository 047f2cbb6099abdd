"""SQLSessionService: the contract on SQLite, PostgreSQL and MySQL/MariaDB.

Every write is one short transaction. Appends lock the session row
(SELECT ... FOR UPDATE; on SQLite the IMMEDIATE transaction holds the write
lock), so concurrent appends from any number of processes queue on that row
and each gets the next seq: no lost event, no lost state key. Deadlocks and
busy errors are retried a few times with backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .. import jsonvalue
from ..cursor import Cursor
from ..errors import (
    ConfigurationError,
    SessionExistsError,
)
from ..events import PreparedEvent
from ..keys import Key, UserKey
from ..metadata import Unset
from ..options import ServiceOptions, expiry
from ..records import CleanupProgress, CleanupResult, Event, Session
from ..service import SessionService
from ..state import ScopedDelta
from ..summaries import StoredSummary
from ..tracks import TrackEvent
from .appends import SessionWrites
from .cleanup import run_cleanup
from .database import Database
from .engine import make_engine, prepare_engine, rules_of
from .errors import ConnectionLost, translate_errors
from .held import hold_connections, release_held
from .history import HistorySQL, SessionHistory
from .models import DEFAULT_PREFIX
from .native import DRIVER_TX, DriverRow, DriverTx, NativeSQL, driver_read, driver_read_sets, run_transaction
from .queries import Queries
from .reads import ReadSQL
from .replicas import DEFAULT_MAX_STALENESS_S, ReadRouter, replica_urls, seconds_option, session_scopes, user_scopes
from .session_reads import SessionReads
from .summaries_tracks import SummariesAndTracksSQL
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
        read_engines: list[AsyncEngine] | None = None,
        max_replica_staleness_s: float = DEFAULT_MAX_STALENESS_S,
    ) -> None:
        options = options or ServiceOptions()
        if options.async_persist and options.persist_workers is None and rules_of(engine).single_writer:
            options = replace(options, persist_workers=1)  # SQLite: more workers would only take turns
        super().__init__(options)
        self.db = Database(engine, self.options, table_prefix=table_prefix, schema=schema)
        self.engine = engine
        self.rules = self.db.rules
        self.table_prefix = self.db.table_prefix
        self.schema = schema
        self.auto_migrate = auto_migrate
        self.tables = self.db.tables
        self.q = Queries(self.tables, self.rules)
        self._tx_class = DRIVER_TX[engine.dialect.driver]
        self.r = ReadSQL(self.tables, self.rules, engine.dialect, self._tx_class.style)
        self.w = WriteSQL(self.tables, self.rules, engine.dialect, self._tx_class.style)
        self.writes = SessionWrites(
            engine, self.rules, self.w, self.options, self._tx_class,
            native=self._native, retrying=self._retrying, stored_event=lambda *a: self.reads.stored_event(*a),
        )
        self.reads = SessionReads(
            self.r, self.q, self._tx_class, self.writes,
            read=self._driver_read, read_sets=self._driver_read_sets, read_core=self._read,
        )
        self.extras = SummariesAndTracksSQL(self.tables, self.rules, self.q)
        format_table = engine.dialect.identifier_preparer.format_table
        self.history = SessionHistory(
            HistorySQL(format_table(self.tables.sessions), format_table(self.tables.events), self.rules, self._tx_class.style),
            self.r, self.writes, self.options, self._tx_class, native=self._native, read=self._driver_read,
        )
        self._owns_engine = owns_engine
        if owns_engine:
            hold_connections(engine)  # (sql/held.py: the hot path skips the pool)
        self.router: ReadRouter | None = None
        """With read_url: which reads go to a replica (sql/replicas.py)."""
        if read_engines:
            if self.rules.wal_position_sql is None:
                raise ConfigurationError("read_url (read replicas) is for PostgreSQL only")
            self.router = ReadRouter(engine, read_engines, self.rules, max_replica_staleness_s)
        self._ready = False
        self._ready_lock = asyncio.Lock()

    @classmethod
    def from_target(cls, target: str | URL | AsyncEngine, options: ServiceOptions, **rest: Any) -> SQLSessionService:
        """Build from a URL (we own and dispose the engine) or a caller's AsyncEngine (we never dispose it)."""
        service_kw: dict[str, Any] = {k: rest.pop(k) for k in ("table_prefix", "schema", "auto_migrate") if k in rest}
        read_urls = replica_urls(rest.pop("read_url", None))
        if "max_replica_staleness" in rest:
            service_kw["max_replica_staleness_s"] = seconds_option("max_replica_staleness", rest.pop("max_replica_staleness"))
        unknown = set(rest) - ENGINE_OPTIONS
        if unknown:
            raise ConfigurationError(f"unknown options: {', '.join(sorted(unknown))}")
        if isinstance(target, AsyncEngine):
            if rest:
                raise ConfigurationError("engine options cannot be applied to an AsyncEngine you pass in")
            prepare_engine(target)
            replicas = [make_engine(url) for url in read_urls]
            return cls(target, options, owns_engine=False, read_engines=replicas, **service_kw)
        if not isinstance(target, (str, URL)):
            raise ConfigurationError(f"open_service needs a URL or an AsyncEngine, got {type(target).__name__}")
        engine_options = {"json_serializer": jsonvalue.dumps_str, "json_deserializer": jsonvalue.loads, **rest}
        replicas = [make_engine(url, **engine_options) for url in read_urls]
        return cls(make_engine(target, **engine_options), options, owns_engine=True, read_engines=replicas, **service_kw)

    @property
    def db_system(self) -> str:
        return self.rules.name

    # ------------------------------------------------------------------ lifecycle

    async def _start(self) -> None:
        await self._ensure_ready()

    async def _close(self) -> None:
        if self.router is not None:
            await self.router.dispose()
        if self._owns_engine:
            await release_held(self.engine)
            await self.engine.dispose()

    async def _ensure_ready(self) -> None:
        """Check the schema once (or migrate it, with auto_migrate) before the first use."""
        if self._ready:
            return
        async with self._ready_lock:
            if self._ready:
                return
            from .migrate import ensure_schema

            with translate_errors(self.engine, self.rules.connection_problem):
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

    async def _driver_read(
        self, stmt: NativeSQL, params: dict[str, Any], scopes: tuple[Hashable, ...] | None = None
    ) -> list[DriverRow]:
        """Run one read statement (sql/reads.py) on a leased driver connection: of a replica
        when `scopes` (what the read depends on) are given and one is fresh enough for them."""
        return await self._routed_read(
            scopes, lambda engine, fresh: driver_read(engine, self._tx_class, stmt, params, verify=fresh)
        )

    async def _driver_read_sets(
        self, stmt: NativeSQL, params: dict[str, Any], count: int, scopes: tuple[Hashable, ...] | None
    ) -> list[list[DriverRow]]:
        """Run a batch of `count` read statements (sql/batched_reads.py), routed as `_driver_read`."""
        return await self._routed_read(
            scopes, lambda engine, fresh: driver_read_sets(engine, self._tx_class, stmt, params, count, verify=fresh)
        )

    async def _routed_read(
        self, scopes: tuple[Hashable, ...] | None, read: Callable[[AsyncEngine, bool], Awaitable[T]]
    ) -> T:
        """`read(engine, fresh)` on the primary, or on a replica fresh enough for `scopes`."""
        if self.router is None or scopes is None:
            return await self._retrying(lambda fresh: read(self.engine, fresh), write=False)

        def run(engine: AsyncEngine) -> Awaitable[T]:
            return self._retrying(lambda fresh: read(engine, fresh), write=False)

        return await self.router.read(scopes, run)

    async def _native(self, work: Callable[[DriverTx], Awaitable[T]]) -> T:
        """Run `work` in one write transaction on the driver connection."""

        return await self._retrying(lambda fresh: run_transaction(self.engine, self._tx_class, work, verify=fresh))

    async def _retrying(self, attempt: Callable[[bool], Awaitable[T]], *, write: bool = True) -> T:
        """Run an operation, rerunning it once on a fresh connection if its connection died
        (see _rerun_if_lost), and, for a write, after a deadlock, serialization failure or
        busy database (Database.retrying, which also holds this process's write gate).
        """
        await self._ensure_ready()
        with translate_errors(self.engine, self.rules.connection_problem):
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
            await tx.execute_and_commit(self.writes.shared_steps(scoped, key.app_name, key.user_id, now))

        with self._marking(session_scopes(key.app_name, key.user_id, key.session_id)):
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
        found = await self._read_session(key, limit, after, now, replica_ok=True)
        if found is None:
            return None
        session, pk = found
        if self.options.refresh_on_read and self.options.session_ttl is not None:
            new_expiry = expiry(now, self.options.session_ttl)
            await self._write(lambda conn: conn.execute(self.q.refresh_expiry(pk, new_expiry)))
        return session

    async def _read_session(
        self, key: Key, limit: int, after: datetime | None, now: datetime, *, replica_ok: bool = False
    ) -> tuple[Session, int] | None:
        return await self.reads.session(key, limit, after, now, replica_ok=replica_ok)

    async def _list_sessions(self, user_key: UserKey, limit: int, after: Cursor | None, now: datetime) -> list[Session]:
        return await self.reads.user_page(user_key, limit, after, now)

    async def _list_app_sessions(self, app_name: str, limit: int, after: Cursor | None, now: datetime) -> list[Session]:
        return await self.reads.app_page(app_name, limit, after, now)

    async def _set_session_metadata(self, key: Key, title: str | None | Unset, delta: dict[str, Any], now: datetime) -> None:
        with self._marking(session_scopes(key.app_name, key.user_id, key.session_id)):
            await self.history.set_metadata(key, title, delta, now)

    async def _delete_session(self, key: Key, now: datetime) -> None:
        stmt = self.q.delete_session(key.app_name, key.user_id, key.session_id, now, soft=self.options.soft_delete)
        with self._marking(session_scopes(key.app_name, key.user_id, key.session_id)):
            await self._write(lambda conn: conn.execute(stmt))

    # ------------------------------------------------------------------ events

    async def _append_event(
        self, key: Key, prepared: PreparedEvent, expected_version: int | None, now: datetime, known_version: int
    ) -> tuple[Event, int, bool]:
        """Store the event (sql/appends.py: the dialect's fast path if it applies, else the general transaction)."""
        with self._marking(session_scopes(key.app_name, key.user_id, key.session_id)):
            return await self.writes.append(key, prepared, expected_version, now, known_version)

    async def _append_events(
        self, key: Key, prepared: list[PreparedEvent], expected_version: int | None, now: datetime
    ) -> tuple[list[Event], int, list[bool]]:
        with self._marking(session_scopes(key.app_name, key.user_id, key.session_id)):
            return await self.history.append_events(key, prepared, expected_version, now)

    async def _delete_event(self, key: Key, event_id: str, now: datetime) -> bool:
        with self._marking(session_scopes(key.app_name, key.user_id, key.session_id)):
            return await self.history.delete_event(key, event_id, now)

    async def _list_events(
        self, key: Key, after_seq: int | None, before_seq: int | None, limit: int, forward: bool, now: datetime
    ) -> list[Event]:
        return await self.history.list_events(key, after_seq, before_seq, limit, forward, now)

    async def _trim_events(self, key: Key, keep_last: int, now: datetime) -> int:
        with self._marking(session_scopes(key.app_name, key.user_id, key.session_id)):
            return await self.history.trim(key, keep_last, now)

    # ------------------------------------------------------------------ state

    async def _update_session_state(self, key: Key, scoped: ScopedDelta, now: datetime) -> None:
        with self._marking(session_scopes(key.app_name, key.user_id, key.session_id)):
            await self.writes.update_session_state(key, scoped, now)

    async def _update_shared_state(self, scoped: ScopedDelta, app_name: str, user_id: str | None, now: datetime) -> None:
        scopes = user_scopes(app_name, user_id) if user_id is not None else (("a", app_name),)
        with self._marking(scopes):
            await self._native(lambda tx: tx.execute_and_commit(self.writes.shared_steps(scoped, app_name, user_id, now)))

    async def _list_app_state(self, app_name: str, now: datetime) -> dict[str, Any]:
        return await self.reads.app_state(app_name, now)

    async def _list_user_state(self, user_key: UserKey, now: datetime) -> dict[str, Any]:
        return await self.reads.user_state(user_key, now)

    # ------------------------------------------------------------------ cleanup

    async def _cleanup(self, dry_run: bool, progress: CleanupProgress | None) -> CleanupResult:
        await self._ensure_ready()
        with translate_errors(self.engine, self.rules.connection_problem):
            return await run_cleanup(self.db, dry_run=dry_run, progress=progress)

    # ------------------------------------------------------------------ summaries and track events (sql/summaries_tracks.py)

    async def _get_summary(self, key: Key, filter_key: str, now: datetime) -> StoredSummary | None:
        return await self.extras.get_summary(self._read, key, filter_key, now)

    async def _put_summary(self, key: Key, filter_key: str, summary: StoredSummary, now: datetime) -> bool:
        return await self.extras.put_summary(self._write, key, filter_key, summary, now)

    async def _events_after(self, key: Key, after_seq: int, limit: int, now: datetime) -> list[Event] | None:
        return await self.extras.events_after(self._read, key, after_seq, limit, now)

    async def _append_track_event(self, key: Key, track: str, payload: Any, timestamp: datetime, now: datetime) -> TrackEvent:
        return await self.extras.append_track_event(self._write, key, track, payload, timestamp, now)

    async def _get_track_events(
        self, key: Key, track: str, limit: int, after_seq: int | None, after_time: datetime | None, now: datetime
    ) -> list[TrackEvent]:
        return await self.extras.get_track_events(self._read, key, track, limit, after_seq, after_time, now)

    async def _list_tracks(self, key: Key, now: datetime) -> list[str]:
        return await self.extras.list_tracks(self._read, key, now)

    # ------------------------------------------------------------------ internals

    @contextmanager
    def _marking(self, scopes: tuple[Hashable, ...]) -> Iterator[None]:
        """Tell the read router (if any) that a write touching `scopes` returned, however it ended
        (a failed commit may still have reached the database): read-your-writes."""
        try:
            yield
        finally:
            if self.router is not None:
                self.router.wrote(scopes)


__all__ = ["SQLSessionService"]
