"""Connections held between transactions, so that the hot path skips the pool.

Every write and every hot read leases a pooled connection for one
transaction (sql/native.py). Through SQLAlchemy's async pool a checkout and
a check-in each cost a greenlet spawn (creating a greenlet is most of it)
and the pool's bookkeeping: measured on the benchmark machine, about a fifth
of the client's CPU per MariaDB append with 32 writers, more than the
hand-written statements save over a raw append.

So a service that made its engine keeps the connections its transactions
give back, still checked out of the pool, and lends them to the process's
next transactions: the most recently used first (its socket and the
server's caches warm). The pool stays the only source of connections and
applies its own rules (recycle, pre-ping, invalidation) whenever it hands
one out; what is held is bounded:

- only a connection known clean is held: its transaction ended and the
  driver reports none open (the rule for giving one back to the pool);
- one idle here longer than HOLD_IDLE_S, or out of the pool longer than
  HOLD_MAX_S, is not lent again but returned to the pool (at the next
  checkout, or when the service closes); so is one whose pool the engine
  has since replaced (``engine.dispose()``);
- at most ``pool_size - 1`` are held idle, so the pool keeps a connection
  for the engine's other users (SQLAlchemy Core: listing pages, cleanup);
  with a pool that does not queue connections (NullPool, StaticPool) none;
- a lost connection sends every held one back to the pool, whose checkout
  then finds and replaces the dead ones (native._checkout); a rerun that
  asks for a verified connection never takes a held one.

Only engines a service made from a URL hold connections. A caller's engine
is shared with the caller's own code, which expects idle connections to be
in the pool; its checkouts go through the pool as before.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from time import monotonic

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import Pool, PoolProxiedConnection, QueuePool
from sqlalchemy.util import greenlet_spawn

HOLD_IDLE_S = 1.0
"""Longest a connection waits here for the next transaction; then it goes back to the pool."""
HOLD_MAX_S = 60.0
"""Longest a connection stays out of the pool, however busy: the pool's recycling and
invalidation rules apply again when it next hands the connection out."""


@dataclass(slots=True)
class Lease:
    """A pooled connection lent to transactions: checked out of `pool` at `since`."""

    pooled: PoolProxiedConnection
    pool: Pool
    since: float
    """When the pool handed it out (time.monotonic())."""
    idle_since: float = 0.0
    """When it was last given back to be held."""


class HeldConnections:
    """The idle connections held for one engine (see the module docstring)."""

    __slots__ = ("_idle",)

    def __init__(self) -> None:
        self._idle: list[Lease] = []

    def take(self, pool: Pool) -> Lease | None:
        """The most recently held connection, if it may be lent now; else None (then the
        caller returns the held ones to the pool with `drain` and checks one out there)."""
        idle = self._idle
        if not idle:
            return None
        lease = idle[-1]
        now = monotonic()
        if lease.pool is pool and now - lease.idle_since < HOLD_IDLE_S and now - lease.since < HOLD_MAX_S:
            idle.pop()
            return lease
        return None  # the newest is too old or from a replaced pool; the others are older

    def give(self, lease: Lease, pool: Pool) -> bool:
        """Hold a clean connection for the next transaction. False: return it to the pool."""
        now = monotonic()
        if lease.pool is not pool or now - lease.since >= HOLD_MAX_S or len(self._idle) >= _most_held(pool):
            return False
        lease.idle_since = now
        self._idle.append(lease)
        return True

    def drain(self) -> list[Lease]:
        """Stop holding every idle connection; the caller returns them to the pool."""
        idle, self._idle = self._idle, []
        return idle

    def __len__(self) -> int:
        return len(self._idle)


def _most_held(pool: Pool) -> int:
    return pool.size() - 1 if isinstance(pool, QueuePool) else 0


_HELD: weakref.WeakKeyDictionary[Engine, HeldConnections] = weakref.WeakKeyDictionary()


def hold_connections(engine: AsyncEngine) -> None:
    """Let `engine` (one a service made, and will dispose) hold connections between transactions."""
    _HELD.setdefault(engine.sync_engine, HeldConnections())


def held_for(engine: AsyncEngine) -> HeldConnections | None:
    """The engine's held connections, or None if it does not hold any (a caller's engine)."""
    return _HELD.get(engine.sync_engine)


async def release_held(engine: AsyncEngine) -> None:
    """Return the engine's idle held connections to its pool (before disposing it, after a lost connection)."""
    held = _HELD.get(engine.sync_engine)
    if held is not None and len(held):
        await greenlet_spawn(_give_all_back, held.drain(), engine.pool)


def give_back(lease: Lease, pool: Pool) -> None:
    """Check a connection back in to the pool it came from, or end it if the engine has
    replaced that pool since (``engine.dispose()``): a disposed pool is no longer used, and
    what went back to it would only be closed when it is garbage collected. On a greenlet:
    a check-in may need I/O."""
    if lease.pool is pool:
        lease.pooled.close()
    else:
        lease.pooled.invalidate()


def _give_all_back(leases: list[Lease], pool: Pool) -> None:
    for lease in leases:
        give_back(lease, pool)


__all__ = ["HOLD_IDLE_S", "HOLD_MAX_S", "HeldConnections", "Lease", "give_back", "held_for", "hold_connections", "release_held"]
