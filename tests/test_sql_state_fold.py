"""The session-state delta folded into the UPDATE that claims the session row (SQL backends).

An append or update_session_state applies its session keys in the claim's
UPDATE with the database's JSON functions (jsonb_set/-, JSON_SET/JSON_REMOVE,
json_set/json_remove) wherever the database can address every key in a JSON
path; otherwise it reads the state and writes it back whole. These tests
check which statements run (no state read, no extra round trip, MariaDB's
append with a delta without a locking SELECT), that keys a database cannot
address take the other way and still come out right, that state stored by
another JSON writer (escaped keys) is updated in place, and, with random
deltas of awkward keys, that every path agrees with a plain dict.
The contract suite (tests/contract/test_state.py) checks the semantics.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

import sessionstore as ss
from sessionstore.sql.migrate import migrate
from sessionstore.sql.native import NativeSQL
from sessionstore.sql.service import SQLSessionService
from tests.backends import SQL_BACKENDS, sql_database


@pytest.fixture(scope="module", params=SQL_BACKENDS)
async def url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    async with sql_database(request.param) as found:
        await migrate(found)
        yield found


@pytest.fixture
async def svc(url: str) -> AsyncIterator[SQLSessionService]:
    service = ss.open_service(url, cleanup_interval=None)
    assert isinstance(service, SQLSessionService)
    async with service:
        yield service


@pytest.fixture
def key() -> ss.Key:
    return ss.Key(f"app-{uuid.uuid4().hex[:10]}", "u1", "s1")


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The text of every hand-written statement run from here on (BEGIN/COMMIT are not)."""
    seen: list[str] = []
    original = NativeSQL.args

    def recording(self: NativeSQL, params: Any) -> list[Any]:
        seen.append(self.text)
        return original(self, params)

    monkeypatch.setattr(NativeSQL, "args", recording)
    return seen


@pytest.fixture
def queries(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """MySQL/MariaDB: each query sent to the server from here on (one per round trip), as
    the kinds of its statements."""
    import aiomysql

    sent: list[list[str]] = []
    execute, commit, rollback = aiomysql.Cursor.execute, aiomysql.Connection.commit, aiomysql.Connection.rollback

    async def recording_execute(self: Any, query: str, args: Any = None) -> Any:
        sent.append(kinds(query.split("; ")))
        return await execute(self, query, args)

    async def recording_commit(self: Any) -> Any:
        sent.append(["COMMIT"])
        return await commit(self)

    async def recording_rollback(self: Any) -> Any:
        sent.append(["ROLLBACK"])
        return await rollback(self)

    monkeypatch.setattr(aiomysql.Cursor, "execute", recording_execute)
    monkeypatch.setattr(aiomysql.Connection, "commit", recording_commit)
    monkeypatch.setattr(aiomysql.Connection, "rollback", recording_rollback)
    return sent


def kinds(statements: list[str]) -> list[str]:
    """Each statement as what it does, e.g. "UPDATE sessions +state RETURNING"."""
    found = []
    for sql in statements:
        words = sql.split()
        if words == ["COMMIT"]:
            found.append("COMMIT")
            continue
        if words[:2] == ["SET", "TRANSACTION"]:  # (what opens a batched read, sql/batched_reads.py)
            found.append("SET TRANSACTION")
            continue
        table = next(w for w in words if "sessions" in w or "events" in w or "_state" in w).split("_")[-1]
        kind = f"{words[0]} {table}"
        if words[0] == "WITH":
            found.append("WITH (one statement)")
            continue
        if words[0] == "UPDATE" and table == "sessions" and "state =" in sql:
            kind += " +state"
        if " FOR UPDATE" in sql:
            kind += " FOR UPDATE"
        if "RETURNING" in sql:
            kind += " RETURNING"
        if words[0] in ("SELECT", "UPDATE") and (sql.rstrip().endswith(", state") or ", state FROM" in sql):
            kind += " reads state"
        found.append(kind)
    return found


async def test_a_state_delta_goes_into_the_claiming_update(svc: SQLSessionService, key: ss.Key, statements: list[str]) -> None:
    s = await svc.create_session(key, state={"gone": 1, "keep": 2})
    statements.clear()
    await svc.append_event(s, ss.Event(author="a", state_delta={"turn": 1, "gone": ss.DELETE, "obj": {"a": [1.5]}}))
    expected = {
        "postgresql": ["WITH (one statement)"],
        "sqlite": ["UPDATE sessions +state RETURNING", "INSERT events"],
        "mysql": ["UPDATE sessions +state", "INSERT events"],  # at the caller's version: no locking SELECT
    }[svc.rules.name]
    assert kinds(statements) == expected

    statements.clear()
    await svc.update_session_state(key, {"turn": 2})
    assert kinds(statements) == {
        "postgresql": ["UPDATE sessions +state RETURNING"],
        "sqlite": ["UPDATE sessions +state RETURNING"],
        "mysql": ["SELECT sessions FOR UPDATE", "UPDATE sessions +state"],
    }[svc.rules.name]

    # The caller's Session is behind (another write landed): the general transaction,
    # the delta still in the claim. (On MySQL/MariaDB the append at the caller's
    # version, which matches no row and so inserts nothing, comes first.)
    statements.clear()
    await svc.append_event(s, ss.Event(author="a", state_delta={"turn": 3}))
    assert kinds(statements) == {
        "postgresql": ["WITH (one statement)"],
        "sqlite": ["UPDATE sessions +state RETURNING", "INSERT events"],
        "mysql": ["UPDATE sessions +state", "INSERT events", "SELECT sessions FOR UPDATE", "UPDATE sessions +state", "INSERT events"],
    }[svc.rules.name]
    got = await svc.get_session(key)
    assert got is not None and got.state == {"turn": 3, "keep": 2, "obj": {"a": [1.5]}} and got.version == 3


@pytest.mark.parametrize("url", ["mysql"], indirect=True)  # the MySQL/MariaDB append only
async def test_mysql_round_trips_of_an_append(svc: SQLSessionService, key: ss.Key, queries: list[list[str]]) -> None:
    """At the caller's version, the claim (with the state delta), the event and COMMIT go as one
    query; with app:/user: keys, two (those writes wait for the claim's answer); the general
    transaction (another write landed first) locks the row, then writes and commits in one."""
    s = await svc.create_session(key)
    queries.clear()
    await svc.append_event(s, ss.Event(author="a", state_delta={"turn": 1, "gone": ss.DELETE}))
    assert queries == [["UPDATE sessions +state", "INSERT events", "COMMIT"]]

    queries.clear()
    await svc.append_event(s, ss.Event(author="a", state_delta={"turn": 2, "app:a": 1, "user:u": ss.DELETE}))
    assert queries == [["UPDATE sessions +state"], ["INSERT events", "INSERT state", "UPDATE state", "COMMIT"]]

    other = await svc.get_session(key)
    assert other is not None
    await svc.append_event(other, ss.Event(author="a"))
    queries.clear()
    await svc.append_event(s, ss.Event(author="a", state_delta={"turn": 3}))  # s is one version behind
    assert queries == [
        ["UPDATE sessions +state", "INSERT events", "COMMIT"],  # matched nothing, inserted nothing
        ["SELECT sessions FOR UPDATE"],
        ["UPDATE sessions +state", "INSERT events", "COMMIT"],
    ]
    got = await svc.get_session(key)
    assert got is not None and got.state == {"turn": 3, "app:a": 1} and got.version == 4
    assert [e.seq for e in got.events] == [1, 2, 3, 4]


UNADDRESSABLE = {"sqlite": ["é", 'a"b', "a\\b", "a/b"], "mysql": ["-1", "-"]}


@pytest.mark.parametrize("url", ["sqlite", "mysql"], indirect=True)  # PostgreSQL addresses every key
async def test_keys_the_database_cannot_address_are_read_and_written_back(
    svc: SQLSessionService, key: ss.Key, statements: list[str]
) -> None:
    names = UNADDRESSABLE[svc.rules.name]
    s = await svc.create_session(key, state={"keep": 1})
    for name in names:
        statements.clear()
        # one key it cannot address takes the whole delta the other way
        await svc.append_event(s, ss.Event(author="a", state_delta={name: {"v": 1}, "plain": name}))
        assert any("reads state" in k for k in kinds(statements)), kinds(statements)
        await svc.update_session_state(key, {name: [name]})
    got = await svc.get_session(key)
    assert got is not None
    assert got.state == {"keep": 1, "plain": names[-1], **{name: [name] for name in names}}
    await svc.append_event(s, ss.Event(author="a", state_delta={name: ss.DELETE for name in names}))
    got = await svc.get_session(key)
    assert got is not None and got.state == {"keep": 1, "plain": names[-1]}


async def test_a_delta_with_more_keys_than_a_fold_takes_is_read_and_written_back(
    svc: SQLSessionService, key: ss.Key, statements: list[str]
) -> None:
    s = await svc.create_session(key)
    many = svc.rules.max_fold_keys + 1
    statements.clear()
    await svc.append_event(s, ss.Event(author="a", state_delta={f"k{i}": i for i in range(many)}))
    if svc.rules.name != "postgresql":  # (PostgreSQL's one statement takes any number)
        assert any("reads state" in k for k in kinds(statements)), kinds(statements)
    got = await svc.get_session(key)
    assert got is not None and got.state == {f"k{i}": i for i in range(many)}


async def test_state_stored_with_escaped_keys_is_updated_in_place(svc: SQLSessionService, key: ss.Key) -> None:
    """Another JSON writer may have stored keys escaped ("\\u00e9" for "é", "\\/" for "/"):
    a delta must replace or remove those keys, never add a second spelling."""
    s = await svc.create_session(key)
    sessions = svc.engine.dialect.identifier_preparer.format_table(svc.tables.sessions)
    stored = '{"\\u00e9": 1, "caf\\u00e9": 2, "a\\/b": 3, "plain": 4, "\\u00fcber": 5}'
    async with svc.engine.begin() as conn:
        await conn.execute(
            text(f"UPDATE {sessions} SET state = :state WHERE app_name = :app AND session_id = :sid"),
            {"state": stored, "app": key.app_name, "sid": key.session_id},
        )
    await svc.append_event(s, ss.Event(author="a", state_delta={"é": 10, "café": ss.DELETE, "a/b": 30}))
    await svc.append_event(s, ss.Event(author="a", state_delta={"plain": ss.DELETE, "new": 6}))
    await svc.update_session_state(key, {"über": 50})
    got = await svc.get_session(key)
    assert got is not None and got.state == {"é": 10, "a/b": 30, "new": 6, "über": 50}
    async with svc.engine.connect() as conn:
        raw = await conn.scalar(text(f"SELECT state FROM {sessions} WHERE app_name = :app"), {"app": key.app_name})
    if isinstance(raw, str):  # (MariaDB and SQLite hand back the text: one spelling per key)
        assert sum(raw.count(k) for k in ('"é"', '"\\u00e9"')) == 1, raw


# Characters that mean something in a JSON path, in JSON, or in SQL; multi-byte ones;
# look-alikes that must stay distinct keys ("é" and "e\u0301", "K" and the Kelvin sign).
ALPHABET = list("ab-_.*$[]\"\\ '/:0@#{}?%") + ["é", "e\u0301", "K", "\u212a", "ß", "ǅ", "🙂", "\u2028", "日"]


def _random_key(rnd: random.Random) -> str:
    return "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(1, 4)))


async def test_random_deltas_of_awkward_keys_agree_with_a_dict(svc: SQLSessionService, key: ss.Key) -> None:
    rnd = random.Random(10)
    model: dict[str, Any] = {_random_key(rnd): rnd.random() for _ in range(8)}
    s = await svc.create_session(key, state=model)
    other = await svc.get_session(key)
    assert other is not None
    for turn in range(40):
        names = list(model) + [_random_key(rnd) for _ in range(3)]
        delta = {
            name: rnd.choice([ss.DELETE, ss.DELETE, None, turn, {"t": turn}, [name], 0.1 * turn, name])
            for name in rnd.sample(names, rnd.randint(1, min(len(names), 8)))
        }
        way = turn % 3
        if way == 0:
            await svc.append_event(s, ss.Event(author="a", state_delta=delta))
        elif way == 1:  # through a Session that is behind: the general transaction
            await svc.append_event(other, ss.Event(author="a", state_delta=delta))
        else:
            await svc.update_session_state(key, delta)
        for name, value in delta.items():
            if value is ss.DELETE:
                model.pop(name, None)
            else:
                model[name] = value
        got = await svc.get_session(key, event_num=0)
        assert got is not None and got.state == model, (turn, delta)
