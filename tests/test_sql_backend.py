"""SQL-specific tests of the SQL backend on SQLite, PostgreSQL and MySQL/MariaDB.

The contract suite (tests/contract/) proves the behaviour every backend
shares through the public API. This module checks what only the SQL backend
has: concurrency across separate engines and OS processes, what lands in the
rows (read back with SQLAlchemy Core, bypassing the service), query plans,
URLs, drivers and options, credentials in errors and logs, engine ownership,
SQLite's connection setup and the start-up schema check.

Each database kind gets one scratch database for the module (tests/dbs.py),
migrated once; tests keep apart by using an app name of their own. Tests that
need an empty or differently migrated database make their own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import sys
import textwrap
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, insert, inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

import sessionstore as ss
from sessionstore.sql.engine import make_engine, normalize_url
from sessionstore.sql.migrate import migrate
from sessionstore.sql.native import NativeSQL, leased
from sessionstore.sql.service import SQLSessionService
from tests.backends import SQL_BACKENDS, MigratedDb, migrated_database, sql_database
from tests.dbs import server_url

PASSWORD = "S3cr3tPassw0rd"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


# --------------------------------------------------------------------------- fixtures and helpers


Db = MigratedDb


@pytest.fixture(scope="module", params=SQL_BACKENDS)
async def db(request: pytest.FixtureRequest) -> AsyncIterator[Db]:
    """A scratch database of each SQL kind, migrated with the default prefix, for the whole module."""
    async with migrated_database(request.param) as migrated:
        yield migrated


OpenService = Callable[..., Awaitable[SQLSessionService]]


@pytest.fixture
async def open_svc(db: Db) -> AsyncIterator[OpenService]:
    """Factory: a started service on the module's database (a new engine and pool each call)."""
    made: list[ss.SessionService] = []

    async def factory(target: str | AsyncEngine | None = None, **options: Any) -> SQLSessionService:
        options.setdefault("cleanup_interval", None)
        svc = ss.open_service(target if target is not None else db.url, **options)
        made.append(svc)
        await svc.start()
        assert isinstance(svc, SQLSessionService)
        return svc

    yield factory
    for svc in made:
        await svc.close()


@pytest.fixture
def app() -> str:
    """An app name no other test uses, so tests sharing the module's database never meet."""
    return f"app-{uuid.uuid4().hex[:10]}"


async def rows(svc: SQLSessionService, stmt: Any) -> list[Any]:
    async with svc.engine.connect() as conn:
        return list((await conn.execute(stmt)).all())


async def scalar(svc: SQLSessionService, stmt: Any) -> Any:
    async with svc.engine.connect() as conn:
        return await conn.scalar(stmt)


async def session_pk(svc: SQLSessionService, k: ss.Key) -> int:
    s = svc.tables.sessions
    return await scalar(
        svc,
        select(s.c.pk).where(
            s.c.app_name == k.app_name, s.c.user_id == k.user_id, s.c.session_id == k.session_id,
            s.c.deleted_at.is_(None),
        ),
    )


def with_scheme(url: str, drivername: str) -> str:
    return make_url(url).set(drivername=drivername).render_as_string(hide_password=False)


# --------------------------------------------------------------------------- concurrency


async def callers_engines(db: Db, count: int, made: list[AsyncEngine]) -> list[AsyncEngine]:
    """Engines made by "the application" (plain create_async_engine), each used once already."""
    for _ in range(count):
        engine = create_async_engine(normalize_url(db.url), pool_size=3, max_overflow=1, pool_timeout=60)
        made.append(engine)
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    return made


@pytest.mark.parametrize("engines", ["opened_from_url", "callers_engines"])
async def test_8_engines_x_50_concurrent_appends_lose_nothing(
    db: Db, open_svc: OpenService, app: str, engines: str
) -> None:
    # Eight services, each with its own engine and pool, as eight processes would have:
    # engines the services make from the URL (MySQL: READ COMMITTED), or the caller's own
    # (MySQL: the server's default REPEATABLE READ; SQLite: pooled before our hooks were installed).
    # (3 + 1 connections each keeps 8 engines well under PostgreSQL's default max_connections of 100.)
    made: list[AsyncEngine] = []
    try:
        if engines == "opened_from_url":
            services = [await open_svc(pool_size=3, max_overflow=1, pool_timeout=60) for _ in range(8)]
        else:
            services = [await open_svc(engine) for engine in await callers_engines(db, 8, made)]
        await _append_400_and_check(services, app)
    finally:  # (open_svc closes the services; closing never disposes a caller's engine)
        for engine in made:
            await engine.dispose()


async def _append_400_and_check(services: list[SQLSessionService], app: str) -> None:
    k = ss.Key(app, "u1", "s1")
    await services[0].create_session(k)
    handles = [await svc.get_session(k) for svc in services]

    async def append(engine_no: int, n: int) -> ss.Event:
        name = f"e{engine_no}_{n}"
        return await services[engine_no].append_event(
            handles[engine_no],
            ss.Event(author="user", id=name, content={"engine": engine_no, "n": n},
                     state_delta={f"k_{name}": n, f"user:u_{name}": n}),
        )

    stored = await asyncio.gather(*(append(i, n) for n in range(50) for i in range(8)))
    names = {f"e{i}_{n}" for i in range(8) for n in range(50)}
    assert sorted(e.seq for e in stored) == list(range(1, 401))

    reader = services[-1]
    got = await reader.get_session(k)
    assert got is not None
    assert [e.seq for e in got.events] == list(range(1, 401))
    assert {e.id for e in got.events} == names
    assert {e.id: e.seq for e in got.events} == {e.id: e.seq for e in stored}  # one total order
    assert got.version == 400
    session_keys = {key for key in got.state if not key.startswith("user:")}
    assert session_keys == {f"k_{name}" for name in names}
    assert await reader.list_user_state(k.user_key) == {f"u_{e.id}": e.content["n"] for e in stored}

    # And in the rows themselves: 400 events, seq 1..400, last_seq and version 400.
    e, s = reader.tables.events, reader.tables.sessions
    pk = await session_pk(reader, k)
    assert [r.seq for r in await rows(reader, select(e.c.seq).where(e.c.session_pk == pk).order_by(e.c.seq))] == list(
        range(1, 401)
    )
    (row,) = await rows(reader, select(s.c.version, s.c.last_seq).where(s.c.pk == pk))
    assert (row.version, row.last_seq) == (400, 400)


WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from sessionstore import Event, Key, open_service

    async def main(url, app, worker, count):
        svc = open_service(url, cleanup_interval=None, pool_size=3, max_overflow=2)
        async with svc:
            session = await svc.get_session(Key(app, "u1", "s1"), event_num=0)
            await asyncio.gather(*(
                svc.append_event(session, Event(
                    author="proc", id=f"p{worker}_{n}", content=n,
                    state_delta={f"k_p{worker}_{n}": n, f"user:u_p{worker}_{n}": n},
                ))
                for n in range(count)
            ))

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    """
)


async def test_concurrent_appends_from_3_os_processes_lose_nothing(db: Db, open_svc: OpenService, app: str) -> None:
    svc = await open_svc()
    k = ss.Key(app, "u1", "s1")
    await svc.create_session(k)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", WORKER, db.url, app, str(worker), "30",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        for worker in range(3)
    ]
    results = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 120)
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err.decode()

    names = {f"p{w}_{n}" for w in range(3) for n in range(30)}
    got = await svc.get_session(k)
    assert got is not None
    assert [e.seq for e in got.events] == list(range(1, 91))
    assert {e.id for e in got.events} == names
    assert got.version == 90
    assert set(got.state) == {f"k_{name}" for name in names} | {f"user:u_{name}" for name in names}


async def test_two_engines_racing_to_create_one_id_exactly_one_wins(db: Db, open_svc: OpenService, app: str) -> None:
    first, second = await open_svc(), await open_svc()
    s = first.tables.sessions
    for round_no in range(20):
        k = ss.Key(app, "u1", f"race-{round_no}")
        results = await asyncio.gather(
            first.create_session(k, state={"by": "first"}),
            second.create_session(k, state={"by": "second"}),
            return_exceptions=True,
        )
        created = [r for r in results if isinstance(r, ss.Session)]
        refused = [r for r in results if isinstance(r, ss.SessionExistsError)]
        assert len(created) == 1 and len(refused) == 1, results
        got = await second.get_session(k)
        assert got is not None and got.state == created[0].state
        count = await scalar(
            first, select(func.count()).select_from(s).where(s.c.app_name == app, s.c.session_id == k.session_id)
        )
        assert count == 1


async def test_a_small_pool_queues_writers_instead_of_failing(db: Db, open_svc: OpenService, app: str) -> None:
    svc = await open_svc(pool_size=1, max_overflow=0, pool_timeout=60)
    session = await svc.create_session(ss.Key(app, "u1", "s1"))
    await asyncio.gather(*(svc.append_event(session, ss.Event(author="a", content=i)) for i in range(30)))
    got = await svc.get_session(session.key)
    assert got is not None and [e.seq for e in got.events] == list(range(1, 31))


# --------------------------------------------------------------------------- what lands in the rows


async def test_ids_and_keys_are_case_and_space_exact_in_the_database(db: Db, open_svc: OpenService, app: str) -> None:
    svc = await open_svc()
    s, a, u = svc.tables.sessions, svc.tables.app_state, svc.tables.user_state
    keys = [
        ss.Key(app, "Alice", "S1"), ss.Key(app, "alice", "S1"), ss.Key(app, "Alice", "s1"),
        ss.Key(app, "a", "x"), ss.Key(app, "a ", "x"),
    ]
    for k in keys:
        await svc.create_session(k, state={"who": f"{k.user_id}/{k.session_id}"})
    await svc.update_app_state(app, {"K": "upper", "k": "lower"})
    await svc.update_user_state(ss.UserKey(app, "Alice"), {"K": 1, "k": 2})

    for k in keys:
        got = await svc.get_session(k)
        assert got is not None and got.state["who"] == f"{k.user_id}/{k.session_id}"
    assert await svc.list_app_state(app) == {"K": "upper", "k": "lower"}

    # Straight from the tables: distinct rows, and equality in SQL is exact.
    session_rows = await rows(svc, select(s.c.user_id, s.c.session_id).where(s.c.app_name == app))
    assert sorted(tuple(r) for r in session_rows) == sorted((k.user_id, k.session_id) for k in keys)
    s1_users = await rows(svc, select(s.c.user_id).where(s.c.app_name == app, s.c.session_id == "S1"))
    assert sorted(r.user_id for r in s1_users) == ["Alice", "alice"]
    assert [r.user_id for r in await rows(svc, select(s.c.user_id).where(s.c.app_name == app, s.c.user_id == "alice"))] == ["alice"]
    assert [r.user_id for r in await rows(svc, select(s.c.user_id).where(s.c.app_name == app, s.c.user_id == "a"))] == ["a"]
    assert [r.user_id for r in await rows(svc, select(s.c.user_id).where(s.c.app_name == app, s.c.user_id == "a "))] == ["a "]
    app_rows = await rows(svc, select(a.c.state_key, a.c.value).where(a.c.app_name == app))
    assert sorted(tuple(r) for r in app_rows) == [("K", "upper"), ("k", "lower")]
    user_rows = await rows(svc, select(u.c.state_key).where(u.c.app_name == app, u.c.user_id == "Alice"))
    assert sorted(r.state_key for r in user_rows) == ["K", "k"]
    assert await rows(svc, select(u.c.state_key).where(u.c.app_name == app, u.c.user_id == "alice")) == []


LITERALS = [
    "ü🙂",
    "'; DROP TABLE x; --",
    "Robert'); DROP TABLE ss_sessions;--",
    "%_\\",
    "\\'",
    "'\"`",
    "$1 %s ? :now %(x)s {0}",
    "日本語 ünïcødé",
]


def hex_sql(kind: str, column: str) -> str:
    """SQL for the stored bytes of an id column, in upper-case hex (bypasses every type processor)."""
    if kind == "postgresql":
        return f"upper(encode(convert_to({column}, 'UTF8'), 'hex'))"
    return f"hex({column})"


async def test_unicode_and_sql_metacharacters_are_stored_literally(db: Db, open_svc: OpenService, app: str) -> None:
    svc = await open_svc()
    t = svc.tables
    for n, literal in enumerate(LITERALS):
        user = f"{literal}-{n}"
        k = ss.Key(app, user, literal)
        session = await svc.create_session(k, state={literal: literal, "user:" + literal: literal, "app:" + literal: literal})
        await svc.append_event(
            session,
            ss.Event(id=literal, author=literal, invocation_id=literal, branch=literal,
                     content={literal: literal}, metadata={literal: [literal]}, state_delta={"s:" + literal: literal}),
        )

        (srow,) = await rows(svc, select(t.sessions).where(t.sessions.c.app_name == app, t.sessions.c.user_id == user))
        assert (srow.app_name, srow.user_id, srow.session_id) == (app, user, literal)
        assert srow.state == {literal: literal, "s:" + literal: literal}
        (erow,) = await rows(svc, select(t.events).where(t.events.c.session_pk == srow.pk))
        assert (erow.event_id, erow.author, erow.invocation_id, erow.branch) == (literal,) * 4
        assert erow.content == {literal: literal} and erow.meta == {literal: [literal]}
        assert erow.state_delta == {"s:" + literal: literal}
        (urow,) = await rows(svc, select(t.user_state).where(t.user_state.c.app_name == app, t.user_state.c.user_id == user))
        assert (urow.state_key, urow.value) == (literal, literal)

        # The bytes in the database are the id's UTF-8, nothing escaped, folded or padded.
        sessions = db_table_name(svc, t.sessions)
        raw = await rows(
            svc,
            text(f"SELECT {hex_sql(db.kind, 'session_id')} AS sid, {hex_sql(db.kind, 'user_id')} AS uid "
                 f"FROM {sessions} WHERE pk = :pk").bindparams(pk=srow.pk),
        )
        assert [(r.sid, r.uid) for r in raw] == [(literal.encode().hex().upper(), user.encode().hex().upper())]

    app_rows = await rows(svc, select(t.app_state.c.state_key, t.app_state.c.value).where(t.app_state.c.app_name == app))
    assert sorted(tuple(r) for r in app_rows) == sorted((x, x) for x in LITERALS)


def db_table_name(svc: SQLSessionService, table: Any) -> str:
    return svc.engine.dialect.identifier_preparer.format_table(table)


UTC_TEXT_SQL = {
    # The stored value of a timestamp column, as text in UTC with microseconds, bypassing every type processor.
    "postgresql": "to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')",
    "mysql": "DATE_FORMAT({col}, '%Y-%m-%d %H:%i:%s.%f')",
    "sqlite": "{col}",
}


async def test_timestamps_are_stored_in_utc_with_microseconds(db: Db, open_svc: OpenService, app: str) -> None:
    now = datetime(2026, 3, 4, 5, 6, 7, 654321, tzinfo=timezone.utc)
    svc = await open_svc(clock=lambda: now, session_ttl=timedelta(hours=1))
    k = ss.Key(app, "u1", "s1")
    session = await svc.create_session(k)
    stamp = datetime(2026, 1, 1, 13, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    await svc.append_event(session, ss.Event(author="a", timestamp=stamp))  # written on the driver connection
    pk = await session_pk(svc, k)
    await svc.delete_session(k)  # written through SQLAlchemy Core

    def as_text(col: str) -> str:
        return UTC_TEXT_SQL[db.kind].format(col=col)

    sessions, events = db_table_name(svc, svc.tables.sessions), db_table_name(svc, svc.tables.events)
    (srow,) = await rows(svc, text(
        f"SELECT {as_text('created_at')} AS c, {as_text('updated_at')} AS u, {as_text('expires_at')} AS x, "
        f"{as_text('deleted_at')} AS d FROM {sessions} WHERE pk = :pk").bindparams(pk=pk))
    (erow,) = await rows(svc, text(f"SELECT {as_text('timestamp')} AS ts FROM {events} WHERE session_pk = :pk").bindparams(pk=pk))
    # Both write paths store the same form, so comparisons between them hold (SQLite compares text).
    assert (srow.c, srow.u, srow.d) == ("2026-03-04 05:06:07.654321",) * 3
    assert srow.x == "2026-03-04 06:06:07.654321"
    assert erow.ts == "2026-01-01 12:00:00.123456"

    got = (await rows(svc, select(svc.tables.events.c.timestamp).where(svc.tables.events.c.session_pk == pk)))[0][0]
    assert got == stamp and got.tzinfo is not None and got.utcoffset() == timedelta(0)


JSON_KIND_SQL = {
    "postgresql": "jsonb_typeof(content)",
    "mysql": "JSON_TYPE(content)",
    "sqlite": "typeof(content) || ':' || json_type(content)",
}
JSON_KINDS = {
    # content: (PostgreSQL jsonb_typeof, MySQL/MariaDB JSON_TYPE, SQLite typeof:json_type)
    "int": (1, ("number", "INTEGER", "text:integer")),
    "string_1": ("1", ("string", "STRING", "text:text")),
    "float": (1.5, ("number", "DOUBLE", "text:real")),
    "true": (True, ("boolean", "BOOLEAN", "text:true")),
    "null": (None, ("null", "NULL", "text:null")),
    "array": ([1, "a"], ("array", "ARRAY", "text:array")),
    "object": ({"a": 1}, ("object", "OBJECT", "text:object")),
    # written in full with a fraction: PostgreSQL's NUMERIC prints "1e+16" back as an integer
    "float_1e16": (1e16, ("number", "DOUBLE", "text:real")),
}


async def test_json_columns_hold_json_documents_per_dialect(db: Db, open_svc: OpenService, app: str) -> None:
    """JSONB / JSON / JSON text in a TEXT column; Python None is JSON null, never SQL NULL;
    on SQLite the text '1' stays text (a column declared JSON would have NUMERIC affinity)."""
    svc = await open_svc()
    session = await svc.create_session(ss.Key(app, "u1", "s1"))
    names = list(JSON_KINDS)
    for name in names:
        await svc.append_event(session, ss.Event(author="a", id=name, content=JSON_KINDS[name][0]))
    pk = await session_pk(svc, session.key)
    events = db_table_name(svc, svc.tables.events)
    column = {"postgresql": 0, "mysql": 1, "sqlite": 2}[db.kind]
    found = await rows(svc, text(
        f"SELECT event_id, {JSON_KIND_SQL[db.kind]} AS kind, content IS NULL AS missing FROM {events} "
        "WHERE session_pk = :pk ORDER BY seq").bindparams(pk=pk))
    assert [(r.event_id, r.kind, bool(r.missing)) for r in found] == [
        (name.encode() if db.kind == "mysql" else name, JSON_KINDS[name][1][column], False) for name in names
    ]
    got = await svc.get_session(session.key)
    assert got is not None
    for name, e in zip(names, got.events, strict=True):
        assert e.content == JSON_KINDS[name][0] and type(e.content) is type(JSON_KINDS[name][0])
    if db.kind == "sqlite":
        raw = await rows(svc, text(f"SELECT content FROM {events} WHERE session_pk = :pk ORDER BY seq").bindparams(pk=pk))
        assert [r.content for r in raw] == [
            "1", '"1"', "1.5", "true", "null", '[1,"a"]', '{"a":1}', "10000000000000000.0",
        ]


CONTROL = "".join(chr(c) for c in range(1, 32)) + "\x7f\x85"


async def test_control_characters_and_escape_lookalikes_in_json_round_trip(db: Db, open_svc: OpenService, app: str) -> None:
    """Every control character but U+0000 is storable in JSON (PostgreSQL's JSONB too), in values and
    keys; text that merely looks like an escape ("\\u0000") is stored as the text it is."""
    svc = await open_svc()
    lookalike = "\\u0000 \\n \\" + '"'
    value = {"ctl": CONTROL, f"key{CONTROL}": lookalike, "nested": [CONTROL, {lookalike: CONTROL}]}
    k = ss.Key(app, "u1", "s1")
    session = await svc.create_session(k, state={"s": value, "app:a": value, "user:u": value})
    await svc.append_event(session, ss.Event(author="a", content=value, metadata={"m": value}, state_delta={"d": value}))
    got = await svc.get_session(k)
    assert got is not None
    assert got.state == {"s": value, "app:a": value, "user:u": value, "d": value}
    (e,) = got.events
    assert e.content == value and e.metadata == {"m": value}
    (row,) = await rows(svc, select(svc.tables.events.c.content).where(svc.tables.events.c.session_pk == await session_pk(svc, k)))
    assert row.content == value
    if db.kind == "postgresql":
        events = db_table_name(svc, svc.tables.events)
        raw = await scalar(svc, text(f"SELECT content->>'ctl' FROM {events} WHERE event_id = :id").bindparams(id=e.id))
        assert raw == CONTROL


NUL_WRITES: dict[str, Callable[[ss.SessionService, ss.Session], Awaitable[Any]]] = {
    "content": lambda svc, s: svc.append_event(s, ss.Event(author="a", content={"t": "a\x00b"})),
    "content_key": lambda svc, s: svc.append_event(s, ss.Event(author="a", content={"a\x00": 1})),
    "metadata": lambda svc, s: svc.append_event(s, ss.Event(author="a", metadata={"m": ["\x00"]})),
    "event_id": lambda svc, s: svc.append_event(s, ss.Event(author="a", id="e\x00")),
    "session_value": lambda svc, s: svc.append_event(s, ss.Event(author="a", state_delta={"k": "\x00"})),
    "app_value": lambda svc, s: svc.update_session_state(s.key, {"app:k": {"x": "\x00"}}),
    "user_value": lambda svc, s: svc.update_user_state(s.key.user_key, {"k": "\x00"}),
    "nested_key": lambda svc, s: svc.update_session_state(s.key, {"k": {"\x00": 1}}),
    "create_state": lambda svc, s: svc.create_session(ss.Key(s.app_name, s.user_id, "other"), state={"k": "\x00"}),
}


async def test_nul_is_refused_before_the_database_is_reached(db: Db, open_svc: OpenService, app: str) -> None:
    """JSONB cannot hold U+0000: every backend refuses it with a typed error, never a driver error."""
    svc = await open_svc()
    session = await svc.create_session(ss.Key(app, "u1", "s1"), state={"keep": 1})
    t = svc.tables

    async def counts() -> tuple[int, ...]:
        result = []
        for table in (t.sessions, t.app_state, t.user_state):
            result.append(await scalar(svc, select(func.count()).select_from(table).where(table.c.app_name == app)))
        pk = await session_pk(svc, session.key)
        result.append(await scalar(svc, select(func.count()).select_from(t.events).where(t.events.c.session_pk == pk)))
        return tuple(result)

    before = await counts()
    for name, write in NUL_WRITES.items():
        with pytest.raises(ss.SessionStoreError) as raised:
            await write(svc, session)
        assert isinstance(raised.value, (ss.InvalidEventError, ss.StateValueError)), (name, raised.value)
        assert "U+0000" in str(raised.value), (name, raised.value)
        for item in exception_chain(raised.value):
            assert type(item).__module__.split(".")[0] == "sessionstore", (name, repr(item))
        if isinstance(raised.value, ss.StateValueError):
            assert raised.value.key in str(raised.value)
    assert await counts() == before
    got = await svc.get_session(session.key)
    assert got is not None and got.state == {"keep": 1} and got.version == 0


@pytest.mark.parametrize("soft_delete", [True, False])
async def test_deleting_a_session_soft_or_hard(db: Db, open_svc: OpenService, app: str, soft_delete: bool) -> None:
    svc = await open_svc(soft_delete=soft_delete)
    t = svc.tables
    k = ss.Key(app, "u1", "s1")
    session = await svc.create_session(k)
    for n in range(3):
        await svc.append_event(session, ss.Event(author="a", content=n))
    old_pk = await session_pk(svc, k)
    await svc.delete_session(k)
    again = await svc.create_session(k)  # the id is free again at once
    await svc.append_event(again, ss.Event(author="a", content="new"))
    got = await svc.get_session(k)
    assert got is not None and [(e.seq, e.content) for e in got.events] == [(1, "new")]
    new_pk = await session_pk(svc, k)

    columns = [t.sessions.c.pk, t.sessions.c.deleted_at] + ([t.sessions.c.active] if db.kind == "mysql" else [])
    found = {r.pk: r for r in await rows(svc, select(*columns).where(t.sessions.c.app_name == app))}
    old_events = await scalar(svc, select(func.count()).select_from(t.events).where(t.events.c.session_pk == old_pk))
    if soft_delete:  # a tombstone (purged by the cleanup job later), events kept with it
        assert new_pk != old_pk and set(found) == {old_pk, new_pk}
        assert found[old_pk].deleted_at is not None and found[new_pk].deleted_at is None
        if db.kind == "mysql":  # the generated column under the unique index: NULL once deleted
            assert (found[old_pk].active, found[new_pk].active) == (None, 1)
        assert old_events == 3
    else:  # the row is gone, and its events with it (ON DELETE CASCADE; SQLite needs foreign_keys=ON)
        assert set(found) == {new_pk}
        assert await scalar(svc, select(func.count()).select_from(t.events).where(t.events.c.session_pk == new_pk)) == 1


async def test_a_hard_deleted_sessions_surrogate_key_is_never_handed_to_a_new_session(
    db: Db, open_svc: OpenService, app: str
) -> None:
    """Events, summaries and track events point at the session's pk, so a re-created id must get a new one."""
    svc = await open_svc(soft_delete=False)
    k = ss.Key(app, "u1", "s1")
    await svc.create_session(k)
    old_pk = await session_pk(svc, k)
    await svc.delete_session(k)
    await svc.create_session(k)
    assert await session_pk(svc, k) != old_pk


async def test_a_callers_sqlite_engine_used_beforehand_gets_the_same_connection_setup(db: Db, app: str) -> None:
    async with sql_database(db.kind) as url:  # a database of its own: the bug leaves orphaned rows behind
        await migrate(url)
        await _use_a_callers_engine_used_beforehand(db.kind, url, app)


async def _use_a_callers_engine_used_beforehand(kind: str, url: str, app: str) -> None:
    engine = create_async_engine(normalize_url(url), pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:  # pooled before the service ever saw the engine
            await conn.execute(text("SELECT 1"))
        async with ss.open_service(engine, soft_delete=False, cleanup_interval=None) as svc:
            assert isinstance(svc, SQLSessionService)
            k = ss.Key(app, "u1", "s1")
            session = await svc.create_session(k)
            await svc.append_event(session, ss.Event(author="a", content=1))
            pk = await session_pk(svc, k)
            await svc.delete_session(k)
            events = svc.tables.events
            assert await scalar(svc, select(func.count()).select_from(events).where(events.c.session_pk == pk)) == 0
            # What a user sees if the old events survive: the re-created session cannot take an event.
            again = await svc.create_session(k)
            await svc.append_event(again, ss.Event(author="a", content="new"))
            got = await svc.get_session(k)
            assert got is not None and [(e.seq, e.content) for e in got.events] == [(1, "new")]
            if kind == "sqlite":
                async with engine.connect() as conn:
                    assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
                    assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 30_000
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- query plans


def _pg_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found.extend(_pg_nodes(child))
    return found


async def explain(svc: SQLSessionService, kind: str, stmt: NativeSQL, params: dict[str, Any]) -> Any:
    """The plan of a statement the service runs (sql/reads.py), bound as the service binds it:

    PostgreSQL: the top node of EXPLAIN (FORMAT JSON); MySQL/MariaDB: EXPLAIN's rows as
    dicts; SQLite: the detail column of EXPLAIN QUERY PLAN.
    """
    prefix = {"postgresql": "EXPLAIN (FORMAT JSON) ", "mysql": "EXPLAIN ", "sqlite": "EXPLAIN QUERY PLAN "}[kind]
    explained = NativeSQL.__new__(NativeSQL)
    explained.text, explained.names = prefix + stmt.text, stmt.names
    async with leased(svc.engine, svc._tx_class) as tx:
        rows = await tx.read(explained, params)
    if kind == "postgresql":
        plan = rows[0][0]
        return (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
    if kind == "mysql":
        names = ("id", "select_type", "table", "type", "possible_keys", "key", "key_len", "ref", "rows", "Extra")
        return [dict(zip(names, row, strict=True)) for row in rows]
    return [row[-1] for row in rows]


def assert_index_walk(kind: str, plan: Any, alias: str, index: str) -> None:
    """In the plan of a union read, the part reading `alias` walks `index` in order under its
    LIMIT: no full scan of it, and no sort anywhere."""
    if kind == "postgresql":
        nodes = _pg_nodes(plan)
        kinds = [n["Node Type"] for n in nodes]
        scans = [n for n in nodes if n.get("Alias") == alias]
        assert len(scans) == 1, kinds
        assert scans[0]["Node Type"] in ("Index Scan", "Index Only Scan"), scans[0]
        assert scans[0]["Index Name"] == index and scans[0]["Scan Direction"] == "Backward", scans[0]
        assert not {"Sort", "Incremental Sort"} & set(kinds), kinds
        assert "Limit" in kinds, kinds
    elif kind == "mysql":
        rows = [r for r in plan if r["table"] == alias and r["key"] == index]
        assert len(rows) == 1, plan
        assert rows[0]["type"] in ("range", "ref"), rows[0]
        for row in plan:
            extra = (row["Extra"] or "").lower()
            assert "filesort" not in extra and "temporary" not in extra, row
    else:
        assert any(d.startswith(f"SEARCH {alias} ") and f"USING INDEX {index} " in d + " " for d in plan), plan
        assert not any("TEMP B-TREE" in d for d in plan), plan
        assert not any(d.startswith(f"SCAN {alias}") for d in plan), plan


async def analyze(svc: SQLSessionService, kind: str, table: Any) -> None:
    async with svc.engine.connect() as conn:
        await conn.execute(text(f"ANALYZE {'TABLE ' if kind == 'mysql' else ''}{db_table_name(svc, table)}"))
        await conn.commit()


@pytest.mark.parametrize("soft_delete", [True, False])
async def test_an_append_never_lands_in_a_replaced_session_row(
    db: Db, open_svc: OpenService, app: str, soft_delete: bool
) -> None:
    """MySQL/MariaDB append through the pk a service last saw for a session (sql/appends.py).
    Another service deletes the session and creates it again (a new row): this service's
    next append must go to the new row, the old one untouched, on every database."""
    mine, other = await open_svc(soft_delete=soft_delete), await open_svc(soft_delete=soft_delete)
    k = ss.Key(app, "u1", "replaced")
    first = await mine.create_session(k)
    await mine.append_event(first, ss.Event(author="user", content="to the first row"))  # (remembers its pk)
    old_pk = await session_pk(mine, k)
    await other.delete_session(k)
    await other.create_session(k, {"fresh": True})
    # (a Session at the new row's version 0: only the remembered pk is out of date)
    caller = ss.Session(k.session_id, k.app_name, k.user_id)
    stored = await mine.append_event(caller, ss.Event(author="user", content="to the new row", state_delta={"n": 1}))
    assert stored.seq == 1
    now = await mine.get_session(k)
    assert [e.content for e in now.events] == ["to the new row"] and now.state == {"fresh": True, "n": 1}
    assert await session_pk(mine, k) != old_pk
    async with mine.engine.connect() as conn:  # the first row kept its one event
        events = mine.tables.events
        old = (await conn.execute(select(events.c.content).where(events.c.session_pk == old_pk))).scalars().all()
    assert old == (["to the first row"] if soft_delete else [])


async def test_newest_n_events_are_read_through_the_session_seq_index(db: Db, open_svc: OpenService, app: str) -> None:
    svc = await open_svc()
    e, s = svc.tables.events, svc.tables.sessions
    k, other = ss.Key(app, "u1", "big"), ss.Key(app, "u1", "other")
    await svc.create_session(k)
    await svc.create_session(other)
    pk, other_pk = await session_pk(svc, k), await session_pk(svc, other)

    def event_rows(session: int, count: int) -> list[dict[str, Any]]:
        return [
            {"session_pk": session, "seq": n, "event_id": f"e{n}", "author": "user", "timestamp": T0 + timedelta(seconds=n),
             "content": {"text": f"message {n}"}, "state_delta": {}, "meta": {}, "created_at": T0, "updated_at": T0}
            for n in range(1, count + 1)
        ]

    async with svc.engine.begin() as conn:
        await conn.execute(insert(e), event_rows(pk, 5000))
        await conn.execute(insert(e), event_rows(other_pk, 1000))
        await conn.execute(update(s).where(s.c.pk == pk).values(last_seq=5000, version=5000))
        await conn.execute(update(s).where(s.c.pk == other_pk).values(last_seq=1000, version=1000))
    await analyze(svc, db.kind, e)

    got = await svc.get_session(k, event_num=20)
    assert got is not None and [ev.seq for ev in got.events] == list(range(4981, 5001))
    assert [ev.content for ev in got.events] == [{"text": f"message {n}"} for n in range(4981, 5001)]

    # The statement get_session runs for event_num=20 (with after= too).
    t = svc._tx_class.time
    params = {"app_name": app, "user_id": "u1", "session_id": "big", "now": t(T0 + timedelta(days=1)), "limit": 20}
    for after in (False, True):
        bound = params | ({"after": t(T0)} if after else {})
        # (MySQL/MariaDB run the read as a batch of statements: the events one is explained.)
        stmt = svc.r.session[after] if svc.r.batched is None else svc.r.batched.newest_events[after]
        plan = await explain(svc, db.kind, stmt, bound)
        assert_index_walk(db.kind, plan, "e", f"{svc.table_prefix}events_session_seq")


async def test_list_sessions_pages_walk_the_recent_index(db: Db, open_svc: OpenService, app: str) -> None:
    svc = await open_svc()
    s = svc.tables.sessions
    rows_ = [
        {"app_name": app, "user_id": f"u{u}", "session_id": f"s{i:04d}", "state": {}, "version": 0, "last_seq": 0,
         "created_at": T0, "updated_at": T0 + timedelta(seconds=i // 2)}  # pairs share updated_at: ties by id
        for u in range(4) for i in range(1500)
    ]
    async with svc.engine.begin() as conn:
        await conn.execute(insert(s), rows_)
    await analyze(svc, db.kind, s)

    t = svc._tx_class.time
    params = {"app_name": app, "user_id": "u1", "now": t(T0 + timedelta(days=1)), "limit": 51}
    cursor_params = {"c_updated": t(T0 + timedelta(seconds=700)), "c_id": "s1400"}
    for after in (False, True):
        # (MySQL/MariaDB read the page as a batch, sql/batched_reads.py: its SELECT of the sessions)
        stmt = svc.r.page[after] if svc.r.page_alone is None else svc.r.page_alone[after]
        plan = await explain(svc, db.kind, stmt, params | (cursor_params if after else {}))
        assert_index_walk(db.kind, plan, "s", f"{svc.table_prefix}sessions_recent")

    # And the pages are the keyset walk: newest first, id descending among equal updated_at.
    seen, cursor = [], None
    for _ in range(3):
        page = await svc.list_sessions(ss.UserKey(app, "u1"), limit=100, cursor=cursor)
        seen += [x.id for x in page.sessions]
        cursor = page.next_cursor
    assert seen == [f"s{i:04d}" for i in range(1499, 1199, -1)]


async def test_list_app_sessions_pages_walk_the_app_recent_index(db: Db, open_svc: OpenService, app: str) -> None:
    """list_app_sessions reads the sessions table (twice: the page, and again for its users'
    state) backwards through (app_name, updated_at, session_id, user_id), never sorting."""
    svc = await open_svc()
    s = svc.tables.sessions
    rows_ = [
        {"app_name": f"{app}{a}", "user_id": f"u{u}", "session_id": f"s{i:04d}", "state": {}, "version": 0,
         "last_seq": 0, "created_at": T0, "updated_at": T0 + timedelta(seconds=i // 2)}  # ties: by id, then user
        for a in range(3) for u in range(4) for i in range(500)
    ]
    async with svc.engine.begin() as conn:
        await conn.execute(insert(s), rows_)
    await analyze(svc, db.kind, s)

    index = f"{svc.table_prefix}sessions_app_recent"
    t = svc._tx_class.time
    params = {"app_name": f"{app}1", "now": t(T0 + timedelta(days=1)), "limit": 51}
    cursor_params = {"c_updated": t(T0 + timedelta(seconds=200)), "c_id": "s0400", "c_user": "u2"}
    for after in (False, True):
        plan = await explain(svc, db.kind, svc.r.app_page[after], params | (cursor_params if after else {}))
        if db.kind == "postgresql":
            nodes = _pg_nodes(plan)
            scans = [n for n in nodes if n.get("Relation Name") == db_table_name(svc, s).split(".")[-1]]
            assert len(scans) == 2, [(n["Node Type"], n.get("Alias"), n.get("Index Name")) for n in nodes]
            for scan in scans:
                assert scan["Node Type"] in ("Index Scan", "Index Only Scan") and scan["Index Name"] == index, scan
                assert scan["Scan Direction"] == "Backward", scan
            assert not {"Sort", "Incremental Sort"} & {n["Node Type"] for n in nodes}, nodes
        elif db.kind == "mysql":
            scans = [r for r in plan if r["table"] == "s"]
            assert len(scans) == 2 and all(r["key"] == index for r in scans), plan
            assert not any("filesort" in (r["Extra"] or "").lower() for r in plan), plan
        else:
            searches = [d for d in plan if d.startswith("SEARCH s ")]
            assert len(searches) == 2 and all(f"USING INDEX {index} " in d + " " for d in searches), plan
            assert not any(d.startswith("SCAN s") for d in plan), plan
            assert not any("TEMP B-TREE FOR ORDER BY" in d for d in plan), plan

    # The pages are the keyset walk: newest first, then id, then user, descending.
    seen, cursor = [], None
    for _ in range(3):
        page = await svc.list_app_sessions(f"{app}1", limit=100, cursor=cursor)
        seen += [(x.id, x.user_id) for x in page.sessions]
        cursor = page.next_cursor
    assert seen == [(f"s{i:04d}", f"u{u}") for i in range(499, 424, -1) for u in range(3, -1, -1)]


# --------------------------------------------------------------------------- event size


async def test_events_at_and_over_max_event_bytes(db: Db, open_svc: OpenService, app: str) -> None:
    svc = await open_svc(max_event_bytes=200_000)
    session = await svc.create_session(ss.Key(app, "u1", "s1"))
    # Stored size = serialised content + metadata ("{}") + persisted delta ("{}").
    fits = "x" * (200_000 - 2 - 4)
    stored = await svc.append_event(session, ss.Event(author="a", content=fits))
    with pytest.raises(ss.EventTooLargeError):
        await svc.append_event(session, ss.Event(author="a", content=fits + "x", state_delta={"k": 1}))

    got = await svc.get_session(session.key)
    assert got is not None
    assert [ev.id for ev in got.events] == [stored.id] and got.events[0].content == fits
    assert got.version == 1 and "k" not in got.state
    e = svc.tables.events
    pk = await session_pk(svc, session.key)
    assert await scalar(svc, select(func.count()).select_from(e).where(e.c.session_pk == pk)) == 1


async def test_a_900_kb_event_round_trips_under_the_default_limit(db: Db, open_svc: OpenService, app: str) -> None:
    svc = await open_svc()
    assert svc.options.max_event_bytes == 1024 * 1024
    if db.kind == "mysql":
        packet = await scalar(svc, text("SELECT @@max_allowed_packet"))
        assert packet >= 2 * 1024 * 1024, f"max_allowed_packet={packet} is too small for a 1 MiB event"
    session = await svc.create_session(ss.Key(app, "u1", "s1"))
    content = {
        "text": "ü🙂 'quoted' \"double\" \\ " * 23_000,
        "items": [{"n": i, "f": i / 7, "big": 2**63 - 1 - i, "flag": i % 2 == 0, "none": None} for i in range(2_000)],
        "nested": {"a": {"b": {"c": ["deep", {"d": 1}]}}},
    }
    metadata = {"source": "test", "tags": ["x" * 100] * 100}
    event = ss.Event(author="a", content=content, metadata=metadata, state_delta={"big": "y" * 50_000})
    size = sum(len(json.dumps(part, ensure_ascii=False, separators=(",", ":")).encode())
               for part in (content, metadata, event.state_delta))
    assert 880_000 < size < 1024 * 1024
    await svc.append_event(session, event)
    got = await svc.get_session(session.key)
    assert got is not None
    (back,) = got.events
    assert back.content == content and back.metadata == metadata
    assert back.state_delta == {"big": "y" * 50_000} and got.state["big"] == "y" * 50_000


# --------------------------------------------------------------------------- URLs, drivers and options


SCHEMES = {
    "sqlite": [("sqlite", "sqlite+aiosqlite"), ("sqlite+aiosqlite", "sqlite+aiosqlite")],
    "postgresql": [
        ("postgresql", "postgresql+asyncpg"),
        ("postgres", "postgresql+asyncpg"),
        ("postgresql+asyncpg", "postgresql+asyncpg"),
        ("postgres+asyncpg", "postgresql+asyncpg"),
        ("postgresql+psycopg", "postgresql+psycopg"),
        ("postgres+psycopg", "postgresql+psycopg"),
    ],
    "mysql": [
        ("mysql", "mysql+aiomysql"),
        ("mariadb", "mysql+aiomysql"),
        ("mysql+aiomysql", "mysql+aiomysql"),
        ("mariadb+aiomysql", "mysql+aiomysql"),
    ],
}


async def test_url_schemes_choose_the_async_driver_and_work(db: Db, app: str) -> None:
    for n, (scheme, driver) in enumerate(SCHEMES[db.kind]):
        svc = ss.open_service(with_scheme(db.url, scheme), cleanup_interval=None)
        try:
            assert svc.engine.url.drivername == driver, scheme
            k = ss.Key(app, "u1", f"s{n}")
            session = await svc.create_session(k)
            await svc.append_event(session, ss.Event(author="a", content=scheme))
            got = await svc.get_session(k)
            assert got is not None and [ev.content for ev in got.events] == [scheme]
        finally:
            await svc.close()


@pytest.mark.parametrize(
    ("url", "async_driver"),
    [
        ("postgresql+psycopg2://u:{pw}@db.example/app", "postgresql+asyncpg"),
        ("postgres+pg8000://u:{pw}@db.example/app", "postgres+asyncpg"),
        ("mysql+pymysql://u:{pw}@db.example/app", "mysql+aiomysql"),
        ("mysql+mysqldb://u:{pw}@db.example/app", "mysql+aiomysql"),
        ("mariadb+mariadbconnector://u:{pw}@db.example/app", "mariadb+aiomysql"),
        ("sqlite+pysqlite:///{pw}.db", "sqlite+aiosqlite"),
    ],
)
def test_a_sync_driver_url_is_refused_naming_the_async_driver(url: str, async_driver: str) -> None:
    url = url.format(pw=PASSWORD if "sqlite" not in url else "file")
    with pytest.raises(ss.ConfigurationError) as raised:
        ss.open_service(url)
    assert async_driver in str(raised.value)
    assert "is not a driver sessionstore supports" in str(raised.value)
    assert PASSWORD not in str(raised.value) and PASSWORD not in repr(raised.value)


def test_an_unsupported_async_driver_is_called_that_not_a_sync_one() -> None:
    with pytest.raises(ss.ConfigurationError) as raised:
        ss.open_service(f"mysql+asyncmy://u:{PASSWORD}@db.example/app")
    text = str(raised.value)
    assert "'asyncmy'" in text and "is an async driver that sessionstore does not support" in text, text
    assert "use mysql+aiomysql://" in text and PASSWORD not in text
    with pytest.raises(ss.ConfigurationError) as raised:
        ss.open_service(f"postgresql+pg8000://u:{PASSWORD}@db.example/app")
    assert "postgresql+asyncpg:// or postgresql+psycopg://" in str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        "oracle://u:{pw}@db.example/app",
        "mssql+aioodbc://u:{pw}@db.example/app",
        "memcached://u:{pw}@db.example/0",
        "http://u:{pw}@db.example/",
        "postgresql:/u:{pw}@db.example/app",
        "u:{pw}@db.example/app",
        "postgresql://u:{pw}@db.example:notaport/app",
    ],
)
def test_an_unusable_url_raises_configuration_error_without_the_password(url: str) -> None:
    url = url.format(pw=PASSWORD)
    with pytest.raises(ss.ConfigurationError) as raised:
        ss.open_service(url)
    assert_no_password(raised.value)


def test_options_are_checked_when_the_service_is_opened(db: Db) -> None:
    with pytest.raises(ss.ConfigurationError, match="unknown options: bogus"):
        ss.open_service(db.url, bogus=1)
    with pytest.raises(ss.ConfigurationError):
        ss.open_service(db.url, event_limit=0)
    with pytest.raises(ss.ConfigurationError):
        ss.open_service(db.url, max_event_bytes=-1)
    for prefix in ("", "1abc", "bad-prefix", "a b", "x" * 21, "ß_", 5, None):
        with pytest.raises(ss.ConfigurationError, match="table_prefix"):
            ss.open_service(db.url, table_prefix=prefix)
    if db.kind != "postgresql":
        with pytest.raises(ss.ConfigurationError, match="PostgreSQL"):
            ss.open_service(db.url, schema="tenant")


async def test_pool_options_reach_the_engine(db: Db, open_svc: OpenService) -> None:
    svc = await open_svc(pool_size=3, max_overflow=1, pool_timeout=7, pool_recycle=120, pool_pre_ping=True)
    pool = svc.engine.pool
    assert pool.size() == 3
    assert pool._max_overflow == 1  # noqa: SLF001 - no public accessor
    assert pool._timeout == 7  # noqa: SLF001
    assert pool._recycle == 120  # noqa: SLF001
    assert pool._pre_ping is True  # noqa: SLF001
    echoing = ss.open_service(db.url, echo=True)
    try:
        assert echoing.engine.echo is True
    finally:
        await echoing.close()
    unpooled = await open_svc(poolclass=NullPool)
    assert isinstance(unpooled.engine.pool, NullPool)
    session = await unpooled.create_session(ss.Key(f"app-{uuid.uuid4().hex[:10]}", "u1", "s1"))
    await asyncio.gather(*(unpooled.append_event(session, ss.Event(author="a", content=i)) for i in range(5)))
    got = await unpooled.get_session(session.key)
    assert got is not None and [e.seq for e in got.events] == [1, 2, 3, 4, 5]


async def test_table_prefixes_keep_services_apart(db: Db, open_svc: OpenService, app: str) -> None:
    await migrate(db.url, table_prefix="iso_")
    plain, other = await open_svc(), await open_svc(table_prefix="iso_")
    assert other.tables.sessions.name == "iso_sessions" and plain.tables.sessions.name == "ss_sessions"
    k = ss.Key(app, "u1", "s1")
    await plain.create_session(k, state={"where": "ss_", "user:u": "ss_", "app:a": "ss_"})
    assert await other.get_session(k) is None
    assert (await other.list_sessions(k.user_key)).sessions == []
    assert await other.list_app_state(app) == {} and await other.list_user_state(k.user_key) == {}
    await other.create_session(k, state={"where": "iso_"})  # the same key is free under the other prefix
    got_plain, got_other = await plain.get_session(k), await other.get_session(k)
    assert got_plain is not None and got_plain.state == {"where": "ss_", "user:u": "ss_", "app:a": "ss_"}
    assert got_other is not None and got_other.state == {"where": "iso_"}
    async with plain.engine.connect() as conn:
        names = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    assert {"iso_sessions", "iso_events", "iso_alembic_version"} <= names


async def test_postgresql_schema_option_puts_the_tables_in_that_schema() -> None:
    async with sql_database("postgresql") as url:
        admin = make_engine(url)
        try:
            async with admin.begin() as conn:
                await conn.execute(text('CREATE SCHEMA "tenant_a"'))
            await migrate(url, schema="tenant_a")
            svc = ss.open_service(url, schema="tenant_a", cleanup_interval=None)
            async with svc:
                assert isinstance(svc, SQLSessionService)
                k = ss.Key("app", "u1", "s1")
                session = await svc.create_session(k, state={"user:u": 1})
                await svc.append_event(session, ss.Event(author="a", content="hi"))
                got = await svc.get_session(k)
                assert got is not None and [ev.content for ev in got.events] == ["hi"]
                assert svc.tables.sessions.schema == "tenant_a"
            async with admin.connect() as conn:
                in_schema = set(await conn.run_sync(lambda c: inspect(c).get_table_names(schema="tenant_a")))
                in_public = set(await conn.run_sync(lambda c: inspect(c).get_table_names(schema="public")))
                assert {"ss_sessions", "ss_events", "ss_app_state", "ss_user_state", "ss_alembic_version"} <= in_schema
                assert not any(name.startswith("ss_") for name in in_public), in_public
                assert await conn.scalar(text('SELECT count(*) FROM "tenant_a".ss_events')) == 1
                assert await conn.scalar(text('SELECT count(*) FROM "tenant_a".ss_user_state')) == 1
            # Without schema= the service looks in the search path (public), which holds no schema.
            elsewhere = ss.open_service(url, cleanup_interval=None)
            try:
                with pytest.raises(ss.SchemaError):
                    await elsewhere.start()
            finally:
                await elsewhere.close()
        finally:
            await admin.dispose()


# --------------------------------------------------------------------------- credentials


def exception_chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [item.__cause__, item.__context__]
    return seen


def assert_no_password(exc: BaseException) -> None:
    for item in exception_chain(exc):
        assert PASSWORD not in str(item), f"password in {type(item).__name__}: {item}"
        assert PASSWORD not in repr(item), f"password in repr of {type(item).__name__}"
        assert PASSWORD not in str(getattr(item, "args", "")), type(item).__name__
    assert PASSWORD not in "".join(traceback.format_exception(exc))


async def _bad_url(case: str) -> str:
    if case == "postgresql-missing-database":
        server = await server_url("postgresql")
        return make_url(server).set(password=PASSWORD, database="ss_no_such_db_x").render_as_string(hide_password=False)
    if case == "postgresql-missing-role":
        server = await server_url("postgresql")
        return make_url(server).set(username="ss_no_such_role", password=PASSWORD).render_as_string(hide_password=False)
    if case == "mysql-wrong-password":
        server = await server_url("mysql")
        return make_url(server).set(password=PASSWORD).render_as_string(hide_password=False)
    if case == "postgresql-refused":
        return f"postgresql://postgres:{PASSWORD}@127.0.0.1:9/test"
    if case == "mysql-refused":
        return f"mysql://root:{PASSWORD}@127.0.0.1:9/test"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "postgresql-missing-database",
        "postgresql-missing-role",
        "mysql-wrong-password",
        "postgresql-refused",
        "mysql-refused",
    ],
)
async def test_connection_errors_are_typed_and_never_show_the_password(case: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = await _bad_url(case)
    svc = ss.open_service(url, cleanup_interval=None)
    try:
        assert PASSWORD not in repr(svc.engine.url) and PASSWORD not in str(svc.engine.url)
        with pytest.raises(Exception) as at_start:
            await svc.start()
        with pytest.raises(Exception) as at_first_use:
            await svc.get_session(ss.Key("app", "u1", "s1"))
    finally:
        await svc.close()
    for raised in (at_start, at_first_use):
        assert_no_password(raised.value)
    assert PASSWORD not in caplog.text
    for record in caplog.records:
        assert PASSWORD not in record.getMessage()
    for raised in (at_start, at_first_use):
        assert isinstance(raised.value, ss.SessionStoreError), repr(raised.value)
        assert "***" in str(raised.value) or make_url(url).host in str(raised.value)


async def test_migrate_never_shows_the_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = await _bad_url("mysql-wrong-password")
    with pytest.raises(Exception) as raised:
        await migrate(url)
    assert_no_password(raised.value)
    assert PASSWORD not in caplog.text


# --------------------------------------------------------------------------- engine ownership


async def test_a_callers_engine_is_never_disposed(db: Db, app: str) -> None:
    engine = create_async_engine(normalize_url(db.url))
    try:
        async with engine.connect() as conn:  # the caller used it before handing it over
            assert await conn.scalar(text("SELECT 1")) == 1
        pool = engine.pool
        with pytest.raises(ss.ConfigurationError):
            ss.open_service(engine, pool_size=3)
        svc = ss.open_service(engine, cleanup_interval=None)
        assert isinstance(svc, SQLSessionService) and svc.engine is engine
        async with svc:
            k = ss.Key(app, "u1", "s1")
            session = await svc.create_session(k)
            await asyncio.gather(*(svc.append_event(session, ss.Event(author="a", content=i)) for i in range(10)))
            got = await svc.get_session(k)
            assert got is not None and [ev.seq for ev in got.events] == list(range(1, 11))
        await svc.close()  # twice is fine
        assert engine.pool is pool and pool.checkedin() >= 1  # not disposed: its connections are still pooled
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT 1")) == 1
        # A second service on the same engine works too (the hooks are installed once).
        async with ss.open_service(engine, cleanup_interval=None) as again:
            assert await again.get_session(k) is not None
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT 1")) == 1
    finally:
        await engine.dispose()


async def test_make_engine_result_can_be_shared_by_services(db: Db, app: str) -> None:
    engine = make_engine(db.url)
    try:
        for _ in range(2):
            async with ss.open_service(engine, cleanup_interval=None) as svc:
                await svc.create_session(ss.Key(app, "u1", uuid.uuid4().hex))
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT 1")) == 1
    finally:
        await engine.dispose()


async def test_a_service_opened_from_a_url_disposes_its_engine(db: Db, app: str) -> None:
    svc = ss.open_service(db.url, cleanup_interval=None)
    assert isinstance(svc, SQLSessionService)
    async with svc:
        await svc.create_session(ss.Key(app, "u1", "s1"))
        pool = svc.engine.pool
        assert pool.checkedin() + pool.checkedout() >= 1  # (checked out: held for the next call, sql/held.py)
    assert svc.engine.pool is not pool  # dispose() replaces the pool...
    assert pool.checkedin() == 0  # ...after closing every pooled connection


# --------------------------------------------------------------------------- SQLite connection setup


async def test_sqlite_connections_use_wal_a_busy_timeout_and_immediate_writes() -> None:
    async with sql_database("sqlite") as url:
        await migrate(url)
        svc = ss.open_service(url, cleanup_interval=None)
        assert isinstance(svc, SQLSessionService)
        async with svc:
            await svc.create_session(ss.Key("app", "u1", "s1"))
            async with svc.engine.connect() as conn:
                assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
                assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() >= 1000
                assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
            # The driver connections the writes run on are the same pooled, prepared connections.
            pooled = await svc.engine.raw_connection()
            try:
                cursor = await pooled.driver_connection.execute("PRAGMA busy_timeout")
                assert (await cursor.fetchone())[0] >= 1000
            finally:
                pooled.close()

            # A write transaction begins IMMEDIATE: it holds the write lock from its first statement.
            path = make_url(url).database
            async with svc.engine.connect() as conn:
                writer = await conn.execution_options(sessionstore_write=True)
                async with writer.begin():
                    await writer.execute(select(1))
                    other = sqlite3.connect(path, timeout=0, isolation_level=None)
                    try:
                        with pytest.raises(sqlite3.OperationalError, match="locked"):
                            other.execute("BEGIN IMMEDIATE")
                    finally:
                        other.close()
            # A read transaction (plain BEGIN) takes no write lock.
            async with svc.engine.connect() as reader, reader.begin():
                await reader.execute(select(1))
                other = sqlite3.connect(path, timeout=0, isolation_level=None)
                try:
                    other.execute("BEGIN IMMEDIATE")
                    other.execute("ROLLBACK")
                finally:
                    other.close()


# --------------------------------------------------------------------------- the schema check


@pytest.mark.parametrize("kind", SQL_BACKENDS)
async def test_an_unmigrated_database_raises_schema_error_unless_auto_migrate(kind: str) -> None:
    async with sql_database(kind) as url:
        password = make_url(url).password
        if kind == "postgresql" and password is None:  # the local server trusts 127.0.0.1: any password works
            url, password = make_url(url).set(password=PASSWORD).render_as_string(hide_password=False), PASSWORD
        svc = ss.open_service(url, cleanup_interval=None)
        try:
            with pytest.raises(ss.SchemaError) as at_start:
                await svc.start()
            with pytest.raises(ss.SchemaError):
                await svc.create_session(ss.Key("app", "u1", "s1"))
        finally:
            await svc.close()
        message = str(at_start.value)
        assert "sessionstore db upgrade --url" in message and "auto_migrate=True" in message
        if password:
            assert password not in message and ":***@" in message

        migrating = ss.open_service(url, auto_migrate=True, cleanup_interval=None)
        async with migrating:
            session = await migrating.create_session(ss.Key("app", "u1", "s1"))
            await migrating.append_event(session, ss.Event(author="a", content=1))
        async with ss.open_service(url, cleanup_interval=None) as checked:  # now at head: the check passes
            got = await checked.get_session(ss.Key("app", "u1", "s1"))
            assert got is not None and [ev.content for ev in got.events] == [1]


# --------------------------------------------------------------------------- reads leave no transaction


async def test_reads_leave_no_transaction_open_on_mysql() -> None:
    """MySQL/MariaDB: a SELECT with autocommit off opens a transaction that holds metadata locks
    (the server does not even report it), and our pool does not roll back on check-in, so an
    idle pooled connection after a read would make a migration's ALTER wait. Every read ends
    its transaction, with a COMMIT sent along with the SELECT. (PostgreSQL and SQLite reads run
    outside any transaction.)"""
    import aiomysql  # a connection of our own, outside the service's pool

    async with sql_database("mysql") as db_url:
        await migrate(db_url)
        svc = ss.open_service(db_url, cleanup_interval=None, pool_size=1, max_overflow=0)
        assert isinstance(svc, SQLSessionService)
        async with svc:
            k = ss.Key("app", "u1", "s1")
            session = await svc.create_session(k, state={"app:a": 1, "user:b": 2})
            await svc.append_event(session, ss.Event(author="user", content="hi"))
            assert (await svc.get_session(k)) is not None
            assert (await svc.list_sessions(k.user_key)).sessions
            assert await svc.list_app_state("app") == {"a": 1} and await svc.list_user_state(k.user_key) == {"b": 2}

            url = make_url(db_url)
            other = await aiomysql.connect(host=url.host, port=url.port or 3306, user=url.username,
                                           password=url.password or "", db=url.database, autocommit=True)
            try:
                async with other.cursor() as cursor:
                    await cursor.execute("SET SESSION lock_wait_timeout = 2")
                    for table in ("sessions", "events", "app_state", "user_state"):
                        # Needs an exclusive metadata lock: fails after 2 s if the pooled connection holds one.
                        await cursor.execute(f"ALTER TABLE {svc.table_prefix}{table} COMMENT = 'checked'")
            finally:
                other.close()


async def test_event_rows_with_json_null_columns_read_as_empty(db: Db, open_svc: OpenService, app: str) -> None:
    """Rows written through SQLAlchemy's JSON type (bulk loads, older versions) may hold JSON
    null where the service writes SQL NULL or {}: they read back as no delta, no removals,
    empty metadata."""
    svc = await open_svc()
    k = ss.Key(app, "u1", "nulls")
    await svc.create_session(k)
    pk = await session_pk(svc, k)
    e, s = svc.tables.events, svc.tables.sessions
    async with svc.engine.begin() as conn:
        await conn.execute(insert(e), [{
            "session_pk": pk, "seq": 1, "event_id": "e1", "author": "user", "timestamp": T0,
            "content": None, "state_delta": None, "state_removed": None, "meta": None, "created_at": T0, "updated_at": T0,
        }])
        await conn.execute(update(s).where(s.c.pk == pk).values(last_seq=1, version=1))
    got = await svc.get_session(k)
    assert got is not None and len(got.events) == 1
    event = got.events[0]
    assert (event.content, event.state_delta, event.metadata, event.seq) == (None, {}, {}, 1)
