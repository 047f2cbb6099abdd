"""The one retry loop: rerun an operation the database aborted for concurrency reasons.

Deadlocks, serialization failures, lock wait timeouts and busy databases
(and, on Galera, certification conflicts) abort a transaction that would
succeed if run again. Every write of every backend goes through `retrying`;
the backend says which errors qualify. Our own typed errors are never retried.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .errors import SessionStoreError
from .opstats import note_retry

log = logging.getLogger("sessionstore.retry")

T = TypeVar("T")

MAX_ATTEMPTS = 8
"""Attempts in all (the first one included) before the error reaches the caller."""


def backoff_s(attempt: int) -> float:
    """The pause after failed attempt `attempt` (0-based): exponential from 5 ms, at most 200 ms,
    with jitter (50-100% of that) so that writers that collided do not collide again in step."""
    return min(0.005 * 2.0**attempt, 0.2) * random.uniform(0.5, 1.0)


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
            if n + 1 == attempts or not is_retryable(exc):
                raise
            pause = backoff_s(n)
            note_retry()
            log.debug("attempt %d failed with %s; retrying in %.1f ms", n + 1, type(exc).__name__, pause * 1000)
        await asyncio.sleep(pause)
    raise AssertionError("unreachable")
