"""``SessionStoreChatMessageHistory``: LangChain's ``BaseChatMessageHistory`` on sessionstore.

The one-line switch (docs/adapters.md)::

    history = SessionStoreChatMessageHistory("conversation-1", "postgresql://app@db/agents")

Each message is one sessionstore event whose content is LangChain's own
serialised form (``message_to_dict``: type, content, additional kwargs,
response metadata, tool calls, ids, names), read back with
``messages_from_dict``, so every field round-trips. ``add_messages`` stores
its batch atomically; ``clear`` removes the messages (the session row and
its state stay).

LangChain calls histories both synchronously (``messages``,
``add_messages``, ``clear``) and asynchronously (``aget_messages``, …).
Given a URL, the history opens its service on a loop of its own thread, so
both kinds work from any thread or event loop (async calls await that loop
without blocking theirs). Histories opened from the same URL and options
share that thread and service (LangChain's usual ``get_session_history``
makes a new history per call); the last one closed closes them. Given a ``SessionService`` you own, the async
methods run on your loop; the sync ones cannot (a connection pool belongs to
one loop) and raise a clear error unless no loop is involved (the in-memory
backend).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict

from ..adapters import LoopThread, ServiceHandle, append_creating, whole_history
from ..errors import ConfigurationError, SessionNotFoundError
from ..keys import Key
from ..memory import InMemorySessionService
from ..records import Event
from ..service import SessionService

T = TypeVar("T")
MARKER = "langchain_message"
DEFAULT_APP = "langchain"
DEFAULT_USER = "default"


class SessionStoreChatMessageHistory(BaseChatMessageHistory):
    """The messages of one conversation, kept in sessionstore.

    ``service_or_url``: a URL (the history opens its own service with
    ``**options`` and ``close()`` closes it) or a ``SessionService`` you own.
    ``app_name``/``user_id`` address the session in the store.
    """

    def __init__(
        self,
        session_id: str,
        service_or_url: SessionService | str,
        *,
        app_name: str = DEFAULT_APP,
        user_id: str = DEFAULT_USER,
        **options: Any,
    ) -> None:
        self.session_id = session_id
        self.key = Key(app_name, user_id, session_id)
        self._loop: LoopThread | None = None
        self._shared: _Shared | None = None
        if isinstance(service_or_url, str):
            self._shared = _Shared.acquire(service_or_url, options)
            self._loop, self._handle = self._shared.loop, self._shared.handle
        else:
            self._handle = ServiceHandle(service_or_url, options)

    @property
    def service(self) -> SessionService:
        return self._handle.service

    # ------------------------------------------------------------------ sync

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]  # a read-only property, as LangChain documents
        return self._sync(self._read)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        self._sync(lambda: self._write(list(messages)))

    def clear(self) -> None:
        self._sync(self._clear)

    def close(self) -> None:
        """Let go of the service opened from a URL (the last history using it closes it and its
        thread); a no-op for a service you own."""
        shared, self._shared = self._shared, None
        if shared is not None:
            shared.release()

    # ------------------------------------------------------------------ async

    async def aget_messages(self) -> list[BaseMessage]:
        return await self._async(self._read)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        batch = list(messages)
        await self._async(lambda: self._write(batch))

    async def aclear(self) -> None:
        await self._async(self._clear)

    # ------------------------------------------------------------------ work

    async def _read(self) -> list[BaseMessage]:
        svc = await self._handle.get()
        events = await whole_history(svc, self.key)
        return messages_from_dict([e.content for e in events if _is_message(e)])

    async def _write(self, messages: list[BaseMessage]) -> None:
        if not messages:
            return
        for message in messages:
            if not isinstance(message, BaseMessage):
                raise TypeError(f"expected a BaseMessage, got {type(message).__name__}")
        events = [Event(author=m.type[:255], content=message_to_dict(m), metadata={MARKER: 1}) for m in messages]
        await append_creating(await self._handle.get(), self.key, events)

    async def _clear(self) -> None:
        svc = await self._handle.get()
        try:
            await svc.clear_session_events(self.key)
        except SessionNotFoundError:
            pass

    def _sync(self, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
        if self._loop is not None:
            return self._loop.run(work())
        if not isinstance(self._handle.service, InMemorySessionService):
            raise ConfigurationError(
                "the sync methods (messages, add_messages, clear) need a history opened from a URL: "
                "a SessionService you own belongs to your event loop; use the async methods "
                "(aget_messages, aadd_messages, aclear) with it"
            )
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(work())
        raise ConfigurationError("sync methods cannot run inside an event loop on a service you own; use the async ones")

    async def _async(self, work: Callable[[], Awaitable[T]]) -> T:
        if self._loop is not None:
            return await asyncio.wrap_future(self._loop.submit(_call(work)))
        return await work()


class _Shared:
    """One loop thread and one service per (URL, options), shared by the histories opened from it."""

    _lock = threading.Lock()
    _open: dict[str, _Shared] = {}

    def __init__(self, name: str, url: str, options: dict[str, Any]) -> None:
        self.name = name
        self.loop = LoopThread(f"sessionstore-langchain-{len(self._open)}")
        try:
            self.handle = self.loop.run(_open(url, options))
        except BaseException:
            self.loop.stop()
            raise
        self.users = 0

    @classmethod
    def acquire(cls, url: str, options: dict[str, Any]) -> _Shared:
        name = f"{url}|{sorted(options.items(), key=lambda kv: kv[0])!r}"
        with cls._lock:
            shared = cls._open.get(name)
            if shared is None:
                shared = cls._open[name] = _Shared(name, url, options)
            shared.users += 1
            return shared

    def release(self) -> None:
        with self._lock:
            self.users -= 1
            if self.users > 0:
                return
            del self._open[self.name]
        self.loop.run(self.handle.close())
        self.loop.stop()


async def _open(url: str, options: dict[str, Any]) -> ServiceHandle:
    handle = ServiceHandle(url, options)
    await handle.get()
    return handle


async def _call(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


def _is_message(event: Event) -> bool:
    return isinstance(event.content, dict) and "type" in event.content and "data" in event.content
