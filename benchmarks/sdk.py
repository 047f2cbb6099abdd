"""The OpenAI Agents SDK's SQLAlchemy session, as the outside yardstick for a session read.

``agents.extensions.memory.sqlalchemy_session.SQLAlchemySession`` (the
``bench`` extra installs ``openai-agents``) runs on the same database server
as ours, on its own engine (``create_async_engine`` with the same URL and
driver, the SDK's own defaults) and its own two tables (under the run's
table prefix, dropped afterwards). It holds the same number of items as our
session holds events, each of the same size: the same ~400 characters of
text in the SDK's message shape (its JSON is within a few bytes of our
event's content JSON).

``get_items(limit=20)`` does strictly less than ``get_session(event_num=20)``:
one query for the newest items, no session row, no state of any scope, no
event columns besides the item itself.

The SDK's table definition declares ``session_id`` as a VARCHAR without a
length, which MySQL/MariaDB refuse (``create_tables=True`` fails there with
"VARCHAR requires a length"); on those we create its tables ourselves from
its own table objects, with VARCHAR(255) for that column and nothing else
changed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.asyncio import create_async_engine

from sessionstore.sql.service import SQLSessionService

from .workload import TEXT

ITEM: dict[str, Any] = {"role": "assistant", "content": TEXT}
"""One conversation item as the SDK stores it (an easy input message)."""


@asynccontextmanager
async def sdk_session(svc: SQLSessionService, items: int, session_id: str = "bench") -> AsyncIterator[Any]:
    """An SQLAlchemySession next to `svc`'s tables, holding `items` items; its tables are dropped after."""
    try:
        from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession
    except ImportError as exc:  # pragma: no cover - the bench extra installs it
        raise SystemExit(f"the Agents SDK is missing: pip install -e '.[bench]' ({exc})") from None

    engine = create_async_engine(svc.engine.url)
    prefix = svc.table_prefix
    sdk = SQLAlchemySession(
        session_id, engine=engine, create_tables=False,
        sessions_table=f"{prefix}agent_sessions", messages_table=f"{prefix}agent_messages",
    )
    metadata = sdk._metadata  # the SDK's own table objects (no public accessor)
    if engine.dialect.name in ("mysql", "mariadb"):
        for table in metadata.tables.values():
            for column in table.columns:
                if isinstance(column.type, String) and column.type.length is None and column.name == "session_id":
                    column.type.length = 255
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        for start in range(0, items, 100):
            await sdk.add_items([ITEM] * min(100, items - start))
        yield sdk
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
        await engine.dispose()
