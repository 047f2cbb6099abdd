"""The reads the service runs through SQLAlchemy Core (writes are in sql/writes.py).

Statements that run on every call are prebuilt with bind parameters, so a
call only binds values (SQLAlchemy caches their compiled form).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    literal,
    or_,
    select,
    union_all,
    update,
)

from ..cursor import Cursor
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

    def newest_events(self, session_pk: int, limit: int, after: datetime | None, last_seq: int) -> Select[Any]:
        """The newest `limit` events (descending seq) through the (session_pk, seq) index."""
        e = self.t.events
        stmt = select(*self.event_columns).where(e.c.session_pk == session_pk, e.c.seq <= last_seq)
        if after is not None:
            stmt = stmt.where(e.c.timestamp >= after)
        return stmt.order_by(e.c.seq.desc()).limit(limit)

    def delete_session(self, app_name: str, user_id: str, session_id: str, now: datetime, *, soft: bool) -> Any:
        """Soft- or hard-delete the active row for this id (hard: its events go by cascade)."""
        s = self.t.sessions
        where = [s.c.app_name == app_name, s.c.user_id == user_id, s.c.session_id == session_id, self.rules.active(s)]
        if soft:
            return update(s).where(*where).values(deleted_at=now, updated_at=now)
        return delete(s).where(*where)

    def list_sessions(self, app_name: str, user_id: str, limit: int, after: Cursor | None, now: datetime) -> Select[Any]:
        s = self.t.sessions
        stmt = select(s.c.session_id, s.c.state, s.c.version, s.c.created_at, s.c.updated_at).where(
            s.c.app_name == app_name, s.c.user_id == user_id, alive(self.rules, s, now)
        )
        if after is not None:
            stmt = stmt.where(
                or_(
                    s.c.updated_at < after.updated_at,
                    and_(s.c.updated_at == after.updated_at, s.c.session_id < after.session_id),
                )
            )
        return stmt.order_by(s.c.updated_at.desc(), s.c.session_id.desc()).limit(limit)

    def refresh_expiry(self, session_pk: int, expires_at: datetime) -> Any:
        """Slide an active session's expiry forward (never back over a later write's)."""
        s = self.t.sessions
        return (
            update(s)
            .where(s.c.pk == session_pk, self.rules.active(s), or_(s.c.expires_at.is_(None), s.c.expires_at < expires_at))
            .values(expires_at=expires_at)
        )

    # ------------------------------------------------------------------ shared state

    def shared_state(self, app_name: str, user_id: str | None, now: datetime) -> Any:
        """(scope, key, value) rows of the app's state and, with a user, the user's."""
        a, u = self.t.app_state, self.t.user_state
        app_rows = select(literal("a").label("scope"), a.c.state_key, a.c.value).where(
            a.c.app_name == app_name, alive(self.rules, a, now)
        )
        if user_id is None:
            return app_rows
        user_rows = select(literal("u").label("scope"), u.c.state_key, u.c.value).where(
            u.c.app_name == app_name, u.c.user_id == user_id, alive(self.rules, u, now)
        )
        return union_all(app_rows, user_rows)

    def state_rows(self, table: Table, owner: dict[str, str], now: datetime) -> Select[Any]:
        where = [table.c[col] == value for col, value in owner.items()]
        return select(table.c.state_key, table.c.value).where(*where, alive(self.rules, table, now))
