"""The cleanup job of the SQL backend: expire, purge and trim in bounded batches.

One round, under a database-wide lock so that only one process cleans at a
time (PostgreSQL advisory lock, MySQL/MariaDB GET_LOCK). SQLite has no named
locks: there each batch is an IMMEDIATE transaction, so the database's write
lock serialises concurrent cleaners batch by batch, and a batch that picks
rows and acts on them does both in one transaction, so no row is counted
twice.

Every batch is its own short transaction, so appends keep flowing while a
large cleanup runs: it touches at most cleanup_batch_size rows, and fewer
(halving down to MIN_ROWS) while transactions take longer than TX_BUDGET_S;
after each one the cleaner pauses twice as long as it took (PAUSE_FACTOR), so
it never holds the database, or this process's event loop, more than about a
third of the time. Keys never travel to this process and back in bulk: batches are
``UPDATE/DELETE ... LIMIT``-style statements or exact (session, seq) ranges.

The steps of a round, in order (docs/ttl.md):

1. sessions whose expires_at has passed: soft_delete marks them deleted
   (their events stay until the tombstone is purged); hard delete first marks
   a batch deleted (so the session vanishes at once, before any of its
   children go), then deletes its events, summaries and track events, then
   the session rows;
2. session tombstones older than tombstone_retention: deleted with their
   events, summaries and track events;
3. app state and 4. user state keys whose expires_at has passed: marked
   deleted (or deleted), then their tombstones older than the retention purged;
5. events of live sessions beyond the newest event_limit: deleted.

Track events removed with their session are counted (track_events_removed);
summaries go with it uncounted.

Rows are picked and acted on with the expiry condition checked again in the
statement that acts, so a row that a concurrent write refreshed between the
two (an app/user state key written again, a session read with
refresh_on_read) is left alone. Deadlocks and busy errors are retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from time import perf_counter
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    delete,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from ..records import CleanupProgress as Progress
from ..records import CleanupResult
from ..retry import retrying
from . import partitions
from .database import Database
from .queries import alive

log = logging.getLogger("sessionstore.cleanup")

T = TypeVar("T")

PAUSE_FACTOR = 2.0
"""After each batch the cleaner sleeps this many times as long as the batch took.
(2 measured better than 1 for the append tail on MariaDB, at a third less throughput.)"""
TX_BUDGET_S = 0.0003
MIN_ROWS = 20
"""A batch is at most cleanup_batch_size rows; while transactions take longer than
TX_BUDGET_S the cleaner halves its rows per transaction, down to MIN_ROWS."""


def lock_name(table_prefix: str) -> str:
    """The database-wide lock one cleaner holds for a round."""
    return f"sessionstore-cleanup-{table_prefix}"


def _expired(db: Database, table: Any, now: datetime) -> ColumnElement[bool]:
    return and_(db.rules.active(table), table.c.expires_at <= now)


class _Round:
    """One cleanup round on one database."""

    def __init__(self, db: Database, now: datetime, dry_run: bool, progress: Progress | None) -> None:
        self.db = db
        self.rules = db.rules
        self.options = db.options
        self.t = db.tables
        self.now = now
        self.dry_run = dry_run
        self.batch = db.options.cleanup_batch_size
        self.rows = self.batch  # rows per transaction now: shrinks while transactions run long
        self.horizon = now - db.options.tombstone_retention
        self.progress = progress or (lambda step, n: None)
        self.track_events_removed = 0  # by the steps that remove sessions with their children

    def _in(self, column: Any, pks: list[int]) -> ColumnElement[bool]:
        return self.rules.in_pks(column, pks)

    async def run(self, result: CleanupResult) -> None:
        # One write connection for the whole round: checking one out per batch
        # cost time inside the write gate on SQLite, where appends wait for it.
        async with self.db.writer.connect() as conn:
            self.write_conn = conn
            await self._steps(result)

    async def _steps(self, result: CleanupResult) -> None:
        s = self.t.sessions
        dropped = 0
        if self.rules.partitioned_events and not self.dry_run:
            # First: events of sessions this round removes go with their partition, if whole.
            async with self.db.engine.connect() as conn:
                dropped = await partitions.maintain(
                    conn, self.t, self.db.schema, hard_delete=not self.options.soft_delete,
                    now=self.now, horizon=self.horizon,
                ) or 0
            if dropped:
                self.progress("events removed", dropped)
        if self.options.soft_delete:
            result.sessions_expired = await self._mark_deleted(s, _expired(self.db, s, self.now), "sessions expired")
        else:
            result.sessions_expired, result.events_removed = await self._hard_expire_sessions()
        purged, events = await self._purge_sessions(s.c.deleted_at <= self.horizon)
        result.tombstones_purged += purged
        result.events_removed += events + dropped
        for table, field in ((self.t.app_state, "app_state_expired"), (self.t.user_state, "user_state_expired")):
            expired = _expired(self.db, table, self.now)
            step = field.replace("_", " ")
            if self.options.soft_delete:
                setattr(result, field, await self._mark_deleted(table, expired, step))
            else:
                setattr(result, field, await self._delete_where(table, expired, step))
            result.tombstones_purged += await self._delete_where(
                table, table.c.deleted_at <= self.horizon, "tombstones purged"
            )
        result.events_trimmed = await self._trim_events()
        result.track_events_removed = self.track_events_removed

    # ---- building blocks: one short transaction per batch

    async def _tx(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run `work` in one write transaction, retrying deadlocks and busy errors.

        Then pause in proportion to the time it took (PAUSE_FACTOR), so the
        cleaner never takes more than its share of the database and of this
        process's event loop: the service's own requests keep flowing.
        """

        async def attempt() -> tuple[T, float]:
            started = perf_counter()
            async with self.db.gated(), self.write_conn.begin():
                done = await work(self.write_conn)
            return done, perf_counter() - started

        done, elapsed = await retrying(attempt, self.rules.is_retryable)
        self._adapt(elapsed)
        await asyncio.sleep(elapsed * PAUSE_FACTOR)
        return done

    def _adapt(self, elapsed: float) -> None:
        """Halve the rows per transaction while one takes longer than TX_BUDGET_S
        (down to MIN_ROWS), double them back (up to cleanup_batch_size) while quick."""
        if elapsed > TX_BUDGET_S and self.rows > MIN_ROWS:
            self.rows = max(MIN_ROWS, self.rows // 2)
        elif elapsed < TX_BUDGET_S / 2 and self.rows < self.batch:
            self.rows = min(self.batch, self.rows * 2)

    async def _batches(self, table: Any, where: ColumnElement[bool], stmt: Any, step: str) -> int:
        """Run `stmt` (an UPDATE or DELETE of `table`) on up to `self.rows` rows matching
        `where` per transaction until fewer remain (in a dry run, count them instead).
        Returns the rows acted on."""
        if self.dry_run:
            return await self._count(select(table.c.pk).where(where))
        statements: dict[int, Any] = {}  # by LIMIT (MySQL renders it into the SQL)
        total = 0
        while True:
            rows = self.rows
            if rows not in statements:
                statements[rows] = self.rules.limited(stmt, table, where, rows)
            done = await self._tx(partial(_rowcount, stmt=statements[rows]))
            total += done
            if done:
                self.progress(step, done)
            if done < rows:
                return total

    async def _count(self, pick: Any) -> int:
        async with self.db.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(pick.subquery()))).scalar_one())

    async def _mark_deleted(self, table: Any, where: ColumnElement[bool], step: str) -> int:
        """Soft-delete rows matching `where` (checked again on each row as it is marked)."""
        return await self._batches(
            table, where, update(table).values(deleted_at=self.now, updated_at=self.now), step
        )

    async def _delete_where(self, table: Any, where: ColumnElement[bool], step: str) -> int:
        """Delete rows matching `where` (checked again on each row as it is deleted)."""
        return await self._batches(table, where, delete(table), step)

    async def _hard_expire_sessions(self) -> tuple[int, int]:
        """Hard-delete expired sessions with their children. Returns (sessions, events) removed.

        Each batch of sessions is first marked deleted under a row lock (one
        short transaction), so it is invisible and immune to writes from then
        on; its children and the rows themselves go in the batches that follow.
        """
        s = self.t.sessions
        where = _expired(self.db, s, self.now)
        if self.dry_run:
            return await self._count_sessions_and_events(where)

        async def claim_batch(rows: int) -> list[int]:
            pick = self.rules.lock_rows(select(s.c.pk).where(where).limit(rows))

            async def claim(conn: AsyncConnection) -> list[int]:
                pks = list((await conn.execute(pick)).scalars())
                if pks:
                    await conn.execute(
                        update(s).where(self._in(s.c.pk, pks)).values(deleted_at=self.now, updated_at=self.now)
                    )
                return pks

            return await self._tx(claim)

        return await self._remove_sessions(claim_batch, "sessions expired")

    async def _purge_sessions(self, where: ColumnElement[bool]) -> tuple[int, int]:
        """Delete session tombstones matching `where` with their children. Returns (sessions, events)."""
        s = self.t.sessions
        if self.dry_run:
            return await self._count_sessions_and_events(where)

        async def next_batch(rows: int) -> list[int]:
            async with self.db.engine.connect() as conn:
                return list((await conn.execute(select(s.c.pk).where(where).limit(rows))).scalars())

        return await self._remove_sessions(next_batch, "tombstones purged")

    async def _remove_sessions(self, next_batch: Callable[[int], Awaitable[list[int]]], step: str) -> tuple[int, int]:
        """Take batches of deleted-marked sessions from `next_batch(rows)` and purge each with its
        children, until a batch comes back short. Returns (sessions, events) removed."""
        sessions = events = 0
        while True:
            rows = self.rows
            pks = await next_batch(rows)
            if pks:
                removed, removed_events = await self._purge_pks(pks, step)
                sessions += removed
                events += removed_events
            if len(pks) < rows:
                return sessions, events

    async def _count_sessions_and_events(self, where: ColumnElement[bool]) -> tuple[int, int]:
        """What removing the sessions matching `where` would remove: (sessions, events)."""
        s, e, te = self.t.sessions, self.t.events, self.t.track_events
        doomed = select(s.c.pk).where(where)
        self.track_events_removed += await self._count(select(te.c.pk).where(te.c.session_pk.in_(doomed)))
        return await self._count(doomed), await self._count(select(e.c.pk).where(e.c.session_pk.in_(doomed)))

    async def _purge_pks(self, pks: list[int], step: str) -> tuple[int, int]:
        """Delete these (already deleted-marked) sessions: children first, batch by batch,
        so no single transaction deletes a whole large history. Returns (sessions, events)."""
        s = self.t.sessions
        events = await self._delete_events_of(pks)
        summaries, tracks = self.t.summaries, self.t.track_events
        await self._delete_where(summaries, self._in(summaries.c.session_pk, pks), "summaries removed")
        self.track_events_removed += await self._delete_where(
            tracks, self._in(tracks.c.session_pk, pks), "track events removed"
        )
        sessions = await self._delete_where(s, and_(self._in(s.c.pk, pks), s.c.deleted_at.is_not(None)), step)
        return sessions, events

    async def _delete_events_of(self, pks: list[int]) -> int:
        """Delete every event of these sessions, at most `self.rows` rows per transaction.

        Each DELETE names an exact range of the (session_pk, seq) index: sessions
        whose whole history fits go together, longer ones by seq range. (A
        DELETE ... LIMIT would make the database walk past the index entries of
        rows it deleted a batch ago but has not purged yet, and MariaDB chose
        a full table scan for it.)
        """
        s, e = self.t.sessions, self.t.events
        of_session = e.c.session_pk == s.c.pk
        first = select(func.min(e.c.seq)).where(of_session).scalar_subquery()  # an index probe each
        last = select(func.max(e.c.seq)).where(of_session).scalar_subquery()
        async with self.db.engine.connect() as conn:
            spans = (await conn.execute(select(s.c.pk, first, last).where(self._in(s.c.pk, pks)))).all()
        total = 0
        group: list[int] = []
        grouped = 0
        for pk, first_seq, last_seq in spans:
            if first_seq is None:
                continue  # no events
            span = last_seq - first_seq + 1
            if span > self.rows:
                total += await self._delete_seqs(pk, first_seq, last_seq, "events removed")
                continue
            if grouped + span > self.rows:
                total += await self._delete_group(group)
                group, grouped = [], 0
            group.append(pk)
            grouped += span
        if group:
            total += await self._delete_group(group)
        return total

    async def _delete_group(self, pks: list[int]) -> int:
        e = self.t.events
        done = await self._tx(lambda conn: _rowcount(conn, delete(e).where(self._in(e.c.session_pk, pks))))
        if done:
            self.progress("events removed", done)
        return done

    async def _delete_seqs(self, session_pk: int, first: int, last: int, step: str) -> int:
        """Delete one session's events with first <= seq <= last, `self.rows` seqs per transaction."""
        e = self.t.events
        stmt = delete(e).where(
            e.c.session_pk == bindparam("c_session"), e.c.seq >= bindparam("c_from"), e.c.seq < bindparam("c_to")
        )
        total = 0
        lo = first
        while lo <= last:
            params = {"c_session": session_pk, "c_from": lo, "c_to": min(lo + self.rows, last + 1)}
            done = await self._tx(partial(_rowcount, stmt=stmt, params=params))
            lo = params["c_to"]
            total += done
            if done:
                self.progress(step, done)
        return total

    async def _trim_events(self) -> int:
        """Delete each live session's events beyond the newest event_limit.

        Only sessions that still hold such events are visited (an index probe
        on (session_pk, seq) each), and each is trimmed by seq range. Expired
        sessions are left to expiry, which removes all their events.
        """
        s, e = self.t.sessions, self.t.events
        limit = self.options.event_limit
        if limit is None:  # event_limit=None: every event is kept
            return 0
        first = select(func.min(e.c.seq)).where(e.c.session_pk == s.c.pk).scalar_subquery()
        has_old = exists().where(e.c.session_pk == s.c.pk, e.c.seq <= s.c.last_seq - limit)
        total = 0
        after_pk = 0
        while True:
            async with self.db.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        select(s.c.pk, s.c.last_seq, first)
                        .where(s.c.pk > after_pk, alive(self.rules, s, self.now), s.c.last_seq > limit, has_old)
                        .order_by(s.c.pk)
                        .limit(self.batch)
                    )
                ).all()
            for pk, last_seq, oldest in rows:
                cutoff = last_seq - limit
                if self.dry_run:
                    total += await self._count(select(e.c.pk).where(e.c.session_pk == pk, e.c.seq <= cutoff))
                else:
                    total += await self._delete_seqs(pk, oldest, cutoff, "events trimmed")
            if len(rows) < self.batch:
                return total
            after_pk = rows[-1][0]


async def _rowcount(conn: AsyncConnection, stmt: Any, params: dict[str, Any] | None = None) -> int:
    return (await conn.execute(stmt, params)).rowcount


async def _keep_lock(db: Database, conn: AsyncConnection, name: str) -> None:
    """Renew a lock that is a lease (Galera, sql/leases.py) every third of its length while
    the round runs; elsewhere the lock lasts as long as the connection and this returns at once."""
    from .leases import LEASE_S

    if not db.rules.has_named_locks:
        return
    while True:
        await asyncio.sleep(LEASE_S / 3)
        if not await db.rules.renew_lock(conn, name):
            log.warning("sessionstore cleanup lost its lease on %s; another cleaner may have taken over", name)
            return


async def run_cleanup(
    db: Database, *, dry_run: bool = False, progress: Progress | None = None
) -> CleanupResult:
    """One cleanup round; skipped (result.skipped) if another process holds the cleanup lock.

    ``progress(step, n)`` is called after each batch with the step's name (one
    of CLEANUP_STEPS) and the rows that batch removed. The result is also logged as
    one line on the ``sessionstore.cleanup`` logger, its fields attached to
    the record as ``record.cleanup`` (a dict) for structured log handlers.
    """
    started = perf_counter()
    result = CleanupResult(dry_run=dry_run)
    name = lock_name(db.table_prefix)
    async with db.engine.connect() as lock_conn:
        if not await db.rules.try_lock(lock_conn, name):
            await lock_conn.commit()
            result.skipped = True
            result.seconds = perf_counter() - started
            log.info("sessionstore cleanup skipped: another process holds %s", name, extra={"cleanup": result.as_dict()})
            return result
        await lock_conn.commit()  # the lock is session-level; end the transaction that took it
        keepalive = asyncio.create_task(_keep_lock(db, lock_conn, name))
        try:
            await _Round(db, db.options.clock(), dry_run, progress).run(result)
        finally:
            keepalive.cancel()
            await asyncio.gather(keepalive, return_exceptions=True)
            await db.rules.unlock(lock_conn, name)
            await lock_conn.commit()
    result.seconds = perf_counter() - started
    log.info("sessionstore cleanup %s", result.log_line(), extra={"cleanup": result.as_dict()})
    return result
