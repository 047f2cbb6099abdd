"""The cleanup job of the SQL backend: expire, trim and purge in bounded batches.

One round, under a database-wide lock so that only one process cleans at a
time (PostgreSQL advisory lock, MySQL/MariaDB GET_LOCK; on SQLite each batch
is an IMMEDIATE transaction, so the file lock serialises cleaners batch by
batch). Every batch is its own short transaction that touches at most
cleanup_batch_size rows, so appends keep flowing while a large cleanup runs.

A row is never resurrected once it has expired (reads, appends and updates
ignore expired rows, and create retires them first), so a batch may act on
the expired rows it found without re-checking them under a lock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from time import perf_counter
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, delete, func, select, update

from ..cleanup import CleanupResult
from .queries import active, alive

if TYPE_CHECKING:
    from .service import SQLSessionService

log = logging.getLogger("sessionstore.cleanup")

Progress = Callable[[str, int], None]
"""Called after each batch with (step name, rows in that batch)."""


def _expired(table: Any, now: datetime) -> ColumnElement[bool]:
    return and_(active(table), table.c.expires_at <= now)


class _Round:
    """One cleanup round of one service."""

    def __init__(self, svc: SQLSessionService, now: datetime, dry_run: bool, progress: Progress | None) -> None:
        self.svc = svc
        self.t = svc.tables
        self.now = now
        self.dry_run = dry_run
        self.batch = svc.options.cleanup_batch_size
        self.horizon = now - svc.options.tombstone_retention
        self.progress = progress or (lambda step, n: None)

    async def run(self, result: CleanupResult) -> None:
        s = self.t.sessions
        soft = self.svc.options.soft_delete
        if soft:
            result.sessions_expired = await self._mark_deleted(s, _expired(s, self.now), "sessions expired")
            removed, events = await self._remove_sessions(s.c.deleted_at <= self.horizon, "tombstones purged")
            result.tombstones_purged += removed
        else:
            result.sessions_expired, events = await self._remove_sessions(_expired(s, self.now), "sessions expired")
            removed, more = await self._remove_sessions(s.c.deleted_at <= self.horizon, "tombstones purged")
            result.tombstones_purged += removed
            events += more
        result.events_removed = events
        for table, field in ((self.t.app_state, "app_state_expired"), (self.t.user_state, "user_state_expired")):
            expired = _expired(table, self.now)
            if soft:
                setattr(result, field, await self._mark_deleted(table, expired, field.replace("_", " ")))
            else:
                setattr(result, field, await self._delete_where(table, expired, field.replace("_", " ")))
            result.tombstones_purged += await self._delete_where(
                table, table.c.deleted_at <= self.horizon, "tombstones purged"
            )
        result.events_trimmed = await self._trim_events()

    # ---- building blocks: each loop runs one short transaction per batch

    async def _batches(self, pick: Any, act: Callable[[list[int]], Any], step: str) -> int:
        """Repeatedly pick up to `batch` primary keys and act on them (count them in a dry run)."""
        if self.dry_run:
            return await self._count(pick)
        total = 0
        while True:
            async with self.svc._writer.begin() as conn:
                pks = list((await conn.execute(pick.limit(self.batch))).scalars())
                if pks:
                    total += (await conn.execute(act(pks))).rowcount
            if pks:
                self.progress(step, len(pks))
            if len(pks) < self.batch:
                return total
            await asyncio.sleep(0)  # let other tasks of this process run between batches

    async def _count(self, pick: Any) -> int:
        async with self.svc.engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(pick.subquery())))

    async def _mark_deleted(self, table: Any, where: ColumnElement[bool], step: str) -> int:
        return await self._batches(
            select(table.c.pk).where(where),
            lambda pks: update(table)
            .where(table.c.pk.in_(pks), active(table))
            .values(deleted_at=self.now, updated_at=self.now),
            step,
        )

    async def _delete_where(self, table: Any, where: ColumnElement[bool], step: str) -> int:
        return await self._batches(
            select(table.c.pk).where(where), lambda pks: delete(table).where(table.c.pk.in_(pks)), step
        )

    async def _remove_sessions(self, where: ColumnElement[bool], step: str) -> tuple[int, int]:
        """Hard-delete sessions matching `where` with their events, summaries and track events.

        Children go first, batch by batch, so no single transaction deletes a
        whole large history at once. Returns (sessions, events) removed.
        """
        s, e = self.t.sessions, self.t.events
        if self.dry_run:
            doomed = select(s.c.pk).where(where)
            return await self._count(doomed), await self._count(select(e.c.pk).where(e.c.session_pk.in_(doomed)))
        sessions = events = 0
        while True:
            async with self.svc.engine.connect() as conn:
                pks = list((await conn.execute(select(s.c.pk).where(where).limit(self.batch))).scalars())
            if not pks:
                return sessions, events
            events += await self._delete_where(e, e.c.session_pk.in_(pks), "events removed")
            for child in (self.t.summaries, self.t.track_events):
                await self._delete_where(child, child.c.session_pk.in_(pks), "events removed")
            sessions += await self._delete_where(s, s.c.pk.in_(pks), step)
            if len(pks) < self.batch:
                return sessions, events

    async def _trim_events(self) -> int:
        """Delete each live session's events beyond the newest event_limit.

        Expired sessions are left to expiry, which removes all their events.
        """
        s, e = self.t.sessions, self.t.events
        limit = self.svc.options.event_limit
        total = 0
        after_pk = 0
        while True:
            async with self.svc.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        select(s.c.pk, s.c.last_seq)
                        .where(s.c.pk > after_pk, alive(s, self.now), s.c.last_seq > limit)
                        .order_by(s.c.pk)
                        .limit(self.batch)
                    )
                ).all()
            for pk, last_seq in rows:
                old = and_(e.c.session_pk == pk, e.c.seq <= last_seq - limit)
                total += await self._delete_where(e, old, "events trimmed")
            if len(rows) < self.batch:
                return total
            after_pk = rows[-1].pk


async def run_cleanup(
    svc: SQLSessionService, *, dry_run: bool = False, progress: Progress | None = None
) -> CleanupResult:
    """One cleanup round; skipped (result.skipped) if another process holds the cleanup lock."""
    started = perf_counter()
    result = CleanupResult(dry_run=dry_run)
    lock_name = f"sessionstore-cleanup-{svc.table_prefix}"
    async with svc.engine.connect() as lock_conn:
        if not await svc.rules.try_lock(lock_conn, lock_name):
            result.skipped = True
            log.info("sessionstore cleanup skipped: another process holds %s", lock_name)
            return result
        await lock_conn.commit()  # the lock is session-level; end the transaction that took it
        try:
            await _Round(svc, svc.options.clock(), dry_run, progress).run(result)
        finally:
            await svc.rules.unlock(lock_conn, lock_name)
            await lock_conn.commit()
    result.seconds = perf_counter() - started
    log.info("sessionstore cleanup %s", result.log_line())
    return result
