"""Helpers shared by the contract tests. Public API only, so they work on every backend."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import sessionstore as ss

APP = "agent-app"
USER = "u1"

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
"""A fixed instant for explicit event timestamps (unrelated to the service clock)."""


def key(session_id: str = "", *, app: str = APP, user: str = USER) -> ss.Key:
    return ss.Key(app, user, session_id)


def user_key(user: str = USER, *, app: str = APP) -> ss.UserKey:
    return ss.UserKey(app, user)


def event(author: str = "user", **fields: Any) -> ss.Event:
    return ss.Event(author=author, **fields)


def at(minutes: float = 0) -> datetime:
    """T0 plus some minutes: an explicit, timezone-aware event timestamp."""
    return T0 + timedelta(minutes=minutes)


async def new_session(
    svc: ss.SessionService,
    session_id: str = "",
    *,
    app: str = APP,
    user: str = USER,
    state: dict[str, Any] | None = None,
) -> ss.Session:
    return await svc.create_session(key(session_id, app=app, user=user), state=state)


async def must_get(svc: ss.SessionService, k: ss.Key, **read: Any) -> ss.Session:
    """get_session that fails the test if the session is not there."""
    got = await svc.get_session(k, **read)
    assert got is not None, f"session {k} should exist"
    return got


def same_json(got: Any, expected: Any) -> bool:
    """Equal, with every number of the same type: 1e16 == 10**16 in Python, but a float must stay a float."""
    if type(got) is not type(expected):
        return False
    if isinstance(got, dict):
        return got.keys() == expected.keys() and all(same_json(got[k], expected[k]) for k in got)
    if isinstance(got, list):
        return len(got) == len(expected) and all(map(same_json, got, expected))
    return got == expected


def seqs(session: ss.Session) -> list[int | None]:
    return [e.seq for e in session.events]


def event_ids(session: ss.Session) -> list[str]:
    return [e.id for e in session.events]


async def snapshot(svc: ss.SessionService, k: ss.Key) -> dict[str, Any]:
    """Everything a write to session `k` could change: compare before/after a rejected write."""
    got = await svc.get_session(k)
    page = await svc.list_sessions(k.user_key, limit=1000)
    return {
        "session": None
        if got is None
        else {
            "state": got.state,
            "version": got.version,
            "updated_at": got.updated_at,
            "events": [(e.id, e.seq, e.content, e.state_delta) for e in got.events],
        },
        "listed": sorted((s.id, s.version) for s in page.sessions),
        "app_state": await svc.list_app_state(k.app_name),
        "user_state": await svc.list_user_state(k.user_key),
    }


async def all_pages(
    svc: ss.SessionService, user: ss.UserKey, limit: int
) -> tuple[list[ss.Session], list[ss.SessionPage]]:
    """Walk list_sessions with `limit` until next_cursor is None; return sessions and pages."""
    sessions: list[ss.Session] = []
    pages: list[ss.SessionPage] = []
    cursor: str | None = None
    while True:
        page = await svc.list_sessions(user, limit=limit, cursor=cursor)
        pages.append(page)
        sessions.extend(page.sessions)
        assert len(pages) <= 1000, "pagination does not terminate"
        if page.next_cursor is None:
            return sessions, pages
        cursor = page.next_cursor
