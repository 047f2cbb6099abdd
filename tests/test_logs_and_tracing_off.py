"""Logs under one hierarchy (``sessionstore.*``) with DEBUG lines for retries, conflicts,
auto-migrate and schema checks, and never a password or a state value; and tracing off (the
default) never imports OpenTelemetry, while tracing on without it names the extra to install."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

import sessionstore as ss
from sessionstore import retry
from sessionstore.opstats import CURRENT, OpStats
from tests.dbs import scratch_database

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "pw-Never-Logged-42"
SECRET = "state-value-Never-Logged"


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.name} {r.getMessage()} {r.args!r} {r.__dict__!r}" for r in caplog.records)


async def test_debug_logs_name_schema_checks_migrations_and_conflicts_never_secrets(caplog):
    caplog.set_level(logging.DEBUG, logger="sessionstore")
    async with scratch_database("postgresql") as url:
        with_password = make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)
        async with ss.open_service(with_password, auto_migrate=True, cleanup_interval=None) as svc:
            s = await svc.create_session(ss.Key("app", "u1", "s1"), {"k": SECRET})
            await svc.append_event(s, ss.Event(author="user", content=SECRET, state_delta={"x": SECRET}))
            with pytest.raises(ss.ConflictError):
                await svc.append_event(s, ss.Event(author="user", content=SECRET), expected_version=0)
            await svc.update_user_state(s.key, {"u": SECRET})
    text = _logged(caplog)
    assert {r.name.split(".")[0] for r in caplog.records} == {"sessionstore"}
    assert "schema check of" in text and "auto-migrate: upgrading" in text and "version conflict" in text
    assert PASSWORD not in text and SECRET not in text


async def test_a_retry_is_logged_at_debug_and_counted_for_the_operation(caplog):
    caplog.set_level(logging.DEBUG, logger="sessionstore.retry")
    failures = [RuntimeError("busy"), RuntimeError("busy")]

    async def attempt() -> str:
        if failures:
            raise failures.pop()
        return "done"

    stats = OpStats()
    token = CURRENT.set(stats)
    try:
        assert await retry.retrying(attempt, lambda exc: True) == "done"
    finally:
        CURRENT.reset(token)
    assert stats.retries == 2
    lines = [r.getMessage() for r in caplog.records if r.name == "sessionstore.retry"]
    assert len(lines) == 2 and "RuntimeError" in lines[0] and "retrying in" in lines[0]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_tracing_off_never_imports_opentelemetry():
    done = _run("""
        import asyncio, sys, sessionstore as ss
        async def main():
            async with ss.InMemorySessionService(ss.ServiceOptions(async_persist=True)) as svc:
                s = await svc.create_session(ss.Key("a", "u", "s"))
                await svc.append_event(s, ss.Event(author="user"))
                await svc.flush()
                assert svc.append_event.__func__ is type(svc).append_event  # not wrapped
        asyncio.run(main())
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_tracing_without_the_extra_names_it():
    done = _run("""
        import sys
        sys.modules["opentelemetry"] = None  # as if opentelemetry-api were not installed
        import sessionstore as ss
        try:
            ss.InMemorySessionService(ss.ServiceOptions(tracing=True))
        except ss.ConfigurationError as exc:
            print(exc)
    """)
    assert done.returncode == 0, done.stderr
    assert "sessionstore[otel]" in done.stdout
