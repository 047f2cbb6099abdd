"""The one retry loop: rerun an operation the database aborted for concurrency reasons.

Deadlocks, serialization failures, lock wait timeouts and busy databases
(and, on Galera, certification conflicts) abort a transaction that would
succeed if run again. Every write of every backend goes through `retrying`;
the backend says which errors qualify. Our own typed errors are never retried.

Rerunning is safe because an attempt either committed or changed nothing
(the database rolled it back), and each attempt re-reads what it depends on
inside its own transaction: appends look the session row up again (and an
event id already stored is found, not stored twice), state writes merge into
the state they read in that transaction.

Every rerun is counted (`RETRIES`): the totals by reason, and listeners
(``RETRIES.add_listener(callback)``) that metrics code hooks, so a
Prometheus/OpenTelemetry counter needs no change here.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from .errors import SessionStoreError
from .opstats import note_retry

log = logging.getLogger("sessionstore.retry")

T = TypeVar("T")

MAX_ATTEMPTS = 16
"""Attempts in all (the first one included) before the error reaches the caller. Sized for
Galera, where writers on different nodes updating one session row see no row lock, only a
certification failure at commit: three nodes hammering one session needed up to 12 attempts
in tests/test_galera.py on a loaded machine. The pauses add up to at most about 5 s (2.6 s
on average) before giving up; a contended write usually needs one or two reruns."""

RetryListener = Callable[[str, int, BaseException], None]
"""Called as ``listener(outcome, attempt, error)`` after a failed attempt: outcome is
"retried" (another attempt follows) or "gave_up" (the error goes to the caller);
attempt is 0-based."""


@dataclass
class RetryStats:
    """Process-wide counts of reruns, and the listeners told about each one."""

    retried: int = 0
    """Attempts that failed for a concurrency reason and were run again."""
    gave_up: int = 0
    """Operations whose last allowed attempt failed for such a reason too."""
    _listeners: list[RetryListener] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_listener(self, listener: RetryListener) -> Callable[[], None]:
        """Call `listener` after every retried or given-up attempt; returns the function that removes it.
        A listener that raises is removed from nothing and breaks nothing: its error is swallowed."""
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def record(self, outcome: str, attempt: int, exc: BaseException) -> None:
        with self._lock:
            if outcome == "retried":
                self.retried += 1
            else:
                self.gave_up += 1
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(outcome, attempt, exc)
            except Exception:  # noqa: BLE001, S112 - metrics must never fail a write
                continue

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"retried": self.retried, "gave_up": self.gave_up}


RETRIES = RetryStats()
"""The counters of this process (every backend, every service)."""


def backoff_s(attempt: int) -> float:
    """The pause after failed attempt `attempt` (0-based): exponential from 5 ms, at most 500 ms,
    with "full" jitter (anywhere from 0 to that) so that writers that collided spread out
    instead of colliding again in step (which half-jitter let three Galera nodes do)."""
    return min(0.005 * 2.0**attempt, 0.5) * random.uniform(0.0, 1.0)


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    is_retryable: Callable[[BaseException], bool],
    *,
    attempts: int = MAX_ATTEMPTS,
) -> T:
    """Await `attempt()`, rerunning it while it fails with an error `is_retryable` accepts."""
    for n in range(attempts):
        try:
            return await attempt()
        except SessionStoreError:
            raise
        except Exception as exc:
            if not is_retryable(exc):
                raise
            pause = backoff_s(n)
            if n + 1 == attempts:
                RETRIES.record("gave_up", n, exc)
                raise
            RETRIES.record("retried", n, exc)
            note_retry()
            log.debug("attempt %d failed with %s; retrying in %.1f ms", n + 1, type(exc).__name__, pause * 1000)
        await asyncio.sleep(pause)
    raise AssertionError("unreachable")
