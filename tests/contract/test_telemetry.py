"""Observability on every backend: spans (one per public operation, with ids, counts, db system
and retries, never state values or content) and metrics, recorded with the OpenTelemetry SDK's
in-memory span exporter and metric reader."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import sessionstore as ss
from sessionstore.telemetry import operations

from .helpers import event, key, user_key

SECRET = "s3cr3t-state-value"


class Otel:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def options(self) -> dict[str, Any]:
        return {"tracing": True, "tracer_provider": self.tracer_provider, "meter_provider": self.meter_provider}

    def metrics(self) -> dict[str, list[Any]]:
        """Metric name -> its data points."""
        found: dict[str, list[Any]] = {}
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found

    def total(self, name: str, **attrs: Any) -> float:
        points = self.metrics().get(name, [])
        return sum(p.value for p in points if all(p.attributes.get(k) == v for k, v in attrs.items()))


@pytest.fixture
def otel() -> Otel:
    return Otel()


async def test_every_operation_opens_a_span_with_ids_and_no_values(make_service, backend, otel):
    svc = await make_service(**otel.options())
    s = await svc.create_session(key("s1"), {"k": SECRET})
    await svc.append_event(s, event(content={"text": SECRET}, state_delta={"x": SECRET}))
    await svc.get_session(key("s1"))
    await svc.list_sessions(user_key())
    await svc.update_session_state(key("s1"), {"y": SECRET})
    await svc.update_app_state("agent-app", {"a": SECRET})
    await svc.list_app_state("agent-app")
    await svc.delete_app_state("agent-app", "a")
    await svc.update_user_state(user_key(), {"u": SECRET})
    await svc.list_user_state(user_key())
    await svc.delete_user_state(user_key(), "u")
    await svc.append_events(s, [event(content=SECRET), event()])
    await svc.list_events(key("s1"))
    await svc.set_session_metadata(key("s1"), title="t", metadata={"m": SECRET})
    await svc.list_app_sessions("agent-app")
    await svc.delete_event(key("s1"), s.events[-1].id)
    await svc.trim_session_events(key("s1"), 1)
    await svc.clear_session_events(key("s1"))
    await svc.create_session_summary(s)
    await svc.enqueue_summary_job(s)
    await svc.get_session_summary_text(s)
    await svc.history_for_model(key("s1"))
    await svc.append_track_event(s, "usage", {"tokens": SECRET})
    await svc.get_track_events(key("s1"), "usage")
    await svc.list_tracks(key("s1"))
    await svc.cleanup()
    await svc.flush()
    await svc.delete_session(key("s1"))
    spans = {span.name: span for span in otel.spans.get_finished_spans()}
    assert set(spans) == {f"sessionstore.{name}" for name in operations(type(svc))}
    system = {"redis-cluster": "redis", "psycopg": "postgresql"}.get(backend.name, backend.name)
    for span in spans.values():
        attrs = dict(span.attributes or {})
        assert attrs["db.system"] == system and attrs["sessionstore.retries"] >= 0
        assert SECRET not in repr(attrs) and SECRET not in repr(span.events)
    append = dict(spans["sessionstore.append_event"].attributes or {})
    assert append["sessionstore.app_name"] == "agent-app" and append["sessionstore.user_id"] == "u1"
    assert append["sessionstore.session_id"] == "s1" and append["sessionstore.event_count"] == 1
    assert spans["sessionstore.get_session"].attributes["sessionstore.event_count"] == 1
    assert spans["sessionstore.list_app_state"].attributes["sessionstore.app_name"] == "agent-app"


async def test_errors_mark_the_span_by_type_only(make_service, otel):
    svc = await make_service(**otel.options())
    s = await svc.create_session(key("s1"))
    await svc.append_event(s, event())
    with pytest.raises(ss.ConflictError):
        await svc.append_event(s, event(content=SECRET), expected_version=0)
    span = [sp for sp in otel.spans.get_finished_spans() if sp.name == "sessionstore.append_event"][-1]
    assert span.status.status_code.name == "ERROR" and span.attributes["error.type"] == "ConflictError"
    assert SECRET not in repr(span.attributes) and not span.events
    assert otel.total("sessionstore.conflicts") == 1


async def test_metrics_count_appends_reads_duplicates_cleanup_and_latency(make_service, clock, otel):
    from datetime import timedelta

    svc = await make_service(session_ttl=timedelta(minutes=1), **otel.options())
    s = await svc.create_session(key("s1"))
    first = await svc.append_event(s, event(id="e1"))
    await svc.append_event(s, event(id="e2"))
    again = await svc.append_event(s, ss.Event(author="user", id="e1"))  # a retried append
    assert again.seq == first.seq
    await svc.get_session(key("s1"))
    await svc.list_sessions(user_key())
    clock.advance(minutes=5)
    await svc.cleanup()
    assert otel.total("sessionstore.appends", **{"sessionstore.mode": "stored"}) == 3
    assert otel.total("sessionstore.duplicate_appends") == 1
    assert otel.total("sessionstore.reads") == 2
    assert otel.total("sessionstore.cleanup.rows", **{"sessionstore.kind": "sessions_expired"}) == 1
    durations = otel.metrics()["sessionstore.operation.duration"]
    ops = {p.attributes["sessionstore.operation"] for p in durations}
    assert {"append_event", "get_session", "cleanup", "create_session"} <= ops
    assert all(p.count >= 1 and p.sum >= 0 for p in durations)


async def test_write_behind_queue_depth_and_errors_are_observed(make_service, otel):
    svc = await make_service(async_persist=True, **otel.options())
    s = await svc.create_session(key("s1"))
    for _ in range(3):
        await svc.append_event(s, event())
    assert otel.total("sessionstore.persist.queue_depth") == 3  # nothing awaited the workers yet
    ghost = ss.Session(id="never-created", app_name="agent-app", user_id="u1")
    await svc.append_event(ghost, event())
    with pytest.raises(ss.PersistError):
        await svc.flush()
    assert otel.total("sessionstore.persist.queue_depth") == 0
    assert otel.total("sessionstore.persist.errors") == 1
    assert otel.total("sessionstore.appends", **{"sessionstore.mode": "queued"}) == 4
    background = [sp for sp in otel.spans.get_finished_spans() if sp.name == "sessionstore.persist_event"]
    assert len(background) == 4 and sum(sp.status.status_code.name == "ERROR" for sp in background) == 1
    assert all(sp.attributes["sessionstore.app_name"] == "agent-app" for sp in background)


def test_every_public_operation_is_marked_for_telemetry():
    """A public coroutine method without @operation would get no span (telemetry.py)."""
    import inspect

    lifecycle = {"start", "close"}
    public = {
        name for name, fn in inspect.getmembers(ss.SessionService, inspect.iscoroutinefunction)
        if not name.startswith("_") and name not in lifecycle
    }
    assert public - set(operations(ss.SessionService)) == set()
