"""``sessionstore cleanup`` (src/sessionstore/cli/cleanup.py), driven through typer's CliRunner
on an app of our own that ``register`` fills, against a migrated SQLite file and a PostgreSQL
database.

The command calls asyncio.run, so it runs in a worker thread (asyncio.to_thread) while the
tests' own event loop seeds and inspects the database.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import func, select

import sessionstore as ss
from sessionstore.cli import cleanup as cli_cleanup
from sessionstore.cli.cleanup import SKIPPED, register
from sessionstore.sql.cleanup import lock_name
from sessionstore.sql.migrate import migrate
from sessionstore.sql.service import SQLSessionService
from tests.cli_runner import cli_runner
from tests.dbs import scratch_database

SUMMARY = re.compile(
    r"^cleanup: sessions_expired=(\d+) events_removed=(\d+) events_trimmed=(\d+) app_state_expired=(\d+) "
    r"user_state_expired=(\d+) tombstones_purged=(\d+) track_events_removed=(\d+) total=(\d+) in \d+\.\d\ds$"
)
DRY = re.compile(r"^cleanup \(dry run: nothing deleted\): .* total=(\d+) in \d+\.\d\ds$")


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """A stand-in for sessionstore.cli.app."""

    register(app)
    return app


async def run_cli(*args: str, env: dict[str, str] | None = None) -> Any:
    runner = cli_runner()
    return await asyncio.to_thread(runner.invoke, make_app(), ["cleanup", *args], env=env)


def summary_counts(output: str) -> dict[str, int]:
    lines = [line for line in output.splitlines() if line.startswith("cleanup:")]
    assert len(lines) == 1, output
    match = SUMMARY.match(lines[0])
    assert match, lines[0]
    names = ("sessions_expired", "events_removed", "events_trimmed", "app_state_expired",
             "user_state_expired", "tombstones_purged", "track_events_removed", "total")
    return dict(zip(names, map(int, match.groups()), strict=True))


def expect(**non_zero: int) -> dict[str, int]:
    names = ("sessions_expired", "events_removed", "events_trimmed", "app_state_expired",
             "user_state_expired", "tombstones_purged", "track_events_removed")
    counts = {name: non_zero.get(name, 0) for name in names}
    return counts | {"total": sum(counts.values())}


async def seed(url: str, prefix: str = "ss_", tag: str = "") -> None:
    """Two sessions (3 events each) and an app state key that expired a day ago; one live session (2 events)."""
    day_ago = datetime.now(timezone.utc) - timedelta(days=1)
    ttl = timedelta(minutes=10)
    old = ss.open_service(url, table_prefix=prefix, clock=lambda: day_ago, session_ttl=ttl, app_state_ttl=ttl)
    async with old:
        for sid in (f"old1{tag}", f"old2{tag}"):
            s = await old.create_session(ss.Key("app", "u1", sid), state={"app:theme": "dark"})
            for i in range(3):
                await old.append_event(s, ss.Event(author="user", content=i))
    live = ss.open_service(url, table_prefix=prefix, session_ttl=timedelta(hours=1))
    async with live:
        s = await live.create_session(ss.Key("app", "u1", f"live{tag}"))
        for i in range(2):
            await live.append_event(s, ss.Event(author="user", content=i))


async def stored(url: str, prefix: str = "ss_") -> dict[str, int]:
    svc = ss.open_service(url, table_prefix=prefix)
    assert isinstance(svc, SQLSessionService)
    t = svc.tables
    try:
        async with svc.engine.connect() as conn:
            async def count(table: Any, *where: Any) -> int:
                return int(await conn.scalar(select(func.count()).select_from(table).where(*where)))

            return {
                "sessions": await count(t.sessions, t.sessions.c.deleted_at.is_(None)),
                "tombstones": await count(t.sessions, t.sessions.c.deleted_at.is_not(None)),
                "events": await count(t.events),
            }
    finally:
        await svc.close()


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    await migrate(url)
    return url


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with scratch_database("postgresql") as url:
        await migrate(url)
        yield url


# ---------------------------------------------------------------------------- one round


async def test_once_runs_one_round_and_prints_a_summary_line(sqlite_url):
    await seed(sqlite_url)
    result = await run_cli("--url", sqlite_url, "--once")
    assert result.exit_code == 0, result.output
    assert summary_counts(result.stdout) == expect(sessions_expired=2, app_state_expired=1)
    assert result.stdout.count("\n") == 1 and result.stderr == ""  # not a terminal: the summary only
    assert await stored(sqlite_url) == {"sessions": 1, "tombstones": 2, "events": 8}  # soft delete by default

    again = await run_cli("--url", sqlite_url, "--once")
    assert again.exit_code == 0 and summary_counts(again.stdout) == expect()


async def test_dry_run_counts_without_deleting(sqlite_url):
    await seed(sqlite_url)
    before = await stored(sqlite_url)
    dry = await run_cli("--url", sqlite_url, "--once", "--dry-run")
    assert dry.exit_code == 0, dry.output
    match = DRY.match(dry.stdout.strip())
    assert match and int(match.group(1)) == 3, dry.stdout
    assert "sessions_expired=2" in dry.stdout and "app_state_expired=1" in dry.stdout
    assert await stored(sqlite_url) == before
    real = await run_cli("--url", sqlite_url, "--once")
    assert summary_counts(real.stdout)["total"] == 3


async def test_service_options_hard_delete_event_limit_and_retention(sqlite_url):
    await seed(sqlite_url)
    result = await run_cli("--url", sqlite_url, "--once", "--hard-delete", "--event-limit", "1", "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert summary_counts(result.stdout) == expect(
        sessions_expired=2, events_removed=6, events_trimmed=1, app_state_expired=1
    )
    assert await stored(sqlite_url) == {"sessions": 1, "tombstones": 0, "events": 1}


async def test_event_limit_none_trims_nothing(sqlite_url):
    await seed(sqlite_url)
    result = await run_cli("--url", sqlite_url, "--once", "--hard-delete", "--event-limit", "none")
    assert result.exit_code == 0, result.output
    assert summary_counts(result.stdout) == expect(sessions_expired=2, events_removed=6, app_state_expired=1)
    assert await stored(sqlite_url) == {"sessions": 1, "tombstones": 0, "events": 2}


async def test_tombstones_are_purged_after_the_retention_given(sqlite_url):
    await seed(sqlite_url)
    first = await run_cli("--url", sqlite_url, "--once", "--retention", "1h")
    assert summary_counts(first.stdout) == expect(sessions_expired=2, app_state_expired=1)
    second = await run_cli("--url", sqlite_url, "--once", "--retention", "1h")
    assert summary_counts(second.stdout) == expect()  # tombstones are seconds old
    await asyncio.sleep(0.05)
    third = await run_cli("--url", sqlite_url, "--once", "--retention", "10ms")
    assert summary_counts(third.stdout) == expect(tombstones_purged=3, events_removed=6)
    assert await stored(sqlite_url) == {"sessions": 1, "tombstones": 0, "events": 2}


async def test_prefix_and_url_from_the_environment(tmp_path):
    url = f"sqlite:///{tmp_path / 'prefixed.db'}"
    await migrate(url, table_prefix="app_")
    await seed(url, prefix="app_")
    result = await run_cli("--prefix", "app_", "--once", env={"SESSIONSTORE_URL": url})
    assert result.exit_code == 0, result.output
    assert summary_counts(result.stdout)["sessions_expired"] == 2
    assert await stored(url, prefix="app_") == {"sessions": 1, "tombstones": 2, "events": 8}


async def test_a_progress_bar_on_a_terminal(sqlite_url, monkeypatch):
    monkeypatch.setattr(cli_cleanup, "_interactive", lambda: True)
    await seed(sqlite_url)
    result = await run_cli("--url", sqlite_url, "--once", "--hard-delete", "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert "done" in result.stdout  # the bar's last state
    summary = [line for line in result.stdout.splitlines() if line.startswith("cleanup:")]
    assert summary and SUMMARY.match(summary[-1])
    assert summary_counts(summary[-1]) == expect(sessions_expired=2, events_removed=6, app_state_expired=1)


# ---------------------------------------------------------------------------- the loop


async def test_without_once_it_runs_a_round_every_interval_until_ctrl_c(sqlite_url, monkeypatch):
    pauses: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:
            raise KeyboardInterrupt  # what Ctrl-C does to asyncio.run
        await seed(sqlite_url, tag=str(len(pauses)))  # new expired rows for the next round

    monkeypatch.setattr(cli_cleanup, "_sleep", fake_sleep)
    await seed(sqlite_url)
    result = await run_cli("--url", sqlite_url, "--interval", "2m")
    assert result.exit_code == 0, result.output
    rounds = [line for line in result.stdout.splitlines() if line.startswith("cleanup:")]
    assert [summary_counts(line)["sessions_expired"] for line in rounds] == [2, 2]
    assert result.stdout.splitlines()[-1] == "stopped"
    assert pauses == [120.0, 120.0]


# ---------------------------------------------------------------------------- errors


def _empty_sqlite(tmp_path: Path) -> str:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    return f"sqlite:///{path}"


@pytest.mark.parametrize(
    "args, message, code",
    [
        ([], "no database URL", 2),
        (["--url", "nope://x"], "unsupported database", 2),
        (["--url", "memory://"], "memory://", 2),
        (["--url", "sqlite:///{tmp}/missing.db"], "no SQLite database at", 2),
        (["--url", "{empty}"], "sessionstore db upgrade", 1),
        (["--url", "postgresql://app:s3cret@127.0.0.1:1/db"], "connection refused", 1),
        (["--url", "{sqlite}", "--batch-size", "0"], "cleanup_batch_size", 2),
        (["--url", "{sqlite}", "--retention", "soon"], "--retention must be a duration", 2),
        (["--url", "{sqlite}", "--schema", "other"], "PostgreSQL only", 2),
        (["--url", "{sqlite}", "--event-limit", "many"], "--event-limit must be a positive number or none", 2),
        (["--url", "{sqlite}", "--event-limit", "0"], "event_limit must be a positive int or None", 2),
    ],
    ids=["no-url", "bad-url", "memory", "missing-file", "no-schema", "unreachable", "batch-size", "retention", "schema",
         "event-limit-word", "event-limit-zero"],
)
async def test_errors_are_one_line_without_password_exit_2_for_usage_1_at_runtime(tmp_path, sqlite_url, args, message, code):
    empty = _empty_sqlite(tmp_path)
    args = [a.format(tmp=tmp_path, empty=empty, sqlite=sqlite_url) for a in args]
    result = await run_cli(*args, "--once")
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "s3cret" not in result.output


async def test_a_database_without_the_schema_is_not_migrated(tmp_path):
    url = _empty_sqlite(tmp_path)
    result = await run_cli("--url", url, "--once")
    assert result.exit_code == 1
    tables = sqlite3.connect(url.removeprefix("sqlite:///")).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == []


# ---------------------------------------------------------------------------- PostgreSQL


async def test_postgresql_once_and_skipped_while_another_cleaner_holds_the_lock(postgres_url):
    await seed(postgres_url)
    svc = ss.open_service(postgres_url)
    assert isinstance(svc, SQLSessionService)
    try:
        async with svc.engine.connect() as holder:  # another cleaner, mid-round
            assert await svc.rules.try_lock(holder, lock_name("ss_"))
            await holder.commit()
            skipped = await run_cli("--url", postgres_url, "--once")
            assert skipped.exit_code == 0, skipped.output
            assert skipped.stdout.strip() == SKIPPED == "skipped: another process holds the cleanup lock"
            await svc.rules.unlock(holder, lock_name("ss_"))
            await holder.commit()
    finally:
        await svc.close()
    assert await stored(postgres_url) == {"sessions": 3, "tombstones": 0, "events": 8}

    result = await run_cli("--url", postgres_url, "--once", "--hard-delete")
    assert result.exit_code == 0, result.output
    assert summary_counts(result.stdout) == expect(sessions_expired=2, events_removed=6, app_state_expired=1)
    assert await stored(postgres_url) == {"sessions": 1, "tombstones": 0, "events": 2}


# ---------------------------------------------------------------------------- defaults


def test_defaults_are_the_services_own():
    """Left out, --batch-size, --event-limit, --retention, --interval and delete mode are ServiceOptions' defaults."""
    from sessionstore.cli import app
    from sessionstore.cli.options import format_duration, parse_duration

    defaults = ss.ServiceOptions()
    result = cli_runner().invoke(app, ["cleanup", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.replace("│", " ").split())
    assert f"[default: {defaults.cleanup_batch_size}]" in text and f"[default: {defaults.event_limit}]" in text
    assert f"[default: {format_duration(defaults.tombstone_retention)}]" in text
    assert f"[default: {format_duration(defaults.cleanup_interval)}]" in text
    assert "[default: soft-delete]" in text
    for value in (defaults.tombstone_retention, defaults.cleanup_interval, timedelta(milliseconds=250)):
        assert parse_duration("--x", format_duration(value)) == value
