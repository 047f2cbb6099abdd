"""The SQL of every session write, hand-written and compiled once for one driver.

Run on the driver's own connection (sql/native.py). Reads of the same rows go
through SQLAlchemy Core (sql/queries.py) with the column types of
sql/column_types.py, so values are written here exactly as those types write them:
JSON as serialised text, datetimes as DriverTx.time makes them.

An append or session-state update first *claims* the session row: it locks
the row, bumps version (and last_seq by seq_step) and learns the row's pk,
its version before the write and the seq to use. Where UPDATE ... RETURNING
exists (PostgreSQL, SQLite) that is one statement; MySQL/MariaDB lock with
SELECT ... FOR UPDATE and then bump. The session-state delta goes into that
UPDATE too (`folded`, with the database's JSON functions) whenever the
database can address every key of it; otherwise the claim also returns the
state, and the state is written back whole (claim_with_state, set_state).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Dialect

from .dialects import DialectRules
from .models import Tables
from .native import NativeSQL

EVENT_COLUMNS = (
    "session_pk", "seq", "event_id", "author", "invocation_id", "branch", "timestamp",
    "content", "state_delta", "state_removed", "meta", "created_at", "updated_at",
)
EVENT_JSON = {"content", "state_delta", "state_removed", "meta"}
_MAX_FOLDED = 256
"""Most delta shapes whose folded statements are kept (beyond, they are built per call)."""


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
        # {state} in a template: where the session-state delta's fold goes (see `folded`).
        self._templates: dict[str, str] = {}
        if rules.supports_returning_update:
            returning = f"UPDATE {sessions} SET {bump}{{state}} WHERE {live} RETURNING pk, version - 1, last_seq"
            self._templates["claim"] = returning
            self.claim = sql(returning.format(state=""))
            self.claim_with_state = sql(f"{returning.format(state='')}, state")
            self.bump: NativeSQL | None = None
        else:
            locking = f"SELECT pk, version, last_seq + :seq_step{{}} FROM {sessions} WHERE {live}{rules.for_update}"
            self.claim = sql(locking.format(""))
            self.claim_with_state = sql(locking.format(", state"))
            self._templates["bump"] = f"UPDATE {sessions} SET {bump}{{state}} WHERE pk = :pk"
            self.bump = sql(self._templates["bump"].format(state=""))
        self.set_state = sql(f"UPDATE {sessions} SET state = {j('state')} WHERE pk = :pk")

        # MySQL/MariaDB, where a locking SELECT costs as much as the rest of an
        # append: when the caller's version is still current, bump the row at
        # that version (seq comes back as LAST_INSERT_ID) and insert the event
        # with INSERT ... SELECT from the row just locked. No row matched means
        # another write landed (or no session): the general path takes over.
        # The INSERT runs right after that UPDATE, in the same query when it can,
        # so it inserts only if the UPDATE matched (ROW_COUNT(): the previous
        # statement's rows).
        self.claim_at_version: NativeSQL | None = None
        self.insert_event_by_key: NativeSQL | None = None
        self.insert_event_after_claim: NativeSQL | None = None
        if rules.has_last_insert_id:
            self._templates["claim_at_version"] = (
                f"UPDATE {sessions} SET version = version + 1, last_seq = LAST_INSERT_ID(last_seq + 1), "
                f"updated_at = :now, expires_at = :expires_at{{state}} WHERE {live} AND version = :known_version"
            )
            self.claim_at_version = sql(self._templates["claim_at_version"].format(state=""))
            by_key = ", ".join(
                {"session_pk": "pk", "seq": "last_seq"}.get(c, j(c) if c in EVENT_JSON else f":{c}")
                for c in EVENT_COLUMNS
            )
            self.insert_event_by_key = sql(
                f"INSERT INTO {events} ({', '.join(EVENT_COLUMNS)}) SELECT {by_key} FROM {sessions} "
                f"WHERE {session_key} AND {rules.active_sql()} AND ROW_COUNT() = 1"
            )
            # The same two with the row's pk known (the service remembers the pks it has seen):
            # the UPDATE finds the row through the primary key (the key columns are still compared,
            # so a pk that no longer names this session matches nothing), and the INSERT needs no
            # lookup at all. MariaDB spends about an eighth less on the append.
            self._templates["claim_at_version_by_pk"] = (
                f"UPDATE {sessions} SET version = version + 1, last_seq = LAST_INSERT_ID(last_seq + 1), "
                f"updated_at = :now, expires_at = :expires_at{{state}} WHERE pk = :pk AND {live} "
                "AND version = :known_version"
            )
            after_claim = ", ".join(
                {"session_pk": ":pk", "seq": "LAST_INSERT_ID()"}.get(c, j(c) if c in EVENT_JSON else f":{c}")
                for c in EVENT_COLUMNS
            )
            self.insert_event_after_claim = sql(
                f"INSERT INTO {events} ({', '.join(EVENT_COLUMNS)}) SELECT {after_claim} FROM DUAL WHERE ROW_COUNT() = 1"
            )

        values = ", ".join(j(c) if c in EVENT_JSON else f":{c}" for c in EVENT_COLUMNS)
        self.insert_event = sql(f"INSERT INTO {events} ({', '.join(EVENT_COLUMNS)}) VALUES ({values})")
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
        self.append_in_one: dict[bool, NativeSQL] | None = None
        if rules.writable_ctes:
            self.append_in_one = {
                soft: sql(_append_in_one_statement(sessions, events, name(tables.app_state), name(tables.user_state), live, soft))
                for soft in (True, False)
            }
        self._rules = rules
        self._style = style
        self._folded: dict[tuple[str, int, int], NativeSQL] = {}

    def folded(self, name: str, sets: int, removes: int) -> NativeSQL:
        """Statement `name` (the claim where UPDATE ... RETURNING exists, else the bump after
        the locking SELECT, or claim_at_version) that also applies a session-state delta of
        `sets` set and `removes` removed keys to the row's state (DialectRules.state_fold_sql)."""
        shape = (name, sets, removes)
        stmt = self._folded.get(shape)
        if stmt is None:
            fold = f", state = {self._rules.state_fold_sql(sets, removes)}" if sets or removes else ""
            stmt = NativeSQL(self._templates[name].format(state=fold), self._style)
            if len(self._folded) < _MAX_FOLDED:
                self._folded[shape] = stmt
        return stmt


def _append_in_one_statement(sessions: str, events: str, app_state: str, user_state: str, live: str, soft: bool) -> str:
    """A whole append as one PostgreSQL statement (one round trip, committed as it runs).

    Data-modifying CTEs all run, each once: claim the session row (only at
    :expected when given), fold the session-state delta into it with jsonb
    operators, insert the event, upsert/remove the app: and user: keys. It
    returns no row when the session is missing or at another version, and a
    retried event id fails on the unique index; the caller then runs the
    general transaction, which tells those cases apart.
    """
    cols = ", ".join(EVENT_COLUMNS)
    values = ", ".join(
        {"session_pk": "pk", "seq": "last_seq"}.get(c, f"CAST(:{c} AS JSONB)" if c in EVENT_JSON else f":{c}")
        for c in EVENT_COLUMNS
    )
    ctes = [
        f"""claimed AS (UPDATE {sessions} SET version = version + 1, last_seq = last_seq + 1,
            updated_at = :now, expires_at = :expires_at,
            state = (state || CAST(:state_sets AS JSONB)) - CAST(:state_removed_keys AS TEXT[])
            WHERE {live} AND (CAST(:expected AS BIGINT) IS NULL OR version = CAST(:expected AS BIGINT))
            RETURNING pk, version, last_seq)""",
        f"stored AS (INSERT INTO {events} ({cols}) SELECT {values} FROM claimed)",
    ]
    for scope, table, owner in (("app", app_state, ("app_name",)), ("user", user_state, ("app_name", "user_id"))):
        owner_cols = ", ".join(owner)
        owner_vals = ", ".join(f":{c}" for c in owner)
        owner_match = " AND ".join(f"{c} = :{c}" for c in owner)
        ctes.append(
            f"""{scope}_set AS (INSERT INTO {table} ({owner_cols}, state_key, value, created_at, updated_at, expires_at)
            SELECT {owner_vals}, key, value, :now, :now, :{scope}_expires_at
            FROM jsonb_each(CAST(:{scope}_sets AS JSONB)) WHERE EXISTS (SELECT 1 FROM claimed)
            ON CONFLICT ({owner_cols}, state_key) WHERE deleted_at IS NULL
            DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, expires_at = excluded.expires_at)"""
        )
        gone = (
            f"{owner_match} AND state_key = ANY(CAST(:{scope}_removed AS TEXT[])) AND deleted_at IS NULL"
            " AND EXISTS (SELECT 1 FROM claimed)"
        )
        ctes.append(
            f"{scope}_del AS (UPDATE {table} SET deleted_at = :now, updated_at = :now WHERE {gone})"
            if soft
            else f"{scope}_del AS (DELETE FROM {table} WHERE {gone})"
        )
    return "WITH " + ",\n".join(ctes) + "\nSELECT pk, version, last_seq FROM claimed"


class StateSQL:
    """Writes of one key of app_state or user_state (owner columns + state_key)."""

    def __init__(self, table: str, owner: tuple[str, ...], rules: DialectRules, sql: Any) -> None:
        key = (*owner, "state_key")
        columns = (*key, "value", "created_at", "updated_at", "expires_at")
        self.upsert = sql(rules.upsert_sql(table, key, columns, ("value", "updated_at", "expires_at")))
        match = " AND ".join(f"{c} = :{c}" for c in key) + f" AND {rules.active_sql()}"
        self.soft_delete = sql(f"UPDATE {table} SET deleted_at = :now, updated_at = :now WHERE {match}")
        self.hard_delete = sql(f"DELETE FROM {table} WHERE {match}")
