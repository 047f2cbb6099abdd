"""The SQL the service runs, built once per service from its tables and dialect rules.

Statements that run on every call are prebuilt with bind parameters, so a
call only binds values (SQLAlchemy caches their compiled form).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
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
from ..state import DELETE
from .dialects import DialectRules
from .models import Tables


def alive(table: Any, now: Any) -> ColumnElement[bool]:
    """Not deleted and not expired at `now`."""
    return and_(table.c.deleted_at.is_(None), or_(table.c.expires_at.is_(None), table.c.expires_at > now))


class Queries:
    def __init__(self, tables: Tables, rules: DialectRules) -> None:
        self.t = tables
        self.rules = rules
        s, e = tables.sessions, tables.events
        now = bindparam("now")
        self._session_where = and_(
            s.c.app_name == bindparam("app_name"),
            s.c.user_id == bindparam("user_id"),
            s.c.session_id == bindparam("session_id"),
            alive(s, now),
        )
        dup_seq = (
            select(e.c.seq)
            .where(e.c.session_pk == s.c.pk, e.c.event_id == bindparam("event_id"))
            .scalar_subquery()
            .label("dup_seq")
        )
        lock_cols = [s.c.pk, s.c.version, s.c.last_seq]
        self.lock_for_append = rules.lock_rows(select(*lock_cols, dup_seq).where(self._session_where))
        self.lock_for_append_with_state = rules.lock_rows(
            select(*lock_cols, s.c.state, dup_seq).where(self._session_where)
        )
        self.lock_for_state = rules.lock_rows(select(*lock_cols, s.c.state).where(self._session_where))
        self.read_session = select(
            s.c.pk, s.c.state, s.c.version, s.c.last_seq, s.c.created_at, s.c.updated_at
        ).where(self._session_where)
        self.bump_session = (
            update(s)
            .where(s.c.pk == bindparam("b_pk"))
            .values(
                version=bindparam("b_version"),
                last_seq=bindparam("b_last_seq"),
                updated_at=bindparam("b_updated_at"),
                expires_at=bindparam("b_expires_at"),
            )
        )
        self.bump_session_with_state = self.bump_session.values(state=bindparam("b_state"))
        self.insert_event = e.insert()
        self.insert_session = s.insert()
        self.event_columns = [
            e.c.seq, e.c.event_id, e.c.author, e.c.invocation_id, e.c.branch, e.c.timestamp,
            e.c.content, e.c.state_delta, e.c.state_removed, e.c.meta,
        ]
        self.read_event_by_id = select(*self.event_columns).where(
            e.c.session_pk == bindparam("session_pk"), e.c.event_id == bindparam("event_id")
        )

    # ------------------------------------------------------------------ sessions

    def newest_events(self, session_pk: int, limit: int, after: datetime | None, last_seq: int) -> Select:
        """The newest `limit` events (descending seq) through the (session_pk, seq) index."""
        e = self.t.events
        stmt = select(*self.event_columns).where(e.c.session_pk == session_pk, e.c.seq <= last_seq)
        if after is not None:
            stmt = stmt.where(e.c.timestamp >= after)
        return stmt.order_by(e.c.seq.desc()).limit(limit)

    def retire_session(self, app_name: str, user_id: str, session_id: str, now: datetime, *, only_expired: bool, soft: bool) -> Any:
        """Soft- or hard-delete the active row for this id (only if expired, when asked)."""
        s = self.t.sessions
        where = [s.c.app_name == app_name, s.c.user_id == user_id, s.c.session_id == session_id, s.c.deleted_at.is_(None)]
        if only_expired:
            where.append(s.c.expires_at <= now)
        if soft:
            return update(s).where(*where).values(deleted_at=now, updated_at=now)
        return delete(s).where(*where)

    def list_sessions(self, app_name: str, user_id: str, limit: int, after: Cursor | None, now: datetime) -> Select:
        s = self.t.sessions
        stmt = select(s.c.session_id, s.c.state, s.c.version, s.c.created_at, s.c.updated_at).where(
            s.c.app_name == app_name, s.c.user_id == user_id, alive(s, now)
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
        s = self.t.sessions
        return update(s).where(s.c.pk == session_pk).values(expires_at=expires_at)

    # ------------------------------------------------------------------ shared state

    def shared_state(self, app_name: str, user_id: str | None, now: datetime) -> Any:
        """(scope, key, value) rows of the app's state and, with a user, the user's."""
        a, u = self.t.app_state, self.t.user_state
        app_rows = select(literal("a").label("scope"), a.c.state_key, a.c.value).where(
            a.c.app_name == app_name, alive(a, now)
        )
        if user_id is None:
            return app_rows
        user_rows = select(literal("u").label("scope"), u.c.state_key, u.c.value).where(
            u.c.app_name == app_name, u.c.user_id == user_id, alive(u, now)
        )
        return union_all(app_rows, user_rows)

    def state_rows(self, table: Any, owner: dict[str, str], now: datetime) -> Select:
        where = [table.c[col] == value for col, value in owner.items()]
        return select(table.c.state_key, table.c.value).where(*where, alive(table, now))

    def write_state(
        self, table: Any, owner: dict[str, str], delta: dict[str, Any], now: datetime, expires_at: datetime | None, *, soft: bool
    ) -> list[Any]:
        """Statements applying a bare-key delta to app_state or user_state rows of `owner`."""
        statements: list[Any] = []
        sets = sorted((k, v) for k, v in delta.items() if v is not DELETE)
        removed = sorted(k for k, v in delta.items() if v is DELETE)
        if sets:
            rows = [
                {**owner, "state_key": k, "value": v, "created_at": now, "updated_at": now, "expires_at": expires_at, "deleted_at": None}
                for k, v in sets
            ]
            key = [*owner, "state_key"]
            statements.append(self.rules.upsert(table, rows, key, ["value", "updated_at", "expires_at"]))
        if removed:
            where = [table.c[col] == value for col, value in owner.items()]
            where += [table.c.state_key.in_(removed), table.c.deleted_at.is_(None)]
            if soft:
                statements.append(update(table).where(*where).values(deleted_at=now, updated_at=now))
            else:
                statements.append(delete(table).where(*where))
        return statements
