"""Counters one public operation collects as it runs (retries, duplicate appends), for telemetry.

The retry loop and the append path note what happened here; the telemetry
wrapper (telemetry.py) opens a fresh ``OpStats`` per operation and reads it
when the operation ends. Without tracing nothing is open, and noting is one
context-variable lookup on a path (a retry, a duplicate) that is rare anyway.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(slots=True)
class OpStats:
    retries: int = 0
    duplicates: int = 0


CURRENT: ContextVar[OpStats | None] = ContextVar("sessionstore_opstats", default=None)


def note_retry() -> None:
    stats = CURRENT.get()
    if stats is not None:
        stats.retries += 1


def note_duplicate() -> None:
    stats = CURRENT.get()
    if stats is not None:
        stats.duplicates += 1
