"""What the framework adapters (``sessionstore.adk``, ``.openai_agents``, ``.langchain``) share.

Each adapter is an optional extra: its framework is imported lazily, and a
missing one raises an ImportError that names the extra to install. Each
adapter takes either a ready ``SessionService`` (the caller owns it: starts
and closes it) or a URL, from which the adapter opens its own service and
starts it on first use (then ``close()`` on the adapter closes it).
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from types import ModuleType
from typing import Any, TypeVar

from .errors import ConfigurationError, SessionExistsError, SessionNotFoundError
from .factory import open_service
from .keys import Key
from .records import Event, Session
from .service import MAX_PAGE_SIZE, SessionService

T = TypeVar("T")

EXTRAS = {"adk": "google.adk", "openai-agents": "agents", "langchain": "langchain_core"}
"""The extra that installs each framework, and the module it provides."""


def require_framework(extra: str, what: str) -> ModuleType:
    """Import the framework of `extra`, or raise ImportError saying which extra installs it."""
    module = EXTRAS[extra]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{what} needs the {module!r} package, which is not installed: pip install 'sessionstore[{extra}]' ({exc})"
        ) from exc


class ServiceHandle:
    """The service an adapter works on: the caller's, or one the adapter opened from a URL.

    An owned service is started on first use (once, under a lock) and closed
    by ``close()``; a caller's service is used as it is and never closed here.
    """

    def __init__(self, service_or_url: SessionService | str, options: dict[str, Any]) -> None:
        if isinstance(service_or_url, SessionService):
            if options:
                raise ConfigurationError(
                    f"options ({', '.join(sorted(options))}) apply only when the adapter opens the service from a URL"
                )
            self.service, self.owned = service_or_url, False
        elif isinstance(service_or_url, str):
            self.service, self.owned = open_service(service_or_url, **options), True
        else:
            raise ConfigurationError(
                f"expected a SessionService or a URL string, got {type(service_or_url).__name__}"
            )
        self._started = not self.owned
        self._lock: asyncio.Lock | None = None

    async def get(self) -> SessionService:
        """The service, started (an owned one is started on the first call)."""
        if not self._started:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                if not self._started:
                    await self.service.start()
                    self._started = True
        return self.service

    async def close(self) -> None:
        """Close the service if the adapter opened it (safe to call twice)."""
        if self.owned and self._started:
            self._started = False
            await self.service.close()


class LoopThread:
    """One event loop on a daemon thread, for adapters whose framework calls them synchronously.

    ``run(coro)`` blocks the calling thread until the coroutine finished on
    that loop; ``submit(coro)`` returns a concurrent Future (an async caller
    awaits it through ``asyncio.wrap_future``). A service opened on this loop
    is only ever used from it, so its connection pool never crosses loops.
    """

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("LoopThread.run called from its own loop: await the coroutine instead")
        return self.submit(coro).result()

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
        if not self.loop.is_running():
            self.loop.close()


async def append_creating(svc: SessionService, key: Key, events: list[Event]) -> None:
    """Append `events` as one atomic batch, creating the session first if it is not there.

    Frameworks add items to a session they never created (their storage makes
    one on the first write); another writer may create it meanwhile, which is
    just as good."""
    record = Session(key.session_id, key.app_name, key.user_id)
    try:
        await svc.append_events(record, events)
    except SessionNotFoundError:
        try:
            await svc.create_session(key)
        except SessionExistsError:
            pass
        await svc.append_events(record, events)


async def whole_history(svc: SessionService, key: Key) -> list[Event]:
    """Every stored event of a session, oldest first, read in pages (a session read is capped
    at ``event_limit``; a framework asking for "all items" means all of them). A session that
    is not there has no history."""
    events: list[Event] = []
    after: int | None = 0
    while after is not None:
        try:
            page = await svc.list_events(key, after_seq=after, limit=MAX_PAGE_SIZE)
        except SessionNotFoundError:
            return events
        events.extend(page.events)
        after = page.next_cursor
    return events
