"""Issue 13: each framework adapter vs that framework's own SQL storage, in the same run.

- ``adk``: ``sessionstore.adk.SessionStoreSessionService`` vs ADK's
  ``DatabaseSessionService``: sequential ``append_event`` of a one-part text
  event (ratio = our rate / theirs: above 1 is faster), and
  ``get_session(config=GetSessionConfig(num_recent_events=20))`` on a session
  of `history` events (read_ratio = our p50 / theirs: below 1 is faster).
- ``agents``: ``sessionstore.openai_agents.SessionStoreSession`` vs the SDK's
  ``SQLAlchemySession``: ``add_items([item])`` and ``get_items(limit=20)``,
  the same two ratios.

Both sides run against the same server, each on a fresh scratch database
(``tests/dbs.py``; ADK's tables have fixed names), each with its own engine
and the framework's default settings; calls alternate in rounds
(``common.alternate``) so load drift favours neither. LangChain's core
package ships no SQL history to compare with (``docs/adapters.md`` gives its
adapter's overhead over sessionstore itself instead).
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sessionstore import migrate
from sessionstore.sql.engine import normalize_url

from .common import Latencies, alternate
from .workload import TEXT

ITEM: dict[str, Any] = {"role": "assistant", "content": TEXT}


@asynccontextmanager
async def _database(kind: str) -> AsyncIterator[str]:
    from tests.dbs import scratch_database

    async with scratch_database(kind, prefix="ss_bench_") as url:
        await migrate(url)
        yield url


def _figures(append: dict[str, Latencies], read: dict[str, Latencies]) -> dict[str, float]:
    ours_a, theirs_a, ours_r, theirs_r = append["ours"], append["theirs"], read["ours"], read["theirs"]
    return {
        "ours_append_p50_ms": ours_a.p50 * 1e3, "theirs_append_p50_ms": theirs_a.p50 * 1e3,
        "ours_read_p50_ms": ours_r.p50 * 1e3, "theirs_read_p50_ms": theirs_r.p50 * 1e3,
        "ratio": ours_a.rate / theirs_a.rate, "read_ratio": ours_r.p50 / theirs_r.p50,
    }


async def bench_adk(kind: str, appends: int, reads: int, history: int = 500) -> dict[str, float]:
    from google.adk.events.event import Event
    from google.adk.sessions import DatabaseSessionService
    from google.adk.sessions.base_session_service import GetSessionConfig
    from google.genai import types

    from sessionstore.adk import SessionStoreSessionService

    def event() -> Event:
        return Event(author="user", invocation_id="inv", content=types.Content(role="user", parts=[types.Part(text=TEXT)]))

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    async with _database(kind) as ours_url, _database(kind) as theirs_url:
        ours = SessionStoreSessionService(ours_url, cleanup_interval=None)
        theirs = DatabaseSessionService(normalize_url(theirs_url).render_as_string(hide_password=False))
        try:
            sessions = {}
            for name, svc in (("ours", ours), ("theirs", theirs)):
                sessions[name] = await svc.create_session(app_name="bench", user_id="u1", session_id="write")
                full = await svc.create_session(app_name="bench", user_id="u1", session_id="read")
                for _ in range(history):
                    await svc.append_event(full, event())
            append = await alternate(
                {name: (lambda svc=svc, name=name: svc.append_event(sessions[name], event()))
                 for name, svc in (("ours", ours), ("theirs", theirs))},
                appends,
            )
            config = GetSessionConfig(num_recent_events=20)
            read = await alternate(
                {name: (lambda svc=svc: svc.get_session(app_name="bench", user_id="u1", session_id="read", config=config))
                 for name, svc in (("ours", ours), ("theirs", theirs))},
                reads,
            )
        finally:
            await ours.close()
            await theirs.close()
    return _figures(append, read)


async def bench_agents(kind: str, appends: int, reads: int, history: int = 500) -> dict[str, float]:
    from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession
    from sqlalchemy.ext.asyncio import create_async_engine

    from sessionstore.openai_agents import SessionStoreSession

    async with _database(kind) as ours_url, _database(kind) as theirs_url:
        engine = create_async_engine(normalize_url(theirs_url))
        theirs_w = SQLAlchemySession("write", engine=engine, create_tables=kind not in ("mysql", "mariadb"))
        if kind in ("mysql", "mariadb"):
            await _create_sdk_tables_for_mysql(theirs_w, engine)
        theirs_r = SQLAlchemySession("read", engine=engine, create_tables=kind not in ("mysql", "mariadb"))
        ours_w = SessionStoreSession("write", ours_url, cleanup_interval=None)
        ours_r = SessionStoreSession("read", ours_w.service)
        try:
            for session in (ours_r, theirs_r):
                for _ in range(0, history, 100):
                    await session.add_items([ITEM] * 100)
            append = await alternate({"ours": lambda: ours_w.add_items([ITEM]), "theirs": lambda: theirs_w.add_items([ITEM])}, appends)
            read = await alternate({"ours": lambda: ours_r.get_items(limit=20), "theirs": lambda: theirs_r.get_items(limit=20)}, reads)
        finally:
            await ours_w.close()
            await engine.dispose()
    return _figures(append, read)


async def _create_sdk_tables_for_mysql(session: Any, engine: Any) -> None:
    """The SDK declares session_id as a VARCHAR without a length, which MySQL refuses
    (benchmarks/sdk.py): create its own tables with VARCHAR(255) there."""
    from sqlalchemy import String

    metadata = session._metadata  # the SDK's own table objects (no public accessor)
    for table in metadata.tables.values():
        for column in table.columns:
            if isinstance(column.type, String) and column.type.length is None and column.name == "session_id":
                column.type.length = 255
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
