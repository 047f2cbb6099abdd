"""Issue 10's workload, shared by its benchmarks: events as real agents write them.

Every event carries ~400 characters of text and a one-key session-state
delta (``{"turn": n}``). Sessions to read are filled through the service's
own ``append_event`` (so their rows are exactly what a real append writes),
and the app and the user hold a few shared state keys, so that a session
read has app and user state to fetch and merge.
"""

from __future__ import annotations

from typing import Any

from sessionstore import Event, Key, Session, UserKey
from sessionstore.sql.service import SQLSessionService

TEXT = (
    "Tomorrow in Paris: sunny spells in the morning, clouds building after noon, a 30% chance of a "
    "short shower around five, highs of 24 degrees and a light westerly breeze. Evening clear and mild, "
    "about 17 degrees at midnight. If you are going to the Louvre, the morning is the best time; take "
    "sunglasses and a light jacket for the evening. Shall I also check the weather for the weekend in Lyon?"
)
assert 380 <= len(TEXT) <= 420, len(TEXT)
CONTENT: dict[str, Any] = {"role": "model", "parts": [{"text": TEXT}]}
"""An event's content: ~400 characters of text in the shape agents store."""

APP = "bench"
APP_STATE = {"model": "gpt-5-mini", "locale": "en-GB", "max_turns": 50}
USER_STATE = {"name": "Ada", "city": "Paris", "units": "metric"}
SESSION_EVENTS = 1000
"""Events in the session the read benchmarks read (the default event_limit)."""


def delta_event(turn: int) -> Event:
    """An event as an agent writes it: text content and a one-key session-state delta."""
    return Event(author="model", content=CONTENT, state_delta={"turn": turn})


async def shared_state(svc: SQLSessionService, user_id: str) -> None:
    """Give the app and the user their shared state keys (a session read merges them in)."""
    await svc.update_app_state(APP, APP_STATE)
    await svc.update_user_state(UserKey(APP, user_id), USER_STATE)


async def filled_session(svc: SQLSessionService, key: Key, events: int) -> Session:
    """Create a session and append `events` delta events to it through the service."""
    session = await svc.create_session(key, state={"topic": "weather"})
    for turn in range(1, events + 1):
        await svc.append_event(session, delta_event(turn))
    session.events.clear()  # the caller's copies; the store has them
    return session


async def session_pk(svc: SQLSessionService, key: Key) -> int:
    """The session row's surrogate key (what the raw floors address the row by)."""
    s = svc.tables.sessions
    stmt = s.select().with_only_columns(s.c.pk).where(
        s.c.app_name == key.app_name, s.c.user_id == key.user_id, s.c.session_id == key.session_id,
        s.c.deleted_at.is_(None),
    )
    async with svc.engine.connect() as conn:
        return (await conn.execute(stmt)).scalar_one()
