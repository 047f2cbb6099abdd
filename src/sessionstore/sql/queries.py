"""The statements the service still runs through SQLAlchemy Core: the rare ones.

The hot reads are hand-written in sql/reads.py and the writes in sql/writes.py;
what stays here is the duplicate-append lookup, deletes and expiry refreshes.

Statements that run on every call are prebuilt with bind parameters, so a
call only binds values (SQLAlchemy caches their compiled form).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    delete,
    or_,
    select,
    update,
)

from ..records import Event
from ..state import DELETE
from .dialects import DialectRules
from .models import Tables


def alive(rules: DialectRules, table: Table, now: datetime | ColumnElement[Any]) -> ColumnElement[bool]:
    """Not deleted and not expired at `now`."""
    return and_(rules.active(table), or_(table.c.expires_at.is_(None), table.c.expires_at > now))


class Queries:
    def __init__(self, tables: Tables, rules: DialectRules) -> None:
        self.t = tables
        self.rules = rules
        s, e = tables.sessions, tables.events
        session_where = and_(
            s.c.app_name == bindparam("app_name"),
            s.c.user_id == bindparam("user_id"),
            s.c.session_id == bindparam("session_id"),
            alive(self.rules, s, bindparam("now")),
        )
        self.read_session = select(
            s.c.pk, s.c.state, s.c.version, s.c.last_seq, s.c.created_at, s.c.updated_at
        ).where(session_where)
        self.event_columns = [
            e.c.seq, e.c.event_id, e.c.author, e.c.invocation_id, e.c.branch, e.c.timestamp,
            e.c.content, e.c.state_delta, e.c.state_removed, e.c.meta,
        ]
        self.read_event_by_id = select(*self.event_columns).where(
            e.c.session_pk == bindparam("session_pk"), e.c.event_id == bindparam("event_id")
        )

    # ------------------------------------------------------------------ sessions

    def delete_session(self, app_name: str, user_id: str, session_id: str, now: datetime, *, soft: bool) -> Any:
        """Soft- or hard-delete the active row for this id (hard: its events go by cascade)."""
        s = self.t.sessions
        where = [s.c.app_name == app_name, s.c.user_id == user_id, s.c.session_id == session_id, self.rules.active(s)]
        if soft:
            return update(s).where(*where).values(deleted_at=now, updated_at=now)
        return delete(s).where(*where)

    def refresh_expiry(self, session_pk: int, expires_at: datetime) -> Any:
        """Slide an active session's expiry forward (never back over a later write's)."""
        s = self.t.sessions
        return (
            update(s)
            .where(s.c.pk == session_pk, self.rules.active(s), or_(s.c.expires_at.is_(None), s.c.expires_at < expires_at))
            .values(expires_at=expires_at)
        )


def event_from_row(row: Any) -> Event:
    """An Event from a row of Queries.event_columns."""
    delta = dict(row.state_delta or {})
    for name in row.state_removed or ():
        delta[name] = DELETE
    return Event(
        id=row.event_id, author=row.author, content=row.content, invocation_id=row.invocation_id,
        timestamp=row.timestamp, state_delta=delta, partial=False, branch=row.branch,
        metadata=row.meta if row.meta is not None else {}, seq=row.seq,
    )
