"""The SQL of every hot read, hand-written, compiled once per driver, one statement each.

A session read needs the session row, its newest events and the app and user
state; a list page needs the page and the same shared state. Through
SQLAlchemy's execution layer that was three statements inside BEGIN ...
ROLLBACK, each built again from expression objects on every call. Here each
read is one statement, a UNION ALL of its parts, run on the driver's own
connection (sql/native.py) in one round trip (one hop to aiosqlite's thread),
and its rows are decoded straight to the public records.

Every part of a UNION ALL has the same 14 columns; ``kind`` says which part a
row belongs to:

====  =========================================================================
kind  columns used
====  =========================================================================
0     session: n1 pk (or its row number in a list page), n2 version, n3 last_seq,
      t1 created_at, t2 updated_at, s1 session_id, s2 title, s3 user_id
      (list pages), j1 state, j2 meta
1     event: n1 seq, t1 timestamp, s1 event_id, s2 author, s3 invocation_id,
      s4 branch, j1 content, j2 state_delta, j3 state_removed, j4 meta
2, 3  app / user state: s1 state_key, j1 value, s3 user_id (user state in list pages)
====  =========================================================================

List pages and state reads use only the columns they need (``_NARROW``).

A UNION ALL gives no order, so a row carries what orders it: events their
seq, list rows their row number in the database's own ORDER BY (the
database's collation decides the order of ids, and the page's cursor must
agree with it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
from sqlalchemy.engine import Dialect

from ..keys import Key
from ..records import Event, Session
from ..state import DELETE, merged_view
from .batched_reads import EVENT_AT as BATCH_EVENT_AT
from .batched_reads import SNAPSHOT, BatchedSessionReads
from .dialects import DialectRules
from .models import Tables
from .native import DriverRow, DriverTx, NativeSQL

Decode = Callable[[Any], Any]

_COLUMNS = ("kind", "n1", "n2", "n3", "t1", "t2", "s1", "s2", "s3", "s4", "j1", "j2", "j3", "j4")
"""A session read's columns (events need the most)."""
_NARROW = ("kind", "n1", "n2", "t1", "t2", "s1", "j1", "s2", "s3", "j2")
"""A list page's and a state read's: every column a row carries is parsed, NULL or not, and
a pure-Python driver (aiomysql) pays for each."""
SESSION, EVENT, APP, USER = 0, 1, 2, 3


def _part(kind: int, source: str, where: str, layout: tuple[str, ...] = _COLUMNS, **columns: str) -> str:
    """One SELECT of the union: `columns` by their union name, NULL for the rest of `layout`."""
    values = [str(kind)] + [columns.get(c, "NULL") for c in layout[1:]]
    selected = ", ".join(f"{v} AS {c}" for v, c in zip(values, layout, strict=True))
    return f"SELECT {selected} FROM {source}" + (f" WHERE {where}" if where else "")


class ReadSQL:
    """Prebuilt read statements for one service (its tables, dialect and driver)."""

    def __init__(self, tables: Tables, rules: DialectRules, dialect: Dialect, style: str) -> None:
        name = dialect.identifier_preparer.format_table
        sessions, events = name(tables.sessions), name(tables.events)
        app_state, user_state = name(tables.app_state), name(tables.user_state)

        def sql(text: str) -> NativeSQL:
            return NativeSQL(text, style)

        def alive(alias: str) -> str:
            return f"{rules.active_sql(alias + '.')} AND ({alias}.expires_at IS NULL OR {alias}.expires_at > :now)"

        live = f"s.app_name = :app_name AND s.user_id = :user_id AND s.session_id = :session_id AND {alive('s')}"

        def shared_parts(layout: tuple[str, ...]) -> list[str]:
            return [
                _part(APP, f"{app_state} a", f"a.app_name = :app_name AND {alive('a')}", layout, s1="a.state_key", j1="a.value"),
                _part(
                    USER, f"{user_state} u", f"u.app_name = :app_name AND u.user_id = :user_id AND {alive('u')}", layout,
                    s1="u.state_key", j1="u.value", s3="u.user_id",
                ),
            ]

        shared, narrow_shared = shared_parts(_COLUMNS), shared_parts(_NARROW)
        session_part = _part(
            SESSION, f"{sessions} s", live, n1="s.pk", n2="s.version", n3="s.last_seq",
            t1="s.created_at", t2="s.updated_at", s1="s.session_id", j1="s.state", s2="s.title", j2="s.meta",
        )

        def newest_events(after: bool) -> str:
            # The newest :limit events through the (session_pk, seq) index, read backwards.
            since = " AND e.timestamp >= :after" if after else ""
            # The session's pk as a scalar subquery, not a join: the planner then knows it is
            # one value and walks the index backwards (with a join PostgreSQL chose a scan).
            inner = (
                "SELECT e.seq, e.timestamp, e.event_id, e.author, e.invocation_id, e.branch, e.content, "
                f"e.state_delta, e.state_removed, e.meta FROM {events} e "
                f"WHERE e.session_pk = (SELECT s.pk FROM {sessions} s WHERE {live}){since} ORDER BY e.seq DESC LIMIT :limit"
            )
            return _part(
                EVENT, f"({inner}) x", "", n1="x.seq", t1="x.timestamp", s1="x.event_id", s2="x.author",
                s3="x.invocation_id", s4="x.branch", j1="x.content", j2="x.state_delta", j3="x.state_removed",
                j4="x.meta",
            )

        union = " UNION ALL "
        self.session: dict[bool, NativeSQL] = {
            after: sql(union.join([session_part, newest_events(after), *shared])) for after in (False, True)
        }
        """session row + newest events (+ timestamp >= :after) + shared state, by ``after is not None``."""
        self.session_only = sql(union.join([session_part, *shared]))
        """session row + shared state, for event_num=0."""

        def page_rows(after_cursor: bool, across_users: bool) -> tuple[str, str]:
            """Which sessions a page holds, in order (WHERE ... ORDER BY ... LIMIT), and each row's
            position in it."""
            if across_users:
                owner, order = "s.app_name = :app_name", "ORDER BY s.updated_at DESC, s.session_id DESC, s.user_id DESC"
                tie = "(s.session_id < :c_id OR (s.session_id = :c_id AND s.user_id < :c_user))"
            else:
                owner, order = "s.app_name = :app_name AND s.user_id = :user_id", "ORDER BY s.updated_at DESC, s.session_id DESC"
                tie = "s.session_id < :c_id"
            keyset = f" AND (s.updated_at < :c_updated OR (s.updated_at = :c_updated AND {tie}))" if after_cursor else ""
            # Where ids compare as code points, Python can restore the database's order from
            # (updated_at, session_id, user_id); elsewhere (PostgreSQL's collations) each row carries
            # its position. (A window function would cost MySQL/MariaDB a scan and a sort.)
            position = "NULL" if rules.ids_sort_as_code_points else f"ROW_NUMBER() OVER ({order})"
            return f"{owner} AND {alive('s')}{keyset} {order} LIMIT :limit", position

        def page_columns(alias: str, position: str) -> dict[str, str]:
            """A page row's columns in the narrow layout, read from `alias` (the sessions table,
            or the derived table over it), with `position` as its place in the page."""
            return {
                "n1": position, "n2": f"{alias}.version", "t1": f"{alias}.created_at", "t2": f"{alias}.updated_at",
                "s1": f"{alias}.session_id", "j1": f"{alias}.state", "s2": f"{alias}.title", "s3": f"{alias}.user_id",
                "j2": f"{alias}.meta",
            }

        def page(after_cursor: bool, across_users: bool) -> list[str]:
            """A page of one user's sessions (or, `across_users`, of an app's), newest first, with
            the shared state: the app's, and the user state of every user on the page."""
            which, position = page_rows(after_cursor, across_users)
            inner = (
                f"SELECT {position} AS n, s.session_id, s.user_id, s.version, s.created_at, s.updated_at, s.state, "
                f"s.title, s.meta FROM {sessions} s WHERE {which}"
            )
            sessions_part = _part(SESSION, f"({inner}) x", "", _NARROW, **page_columns("x", "x.n"))
            if not across_users:
                return [sessions_part, *narrow_shared]
            # The user state of the page's users: the page again (same parameters), as a semi-join
            # (through a derived table: MySQL takes no LIMIT directly in an IN subquery).
            users = f"u.app_name = :app_name AND u.user_id IN (SELECT y.user_id FROM ({inner}) y) AND {alive('u')}"
            user_part = _part(
                USER, f"{user_state} u", users, _NARROW, s1="u.state_key", j1="u.value", s3="u.user_id",
            )
            return [sessions_part, narrow_shared[0], user_part]

        self.page_in_position_order = not rules.ids_sort_as_code_points
        self.page: dict[bool, NativeSQL] = {c: sql(union.join(page(c, False))) for c in (False, True)}
        """one page of a user's sessions (+ keyset cursor) + shared state, by ``cursor is not None``."""
        self.app_page: dict[bool, NativeSQL] = {c: sql(union.join(page(c, True))) for c in (False, True)}
        """one page of an app's sessions of every user (+ keyset cursor) + the app's and those users' state."""

        def page_alone(after_cursor: bool) -> str:
            """The page's sessions on their own (no derived table), in `page`'s layout."""
            which, position = page_rows(after_cursor, False)
            return _part(SESSION, f"{sessions} s", which, _NARROW, **page_columns("s", position))

        self.batched_page: dict[bool, NativeSQL] | None = None
        """Where the dialect reads in batches (sql/batched_reads.py): `page` as two SELECTs in one
        query, the page's sessions and the shared state, in one snapshot; rows in `page`'s layout."""
        self.page_alone: dict[bool, NativeSQL] | None = None
        """The first SELECT of `batched_page` (its plan is tested: tests/test_sql_backend.py)."""
        if rules.batched_reads:
            shared_rows = union.join(narrow_shared)
            self.batched_page = {c: sql(f"{SNAPSHOT}; {page_alone(c)}; {shared_rows}") for c in (False, True)}
            self.page_alone = {c: sql(page_alone(c)) for c in (False, True)}

        def events_page(forward: bool) -> str:
            # One page of history through the (session_pk, seq) index, either way; the session row
            # says whether the session is there at all (an empty page is not a missing session).
            order = "ASC" if forward else "DESC"
            inner = (
                "SELECT e.seq, e.timestamp, e.event_id, e.author, e.invocation_id, e.branch, e.content, "
                f"e.state_delta, e.state_removed, e.meta FROM {events} e "
                f"WHERE e.session_pk = (SELECT s.pk FROM {sessions} s WHERE {live}) "
                f"AND e.seq > :after_seq AND e.seq < :before_seq ORDER BY e.seq {order} LIMIT :limit"
            )
            return union.join([
                _part(SESSION, f"{sessions} s", live, n1="s.pk"),
                _part(
                    EVENT, f"({inner}) x", "", n1="x.seq", t1="x.timestamp", s1="x.event_id", s2="x.author",
                    s3="x.invocation_id", s4="x.branch", j1="x.content", j2="x.state_delta", j3="x.state_removed",
                    j4="x.meta",
                ),
            ])

        self.events_page: dict[bool, NativeSQL] = {f: sql(events_page(f)) for f in (False, True)}
        """the session row + one page of its events with after_seq < seq < before_seq, by ``forward``."""
        self.events_by_id = _EventsById(sessions, events, live, sql)
        self.app_state = sql(narrow_shared[0])
        self.user_state = sql(narrow_shared[1])
        self.batched = (
            BatchedSessionReads(sessions, events, app_state, user_state, live, alive, sql) if rules.batched_reads else None
        )
        """Where the dialect reads a session as a batch of statements (sql/batched_reads.py), that form."""



# ------------------------------------------------------------------------------ rows to records


def decode_session(rows: Sequence[DriverRow], driver: type[DriverTx], key: Key) -> tuple[Session, int] | None:
    """The rows of ReadSQL.session(_only) as (Session with events in seq order, its pk), or
    None when no session row came back (missing, expired or deleted)."""
    json, text, time = driver.json_out, driver.text_out, driver.time_out
    event = event_decoder(driver)
    head: DriverRow | None = None
    events: list[tuple[int, Event]] = []
    app: dict[str, Any] = {}
    user: dict[str, Any] = {}
    for row in rows:
        kind = row[0]
        if kind == EVENT:
            events.append((row[1], event(row)))
        elif kind == SESSION:
            head = row
        else:
            (app if kind == APP else user)[text(row[6])] = json(row[10])
    if head is None:
        return None
    events.sort(key=_first)
    session = Session(
        id=key.session_id, app_name=key.app_name, user_id=key.user_id,
        state=merged_view(json(head[10]), app, user), events=[e for _, e in events], version=head[2],
        created_at=time(head[4]), updated_at=time(head[5]),
        title=None if head[7] is None else text(head[7]), metadata=_meta(json, head[11]),
    )
    return session, head[1]


def decode_batched_session(
    sets: Sequence[Sequence[DriverRow]], driver: type[DriverTx], key: Key
) -> tuple[Session, int] | None:
    """The result sets of BatchedSessionReads.session (three) or session_only (two), MySQL/MariaDB's
    form of decode_session's rows: (Session with events in seq order, its pk), or None when no
    session row came back."""
    if not sets[0]:
        return None
    json, text, time = driver.json_out, driver.text_out, driver.time_out
    event = event_decoder(driver, BATCH_EVENT_AT)
    head = sets[0][0]  # pk, version, created_at, updated_at, title, state, meta
    events = [event(row) for row in reversed(sets[1])] if len(sets) == 3 else []  # read newest first
    app: dict[str, Any] = {}
    user: dict[str, Any] = {}
    for row in sets[-1]:
        (app if row[0] == APP else user)[text(row[1])] = json(row[2])
    session = Session(
        id=key.session_id, app_name=key.app_name, user_id=key.user_id,
        state=merged_view(json(head[5]), app, user), events=events, version=head[1],
        created_at=time(head[2]), updated_at=time(head[3]),
        title=None if head[4] is None else text(head[4]), metadata=_meta(json, head[6]),
    )
    return session, head[0]


def decode_page(rows: Sequence[DriverRow], driver: type[DriverTx], app_name: str, *, by_position: bool) -> list[Session]:
    """The rows of ReadSQL.page or app_page (the narrow layout) as Sessions (no events), in the
    database's order: by each row's position where the statement gives one, else newest first,
    ids descending (then user ids). Each session's state merges its own user's state."""
    json, text, time = driver.json_out, driver.text_out, driver.time_out
    page: list[tuple[Any, Session]] = []
    app: dict[str, Any] = {}
    users: dict[str, dict[str, Any]] = {}
    for row in rows:
        kind = row[0]
        if kind == SESSION:
            session = Session(
                id=text(row[5]), app_name=app_name, user_id=text(row[8]), state=json(row[6]), events=[],
                version=row[2], created_at=time(row[3]), updated_at=time(row[4]),
                title=None if row[7] is None else text(row[7]), metadata=_meta(json, row[9]),
            )
            page.append((row[1] if by_position else (session.updated_at, session.id, session.user_id), session))
        elif kind == APP:
            app[text(row[5])] = json(row[6])
        else:
            users.setdefault(text(row[8]), {})[text(row[5])] = json(row[6])
    page.sort(key=_first, reverse=not by_position)
    for _, session in page:
        session.state = merged_view(session.state, app, users.get(session.user_id, {}))
    return [session for _, session in page]


def decode_events(rows: Sequence[DriverRow], driver: type[DriverTx], *, forward: bool) -> list[Event] | None:
    """The rows of ReadSQL.events_page or events_by_id as Events by seq (ascending if `forward`),
    or None when no session row came back."""
    event = event_decoder(driver)
    found = False
    events: list[tuple[int, Event]] = []
    for row in rows:
        if row[0] == EVENT:
            events.append((row[1], event(row)))
        else:
            found = True
    if not found:
        return None
    events.sort(key=_first, reverse=not forward)
    return [e for _, e in events]


def _meta(json: Decode, value: Any) -> dict[str, Any]:
    """A session's meta column: NULL (rows from before revision 0002) is the empty object."""
    decoded = None if value is None else json(value)
    return decoded if isinstance(decoded, dict) else {}


class _EventsById:
    """The session row + the events with the given ids: what a batch append finds already stored.
    Rare (a retried or overlapping batch), so built per id count on first use, and kept."""

    def __init__(self, sessions: str, events: str, live: str, sql: Callable[[str], NativeSQL]) -> None:
        self._sessions, self._events, self._live, self._sql = sessions, events, live, sql
        self._built: dict[int, NativeSQL] = {}

    def __call__(self, count: int) -> NativeSQL:
        stmt = self._built.get(count)
        if stmt is None:
            ids = ", ".join(f":id_{i}" for i in range(count))
            pk = f"(SELECT s.pk FROM {self._sessions} s WHERE {self._live})"
            stmt = self._sql(" UNION ALL ".join([
                _part(SESSION, f"{self._sessions} s", self._live, n1="s.pk"),
                _part(
                    EVENT, f"{self._events} e", f"e.session_pk = {pk} AND e.event_id IN ({ids})", n1="e.seq",
                    t1="e.timestamp", s1="e.event_id", s2="e.author", s3="e.invocation_id", s4="e.branch",
                    j1="e.content", j2="e.state_delta", j3="e.state_removed", j4="e.meta",
                ),
            ]))
            self._built[count] = stmt
        return stmt


def decode_state(rows: Sequence[DriverRow], driver: type[DriverTx]) -> dict[str, Any]:
    """The rows of ReadSQL.app_state / user_state as {key: value}."""
    json, text = driver.json_out, driver.text_out
    return {text(row[5]): json(row[6]) for row in rows}


def _first(item: tuple[Any, Any]) -> Any:
    return item[0]


UNION_EVENT_AT = (1, 4, 6, 7, 8, 9, 10, 11, 12, 13)
"""Where an event row of the union layout holds seq, timestamp, event_id, author, invocation_id,
branch, content, state_delta, state_removed and meta."""

_DECODERS: dict[tuple[type[DriverTx], tuple[int, ...]], Callable[[DriverRow], Event]] = {}


def event_decoder(driver: type[DriverTx], at: tuple[int, ...] = UNION_EVENT_AT) -> Callable[[DriverRow], Event]:
    """A function from an event row (its columns at the positions `at`) to an Event, built once
    per driver and layout.

    A full read decodes a thousand rows; per row, the function calls it can
    skip (ids that are str already, JSON text that needs no wrapper around
    orjson, NULL columns) are a fair share of the cost.
    """
    known = _DECODERS.get((driver, at))
    if known is not None:
        return known
    json: Decode = orjson.loads if driver.json_out is DriverTx.json_out else driver.json_out  # NULLs checked below
    time = driver.time_out
    text = None if driver.text_out is DriverTx.text_out else driver.text_out  # None: already str
    seq_at, time_at, id_at, author_at, invocation_at, branch_at, content_at, delta_at, removed_at, meta_at = at

    def decode(row: DriverRow) -> Event:
        # A column may hold SQL NULL or, written through SQLAlchemy's JSON type, JSON null:
        # either means "none" (an empty delta, no removals, empty metadata).
        delta = row[delta_at]
        delta = (None if delta is None else json(delta)) or {}
        removed = row[removed_at]
        if removed is not None:
            for name in json(removed) or ():
                delta[name] = DELETE
        meta = row[meta_at]
        meta = None if meta is None else json(meta)
        event_id, author, invocation_id, branch = row[id_at], row[author_at], row[invocation_at], row[branch_at]
        if text is not None:
            event_id, author, invocation_id, branch = text(event_id), text(author), text(invocation_id), text(branch)
        content = row[content_at]
        return Event(  # positional, in the field order of records.Event (cheaper than keywords)
            author, None if content is None else json(content), event_id, invocation_id, time(row[time_at]), delta,
            False, branch, {} if meta is None else meta, row[seq_at],
        )

    _DECODERS[(driver, at)] = decode
    return decode
