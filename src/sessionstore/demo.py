"""A short tour of sessionstore on a SQLite file: sessions, events, three levels of state.

Run it twice: the second run finds the first run's session and history in
the file, which shows the data surviving a restart of the process.

    sessionstore demo [--url sqlite:///.sessionstore/demo.db]
    python -m sessionstore demo [--url …]        # the same, without the script on PATH

The command line (sessionstore.cli) is the one entry point; this module is
only the tour itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import DELETE, Event, Key, UserKey, open_service

DEFAULT_URL = "sqlite:///.sessionstore/demo.db"
APP, USER, SESSION = "weather-agent", "alice", "demo-session"


async def run(url: str = DEFAULT_URL) -> None:
    """The tour, on `url` (migrated if needed: it is a demo)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    async with open_service(url, auto_migrate=True) as svc:
        key = Key(APP, USER, SESSION)
        session = await svc.get_session(key, event_num=4)
        if session is None:
            print(f"new database: creating session {SESSION!r}")
            session = await svc.create_session(key, state={"lang": "en", "app:model": "small-1"})
        else:
            print(f"found session {SESSION!r} from an earlier run: version {session.version}, "
                  f"{len(session.events)} newest events loaded")
        turn = session.version // 2 + 1
        await svc.append_event(session, Event(
            author="user", content={"text": f"weather in Paris? (turn {turn})"},
            state_delta={"user:city": "Paris", "topic": "weather", "temp:scratch": "never stored"},
        ))
        await svc.append_event(session, Event(
            author="agent", content={"text": "Sunny, 22°C."},
            state_delta={"app:calls": turn, "temp:scratch": DELETE},
        ))
        print(f"appended 2 events; caller's view now at version {session.version}")

        stored = await svc.get_session(key, event_num=4)
        assert stored is not None
        print("newest events, read back from the database:")
        for event in stored.events:
            print(f"  #{event.seq:<3} {event.author:<6} {event.content['text']}")
        print("merged state (session keys bare, app:/user: prefixed, temp: never stored):")
        for name, value in sorted(stored.state.items()):
            print(f"  {name} = {value!r}")
        print("app state:", await svc.list_app_state(APP))
        print("user state:", await svc.list_user_state(UserKey(APP, USER)))
        page = await svc.list_sessions(UserKey(APP, USER))
        print(f"{USER} has {len(page.sessions)} session(s); run me again to see the history grow.")


if __name__ == "__main__":  # the old `python -m sessionstore.demo`: say where the demo went
    sys.exit("the demo is a command now: python -m sessionstore demo [--url URL]")
