"""``SessionStoreSession``: the OpenAI Agents SDK's ``Session`` protocol on sessionstore.

The one-line switch (docs/adapters.md)::

    session = SessionStoreSession("conversation-1", "postgresql://app@db/agents")

Each conversation item (the SDK's ``TResponseInputItem``, a JSON object) is
one sessionstore event whose content is the item exactly as given; the
author column holds its ``role`` (or ``type``) so other tools can read the
conversation. The session row is created on the first ``add_items``.
``add_items`` stores its items as one atomic batch (all or none, in order,
never interleaved with another writer's batch); ``pop_item`` removes the
newest item with a delete that only one of two concurrent callers can win.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agents.memory.session_settings import SessionSettings, resolve_session_limit

from ..adapters import ServiceHandle, append_creating, whole_history
from ..errors import InvalidArgumentError, SessionNotFoundError
from ..keys import Key
from ..records import Event
from ..service import SessionService

if TYPE_CHECKING:
    from agents.items import TResponseInputItem

MARKER = "openai_agents_item"
DEFAULT_APP = "openai-agents"
DEFAULT_USER = "default"
_POP_ATTEMPTS = 20


class SessionStoreSession:
    """A conversation of the Agents SDK kept in sessionstore (``Session`` protocol).

    ``service_or_url``: a ``SessionService`` you own, or a URL opened with
    ``**options`` and closed by ``close()``. ``app_name`` and ``user_id``
    address the session in the store (sessionstore keys every session by
    app, user and id); ``session_settings`` is the SDK's (its ``limit`` is
    what ``get_items()`` returns by default).
    """

    def __init__(
        self,
        session_id: str,
        service_or_url: SessionService | str,
        *,
        app_name: str = DEFAULT_APP,
        user_id: str = DEFAULT_USER,
        session_settings: SessionSettings | None = None,
        **options: Any,
    ) -> None:
        self.session_id = session_id
        self.key = Key(app_name, user_id, session_id)
        self.session_settings = session_settings or SessionSettings()
        self._handle = ServiceHandle(service_or_url, options)

    @property
    def service(self) -> SessionService:
        return self._handle.service

    async def close(self) -> None:
        """Close the service if this session opened it from a URL."""
        await self._handle.close()

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The newest `limit` items (default: ``session_settings.limit``; None: all), oldest first."""
        limit = resolve_session_limit(limit, self.session_settings)
        if limit is not None and (type(limit) is not int or limit < 0):
            raise InvalidArgumentError(f"limit must be an int >= 0 or None, got {limit!r}")
        svc = await self._handle.get()
        if limit is None:
            events = await whole_history(svc, self.key)
        else:
            stored = await svc.get_session(self.key, event_num=limit)
            events = stored.events if stored is not None else []
        return [_item(e) for e in events]

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Store `items` in order, as one atomic batch."""
        if not items:
            return
        events = [_event(item) for item in items]
        await append_creating(await self._handle.get(), self.key, events)

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the newest item, or None if there is none."""
        svc = await self._handle.get()
        for _ in range(_POP_ATTEMPTS):
            stored = await svc.get_session(self.key, event_num=1)
            if stored is None or not stored.events:
                return None
            newest = stored.events[-1]
            if await svc.delete_event(self.key, newest.id):
                item: TResponseInputItem = _item(newest)
                return item
            # another caller popped it first: look again
        return None

    async def clear_session(self) -> None:
        """Remove every item (the session's state, if any, stays)."""
        svc = await self._handle.get()
        try:
            await svc.clear_session_events(self.key)
        except SessionNotFoundError:
            pass


def _event(item: TResponseInputItem) -> Event:
    if not isinstance(item, dict):
        raise InvalidArgumentError(f"an item must be a dict (the SDK's TResponseInputItem), got {type(item).__name__}")
    author = item.get("role") or item.get("type") or "item"
    return Event(author=str(author)[:255], content=dict(item), metadata={MARKER: 1})


def _item(event: Event) -> Any:
    content = event.content
    if isinstance(content, dict):
        return content
    # an event written by other code: an input message with its text
    return {"role": "assistant" if event.author != "user" else "user", "content": str(content)}
