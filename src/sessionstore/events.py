"""Checking an Event before it is stored, and the rules that apply to it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import jsonvalue
from .errors import EventTooLargeError, InvalidEventError
from .keys import check_identifier
from .records import Event
from .state import DELETE, ScopedDelta, check_delta, split_delta, strip_temp
from .timestamps import storable_utc

MAX_LABEL_LENGTH = 255
"""Longest author, invocation_id or branch, in code points."""


@dataclass(slots=True)
class PreparedEvent:
    """An event that passed every check: UTC timestamp, temp keys stripped, delta routed."""

    event: Event
    scoped: ScopedDelta
    size: int
    json: tuple[str, str, str]
    """content, metadata and the persisted delta's set values, serialised (what SQL stores)."""

    def copy(self, state_delta: Mapping[str, Any] | None = None, timestamp: datetime | None = None) -> Event:
        """A deep copy of the event (optionally with another delta or timestamp): content and
        metadata decoded afresh from the JSON already serialised, rather than serialised again."""
        event = self.event
        return Event(
            author=event.author, content=jsonvalue.loads(self.json[0]), id=event.id,
            invocation_id=event.invocation_id, timestamp=event.timestamp if timestamp is None else timestamp,
            state_delta=copy_delta(event.state_delta if state_delta is None else state_delta),
            partial=event.partial, branch=event.branch, metadata=jsonvalue.loads(self.json[1]), seq=event.seq,
        )


def prepare_event(event: object, max_event_bytes: int) -> PreparedEvent:
    """Validate `event` and return what a backend stores; raise a typed error otherwise.

    The returned event is a fresh object: later changes to the caller's event
    (or its dicts) never reach the store.
    """
    if not isinstance(event, Event):
        raise InvalidEventError(f"expected an Event, got {type(event).__name__}")
    check_identifier(event.id, "event id", error=InvalidEventError)
    check_identifier(event.author, "event author", error=InvalidEventError, max_length=MAX_LABEL_LENGTH)
    for name in ("invocation_id", "branch"):
        value = getattr(event, name)
        if value is not None:
            check_identifier(value, f"event {name}", error=InvalidEventError, max_length=MAX_LABEL_LENGTH)
    if type(event.partial) is not bool:
        raise InvalidEventError("event partial must be a bool")
    timestamp = storable_utc(event.timestamp, "event timestamp", InvalidEventError)
    if not isinstance(event.metadata, dict):
        raise InvalidEventError("event metadata must be a dict")
    content = _checked_json("content", event.content)
    metadata = _checked_json("metadata", event.metadata)
    delta = check_delta(event.state_delta)  # None means no delta, as everywhere else
    scoped = split_delta(delta)
    persisted_delta = strip_temp(delta) if scoped.temp else delta
    blobs = _serialise(content, metadata, persisted_delta)
    size = len(blobs[0]) + len(blobs[1]) + len(blobs[2]) + sum(len(k) for k, v in persisted_delta.items() if v is DELETE)
    if size > max_event_bytes:
        raise EventTooLargeError(
            f"event {event.id} is {size} bytes serialised; max_event_bytes is {max_event_bytes}"
        )
    as_text = (blobs[0].decode(), blobs[1].decode(), blobs[2].decode())
    prepared = PreparedEvent(event=event, scoped=scoped, size=size, json=as_text)
    prepared.event = prepared.copy(persisted_delta, timestamp)
    prepared.event.seq = None  # (the store assigns it)
    return prepared


_COPIED_FIELDS = {"author", "content", "id", "invocation_id", "timestamp", "state_delta", "partial", "branch", "metadata", "seq"}
assert {f.name for f in dataclasses.fields(Event)} == _COPIED_FIELDS, "PreparedEvent.copy must copy every Event field"


def copy_delta(delta: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v if v is DELETE else jsonvalue.copy_json(v)) for k, v in delta.items()}


def copy_event(event: Event) -> Event:
    """A deep copy, so that callers never share dicts with stored data."""
    return dataclasses.replace(
        event,
        content=jsonvalue.copy_json(event.content),
        metadata=jsonvalue.copy_json(event.metadata),
        state_delta=copy_delta(event.state_delta),
    )


def _checked_json(field_name: str, value: Any) -> Any:
    try:
        jsonvalue.check_json(value)
    except jsonvalue.NotJSONError as exc:
        raise InvalidEventError(f"event {field_name} is not JSON: {exc}") from None
    return value


def _serialise(content: Any, metadata: Any, delta: Mapping[str, Any]) -> tuple[bytes, bytes, bytes]:
    """What is stored of an event, as JSON: content, metadata, the delta's set values."""
    return (
        jsonvalue.dumps(content),
        jsonvalue.dumps(metadata),
        jsonvalue.dumps({k: v for k, v in delta.items() if v is not DELETE}),
    )
