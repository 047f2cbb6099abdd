"""``sessionstore import adk`` on a database written by ADK's own DatabaseSessionService
(created here with ADK itself), into each SQL backend and Redis: counts, dry run, --app, a resumed
import, the result read back through the ADK adapter, and old schemas refused."""

from __future__ import annotations

import asyncio

import pytest
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions import DatabaseSessionService
from sqlalchemy import text
from typer.testing import CliRunner

from sessionstore.adk import SessionStoreSessionService
from sessionstore.cli import app as cli
from sessionstore.sql.engine import make_engine, normalize_url
from tests.adapters.test_adk import rich_event, text_event
from tests.backends import RedisBackend, SQLBackend, sql_database

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
async def target(backend, store) -> str:
    if not isinstance(backend, (SQLBackend, RedisBackend)):
        pytest.skip("memory:// keeps nothing: it is no target for an import")
    return backend.url


@pytest.fixture
async def adk_db(backend, target):
    """A scratch database of the backend's kind (SQLite next to Redis), as ADK's
    DatabaseSessionService writes it."""
    async with sql_database(backend.name if isinstance(backend, SQLBackend) else "sqlite") as url:
        yield url, DatabaseSessionService(normalize_url(url).render_as_string(hide_password=False))


async def invoke(*args: str):
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


async def fill(adk: DatabaseSessionService) -> dict[str, list[str]]:
    """Two apps, two users, state at every scope, every kind of event field."""
    a = await adk.create_session(app_name="app1", user_id="u1", session_id="s1", state={"k": 1, "app:a": 1, "user:u": 1})
    await adk.append_event(a, text_event("hello"))
    event = rich_event()
    event.id = Event.new_id()
    await adk.append_event(a, event)
    await adk.append_event(a, text_event("bye", author="agent", actions=EventActions(state_delta={"k": 2, "temp:t": 1})))
    b = await adk.create_session(app_name="app1", user_id="u2", session_id="s2")
    for i in range(7):
        await adk.append_event(b, text_event(f"m{i}"))
    c = await adk.create_session(app_name="app2", user_id="u1", session_id="s3", state={"app:other": True})
    await adk.append_event(c, text_event("elsewhere"))
    return {"app1": ["s1", "s2"], "app2": ["s3"]}


async def test_import_copies_what_adk_wrote_and_the_adapter_reads_it_back(adk_db, target, store):
    url, adk = adk_db
    await fill(adk)

    dry = await invoke("import", "adk", "--from", url, "--to", target, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would copy 3 sessions, 11 events" in dry.output
    mine = SessionStoreSessionService(store)
    assert (await mine.list_sessions(app_name="app1")).sessions == []  # the dry run wrote nothing

    only = await invoke("import", "adk", "--from", url, "--to", target, "--app", "app2", "--batch-size", "2")
    assert only.exit_code == 0, only.output
    assert (await mine.list_sessions(app_name="app1")).sessions == []
    assert [s.id for s in (await mine.list_sessions(app_name="app2")).sessions] == ["s3"]

    done = await invoke("import", "adk", "--from", url, "--to", target, "--batch-size", "3")
    assert done.exit_code == 0, done.output
    assert "copied 2 new sessions and 10 new events" in done.output
    assert "count check: all 3 sessions and 11 events" in done.output

    for app_name, user, sid in [("app1", "u1", "s1"), ("app1", "u2", "s2"), ("app2", "u1", "s3")]:
        theirs = await adk.get_session(app_name=app_name, user_id=user, session_id=sid)
        ours = await mine.get_session(app_name=app_name, user_id=user, session_id=sid)
        assert [e.model_dump() for e in ours.events] == [e.model_dump() for e in theirs.events]
        assert ours.state == theirs.state
        assert ours.last_update_time == pytest.approx(theirs.last_update_time, abs=1e-3)
    listed = (await mine.list_sessions(app_name="app1")).sessions
    assert [s.id for s in listed] == [s.id for s in (await adk.list_sessions(app_name="app1")).sessions]
    assert await mine.get_user_state(app_name="app1", user_id="u1") == await adk.get_user_state(app_name="app1", user_id="u1")

    # resumable: a new event in ADK, and a rerun copies only that
    b = await adk.get_session(app_name="app1", user_id="u2", session_id="s2")
    await adk.append_event(b, text_event("late", actions=EventActions(state_delta={"late": True})))
    again = await invoke("import", "adk", "--from", url, "--to", target)
    assert again.exit_code == 0, again.output
    assert "copied 0 new sessions and 1 new events" in again.output
    ours = await mine.get_session(app_name="app1", user_id="u2", session_id="s2")
    theirs = await adk.get_session(app_name="app1", user_id="u2", session_id="s2")
    assert len(ours.events) == 8 and ours.state == theirs.state and ours.state["late"] is True
    await adk.close()


async def test_an_old_pickled_adk_schema_is_refused_with_the_upgrade_command(backend, target):
    kind = backend.name if isinstance(backend, SQLBackend) else "sqlite"
    async with sql_database(kind) as url:
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("CREATE TABLE sessions (app_name VARCHAR(128), user_id VARCHAR(128), id VARCHAR(128))"))
                await conn.execute(text("CREATE TABLE events (id VARCHAR(128), actions BLOB)".replace(
                    "BLOB", "BYTEA" if kind == "postgresql" else "BLOB")))
        finally:
            await engine.dispose()
        result = await invoke("import", "adk", "--from", url, "--to", target)
    assert result.exit_code == 1  # a runtime failure: the database is not what the command needs
    assert "old schema (version 0" in result.output and "adk migrate session" in result.output


async def test_a_database_that_is_not_adks_is_refused(backend, target):
    if isinstance(backend, RedisBackend):  # Redis is no ADK source at all
        result = await invoke("import", "adk", "--from", target, "--to", target)
        assert result.exit_code == 1 and "unsupported database 'redis'" in result.output
        return
    result = await invoke("import", "adk", "--from", target, "--to", target)
    assert result.exit_code == 1 and "not an ADK DatabaseSessionService database" in result.output


async def test_bad_target_and_missing_options():
    result = await invoke("import", "adk", "--from", "sqlite:///x.db", "--to", "memory://")
    assert result.exit_code == 2 and "would keep nothing" in result.output
    result = await invoke("import", "adk", "--to", "sqlite:///x.db")
    assert result.exit_code == 2 and "--from" in result.output
