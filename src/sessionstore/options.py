"""Service options shared by every backend, checked once when the service is opened."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, overload

from .errors import ConfigurationError
from .hooks import check_hooks
from .records import utcnow

Clock = Callable[[], datetime]

NO_EVENT_LIMIT = 2**62
"""The event count a backend is asked for when nothing limits a read (event_limit=None, no
event_num): a LIMIT every database takes, larger than any session's history."""


DEFAULT_PERSIST_WORKERS = 4
"""Write-behind workers where the database takes concurrent writers (ServiceOptions.persist_workers)."""


@dataclass(frozen=True, slots=True)
class ServiceOptions:
    """Behaviour knobs common to all backends. TTLs of None mean "never expires"."""

    event_limit: int | None = 1000
    """Reads return at most this many (newest) events, and the cleanup job deletes a live
    session's older ones. None: keep every event (reads then return all of them unless
    given event_num/after)."""
    max_event_bytes: int = 1024 * 1024
    session_ttl: timedelta | None = None
    app_state_ttl: timedelta | None = None
    user_state_ttl: timedelta | None = None
    refresh_on_read: bool = False
    soft_delete: bool = True
    tombstone_retention: timedelta = timedelta(days=7)
    cleanup_interval: timedelta | None = timedelta(minutes=5)
    cleanup_batch_size: int = 1000
    clock: Clock = utcnow
    # Summaries (docs/summaries.md): a Summarizer, or None (summary calls are then no-ops).
    summarizer: Any = None
    summary_workers: int = 3
    summary_queue_size: int = 100
    summary_job_timeout: timedelta | None = timedelta(seconds=60)
    # Hooks (docs/hooks.md): async def hook(ctx, next), first one outermost.
    append_event_hooks: tuple[Any, ...] = ()
    get_session_hooks: tuple[Any, ...] = ()
    # write-behind (docs/write-behind.md): appends return once queued; workers store them
    async_persist: bool = False
    persist_workers: int | None = None
    """Workers storing the queue; None: DEFAULT_PERSIST_WORKERS, or 1 on SQLite (one writer at a
    time: more workers only take turns)."""
    persist_queue_size: int = 10_000
    """Queued events per worker before append_event waits for room."""
    # observability (docs/observability.md): OpenTelemetry spans and metrics, extra `otel`
    tracing: bool = False
    tracer_provider: Any = None
    """None: OpenTelemetry's global provider (likewise meter_provider)."""
    meter_provider: Any = None

    def __post_init__(self) -> None:
        for name in (
            "event_limit", "max_event_bytes", "cleanup_batch_size", "summary_workers", "summary_queue_size",
            "persist_workers", "persist_queue_size",
        ):
            value = getattr(self, name)
            if name in ("event_limit", "persist_workers") and value is None:
                continue
            if type(value) is not int or value < 1:
                never = " or None (keep every event)" if name == "event_limit" else ""
                raise ConfigurationError(f"{name} must be a positive int{never}, got {value!r}")
        for name in ("session_ttl", "app_state_ttl", "user_state_ttl", "cleanup_interval", "summary_job_timeout"):
            _check_duration(name, getattr(self, name), optional=True)
        _check_duration("tombstone_retention", self.tombstone_retention, optional=False)
        if not callable(self.clock):
            raise ConfigurationError("clock must be a callable returning an aware datetime")
        _check_summarizer(self.summarizer)
        for name in ("append_event_hooks", "get_session_hooks"):
            try:
                object.__setattr__(self, name, check_hooks(getattr(self, name), name))
            except ValueError as exc:
                raise ConfigurationError(str(exc)) from None

    def events_read_limit(self) -> int:
        """The most events a read returns: event_limit, or NO_EVENT_LIMIT when every event is kept."""
        return NO_EVENT_LIMIT if self.event_limit is None else self.event_limit

    @classmethod
    def split(cls, options: dict[str, Any]) -> tuple[ServiceOptions, dict[str, Any]]:
        """Take this class's fields out of `options`; return them and what is left."""
        names = {f.name for f in fields(cls)}
        mine = {k: options.pop(k) for k in list(options) if k in names}
        return cls(**mine), options


def _check_summarizer(summarizer: object) -> None:
    if summarizer is None:
        return
    for method in ("summarize", "should_summarize"):
        if not callable(getattr(summarizer, method, None)):
            raise ConfigurationError(f"summarizer must have summarize() and should_summarize(), got {summarizer!r}")


def _check_duration(name: str, value: object, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, timedelta) or value <= timedelta(0):
        never = " or None" if optional else ""
        raise ConfigurationError(f"{name} must be a positive timedelta{never}, got {value!r}")


@overload
def expiry(now: datetime, ttl: timedelta) -> datetime: ...


@overload
def expiry(now: datetime, ttl: timedelta | None) -> datetime | None: ...


def expiry(now: datetime, ttl: timedelta | None) -> datetime | None:
    """When a row written at `now` expires, or None if it never does."""
    return None if ttl is None else now + ttl
