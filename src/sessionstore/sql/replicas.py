"""Routing reads to PostgreSQL streaming replicas, with read-your-writes and a staleness bound.

With ``read_url`` (one URL or a list), get_session and list_sessions read
from a replica when that is known to be safe, and from the primary otherwise:

- *how fresh a replica is* is learnt by a probe, run at most every
  PROBE_INTERVAL_S and only while reads happen: it asks the primary for its
  current WAL position P (at monotonic time t), then each replica for the
  position it has replayed, R. Once R >= P, that replica holds everything
  committed before t: it is *fresh since* t. (Two tiny queries per probe, none
  per write.)
- *read-your-writes*: the router remembers when this process last wrote each
  session, each user's state and each app's state (the moment the write
  returned). A read that touches one of them goes to a replica only if that
  replica is fresh since a moment after the write; otherwise to the primary.
  So a process always sees its own writes, and usually within a probe
  interval or two its reads of a session it wrote move back to the replica.
- *the staleness bound for everything else*: a replica is used only while it
  is fresh since at most ``max_replica_staleness_s`` ago; one that lags more
  (or stopped answering) is skipped until a probe finds it caught up. A read
  served by a replica may therefore miss commits of other processes made in
  the last max_replica_staleness_s + PROBE_INTERVAL_S, never older ones.

A replica that fails a read is marked stale, and the read is served by the
primary. Writes never touch replicas. Only PostgreSQL tells its positions
this way (DialectRules.wal_position_sql); read_url elsewhere is refused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import ConfigurationError
from .dialects import DialectRules
from .held import hold_connections, release_held

T = TypeVar("T")

PROBE_INTERVAL_S = 0.2
"""The most often the replicas' positions are asked for (and only while reads happen)."""
DEFAULT_MAX_STALENESS_S = 5.0
NEVER = float("-inf")


@dataclass
class Replica:
    engine: AsyncEngine
    fresh_since: float = NEVER
    """Monotonic time before which every commit is known to be replayed here."""
    reads: int = 0


class ReadRouter:
    """Picks the engine for each read: a fresh-enough replica, else the primary."""

    def __init__(
        self, primary: AsyncEngine, replicas: list[AsyncEngine], rules: DialectRules, max_staleness_s: float
    ) -> None:
        self.primary = primary
        self.replicas = [Replica(engine) for engine in replicas]
        for engine in replicas:  # (made from URLs by the service, which disposes them)
            hold_connections(engine)
        self.rules = rules
        self.max_staleness_s = max_staleness_s
        self._written: dict[Hashable, float] = {}
        self._probes: list[tuple[float, int]] = []  # (monotonic time, primary position then), oldest first
        self._probed_at = NEVER
        self._probing = asyncio.Lock()
        self._next = 0
        self.primary_reads = 0

    def wrote(self, scopes: Iterable[Hashable]) -> None:
        """Call when a write touching these scopes has returned (committed or not)."""
        now = time.monotonic()
        for scope in scopes:
            self._written[scope] = now

    async def read(self, scopes: Iterable[Hashable], run: Callable[[AsyncEngine], Awaitable[T]]) -> T:
        """`run(engine)` on a replica that is fresh enough for these scopes, else on the primary."""
        replica = await self._pick(list(scopes))
        if replica is not None:
            try:
                result = await run(replica.engine)
            except Exception:  # noqa: BLE001 - a failing replica is skipped; the primary answers
                replica.fresh_since = NEVER
            else:
                replica.reads += 1
                return result
        self.primary_reads += 1
        return await run(self.primary)

    async def _pick(self, scopes: list[Hashable]) -> Replica | None:
        if time.monotonic() - self._probed_at >= PROBE_INTERVAL_S and not self._probing.locked():
            async with self._probing:
                await self._probe()
        now = time.monotonic()
        needed = max((self._written.get(s, NEVER) for s in scopes), default=NEVER)
        floor = max(needed, now - self.max_staleness_s)
        count = len(self.replicas)
        for i in range(count):  # round robin among the fresh ones
            replica = self.replicas[(self._next + i) % count]
            if replica.fresh_since > floor:
                self._next = (self._next + i + 1) % count
                return replica
        return None

    async def _probe(self) -> None:
        """Learn how far each replica has replayed (see the module docstring)."""
        assert self.rules.wal_position_sql and self.rules.replayed_position_sql
        started = time.monotonic()
        try:
            async with self.primary.connect() as conn:
                position = int(await conn.scalar(text(self.rules.wal_position_sql)) or 0)
        except Exception:  # noqa: BLE001 - the primary's reads will report the trouble
            self._probed_at = started
            return
        self._probes.append((started, position))
        for replica in self.replicas:
            try:
                async with replica.engine.connect() as conn:
                    replayed = await conn.scalar(text(self.rules.replayed_position_sql))
            except Exception:  # noqa: BLE001 - unreachable: stale until it answers again
                replica.fresh_since = NEVER
                continue
            if replayed is None:  # not in recovery: a promoted replica, as fresh as a primary
                replica.fresh_since = started
                continue
            for at, primary_position in reversed(self._probes):
                if primary_position <= int(replayed):
                    replica.fresh_since = max(replica.fresh_since, at)
                    break
        self._probed_at = time.monotonic()
        # A replica fresh only since before the staleness bound is not used, and a write
        # older than it no longer decides anything (the bound is stricter): forget both.
        cutoff = started - self.max_staleness_s
        keep_from = next((i for i, (at, _) in enumerate(self._probes) if at >= cutoff), len(self._probes))
        del self._probes[:keep_from]
        self._written = {k: t for k, t in self._written.items() if t >= cutoff}

    async def dispose(self) -> None:
        for replica in self.replicas:
            await release_held(replica.engine)
            await replica.engine.dispose()


def session_scopes(app_name: str, user_id: str, session_id: str) -> tuple[Hashable, ...]:
    """What a read of one session depends on: the session, its user's state, its app's state."""
    return (("s", app_name, user_id, session_id), ("u", app_name, user_id), ("a", app_name))


def user_scopes(app_name: str, user_id: str) -> tuple[Hashable, ...]:
    """What a page of a user's sessions depends on (every session write also marks its user)."""
    return (("u", app_name, user_id), ("a", app_name))


__all__ = ["DEFAULT_MAX_STALENESS_S", "PROBE_INTERVAL_S", "ReadRouter", "session_scopes", "user_scopes"]


def replica_urls(value: object) -> list[str | URL]:
    """read_url: one URL or a list of them (the replicas to read from)."""
    if value is None:
        return []
    urls = [value] if isinstance(value, (str, URL)) else value
    if not isinstance(urls, (list, tuple)) or not all(isinstance(u, (str, URL)) for u in urls):
        raise ConfigurationError(f"read_url must be a URL or a list of URLs, got {value!r}")
    return list(urls)


def seconds_option(name: str, value: object) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
        raise ConfigurationError(f"{name} must be a positive timedelta or number of seconds, got {value!r}")
    return float(seconds)
