"""``sessionstore import adk``: copy an ADK ``DatabaseSessionService`` database into sessionstore.

    sessionstore import adk --from sqlite:///adk.db --to postgresql://app@db/agents [--app NAME] [--dry-run]

The target is any sessionstore database but memory:// (SQL or Redis); the
source is an ADK database (SQLite, PostgreSQL or MySQL/MariaDB).

Copies sessions (with their creation and last-update times), their events
(stored exactly as ``sessionstore.adk.SessionStoreSessionService`` stores
them, so that adapter reads them back as ADK wrote them) and app and user
state. Reads ADK's current schema only (cli/adk_source.py refuses older,
pickled ones and never unpickles). Works in batches (--batch-size sessions
per page, as many events per atomic append), shows a progress bar on a
terminal, and is resumable: run it again after an interruption and it skips
sessions and events already copied (an event is known by its id). It ends
with a count check: every source event must be in the target, else exit 1.

Event state deltas are replayed as the events are appended; the final
session, app and user state are then written as ADK had them, so the target
ends with ADK's state whatever the replay did. A SQL target must be
migrated (``sessionstore db upgrade``).
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import typer

from ..adapters import require_framework, whole_history
from ..errors import SessionExistsError, SessionStoreError
from ..factory import REDIS_SCHEMES, open_service
from ..keys import Key, UserKey
from ..records import Session, utcnow
from ..redaction import redact
from ..service import SessionService
from .adk_source import AdkDatabase, SourceEvent, SourceSession
from .output import fail, usage_error

app = typer.Typer(help="Copy another session store's data into sessionstore.", no_args_is_help=True)


class ImportClock:
    """The target service's clock: the source's own times while copying, so created/updated
    times (and list order) survive the import."""

    def __init__(self) -> None:
        self.at: datetime | None = None

    def __call__(self) -> datetime:
        return self.at or utcnow()


@dataclass
class Tally:
    sessions: int = 0
    sessions_copied: int = 0
    events: int = 0
    events_copied: int = 0
    missing: list[str] = field(default_factory=list)


@app.command("adk")
def import_adk(
    source: Annotated[str, typer.Option("--from", help="URL of the ADK DatabaseSessionService database.")],
    target: Annotated[str, typer.Option("--to", help="URL of the sessionstore database (SQL, migrated; or Redis).")],
    app_name: Annotated[str | None, typer.Option("--app", help="Copy only this app's sessions and state.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be copied; write nothing.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=1000, help="Sessions per page, events per append.")] = 500,
) -> None:
    """Copy sessions, events and app/user state from a Google ADK database (resumable)."""
    if target.split(":", 1)[0] == "memory":
        usage_error("--to memory:// would keep nothing: give the URL of a sessionstore database")
    try:
        ok = asyncio.run(_main(source, target, app_name, dry_run, batch_size))
    except SessionStoreError as exc:
        fail(str(exc), source if source in str(exc) else target)
    except ImportError as exc:
        fail(str(exc))
    if not ok:
        raise typer.Exit(1)


async def _main(source_url: str, target_url: str, app_name: str | None, dry_run: bool, batch: int) -> bool:
    require_framework("adk", "sessionstore import adk")
    source = AdkDatabase(source_url)
    try:
        await source.check_schema()
        sessions, events = await source.counts(app_name)
        if dry_run:
            apps, users = await source.app_states(app_name), await source.user_states(app_name)
            typer.echo(f"dry run: would copy {sessions} sessions, {events} events, "
                       f"{len(apps)} app states and {len(users)} user states from {redact(source_url)}")
            return True
        clock = ImportClock()
        # A SQL target must be migrated already (the import never changes a schema); Redis has none.
        schema = {} if target_url.split(":", 1)[0] in REDIS_SCHEMES else {"auto_migrate": False}
        svc = open_service(target_url, clock=clock, cleanup_interval=None, **schema)
        await svc.start()
        try:
            tally = await _copy(source, svc, clock, app_name, batch, sessions, events)
        finally:
            await svc.close()
    finally:
        await source.close()
    typer.echo(f"copied {tally.sessions_copied} new sessions and {tally.events_copied} new events "
               f"(source: {tally.sessions} sessions, {tally.events} events)")
    if tally.missing:
        typer.echo(f"count check FAILED: {len(tally.missing)} sessions lack events, e.g. {tally.missing[:3]}", err=True)
        return False
    typer.echo(f"count check: all {tally.sessions} sessions and {tally.events} events are in the target")
    return True


async def _copy(
    source: AdkDatabase, svc: SessionService, clock: ImportClock, app_name: str | None, batch: int,
    total_sessions: int, total_events: int,
) -> Tally:
    tally = Tally()
    with _Progress(total_events) as advance:
        async for page in source.sessions(app_name, batch):
            for session in page:
                await _copy_session(source, svc, clock, session, batch, tally, advance)
        clock.at = None
        for app, state in await source.app_states(app_name):
            if state:
                await svc.update_app_state(app, state)
        for app, user, state in await source.user_states(app_name):
            if state:
                await svc.update_user_state(UserKey(app, user), state)
    return tally


async def _copy_session(
    source: AdkDatabase, svc: SessionService, clock: ImportClock, session: SourceSession, batch: int,
    tally: Tally, advance: Any,
) -> None:
    from google.adk.events.event import Event as AdkEvent

    from ..adk.events import persisted_delta, to_store_event

    key = Key(session.app_name, session.user_id, session.id)
    tally.sessions += 1
    clock.at = session.create_time
    try:
        await svc.create_session(key)
        have: set[str] = set()
        tally.sessions_copied += 1
    except SessionExistsError:  # a resumed import: keep what is there, add what is not
        have = {e.id for e in await whole_history(svc, key)}
    record = Session(key.session_id, key.app_name, key.user_id)
    source_ids: list[str] = []
    async for rows in source.events(session, batch):
        source_ids.extend(r.id for r in rows)
        todo = [r for r in rows if r.id not in have]
        if todo:
            events = [_event(AdkEvent, r) for r in todo]
            clock.at = max(r.timestamp for r in todo)
            await svc.append_events(record, [to_store_event(e, persisted_delta(e)) for e in events])
            tally.events_copied += len(todo)
        tally.events += len(rows)
        advance(len(rows))
    clock.at = session.update_time
    if session.state:
        await svc.update_session_state(key, session.state)
    stored = {e.id for e in await whole_history(svc, key)}
    if not set(source_ids) <= stored:
        tally.missing.append(f"{key.app_name}/{key.user_id}/{key.session_id}")


def _event(adk_event: Any, row: SourceEvent) -> Any:
    """The ADK event a row holds, exactly as ADK's StorageEvent.to_event rebuilds it."""
    data = dict(row.data)
    timestamp = data.get("timestamp", row.timestamp.timestamp())
    return adk_event.model_validate({**data, "id": row.id, "invocation_id": row.invocation_id or "", "timestamp": timestamp})


class _Progress:
    """A rich progress bar over the source's events on a terminal; silent otherwise."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bar: Any = None

    def __enter__(self) -> Any:
        if sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("importing events"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            self.bar.start()
            task = self.bar.add_task("events", total=self.total)
            return lambda n: self.bar.advance(task, n)
        return lambda n: None

    def __exit__(self, *exc_info: object) -> None:
        if self.bar is not None:
            self.bar.stop()
