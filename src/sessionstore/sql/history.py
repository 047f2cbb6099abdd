"""The SQL backend's batch appends, history edits and session metadata (docs/history.md).

Each operation is one write transaction on the driver connection (sql/native.py)
that first locks the session row, as appends do, so it queues behind them and
they behind it:

- a batch append (`append_events`): lock the row, check the version, insert
  every event with multi-row INSERTs, write the session's state and counters
  once, the app:/user: keys once each, commit. An event id already stored
  fails the insert on the (session, event id) unique index: the transaction
  rolls back, the stored events are read, and the batch runs again without
  them (a retried batch whose events are all stored returns them, no write).
- delete_event, trim/clear: lock the row, count, delete by seq range.
- metadata: lock the row, merge the delta in Python, write title and meta.

Statements are hand-written and compiled once per service (HistorySQL).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from .. import jsonvalue
from ..errors import ConflictError, DatabaseError, SessionNotFoundError
from ..events import PreparedEvent
from ..keys import Key
from ..metadata import Unset, apply_metadata
from ..options import ServiceOptions, expiry
from ..records import Event
from ..state import ScopedDelta, apply_delta
from .appends import SessionWrites, event_row
from .dialects import DialectRules
from .native import DriverRow, DriverTx, NativeSQL, Step
from .reads import ReadSQL, decode_events
from .writes import EVENT_COLUMNS, EVENT_JSON

T = TypeVar("T")

INSERT_CHUNK = 100
"""Most events one INSERT statement carries (13 parameters each, under every driver's limit)."""
_ATTEMPTS = 4
"""Batch attempts when concurrent writers keep storing some of the batch's ids meanwhile."""


class HistorySQL:
    """The statements of this module for one service (its tables, dialect and driver)."""

    def __init__(self, sessions: str, events: str, rules: DialectRules, style: str) -> None:
        j = rules.json_param

        def sql(text: str) -> NativeSQL:
            return NativeSQL(text, style)

        live = (
            "app_name = :app_name AND user_id = :user_id AND session_id = :session_id "
            f"AND {rules.active_sql()} AND (expires_at IS NULL OR expires_at > :now)"
        )
        self.lock = sql(f"SELECT pk, version, last_seq, state, title, meta FROM {sessions} WHERE {live}{rules.for_update}")
        """The active session row, locked until the transaction ends."""
        self.after_batch = sql(
            f"UPDATE {sessions} SET version = version + 1, last_seq = :last_seq, updated_at = :now, "
            f"expires_at = :expires_at, state = {j('state')} WHERE pk = :pk"
        )
        self.set_metadata = sql(f"UPDATE {sessions} SET title = :title, meta = {j('meta')} WHERE pk = :pk")
        self.event_exists = sql(f"SELECT 1 FROM {events} WHERE session_pk = :pk AND event_id = :event_id")
        self.delete_event = sql(f"DELETE FROM {events} WHERE session_pk = :pk AND event_id = :event_id")
        self.cut_seq = sql(f"SELECT seq FROM {events} WHERE session_pk = :pk ORDER BY seq DESC LIMIT 1 OFFSET :keep")
        """The newest seq to remove when keeping the newest :keep events (no row: nothing to remove)."""
        self.count_upto = sql(f"SELECT COUNT(*) FROM {events} WHERE session_pk = :pk AND seq <= :cut")
        self.delete_upto = sql(f"DELETE FROM {events} WHERE session_pk = :pk AND seq <= :cut")
        self._insert_head = f"INSERT INTO {events} ({', '.join(EVENT_COLUMNS)}) VALUES "
        self._json_param = j
        self._style = style
        self._inserts: dict[int, NativeSQL] = {}

    def insert_events(self, rows: int) -> NativeSQL:
        """INSERT of `rows` events, parameters ``{column}_{row}``; built once per row count."""
        stmt = self._inserts.get(rows)
        if stmt is None:
            j = self._json_param
            tuples = ", ".join(
                "(" + ", ".join(j(f"{c}_{i}") if c in EVENT_JSON else f":{c}_{i}" for c in EVENT_COLUMNS) + ")"
                for i in range(rows)
            )
            stmt = NativeSQL(self._insert_head + tuples, self._style)
            self._inserts[rows] = stmt
        return stmt


class _Recheck(Exception):  # noqa: N818 - a control-flow signal inside this module, not an error
    """Internal: some of the batch may be stored already; roll back, look, run again."""


class SessionHistory:
    """Batch appends, history edits and metadata writes for one SQL service."""

    def __init__(
        self,
        statements: HistorySQL,
        reads: ReadSQL,
        writes: SessionWrites,
        options: ServiceOptions,
        tx_class: type[DriverTx],
        *,
        native: Callable[[Callable[[DriverTx], Awaitable[Any]]], Awaitable[Any]],
        read: Callable[[NativeSQL, dict[str, Any]], Awaitable[list[DriverRow]]],
    ) -> None:
        self.h = statements
        self.r = reads
        self.writes = writes
        self.options = options
        self._tx_class = tx_class
        self._native = native
        self._read = read

    def _owner(self, key: Key, now: datetime) -> dict[str, Any]:
        return {
            "app_name": key.app_name, "user_id": key.user_id, "session_id": key.session_id,
            "now": self._tx_class.time(now),
        }

    async def _locked(self, tx: DriverTx, key: Key, now: datetime) -> DriverRow:
        row = await tx.fetchone(self.h.lock, self._owner(key, now))
        if row is None:
            raise SessionNotFoundError(f"session {key.session_id!r} not found")
        return row

    # ------------------------------------------------------------------ batch append

    async def append_events(
        self, key: Key, prepared: list[PreparedEvent], expected_version: int | None, now: datetime
    ) -> tuple[list[Event], int, list[bool]]:
        known: dict[str, Event] = {}
        looked = False
        for _ in range(_ATTEMPTS):
            pending = [p for p in prepared if p.event.id not in known]
            if not pending:  # every event is stored already: a retried batch
                version = await self._version(key, now)
                return [known[p.event.id] for p in prepared], version, [True] * len(prepared)
            async def work(tx: DriverTx, pending: list[PreparedEvent] = pending, looked: bool = looked) -> int:
                return await self._batch(tx, key, pending, expected_version, now, looked)

            try:
                version = await self._native(work)
            except _Recheck:
                known = await self._stored(key, [p.event.id for p in prepared], now)
                looked = True
                continue
            return (
                [known.get(p.event.id) or p.event for p in prepared], version, [p.event.id in known for p in prepared]
            )
        raise DatabaseError(f"append_events on session {key.session_id!r} kept clashing with concurrent appends")

    async def _batch(
        self, tx: DriverTx, key: Key, pending: list[PreparedEvent], expected_version: int | None, now: datetime,
        looked: bool,
    ) -> int:
        """One attempt: lock, check, insert, update, shared state, commit; the version after."""
        at = self._tx_class.time
        row = await self._locked(tx, key, now)
        pk, version, last_seq, state = row[0], row[1], row[2], row[3]
        if expected_version is not None and version != expected_version:
            if not looked:
                raise _Recheck  # a retried batch never conflicts: look for stored ids first
            raise ConflictError(
                f"session {key.session_id!r} is at version {version}, not {expected_version}",
                expected=expected_version, actual=version,
            )
        stamp = at(now)
        steps: list[Step] = []
        session_state = _json(state)
        combined = ScopedDelta()
        for start in range(0, len(pending), INSERT_CHUNK):
            chunk = pending[start : start + INSERT_CHUNK]
            params: dict[str, Any] = {}
            for i, p in enumerate(chunk):
                values = event_row(p, at(p.event.timestamp), stamp) | {"session_pk": pk, "seq": last_seq + start + i + 1}
                params.update({f"{name}_{i}": value for name, value in values.items()})
            steps.append((self.h.insert_events(len(chunk)), params))
        for p in pending:
            apply_delta(session_state, p.scoped.session)
            combined.app.update(p.scoped.app)
            combined.user.update(p.scoped.user)
        steps.append((self.h.after_batch, {
            "pk": pk, "last_seq": last_seq + len(pending), "now": stamp,
            "expires_at": at(expiry(now, self.options.session_ttl)), "state": jsonvalue.dumps_str(session_state),
        }))
        steps.extend(self.writes.shared_steps(combined, key.app_name, key.user_id, now))
        try:
            await tx.execute_and_commit(steps)
        except Exception as exc:
            if self.writes.rules.is_unique_violation(exc):  # (session, event id): stored already
                raise _Recheck from None
            raise
        for i, p in enumerate(pending):
            p.event.seq = last_seq + i + 1
        return int(version) + 1

    async def _stored(self, key: Key, ids: list[str], now: datetime) -> dict[str, Event]:
        """The events of the session with these ids (SessionNotFoundError if it is not active)."""
        params = self._owner(key, now) | {f"id_{i}": event_id for i, event_id in enumerate(ids)}
        found = decode_events(await self._read(self.r.events_by_id(len(ids)), params), self._tx_class, forward=True)
        if found is None:
            raise SessionNotFoundError(f"session {key.session_id!r} not found")
        return {e.id: e for e in found}

    async def _version(self, key: Key, now: datetime) -> int:
        async def work(tx: DriverTx) -> int:
            return int((await self._locked(tx, key, now))[1])

        result: int = await self._native(work)
        return result

    # ------------------------------------------------------------------ history edits

    async def delete_event(self, key: Key, event_id: str, now: datetime) -> bool:
        async def work(tx: DriverTx) -> bool:
            row = await tx.fetchone(self.h.lock, self._owner(key, now))
            if row is None:
                return False
            params = {"pk": row[0], "event_id": event_id}
            if await tx.fetchone(self.h.event_exists, params) is None:
                return False
            await tx.execute_and_commit([(self.h.delete_event, params)])
            return True

        result: bool = await self._native(work)
        return result

    async def trim(self, key: Key, keep_last: int, now: datetime) -> int:
        async def work(tx: DriverTx) -> int:
            pk = (await self._locked(tx, key, now))[0]
            cut = await tx.fetchone(self.h.cut_seq, {"pk": pk, "keep": keep_last})
            if cut is None:
                return 0
            params = {"pk": pk, "cut": cut[0]}
            count = await tx.fetchone(self.h.count_upto, params)
            await tx.execute_and_commit([(self.h.delete_upto, params)])
            return int(count[0]) if count is not None else 0

        result: int = await self._native(work)
        return result

    async def list_events(
        self, key: Key, after_seq: int | None, before_seq: int | None, limit: int, forward: bool, now: datetime
    ) -> list[Event]:
        params = self._owner(key, now) | {
            "after_seq": -1 if after_seq is None else after_seq,
            "before_seq": _NO_END if before_seq is None else before_seq,
            "limit": limit,
        }
        found = decode_events(await self._read(self.r.events_page[forward], params), self._tx_class, forward=forward)
        if found is None:
            raise SessionNotFoundError(f"session {key.session_id!r} not found")
        return found

    # ------------------------------------------------------------------ metadata

    async def set_metadata(self, key: Key, title: str | None | Unset, delta: dict[str, Any], now: datetime) -> None:
        async def work(tx: DriverTx) -> None:
            row = await self._locked(tx, key, now)
            pk, old_title, old_meta = row[0], row[4], row[5]
            meta = _json(old_meta) if old_meta is not None else None
            merged = apply_metadata(meta if isinstance(meta, dict) else {}, delta)
            new_title = self._tx_class.text_out(old_title) if isinstance(title, Unset) else title
            params = {"pk": pk, "title": new_title, "meta": jsonvalue.dumps_str(merged)}
            await tx.execute_and_commit([(self.h.set_metadata, params)])

        await self._native(work)


_NO_END = 2**62
"""before_seq when none is given: above every seq."""


def _json(value: Any) -> Any:
    """A JSON column as the driver returned it in a transaction (text, or decoded on asyncpg)."""
    return jsonvalue.loads(value) if isinstance(value, (str, bytes)) else value
