"""OpenTelemetry spans and metrics for the public service operations (``tracing=True``).

A public method becomes an operation with one line, ``@operation("read")``
(or "write", "append", "admin"): the decorator only marks the function and
returns it unchanged, so with tracing off nothing runs per call and
OpenTelemetry is never imported. With ``tracing=True``, ``instrument(svc)``
puts a wrapper around every marked method on that one service object. The
wrapper opens the span ``sessionstore.<operation>`` and records the metrics.

Span attributes: the app, user and session ids the call addresses, the
event count, ``db.system`` and the retries the operation needed. Never state
values, event content or error messages (they may quote either): an error is
recorded by its type name only.
"""

from __future__ import annotations

import functools
import inspect
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import ConfigurationError, ConflictError
from .keys import Key, UserKey
from .opstats import CURRENT, OpStats
from .records import CleanupResult, Event, EventPage, Session

SessionService = Any  # the service (not imported: service.py imports this module)

F = TypeVar("F", bound=Callable[..., Any])

MARK = "__sessionstore_operation__"
SCOPE = "sessionstore"
CLEANUP_KINDS = (
    "sessions_expired", "events_removed", "events_trimmed", "app_state_expired", "user_state_expired",
    "tombstones_purged",
)


def operation(kind: str) -> Callable[[F], F]:
    """Mark a public service method as an operation of `kind` (read/write/append/admin); zero cost."""

    def mark(fn: F) -> F:
        setattr(fn, MARK, kind)
        return fn

    return mark


def operations(cls: type) -> dict[str, str]:
    """The marked methods of a service class: name -> kind."""
    found = {}
    for name in dir(cls):
        kind = getattr(getattr(cls, name, None), MARK, None)
        if kind is not None:
            found[name] = kind
    return found


def instrument(service: SessionService) -> None:
    """Wrap each operation of `service` (this object only) in a span and its metrics."""
    try:
        from opentelemetry import metrics, trace
    except ImportError:
        raise ConfigurationError(
            "tracing=True needs OpenTelemetry: pip install 'sessionstore[otel]'"
        ) from None
    options = service.options
    tracer = trace.get_tracer(SCOPE, tracer_provider=options.tracer_provider)
    meter = metrics.get_meter(SCOPE, meter_provider=options.meter_provider)
    instruments = _instruments_for(meter)
    instruments.services.add(service)
    for name, kind in operations(type(service)).items():
        setattr(service, name, _wrap(service, name, kind, getattr(service, name), tracer, instruments, trace))
    persist = getattr(service, "_persist", None)
    if persist is not None:  # write-behind's background writes: span sessionstore.persist_event
        persist.store = _wrap(service, "persist_event", "write", persist.store, tracer, instruments, trace)


@dataclass
class _Instruments:
    """One meter's instruments, shared by the services that report through it."""

    meter: Any
    append_totals: dict[Any, list[Any]] = field(default_factory=dict)
    """sessionstore.appends: per attribute set, its [attributes, events so far] (see _total)."""
    read_totals: dict[Any, list[Any]] = field(default_factory=dict)
    """sessionstore.reads: per attribute set, its [attributes, reads so far]."""
    conflicts: Any = None
    retries: Any = None
    duplicates: Any = None
    cleanup_rows: Any = None
    duration: Any = None
    services: weakref.WeakSet[Any] = field(default_factory=weakref.WeakSet)

    def __post_init__(self) -> None:
        m = self.meter
        # The two counters every call moves are observed: a call adds to a plain int here and the
        # SDK reads the totals when it collects (an SDK counter's add() cost a sub-millisecond
        # SQLite call several per cent; exporters see the same monotonic cumulative sums).
        m.create_observable_counter(
            "sessionstore.appends", [self._counted(self.append_totals)], "{event}", "Events appended (stored or queued)"
        )
        m.create_observable_counter(
            "sessionstore.reads", [self._counted(self.read_totals)], "{operation}", "Read operations"
        )
        self.conflicts = m.create_counter("sessionstore.conflicts", "{conflict}", "expected_version conflicts")
        self.retries = m.create_counter("sessionstore.retries", "{retry}", "Reruns after transient database errors")
        self.duplicates = m.create_counter(
            "sessionstore.duplicate_appends", "{event}", "Appends of an event id already stored (retries)"
        )
        self.cleanup_rows = m.create_counter("sessionstore.cleanup.rows", "{row}", "Rows removed by cleanup, by kind")
        self.duration = m.create_histogram("sessionstore.operation.duration", "s", "Duration of service operations")
        m.create_observable_gauge(
            "sessionstore.persist.queue_depth", [self._depth], "{event}", "Write-behind events queued, not yet stored"
        )
        m.create_observable_counter(
            "sessionstore.persist.errors", [self._errors], "{error}", "Write-behind writes that failed"
        )

    @staticmethod
    def _counted(totals: dict[Any, list[Any]]) -> Callable[[Any], Iterable[Any]]:
        def observe(_options: Any) -> Iterable[Any]:
            from opentelemetry.metrics import Observation

            return [Observation(count, attributes) for attributes, count in list(totals.values())]

        return observe

    def _observe(self, value: Callable[[SessionService], int]) -> Iterable[Any]:
        from opentelemetry.metrics import Observation

        totals: dict[str, int] = {}
        for svc in list(self.services):
            system = svc.db_system
            totals[system] = totals.get(system, 0) + value(svc)
        return [Observation(v, {"db.system": k}) for k, v in totals.items()]

    def _depth(self, _options: Any) -> Iterable[Any]:
        return self._observe(lambda svc: svc.persist_queue_depth)

    def _errors(self, _options: Any) -> Iterable[Any]:
        return self._observe(lambda svc: svc.persist_errors)


_BY_METER: dict[int, _Instruments] = {}


def _instruments_for(meter: Any) -> _Instruments:
    """Instruments are made once per meter (a second registration of a name only warns)."""
    found = _BY_METER.get(id(meter))
    if found is None or found.meter is not meter:
        found = _BY_METER[id(meter)] = _Instruments(meter)
    return found


def _wrap(
    service: SessionService, name: str, kind: str, method: Callable[..., Awaitable[Any]],
    tracer: Any, ins: _Instruments, trace: Any,
) -> Callable[..., Awaitable[Any]]:
    span_name = f"sessionstore.{name}"
    params = list(inspect.signature(method).parameters)
    app_at = params.index("app_name") if "app_name" in params else None
    error_status = trace.Status(trace.StatusCode.ERROR)
    set_span_in_context = trace.set_span_in_context
    from opentelemetry.context import attach, detach
    client = trace.SpanKind.CLIENT
    mode = "queued" if service.options.async_persist else "stored"
    fixed: dict[str, Any] = {}  # metric attribute sets and totals, made on the first call (db_system is known by then)

    def attributes(system: str) -> dict[str, Any]:
        base = {"db.system": system, "sessionstore.operation": name}
        fixed.update(base=base, ok=base | {"sessionstore.outcome": "ok"})
        if kind == "read":
            fixed["total"] = _total(ins.read_totals, base)
        elif kind == "append":
            fixed["total"] = _total(ins.append_totals, base | {"sessionstore.mode": mode})
        return fixed

    @functools.wraps(method)
    async def traced(*args: Any, **kwargs: Any) -> Any:
        system = service.db_system
        metric_attrs = fixed or attributes(system)
        attrs: dict[str, Any] = {"db.system": system}
        _ids(attrs, args, kwargs, app_at)
        stats = OpStats()
        token = CURRENT.set(stats)
        start = time.perf_counter()
        outcome: str | None = None
        conflict = False
        # The span is made current by hand (what start_as_current_span does through two
        # generator-based context managers, a measurable part of a sub-millisecond call).
        span = tracer.start_span(span_name, kind=client, attributes=attrs, record_exception=False)
        current = attach(set_span_in_context(span))
        try:
            try:
                result = await method(*args, **kwargs)
            except BaseException as exc:
                outcome, conflict = type(exc).__name__, isinstance(exc, ConflictError)
                span.set_status(error_status)
                span.set_attributes({"error.type": outcome, "sessionstore.retries": stats.retries})
                raise
            finally:
                detach(current)
                if outcome is not None:
                    span.end()
            count = _event_count(result)
            if span.is_recording():
                done: dict[str, Any] = {"sessionstore.retries": stats.retries}
                if count is not None:
                    done["sessionstore.event_count"] = count
                span.set_attributes(done)
            span.end()
        finally:
            # Metrics are recorded once the span has ended: inside it, an SDK meter would also
            # keep the span as an exemplar of each measurement, which costs more than the record.
            elapsed = time.perf_counter() - start
            CURRENT.reset(token)
            base = metric_attrs["base"]
            if outcome is None:
                ins.duration.record(elapsed, metric_attrs["ok"])
            else:
                ins.duration.record(elapsed, base | {"sessionstore.outcome": outcome})
            if conflict:
                ins.conflicts.add(1, {"db.system": system})
            if stats.retries:
                ins.retries.add(stats.retries, base)
            if stats.duplicates:
                ins.duplicates.add(stats.duplicates, base)
        total = metric_attrs.get("total")  # (an error was raised above: only successes count)
        if total is not None:
            total[1] += 1 if kind == "read" else (count or 0)
        elif isinstance(result, CleanupResult) and not result.dry_run:
            for cleanup_kind in CLEANUP_KINDS:
                rows = getattr(result, cleanup_kind)
                if rows:
                    ins.cleanup_rows.add(rows, {"db.system": system, "sessionstore.kind": cleanup_kind})
        return result

    return traced


def _total(totals: dict[Any, list[Any]], attributes: dict[str, Any]) -> list[Any]:
    """The [attributes, count] cell of an observed counter for one attribute set (shared by
    every wrapper, and every service on the meter, that reports the same set)."""
    key = tuple(sorted(attributes.items()))
    cell = totals.get(key)
    if cell is None:
        cell = totals[key] = [attributes, 0]
    return cell


def _ids(attrs: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any], app_at: int | None) -> None:
    """The ids the call addresses (from its Session, Key, UserKey or app_name argument)."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, (Session, Key)):
            sid = value.id if isinstance(value, Session) else value.session_id
            attrs.update({"sessionstore.app_name": value.app_name, "sessionstore.user_id": value.user_id})
            if sid:
                attrs["sessionstore.session_id"] = sid
            return
        if isinstance(value, UserKey):
            attrs.update({"sessionstore.app_name": value.app_name, "sessionstore.user_id": value.user_id})
            return
    app = args[app_at] if app_at is not None and len(args) > app_at else kwargs.get("app_name")
    if isinstance(app, str):
        attrs["sessionstore.app_name"] = app


def _event_count(result: Any) -> int | None:
    if isinstance(result, Event):
        return 1
    if isinstance(result, (Session, EventPage)):
        return len(result.events)
    if isinstance(result, list) and all(isinstance(e, Event) for e in result):
        return len(result)
    if isinstance(result, tuple) and result and isinstance(result[0], Event):  # a backend's (event, version, dup)
        return 1
    return None
