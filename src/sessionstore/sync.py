"""A blocking facade over SessionService for synchronous code (Flask, Django, scripts).

``asyncio.run(svc.get_session(...))`` per request does not work: the SQL
backend's connection pool belongs to the event loop that opened its
connections, and a second ``asyncio.run`` brings a new loop. So the facade
owns one event loop, running in a background thread for as long as the
facade is open; every call is sent to that loop and waited for. Any number
of threads may call at once (the loop interleaves their calls, as it would
for tasks).

There is no second copy of the logic: the blocking methods are generated
from SessionService's public coroutine methods (and, for a backend's own
public coroutine methods, looked up on first use), so each takes the same
arguments, runs the same checks and raises the same typed errors as its
async twin. A method returning an async iterator becomes one returning a
plain iterator, each step run on the loop.

The facade starts the service when it is opened and closes it (and stops
the loop) on ``close()``, at the end of a ``with`` block, or at interpreter
exit, whichever comes first.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import inspect
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import SessionStoreError
from .factory import open_service
from .options import ServiceOptions
from .service import SessionService

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")

__all__ = ["SyncSessionService", "open_sync_service"]

_LIFECYCLE = frozenset({"start", "close"})
"""Coroutine methods the facade runs itself (when it opens and closes), not offered as calls."""


class SyncSessionService:
    """SessionService's methods, blocking, run on an event loop in a thread this object owns.

    Build it with ``open_sync_service(url, **options)``; use it as a context
    manager or call ``close()``. Every public coroutine method of the
    service (``create_session``, ``get_session``, ``append_event``, …) is
    here with the same signature, returning the result instead of an
    awaitable. Thread-safe.
    """

    def __init__(self, service: SessionService) -> None:
        if not isinstance(service, SessionService):
            raise TypeError(f"SyncSessionService wraps a SessionService, got {type(service).__name__}")
        self.service = service
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sessionstore-sync-loop", daemon=True)
        self._lock = threading.Lock()
        self._closed = False
        self._thread.start()
        try:
            self._run(service.start())
        except BaseException:
            self._stop_loop()
            raise
        atexit.register(self.close)

    @property
    def options(self) -> ServiceOptions:
        """The service's ServiceOptions."""
        return self.service.options

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> SyncSessionService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the service (stops its cleanup job, releases connections), then stop the loop.

        Safe to call twice, and from any thread but the loop's own.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        try:
            self._submit(self.service.close()).result()
        finally:
            self._stop_loop()

    @property
    def closed(self) -> bool:
        return self._closed

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    # ------------------------------------------------------------------ calls

    def _submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the facade's loop and wait for it; an interrupted wait cancels it."""
        if self._closed:
            coro.close()
            raise SessionStoreError("the synchronous service is closed")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a SyncSessionService method was called on its own event loop; await the async service instead")
        future = self._submit(coro)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # a KeyboardInterrupt in the caller: do not leave the call running
            raise

    def _iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        """A plain iterator over an async one, each step run on the loop."""
        while True:
            try:
                yield self._run(_anext(iterator))
            except StopAsyncIteration:
                return

    def _blocking(self, method: Callable[..., Any]) -> Callable[..., Any]:
        """The blocking twin of one bound async method of the service."""
        if inspect.isasyncgenfunction(method):

            @functools.wraps(method)
            def iterate(*args: Any, **kwargs: Any) -> Iterator[Any]:
                return self._iterate(method(*args, **kwargs))

            return iterate

        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._run(method(*args, **kwargs))

        return call

    def __getattr__(self, name: str) -> Any:
        """A backend's own public coroutine methods (those SessionService lacks), made blocking."""
        if name.startswith("_") or name in _LIFECYCLE:
            raise AttributeError(name)
        service = self.__dict__.get("service")
        if service is None:  # (while __init__ has not set it yet)
            raise AttributeError(name)
        attribute = getattr(service, name)
        if inspect.iscoroutinefunction(attribute) or inspect.isasyncgenfunction(attribute):
            return self._blocking(attribute)
        raise AttributeError(f"{type(self).__name__} offers the service's methods only; {name!r} is not one")


async def _anext(iterator: AsyncIterator[T]) -> T:
    return await iterator.__anext__()


def public_coroutine_methods(cls: type) -> list[str]:
    """The names of `cls`'s public coroutine (or async generator) methods, lifecycle ones excepted."""
    return sorted(
        name
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_")
        and name not in _LIFECYCLE
        and (inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member))
    )


def _generate(name: str) -> Callable[..., Any]:
    template = getattr(SessionService, name)

    @functools.wraps(template)
    def method(self: SyncSessionService, /, *args: Any, **kwargs: Any) -> Any:
        return self._blocking(getattr(self.service, name))(*args, **kwargs)

    method.__doc__ = f"Blocking ``{name}``: {template.__doc__ or ''}"
    return method


for _name in public_coroutine_methods(SessionService):
    setattr(SyncSessionService, _name, _generate(_name))
del _name


def open_sync_service(url_or_engine: str | AsyncEngine, **options: Any) -> SyncSessionService:
    """``open_service(url, **options)``, started, behind a blocking facade (see SyncSessionService).

    Pass a URL: the engine is then made on the facade's own loop. (An
    AsyncEngine already used on another event loop cannot be shared with it.)
    """
    return SyncSessionService(open_service(url_or_engine, **options))
