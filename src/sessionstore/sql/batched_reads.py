"""MySQL/MariaDB session reads as a batch of plain SELECTs in one query, one result set each.

Elsewhere a session read is one UNION ALL (sql/reads.py). On MariaDB that
form costs about twice what its parts do: the newest-N events must sit in a
derived table (``(SELECT ... ORDER BY seq DESC LIMIT n) x``) to be a part of
a union, and the server materialises both that and the union's result in
temporary tables. aiomysql, which is pure Python, then also parses a column
definition for each of the union's 14 columns and every NULL that pads a row.

So on MySQL/MariaDB the read is three statements sent as one query, each with
only its own columns: the session row, the newest events (read backwards
through the (session_pk, seq) index, no derived table) and the app and user
state, then COMMIT. One round trip, as before. The SELECTs run in one
REPEATABLE READ transaction (SNAPSHOT), so they read one snapshot
and the parts agree with each other as a union's would; the connections
otherwise run READ COMMITTED, where each statement would read its own
moment. (Measured on MariaDB 10.11, a get_session(event_num=20) fell from
1.0 ms to 0.6 ms at the driver.) A user's page of list_sessions is read the
same way (ReadSQL.batched_page, sql/reads.py): the page's SELECT, then the
shared state.
"""

from __future__ import annotations

from collections.abc import Callable

from .native import NativeSQL

SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"
"""What opens a batch. The connections run READ COMMITTED (sql/dialects.py), where each statement
reads its own snapshot; SET TRANSACTION (without SESSION) sets the next transaction only, which
the first SELECT opens (autocommit is off), and under REPEATABLE READ the snapshot that SELECT
takes serves the ones after it: the session row, its events and the shared state are of one
moment, as one UNION ALL's would be. (Not READ ONLY as well: should the SELECTs fail before
their transaction began, the setting would be left for the connection's next transaction,
which may write; REPEATABLE READ left over is harmless there.)"""

EVENT_COLUMNS = (
    "e.seq, e.timestamp, e.event_id, e.author, e.invocation_id, e.branch, e.content, e.state_delta, "
    "e.state_removed, e.meta"
)
"""An event row of a batch: the positions EVENT_AT names (reads.decode_batched_session decodes it)."""
EVENT_AT = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
"""seq, timestamp, event_id, author, invocation_id, branch, content, state_delta, state_removed, meta."""


class BatchedSessionReads:
    """The batched form of ReadSQL.session and session_only, for one service's tables."""

    def __init__(
        self, sessions: str, events: str, app_state: str, user_state: str, live: str,
        alive: Callable[[str], str], sql: Callable[[str], NativeSQL],
    ) -> None:
        head = (
            "SELECT s.pk, s.version, s.created_at, s.updated_at, s.title, s.state, s.meta "
            f"FROM {sessions} s WHERE {live}"
        )
        shared = (
            # (2 and 3: the kinds reads.py gives app and user state rows)
            f"SELECT 2, a.state_key, a.value FROM {app_state} a WHERE a.app_name = :app_name AND {alive('a')} "
            f"UNION ALL SELECT 3, u.state_key, u.value FROM {user_state} u "
            f"WHERE u.app_name = :app_name AND u.user_id = :user_id AND {alive('u')}"
        )

        def newest(after: bool) -> str:
            since = " AND e.timestamp >= :after" if after else ""
            # The session's pk as a scalar subquery: one value, so the index is walked backwards.
            return (
                f"SELECT {EVENT_COLUMNS} FROM {events} e "
                f"WHERE e.session_pk = (SELECT s.pk FROM {sessions} s WHERE {live}){since} "
                "ORDER BY e.seq DESC LIMIT :limit"
            )

        self.newest_events: dict[bool, NativeSQL] = {after: sql(newest(after)) for after in (False, True)}
        """the events statement of `session` alone (its plan is tested: tests/test_sql_backend.py)."""
        self.session: dict[bool, NativeSQL] = {
            after: sql(f"{SNAPSHOT}; {head}; {newest(after)}; {shared}") for after in (False, True)
        }
        """session row; newest events (+ timestamp >= :after); shared state: three result sets."""
        self.session_only = sql(f"{SNAPSHOT}; {head}; {shared}")
        """session row; shared state: two result sets (event_num=0)."""
