"""The shipped Alembic migrations, the `sessionstore db` CLI and the start-up schema check.

Every test that touches a database runs on SQLite, PostgreSQL and
MySQL/MariaDB, each in a scratch database of its own (tests/dbs.py) that is
dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import venv
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, insert, inspect, literal_column, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

import sessionstore
from sessionstore.cli import app
from sessionstore.errors import ConfigurationError, SchemaError
from sessionstore.sql.dialects import rules_for
from sessionstore.sql.engine import make_engine
from sessionstore.sql.migrate import (
    check_drift,
    current_revision,
    describe_diff,
    downgrade,
    ensure_schema,
    head_revision,
    migrate,
    script_location,
    stamp,
    verify_schema,
)
from sessionstore.sql.models import Tables, build_tables
from tests.dbs import KINDS, scratch_database

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("sessions", "events", "app_state", "user_state", "summaries", "track_events")
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


@dataclass
class Db:
    kind: str
    url: str
    engine: AsyncEngine


@pytest.fixture(params=KINDS)
async def db(request: pytest.FixtureRequest) -> AsyncIterator[Db]:
    """An empty scratch database of each kind, with an engine on it."""
    async with scratch_database(request.param, prefix="ss_mig_") as url:
        engine = make_engine(url)
        try:
            yield Db(request.param, url, engine)
        finally:
            await engine.dispose()


async def table_names(engine: AsyncEngine, schema: str | None = None) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names(schema=schema)))


def ours(prefix: str = "ss_") -> set[str]:
    return {f"{prefix}{name}" for name in TABLES}


def tables_for(engine: AsyncEngine, prefix: str = "ss_", schema: str | None = None) -> Tables:
    return build_tables(rules_for(engine.dialect.name), prefix, schema)


async def drift_lines(engine: AsyncEngine, **kw: object) -> list[str]:
    return [describe_diff(d, engine.dialect) for d in await check_drift(engine, **kw)]


def cli_sync(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


async def cli(*args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; in a worker thread, because it runs its own event loop."""
    return await asyncio.to_thread(cli_sync, *args)


def second_revision(tmp_path: Path) -> Path:
    """A copy of the shipped scripts plus a revision 0003 (after the shipped head, 0002) that
    rebuilds the sessions table.

    0003 adds a NOT NULL ``label`` column, backfilled from the session id,
    through batch mode: on SQLite that copies ss_sessions into a new table and
    drops the old one, which with foreign keys on would cascade-delete every
    event. The migration runner must prevent exactly that.
    """
    scripts = tmp_path / "scripts"
    shutil.copytree(script_location(), scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "0003_session_label.py").write_text(textwrap.dedent('''
        """Sessions get a label.

        Revision ID: 0003
        Revises: 0002
        """
        import sqlalchemy as sa
        from alembic import op

        revision = "0003"
        down_revision = "0002"
        branch_labels = None
        depends_on = None


        def _settings():
            opts = op.get_context().opts
            return opts["sessionstore_prefix"], opts.get("sessionstore_schema")


        def upgrade():
            p, schema = _settings()
            with op.batch_alter_table(f"{p}sessions", schema=schema) as batch:
                batch.add_column(sa.Column("label", sa.String(200), nullable=True))
            sessions = sa.table(f"{p}sessions", sa.column("label"), sa.column("session_id"), schema=schema)
            op.execute(sessions.update().values(label=sessions.c.session_id))
            with op.batch_alter_table(f"{p}sessions", schema=schema) as batch:
                batch.alter_column("label", existing_type=sa.String(200), nullable=False)


        def downgrade():
            p, schema = _settings()
            with op.batch_alter_table(f"{p}sessions", schema=schema) as batch:
                batch.drop_column("label")
    '''))
    return scripts


async def fill(engine: AsyncEngine, prefix: str = "ss_") -> dict[str, int]:
    """Rows in every table (one session soft-deleted); returns the row count per table."""
    t = tables_for(engine, prefix)
    life = {"created_at": NOW, "updated_at": NOW}
    async with engine.begin() as conn:
        for i in range(3):
            deleted = NOW if i == 2 else None
            result = await conn.execute(
                insert(t.sessions).values(
                    app_name="app", user_id="u1", session_id=f"s{i}", state={"n": i, "text": "héllo"},
                    version=5, last_seq=5, deleted_at=deleted, **life,
                )
            )
            pk = result.inserted_primary_key[0]
            for seq in range(1, 6):
                await conn.execute(
                    insert(t.events).values(
                        session_pk=pk, seq=seq, event_id=f"e{i}-{seq}", author="user", timestamp=NOW,
                        content={"text": f"turn {seq}"}, state_delta={}, **life,
                    )
                )
            await conn.execute(insert(t.summaries).values(session_pk=pk, filter_key="all", summary={"s": i}, **life))
            await conn.execute(
                insert(t.track_events).values(session_pk=pk, track="usage", seq=1, timestamp=NOW, payload={"t": 1}, **life)
            )
        await conn.execute(insert(t.app_state).values(app_name="app", state_key="k", value=[1, 2], **life))
        await conn.execute(insert(t.user_state).values(app_name="app", user_id="u1", state_key="k", value="v", **life))
    return await counts(engine, prefix)


async def counts(engine: AsyncEngine, prefix: str = "ss_") -> dict[str, int]:
    t = tables_for(engine, prefix)
    async with engine.connect() as conn:
        return {table.name: await conn.scalar(select(func.count()).select_from(table)) for table in t.all}


# --------------------------------------------------------------------------- upgrade / downgrade


async def test_upgrade_from_empty_downgrade_to_base_and_upgrade_again(db: Db) -> None:
    head = head_revision()
    assert await current_revision(db.engine) is None

    await migrate(db.url)
    assert await current_revision(db.engine) == head
    assert await table_names(db.engine) == ours() | {"ss_alembic_version"}
    assert await drift_lines(db.engine) == []

    await downgrade(db.url, revision="base")
    assert await current_revision(db.engine) is None
    assert await table_names(db.engine) <= {"ss_alembic_version"}

    await migrate(db.engine)  # a caller's engine: used, not disposed
    assert await current_revision(db.engine) == head
    assert await drift_lines(db.engine) == []
    assert await table_names(db.engine) == ours() | {"ss_alembic_version"}


async def test_upgrade_is_idempotent_and_head_is_exported(db: Db) -> None:
    await migrate(db.url)
    await migrate(db.url)
    assert await current_revision(db.engine) == head_revision() == sessionstore.sql.migrate.HEAD
    assert sessionstore.migrate is migrate


async def test_one_active_row_per_key_holds_on_the_migrated_schema(db: Db) -> None:
    """The partial unique index (or MySQL's generated column) works as the service needs."""
    await migrate(db.url)
    t = tables_for(db.engine)
    row = {"app_name": "a", "user_id": "u", "session_id": "s", "state": {}, "created_at": NOW, "updated_at": NOW}
    async with db.engine.begin() as conn:
        await conn.execute(insert(t.sessions).values(**row))
    with pytest.raises(IntegrityError):
        async with db.engine.begin() as conn:
            await conn.execute(insert(t.sessions).values(**row))
    async with db.engine.begin() as conn:
        await conn.execute(update(t.sessions).values(deleted_at=NOW))
        await conn.execute(insert(t.sessions).values(**row))  # the id is free again once deleted
        await conn.execute(insert(t.sessions).values(**(row | {"session_id": "S"})))  # ids compare exactly:
        await conn.execute(insert(t.sessions).values(**(row | {"session_id": "s "})))  # case and trailing spaces
        await conn.execute(insert(t.sessions).values(**(row | {"session_id": "sé"})))
        await conn.execute(update(t.sessions).where(t.sessions.c.deleted_at.is_(None)).values(deleted_at=NOW))
        await conn.execute(insert(t.sessions).values(**row))
        assert await conn.scalar(select(func.count()).select_from(t.sessions)) == 6
        ids = (await conn.execute(select(t.sessions.c.session_id).where(t.sessions.c.deleted_at.is_(None)))).scalars()
        assert list(ids) == ["s"]


async def test_host_alembic_version_and_tables_are_untouched(db: Db) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
        await conn.execute(text("INSERT INTO alembic_version VALUES ('host_rev_42')"))
        await conn.execute(text("CREATE TABLE orders (id INTEGER PRIMARY KEY, item VARCHAR(20))"))
        await conn.execute(text("INSERT INTO orders VALUES (1, 'tea')"))

    async def host_rows() -> tuple[list, list]:
        async with db.engine.connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
            orders = (await conn.execute(text("SELECT id, item FROM orders"))).all()
        return [tuple(r) for r in versions], [tuple(r) for r in orders]

    before = await host_rows()
    await migrate(db.url)
    assert await host_rows() == before == ([("host_rev_42",)], [(1, "tea")])
    assert await current_revision(db.engine) == head_revision()
    assert await drift_lines(db.engine) == []  # the host's tables are not our drift

    await downgrade(db.url, revision="base")
    assert await host_rows() == before
    assert {"alembic_version", "orders"} <= await table_names(db.engine)


async def test_two_prefixes_live_side_by_side(db: Db) -> None:
    await migrate(db.url)
    await migrate(db.url, table_prefix="tenant_b_")
    assert await table_names(db.engine) == ours() | ours("tenant_b_") | {"ss_alembic_version", "tenant_b_alembic_version"}
    assert await drift_lines(db.engine) == []
    assert await drift_lines(db.engine, table_prefix="tenant_b_") == []

    await downgrade(db.url, revision="base", table_prefix="tenant_b_")
    assert await current_revision(db.engine, table_prefix="tenant_b_") is None
    assert await current_revision(db.engine) == head_revision()
    assert ours() <= await table_names(db.engine)
    assert not ours("tenant_b_") & await table_names(db.engine)


async def test_postgresql_schema_is_honoured() -> None:
    async with scratch_database("postgresql", prefix="ss_mig_") as url:
        engine = make_engine(url)
        try:
            with pytest.raises(ConfigurationError, match="schema 'agents' does not exist"):
                await migrate(url, schema="agents", table_prefix="ag_")
            async with engine.begin() as conn:
                await conn.execute(text("CREATE SCHEMA agents"))
            await migrate(url, schema="agents", table_prefix="ag_")
            assert await table_names(engine, "agents") == ours("ag_") | {"ag_alembic_version"}
            assert await table_names(engine) == set()  # nothing in public
            assert await current_revision(engine, table_prefix="ag_", schema="agents") == head_revision()
            assert await current_revision(engine, table_prefix="ag_") is None
            assert await drift_lines(engine, table_prefix="ag_", schema="agents") == []
            await verify_schema(engine, table_prefix="ag_", schema="agents")

            # Naming the default schema explicitly is the same as naming none.
            await migrate(url, schema="public")
            assert await drift_lines(engine, schema="public") == []
            assert await drift_lines(engine) == []

            await downgrade(url, revision="base", schema="agents", table_prefix="ag_")
            assert await table_names(engine, "agents") == {"ag_alembic_version"}
        finally:
            await engine.dispose()


# --------------------------------------------------------------------------- start-up check and auto_migrate


async def test_start_up_check_names_the_fix(db: Db) -> None:
    with pytest.raises(SchemaError) as missing:
        await verify_schema(db.engine)
    message = str(missing.value)
    assert "not installed" in message
    assert f"sessionstore db upgrade --url {make_url(db.url).render_as_string(hide_password=True)} --prefix ss_" in message
    assert "auto_migrate=True" in message

    with pytest.raises(SchemaError, match="--prefix other_"):
        await ensure_schema(db.engine, table_prefix="other_", auto_migrate=False)
    assert await current_revision(db.engine) is None  # nothing was created

    await ensure_schema(db.engine, auto_migrate=True)
    await verify_schema(db.engine)
    assert await drift_lines(db.engine) == []

    # A revision this version does not know: a newer sessionstore migrated the database.
    t = "ss_alembic_version"
    async with db.engine.begin() as conn:
        await conn.execute(text(f"UPDATE {t} SET version_num = 'ffff_from_the_future'"))
    with pytest.raises(SchemaError, match="does not know"):
        await ensure_schema(db.engine, auto_migrate=True)

    # Tables but no version row (created some other way): never auto-migrated over.
    async with db.engine.begin() as conn:
        await conn.execute(text(f"DELETE FROM {t}"))
    with pytest.raises(SchemaError, match="sessionstore db stamp"):
        await ensure_schema(db.engine, auto_migrate=True)
    with pytest.raises(SchemaError, match="no revision recorded"):
        await migrate(db.engine)
    await stamp(db.engine, revision=head_revision())
    await verify_schema(db.engine)


async def test_password_never_appears_in_the_message() -> None:
    # Trust authentication ignores the password, so this URL connects.
    async with scratch_database("postgresql", prefix="ss_mig_") as url:
        with_password = make_url(url).set(password="s3cr3t-pw")
        engine = make_engine(with_password)
        try:
            with pytest.raises(SchemaError) as caught:
                await verify_schema(engine)
        finally:
            await engine.dispose()
    assert "s3cr3t-pw" not in str(caught.value)
    assert "***" in str(caught.value)

    code, out, err = await cli("db", "check", "--url", "postgresql://app:s3cr3t-pw@127.0.0.1:1/nothing")
    assert code == 2
    assert "s3cr3t-pw" not in out + err
    assert err.startswith("error: ") and err.count("\n") == 1


async def test_service_start_checks_the_schema_and_auto_migrates(db: Db) -> None:
    service = sessionstore.open_service(db.url)
    try:
        with pytest.raises(SchemaError, match="sessionstore db upgrade --url"):
            await service.start()
    finally:
        await service.close()
    assert await current_revision(db.engine) is None

    async with sessionstore.open_service(db.url, auto_migrate=True) as service:
        created = await service.create_session(sessionstore.Key("app", "u1"), state={"lang": "en"})
    assert await current_revision(db.engine) == head_revision()
    async with sessionstore.open_service(db.url) as service:  # now at head: starts without auto_migrate
        found = await service.get_session(sessionstore.Key("app", "u1", created.id))
    assert found is not None and found.state == {"lang": "en"}


CONCURRENT_STARTER = """
import asyncio, os, sys, time
from sessionstore.sql.migrate import ensure_schema
from sessionstore.sql.engine import make_engine

url, barrier, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

async def main():
    engine = make_engine(url)
    try:
        open(os.path.join(barrier, str(os.getpid())), "w").close()
        deadline = time.monotonic() + 60
        while len(os.listdir(barrier)) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        await ensure_schema(engine, auto_migrate=True)
    finally:
        await engine.dispose()

asyncio.run(main())
print("ok")
"""


async def test_concurrent_auto_migrate_from_several_processes(db: Db, tmp_path: Path) -> None:
    n = 4
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}  # this checkout, not the installed one
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", CONCURRENT_STARTER, db.url, str(barrier), str(n),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        )
        for _ in range(n)
    ]
    results = [await asyncio.wait_for(p.communicate(), 120) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err.decode()[-3000:]
        assert out.decode().strip() == "ok"

    assert await current_revision(db.engine) == head_revision()
    assert await drift_lines(db.engine) == []
    assert await table_names(db.engine) == ours() | {"ss_alembic_version"}
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT version_num FROM ss_alembic_version"))).all() == [(head_revision(),)]


# --------------------------------------------------------------------------- a later revision


async def test_metadata_revision_upgrades_a_database_with_data_and_rolls_back(db: Db) -> None:
    """0002 (session title, meta, the app listing index) on a database written at 0001."""
    await migrate(db.url, revision="0001")
    before = await fill(db.engine)
    await migrate(db.url)
    assert await current_revision(db.engine) == "0002"
    assert await counts(db.engine) == before
    assert await drift_lines(db.engine) == []
    async with sessionstore.open_service(db.url) as svc:
        old = await svc.get_session(sessionstore.Key("app", "u1", "s1"))
        assert old is not None and (old.title, old.metadata) == (None, {})
        assert old.state == {"n": 1, "text": "héllo", "app:k": [1, 2], "user:k": "v"} and len(old.events) == 5
        await svc.set_session_metadata(old.key, title="Old chat", metadata={"from": "0001"})
        page = await svc.list_app_sessions("app")
        assert [(s.id, s.title, s.metadata) for s in page.sessions] == [
            ("s1", "Old chat", {"from": "0001"}), ("s0", None, {})
        ]
        history = await svc.list_events(old.key, after_seq=0)
        assert [e.content for e in history.events] == [{"text": f"turn {i}"} for i in range(1, 6)]
    await downgrade(db.url, revision="0001")
    assert await counts(db.engine) == before
    assert await current_revision(db.engine) == "0001"
    await migrate(db.url)
    assert await counts(db.engine) == before
    assert await drift_lines(db.engine) == []


async def test_second_revision_upgrades_a_database_with_data_without_losing_a_row(db: Db, tmp_path: Path) -> None:
    scripts = second_revision(tmp_path)
    await migrate(db.url)
    before = await fill(db.engine)
    assert before["ss_events"] == 15

    await migrate(db.url, scripts=scripts)
    assert await current_revision(db.engine) == "0003"
    assert await counts(db.engine) == before
    async with db.engine.connect() as conn:
        t = tables_for(db.engine)
        query = select(t.sessions.c.session_id, literal_column("label")).order_by(t.sessions.c.session_id)
        labels = (await conn.execute(query)).all()
        assert [tuple(r) for r in labels] == [("s0", "s0"), ("s1", "s1"), ("s2", "s2")]
        contents = (await conn.execute(select(t.events.c.content).order_by(t.events.c.pk))).scalars().all()
        assert contents[:2] == [{"text": "turn 1"}, {"text": "turn 2"}]
        state = await conn.scalar(select(t.sessions.c.state).where(t.sessions.c.session_id == "s1"))
        assert state == {"n": 1, "text": "héllo"}

    # The only difference from the models is the new column.
    assert await drift_lines(db.engine) == ["unexpected column ss_sessions.label"]
    # One revision behind the (temporary) scripts: check fails and says how to fix it.
    await downgrade(db.url, revision="0002", scripts=scripts)
    assert await counts(db.engine) == before
    assert await drift_lines(db.engine) == []  # the rebuilt table has its partial index back
    code, out, _ = await cli("db", "check", "--url", db.url, "--scripts", str(scripts))
    assert code == 1
    assert "at revision 0002, this version needs 0003" in out
    assert "sessionstore db upgrade --url" in out

    await migrate(db.engine, scripts=scripts)
    assert await counts(db.engine) == before


# --------------------------------------------------------------------------- the CLI


async def test_cli_install_check_and_roll_back(db: Db) -> None:
    code, out, _ = await cli("db", "check", "--url", db.url)
    assert code == 1 and "not installed" in out

    code, out, _ = await cli("db", "current", "--url", db.url)
    assert (code, out.strip()) == (0, "none")

    code, out, _ = await cli("db", "upgrade", "--url", db.url)
    assert code == 0 and f"to {head_revision()}" in out

    code, out, _ = await cli("db", "current", "--url", db.url)
    assert (code, out.strip()) == (0, f"{head_revision()} (head)")

    code, out, _ = await cli("db", "check", "--url", db.url)
    assert code == 0 and out.startswith("ok:")

    code, out, _ = await cli("db", "history", "--url", db.url)
    assert code == 0 and f"-> {head_revision()} (head, current)" in out

    async with db.engine.begin() as conn:
        await conn.execute(text("DROP INDEX ss_sessions_recent" + (" ON ss_sessions" if db.kind == "mysql" else "")))
    code, out, _ = await cli("db", "check", "--url", db.url)
    assert code == 1
    assert "missing index ss_sessions_recent" in out

    code, out, _ = await cli("db", "downgrade", "--url", db.url, "--revision", "base")
    assert code == 0 and "to base" in out
    assert not ours() & await table_names(db.engine)

    code, out, _ = await cli("db", "stamp", "--url", db.url, "--revision", head_revision())
    assert code == 0
    assert await current_revision(db.engine) == head_revision()


async def test_cli_takes_the_url_from_the_environment(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONSTORE_URL", db.url)
    code, out, _ = await cli("db", "upgrade", "--prefix", "env_")
    assert code == 0, out
    assert await current_revision(db.engine, table_prefix="env_") == head_revision()


async def test_cli_revisions_positionally_as_alembic_users_type_them(db: Db) -> None:
    """``upgrade +1``, ``downgrade -1`` (from the first revision: base), ``downgrade base``, ``stamp head``."""
    head = head_revision()
    code, out, err = await cli("db", "upgrade", "+1", "--url", db.url)
    assert code == 0, err
    assert "from an empty schema to 0001" in out
    assert ours() <= await table_names(db.engine)

    code, out, err = await cli("db", "downgrade", "-1", "--url", db.url)  # Alembic: -1 from the first revision is base
    assert code == 0, err
    assert "from 0001 to base (no sessionstore tables)" in out
    assert await current_revision(db.engine) is None
    assert not ours() & await table_names(db.engine)

    code, out, err = await cli("db", "upgrade", "head", "--url", db.url)
    assert code == 0 and f"to {head}" in out, err
    code, out, err = await cli("db", "upgrade", "--url", db.url)  # head by default: nothing left to do
    assert code == 0 and "nothing to do" in out, err

    code, out, err = await cli("db", "downgrade", "base", "--url", db.url)
    assert code == 0 and "to base" in out, err
    assert not ours() & await table_names(db.engine)

    code, out, err = await cli("db", "upgrade", "--url", db.url, "--revision", "+1")  # the older spelling
    assert code == 0 and await current_revision(db.engine) == "0001", err
    code, out, err = await cli("db", "downgrade", "--url", db.url, "--revision", "-1")
    assert code == 0 and await current_revision(db.engine) is None, err

    # stamp: record a revision without running anything.
    await migrate(db.url)
    code, out, err = await cli("db", "stamp", "base", "--url", db.url)
    assert code == 0 and "at revision base" in out, err
    assert await current_revision(db.engine) is None and ours() <= await table_names(db.engine)
    code, out, err = await cli("db", "stamp", "head", "--url", db.url, "--revision", "head")  # the same twice is fine
    assert code == 0 and f"at revision {head}" in out, err
    assert await current_revision(db.engine) == head
    assert await drift_lines(db.engine) == []


async def test_cli_relative_steps_walk_two_revisions_and_keep_the_rows(db: Db, tmp_path: Path) -> None:
    scripts = str(second_revision(tmp_path))
    await migrate(db.url)  # 0002 (the shipped head), filled, then 0003
    before = await fill(db.engine)
    await migrate(db.url, scripts=scripts)

    code, out, err = await cli("db", "downgrade", "-1", "--url", db.url, "--scripts", scripts)
    assert code == 0 and "from 0003 to 0002" in out, err
    assert await counts(db.engine) == before
    code, out, err = await cli("db", "upgrade", "+1", "--url", db.url, "--scripts", scripts)
    assert code == 0 and "from 0002 to 0003" in out, err
    assert await counts(db.engine) == before

    # Past either end, or the wrong way: one line that says where the database is; nothing changes.
    for args, message in [
        (("upgrade", "+1"), "cannot upgrade +1 from revision 0003: it is the newest revision (head)"),
        (("downgrade", "-4"), "cannot downgrade -4 from revision 0003: only 3 step(s) down to base"),
        (("upgrade", "-1"), "upgrade -1 would go back: use `sessionstore db downgrade -1`"),
        (("downgrade", "+1"), "downgrade +1 would go forward"),
        (("stamp", "-1"), "stamp records a revision id, head or base"),
    ]:
        code, out, err = await cli("db", *args, "--url", db.url, "--scripts", scripts)
        assert (code, out) == (2, ""), (args, out, err)
        assert err.startswith(f"error: {message}") and err.count("\n") == 1, (args, err)
    assert await current_revision(db.engine) == "0003"

    code, out, err = await cli("db", "downgrade", "-3", "--url", db.url, "--scripts", scripts)
    assert code == 0 and "from 0003 to base" in out, err
    assert not ours() & await table_names(db.engine)
    code, out, err = await cli("db", "downgrade", "-1", "--url", db.url, "--scripts", scripts)
    assert code == 2 and "nothing is installed" in err


async def test_cli_revision_usage_errors_change_nothing(db: Db) -> None:
    """Two different revisions, an unknown option, a missing revision: usage errors (exit 2), before connecting."""
    await migrate(db.url)
    head = head_revision()
    for args, message in [
        (("downgrade", "base", "--revision", head), f"two different revisions given (base and --revision {head})"),
        (("upgrade", "head", "--revision", "+1"), "two different revisions given"),
        (("downgrade", "--bogus"), "No such option: --bogus"),
        (("downgrade", "-1", "--bogus"), "No such option: --bogus"),
        (("upgrade", "--bogus=1"), "No such option: --bogus"),
        (("stamp", "head", "-x"), "No such option: -x"),
        (("downgrade", "--ur", db.url), "No such option: --ur (Did you mean --url?)"),
        (("downgrade", "base", "0001"), "unexpected extra argument"),
        (("downgrade",), "Missing argument 'REVISION'"),
        (("stamp",), "Missing argument 'REVISION'"),
    ]:
        url_args = () if "--ur" in args else ("--url", db.url)
        code, out, err = await cli("db", *args, *url_args)
        assert code == 2 and out == "", (args, out, err)
        assert message in " ".join(err.replace("│", " ").split()), (args, err)
    assert await current_revision(db.engine) == head
    assert ours() <= await table_names(db.engine)


EXPECTED_DDL = {
    "sqlite": ["BEGIN;", "ss_sessions_active_key ON ss_sessions (app_name, user_id, session_id) WHERE deleted_at IS NULL",
               "state TEXT NOT NULL", "COMMIT;"],
    "postgresql": ["BEGIN;", "state JSONB NOT NULL", "created_at TIMESTAMP WITH TIME ZONE NOT NULL",
                   "ON app.ss_sessions (app_name, user_id, session_id) WHERE deleted_at IS NULL", "COMMIT;"],
    "mysql": ["active INTEGER GENERATED ALWAYS AS (CASE WHEN deleted_at IS NULL THEN 1 ELSE NULL END) STORED",
              "ss_sessions_active_key ON ss_sessions (app_name, user_id, session_id, active)", "state JSON NOT NULL",
              "created_at DATETIME(6) NOT NULL", "session_id VARBINARY(512) NOT NULL", "ENGINE=InnoDB"],
}


@pytest.mark.parametrize("kind", KINDS)
async def test_upgrade_sql_prints_the_ddl_without_connecting(kind: str) -> None:
    # Unreachable hosts: --sql needs only the dialect.
    url = {"sqlite": "sqlite:///does/not/exist.db", "postgresql": "postgresql://u:pw@192.0.2.1/x",
           "mysql": "mysql://u:pw@192.0.2.1/x"}[kind]
    args = ["db", "upgrade", "--sql", "--url", url] + (["--schema", "app"] if kind == "postgresql" else [])
    code, out, err = await cli(*args)
    assert code == 0, err
    for expected in EXPECTED_DDL[kind]:
        assert expected in out, expected
    assert "CREATE TABLE alembic_version" not in out
    version_table = "app.ss_alembic_version" if kind == "postgresql" else "ss_alembic_version"
    assert f"INSERT INTO {version_table} (version_num) VALUES ('0001')" in out
    assert f"UPDATE {version_table} SET version_num='{head_revision()}'" in out
    assert "sessions_app_recent" in out  # revision 0002's DDL too

    code, out, err = await cli("db", "downgrade", "--sql", "--url", url, "--revision", f"{head_revision()}:base")
    assert code == 0, err
    assert out.index("DROP TABLE ss_events") < out.index("DROP TABLE ss_sessions")


async def test_cli_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    code, _, err = await cli("db", "upgrade", "--url", "oracle://x@y/z")
    assert code == 2 and err.startswith("error: unsupported database") and err.count("\n") == 1
    code, _, err = await cli("db", "upgrade", "--url", f"sqlite:///{tmp_path}/x.db", "--prefix", "bad-prefix")
    assert code == 2 and "table_prefix" in err
    code, _, err = await cli("db", "check")
    assert code == 2 and "SESSIONSTORE_URL" in err
    code, _, err = await cli("db", "downgrade", "--sql", "--url", "sqlite:///x.db", "--revision", "base")
    assert code == 2 and "FROM:TO" in err


async def test_alembic_command_line_works_from_a_checkout(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/dev.db"
    alembic = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "-x", f"url={url}"]
    for args in (["upgrade", "head"], ["check"]):
        proc = await asyncio.create_subprocess_exec(
            *alembic, *args, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
    with sqlite3.connect(tmp_path / "dev.db") as conn:
        assert conn.execute("SELECT version_num FROM ss_alembic_version").fetchall() == [(head_revision(),)]
        assert not conn.execute("SELECT name FROM sqlite_master WHERE name = 'alembic_version'").fetchall()


# --------------------------------------------------------------------------- the wheel


@pytest.mark.slow
async def test_the_wheel_ships_the_migrations(tmp_path: Path) -> None:
    """Build the wheel, install it into a fresh venv, and install the schema from there."""

    def run(*cmd: str | Path, cwd: Path = tmp_path) -> str:
        proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{cmd}: {proc.stdout[-2000:]}{proc.stderr[-3000:]}"
        return proc.stdout

    def build_and_install() -> Path:
        dist = tmp_path / "dist"
        run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", dist, ROOT)
        (wheel,) = dist.glob("sessionstore-*.whl")
        names = zipfile.ZipFile(wheel).namelist()
        assert "sessionstore/_migrations/env.py" in names
        assert "sessionstore/_migrations/script.py.mako" in names
        assert "sessionstore/_migrations/versions/0001_initial_schema.py" in names
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
        env_dir = tmp_path / "venv"
        venv.create(env_dir, with_pip=True)
        run(env_dir / "bin" / "python", "-m", "pip", "install", "--quiet", f"{wheel}[all]")
        return env_dir

    env_dir = await asyncio.to_thread(build_and_install)
    sessionstore_bin = env_dir / "bin" / "sessionstore"
    # The installed package, not this checkout, provides the scripts.
    where = await asyncio.to_thread(
        run, env_dir / "bin" / "python", "-c", "import sessionstore.sql.migrate as s; print(s.script_location())"
    )
    assert "site-packages/sessionstore/_migrations" in where

    for kind in KINDS:
        async with scratch_database(kind, prefix="ss_mig_") as url:
            out = await asyncio.to_thread(run, sessionstore_bin, "db", "upgrade", "--url", url)
            assert f"to {head_revision()}" in out
            out = await asyncio.to_thread(run, sessionstore_bin, "db", "check", "--url", url)
            assert out.startswith("ok:")
            engine = make_engine(url)
            try:
                assert ours() <= await table_names(engine)
                assert await current_revision(engine) == head_revision()
            finally:
                await engine.dispose()
