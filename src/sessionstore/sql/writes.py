"""The SQL of every session write, hand-written and compiled once for one driver.

Run on the driver's own connection (sql/native.py). Reads of the same rows go
through SQLAlchemy Core (sql/queries.py) with the column types of
sql/types.py, so values are written here exactly as those types write them:
JSON as serialised text, datetimes as DriverTx.time makes them.

An append or session-state update first *claims* the session row: it locks
the row, bumps version (and last_seq by seq_step) and learns the row's pk,
its version before the write and the seq to use. Where UPDATE ... RETURNING
exists (PostgreSQL, SQLite) that is one statement; MySQL/MariaDB lock with
SELECT ... FOR UPDATE and then bump.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Dialect

from .dialects import DialectRules
from .models import Tables
from .native import NativeSQL

_EVENT_COLUMNS = (
    "session_pk", "seq", "event_id", "author", "invocation_id", "branch", "timestamp",
    "content", "state_delta", "state_removed", "meta", "created_at", "updated_at",
)
_EVENT_JSON = {"content", "state_delta", "state_removed", "meta"}


class WriteSQL:
    """Prebuilt statements for one service (its tables, dialect and driver)."""

    def __init__(self, tables: Tables, rules: DialectRules, dialect: Dialect, style: str) -> None:
        name = dialect.identifier_preparer.format_table
        sessions, events = name(tables.sessions), name(tables.events)
        j = rules.json_param

        def sql(text: str) -> NativeSQL:
            return NativeSQL(text, style)

        session_key = "app_name = :app_name AND user_id = :user_id AND session_id = :session_id"
        live = f"{session_key} AND {rules.active_sql()} AND (expires_at IS NULL OR expires_at > :now)"
        bump = "version = version + 1, last_seq = last_seq + :seq_step, updated_at = :now, expires_at = :expires_at"
        if rules.supports_returning_update:
            returning = f"UPDATE {sessions} SET {bump} WHERE {live} RETURNING pk, version - 1, last_seq"
            self.claim = sql(returning)
            self.claim_with_state = sql(f"{returning}, state")
            self.bump: NativeSQL | None = None
        else:
            locking = f"SELECT pk, version, last_seq + :seq_step{{}} FROM {sessions} WHERE {live}{rules.for_update}"
            self.claim = sql(locking.format(""))
            self.claim_with_state = sql(locking.format(", state"))
            self.bump = sql(f"UPDATE {sessions} SET {bump} WHERE pk = :pk")
        self.set_state = sql(f"UPDATE {sessions} SET state = {j('state')} WHERE pk = :pk")

        values = ", ".join(j(c) if c in _EVENT_JSON else f":{c}" for c in _EVENT_COLUMNS)
        self.insert_event = sql(f"INSERT INTO {events} ({', '.join(_EVENT_COLUMNS)}) VALUES ({values})")
        self.event_exists = sql(f"SELECT 1 FROM {events} WHERE session_pk = :pk AND event_id = :event_id")

        expired = f"{session_key} AND {rules.active_sql()} AND expires_at <= :now"
        self.soft_retire_expired = sql(f"UPDATE {sessions} SET deleted_at = :now, updated_at = :now WHERE {expired}")
        self.hard_retire_expired = sql(f"DELETE FROM {sessions} WHERE {expired}")
        self.insert_session = sql(
            f"INSERT INTO {sessions} (app_name, user_id, session_id, state, version, last_seq, "
            f"created_at, updated_at, expires_at) VALUES (:app_name, :user_id, :session_id, {j('state')}, "
            "0, 0, :now, :now, :expires_at)"
        )
        self.app_state = StateSQL(name(tables.app_state), ("app_name",), rules, sql)
        self.user_state = StateSQL(name(tables.user_state), ("app_name", "user_id"), rules, sql)


class StateSQL:
    """Writes of one key of app_state or user_state (owner columns + state_key)."""

    def __init__(self, table: str, owner: tuple[str, ...], rules: DialectRules, sql: Any) -> None:
        key = (*owner, "state_key")
        columns = (*key, "value", "created_at", "updated_at", "expires_at")
        self.upsert = sql(rules.upsert_sql(table, key, columns, ("value", "updated_at", "expires_at")))
        match = " AND ".join(f"{c} = :{c}" for c in key) + f" AND {rules.active_sql()}"
        self.soft_delete = sql(f"UPDATE {table} SET deleted_at = :now, updated_at = :now WHERE {match}")
        self.hard_delete = sql(f"DELETE FROM {table} WHERE {match}")
