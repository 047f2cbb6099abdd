"""The SQL side of summaries and track events: their statements and transactions.

These are rare, small operations next to appends and reads, so they are
built with SQLAlchemy Core (compiled once and cached by SQLAlchemy) and run
through the service's retrying ``_write``/``_read``. Every statement reaches
its rows through the active session row (``alive``), so summaries and track
events vanish with their session at once, before cleanup removes the rows
(sql/cleanup.py deletes them with the session and counts the track events).

Writes lock the session row first (SELECT ... FOR UPDATE; on SQLite the
IMMEDIATE transaction holds the database's write lock): two processes adding
to one track, or storing one summary, queue there, so a track's seq has no
gap or duplicate, and a summary is replaced only by one covering as many events.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import SessionNotFoundError
from ..keys import Key
from ..records import Event
from ..summaries import StoredSummary
from ..tracks import TrackEvent
from .dialects import DialectRules
from .models import Tables
from .queries import Queries, alive, event_from_row

T = TypeVar("T")
Work = Callable[[Callable[[AsyncConnection], Awaitable[T]]], Awaitable[T]]


class SummariesAndTracksSQL:
    """Summary and track-event storage on one database (the service passes its _write and _read)."""

    def __init__(self, tables: Tables, rules: DialectRules, queries: Queries) -> None:
        self.t = tables
        self.rules = rules
        s, sm, te, e = tables.sessions, tables.summaries, tables.track_events, tables.events
        of_key = (
            s.c.app_name == bindparam("app_name"),
            s.c.user_id == bindparam("user_id"),
            s.c.session_id == bindparam("session_id"),
            alive(rules, s, bindparam("now")),
        )
        self.session_pk = select(s.c.pk).where(*of_key)
        self.locked_session_pk = rules.lock_rows(select(s.c.pk).where(*of_key))
        self.read_summary = (
            select(sm.c.summary, sm.c.through_seq)
            .join(s, sm.c.session_pk == s.c.pk)
            .where(*of_key, sm.c.filter_key == bindparam("filter_key"), rules.active(sm))
        )
        self.summary_row = select(sm.c.pk, sm.c.through_seq).where(
            sm.c.session_pk == bindparam("session_pk"), sm.c.filter_key == bindparam("filter_key"), rules.active(sm)
        )
        self.newest_after = (
            select(*queries.event_columns)
            .where(e.c.session_pk == bindparam("session_pk"), e.c.seq > bindparam("after_seq"))
            .order_by(e.c.seq.desc())
            .limit(bindparam("limit"))
        )
        self.last_track_seq = select(func.coalesce(func.max(te.c.seq), 0)).where(
            te.c.session_pk == bindparam("session_pk"), te.c.track == bindparam("track")
        )
        self.track_rows = (
            select(te.c.seq, te.c.timestamp, te.c.payload)
            .join(s, te.c.session_pk == s.c.pk)
            .where(*of_key, te.c.track == bindparam("track"))
            .order_by(te.c.seq)
            .limit(bindparam("limit"))
        )
        self.track_names = select(te.c.track).join(s, te.c.session_pk == s.c.pk).where(*of_key).distinct()

    @staticmethod
    def _params(key: Key, now: datetime, **more: Any) -> dict[str, Any]:
        return {"app_name": key.app_name, "user_id": key.user_id, "session_id": key.session_id, "now": now, **more}

    # ------------------------------------------------------------------ summaries

    async def get_summary(self, read: Work[Any], key: Key, filter_key: str, now: datetime) -> StoredSummary | None:
        params = self._params(key, now, filter_key=filter_key)

        async def work(conn: AsyncConnection) -> StoredSummary | None:
            row = (await conn.execute(self.read_summary, params)).first()
            return None if row is None else StoredSummary.from_json(row.summary, row.through_seq)

        result: StoredSummary | None = await read(work)
        return result

    async def put_summary(self, write: Work[Any], key: Key, filter_key: str, summary: StoredSummary, now: datetime) -> bool:
        sm = self.t.summaries
        params = self._params(key, now)

        async def work(conn: AsyncConnection) -> bool:
            pk = (await conn.execute(self.locked_session_pk, params)).scalar()
            if pk is None:
                return False
            row = (await conn.execute(self.summary_row, {"session_pk": pk, "filter_key": filter_key})).first()
            values = {"summary": summary.to_json(), "through_seq": summary.through_seq, "updated_at": now}
            if row is None:
                await conn.execute(insert(sm).values(session_pk=pk, filter_key=filter_key, created_at=now, **values))
            elif row.through_seq <= summary.through_seq:
                await conn.execute(update(sm).where(sm.c.pk == row.pk).values(**values))
            return True

        stored: bool = await write(work)
        return stored

    async def events_after(self, read: Work[Any], key: Key, after_seq: int, limit: int, now: datetime) -> list[Event] | None:
        params = self._params(key, now)

        async def work(conn: AsyncConnection) -> list[Event] | None:
            pk = (await conn.execute(self.session_pk, params)).scalar()
            if pk is None:
                return None
            if limit == 0:
                return []
            rows = await conn.execute(self.newest_after, {"session_pk": pk, "after_seq": after_seq, "limit": limit})
            return [event_from_row(row) for row in reversed(rows.all())]

        events: list[Event] | None = await read(work)
        return events

    # ------------------------------------------------------------------ track events

    async def append_track_event(
        self, write: Work[Any], key: Key, track: str, payload: Any, timestamp: datetime, now: datetime
    ) -> TrackEvent:
        te = self.t.track_events
        params = self._params(key, now)

        async def work(conn: AsyncConnection) -> int:
            pk = (await conn.execute(self.locked_session_pk, params)).scalar()
            if pk is None:
                raise SessionNotFoundError(f"session {key.session_id!r} not found")
            seq = int((await conn.execute(self.last_track_seq, {"session_pk": pk, "track": track})).scalar_one()) + 1
            await conn.execute(
                insert(te).values(
                    session_pk=pk, track=track, seq=seq, timestamp=timestamp, payload=payload,
                    created_at=now, updated_at=now,
                )
            )
            return seq

        seq: int = await write(work)
        return TrackEvent(track, seq, timestamp, payload)

    async def get_track_events(
        self, read: Work[Any], key: Key, track: str, limit: int,
        after_seq: int | None, after_time: datetime | None, now: datetime,
    ) -> list[TrackEvent]:
        te = self.t.track_events
        stmt = self.track_rows
        if after_seq is not None:
            stmt = stmt.where(te.c.seq > after_seq)
        if after_time is not None:
            stmt = stmt.where(te.c.timestamp >= after_time)
        params = self._params(key, now, track=track, limit=limit)

        async def work(conn: AsyncConnection) -> list[TrackEvent]:
            rows = await conn.execute(stmt, params)
            return [TrackEvent(track, row.seq, row.timestamp, row.payload) for row in rows]

        records: list[TrackEvent] = await read(work)
        return records

    async def list_tracks(self, read: Work[Any], key: Key, now: datetime) -> list[str]:
        params = self._params(key, now)

        async def work(conn: AsyncConnection) -> list[str]:
            return sorted((await conn.execute(self.track_names, params)).scalars())

        names: list[str] = await read(work)
        return names
