"""Hooks: middleware chains around append_event and get_session.

A hook is ``async def hook(ctx, next)``. It may read or change ``ctx`` (the
event, the key, the read options) before calling ``await next()``, which
runs the rest of the chain and then the operation itself; it returns what
the caller gets. So a hook can:

- change the event or key before the store sees them (the service checks
  them after the hooks, so a hook cannot smuggle in a bad event);
- short-circuit: return without calling ``next()``; nothing is stored and
  the caller gets what the hook returned;
- post-process what ``next()`` returned (e.g. redact a read session).

Hooks run in the order given, the first one outermost. Errors propagate
unchanged; a hook that raises before ``next()`` stores nothing (one that
raises after ``next()`` returned raises over a write already committed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from .keys import Key
from .records import Event, Session

C = TypeVar("C")
R = TypeVar("R")

Next = Callable[[], Awaitable[R]]
Hook = Callable[[C, Next[R]], Awaitable[R]]


@dataclass(slots=True)
class AppendEventContext:
    """What an append_event hook sees and may change.

    ``key`` starts as the session's key; a hook that sets another key sends
    the event to that session, and the caller's ``session`` object is then
    left as it was (it describes another session).
    """

    service: Any
    """The SessionService running the hooks (typed Any: this module sits below service.py)."""
    session: Session
    event: Event
    key: Key
    expected_version: int | None


@dataclass(slots=True)
class GetSessionContext:
    """What a get_session hook sees and may change before the read."""

    service: Any
    """The SessionService running the hooks (typed Any: this module sits below service.py)."""
    key: Key
    event_num: int | None
    after: datetime | None


AppendEventHook = Callable[[AppendEventContext, Next[Event]], Awaitable[Event]]
GetSessionHook = Callable[[GetSessionContext, Next[Session | None]], Awaitable[Session | None]]


class Chain(Generic[C, R]):
    """Hooks around an operation: ``await chain.run(ctx)`` calls them in order, the operation last."""

    def __init__(self, hooks: Sequence[Callable[[C, Next[R]], Awaitable[R]]], operation: Callable[[C], Awaitable[R]]):
        self.hooks = tuple(hooks)
        self.operation = operation

    async def run(self, ctx: C) -> R:
        return await self._call(0, ctx)

    async def _call(self, index: int, ctx: C) -> R:
        if index == len(self.hooks):
            return await self.operation(ctx)
        return await self.hooks[index](ctx, lambda: self._call(index + 1, ctx))


def check_hooks(hooks: Any, name: str) -> tuple[Any, ...]:
    """Hooks as a tuple of callables, or raise ValueError naming the option."""
    if hooks is None:
        return ()
    if callable(hooks) or isinstance(hooks, (str, bytes)):
        raise ValueError(f"{name} must be a sequence of async callables, got {type(hooks).__name__}")
    checked = tuple(hooks)
    for hook in checked:
        if not callable(hook):
            raise ValueError(f"{name} must hold async callables (ctx, next), got {hook!r}")
    return checked
