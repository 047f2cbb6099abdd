"""Track events: records that belong to a session but not to the model's history.

Tool-call traces, token usage, UI telemetry: each goes to a named track of
a session, with its own seq (1, 2, 3 ... per (session, track)), its own
table, and no effect on the session's state, version or events. They are
read back by track in seq order (``get_track_events``), expire and are
deleted with their session, and cleanup counts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import jsonvalue
from .errors import EventTooLargeError, InvalidArgumentError, InvalidEventError
from .keys import check_identifier
from .timestamps import storable_utc


@dataclass(frozen=True, slots=True)
class TrackEvent:
    """One stored record of a track."""

    track: str
    seq: int
    timestamp: datetime
    payload: Any


def prepare_track_event(track: object, payload: Any, timestamp: object, max_bytes: int) -> tuple[str, Any, datetime]:
    """Check a track event; return (track, a private copy of payload, UTC timestamp) or raise a typed error."""
    check_identifier(track, "track", error=InvalidArgumentError)
    try:
        jsonvalue.check_json(payload)
    except jsonvalue.NotJSONError as exc:
        raise InvalidEventError(f"track event payload is not a JSON value: {exc}") from None
    size = len(jsonvalue.dumps(payload))
    if size > max_bytes:
        raise EventTooLargeError(f"track event payload is {size} bytes, more than max_event_bytes={max_bytes}")
    stamp = storable_utc(timestamp, "track event timestamp", InvalidEventError)
    return track, jsonvalue.copy_json(payload), stamp  # type: ignore[return-value]  # checked above


def check_after(after: object) -> tuple[int | None, datetime | None]:
    """``after`` of get_track_events: an int seq (exclusive) or an aware datetime (inclusive)."""
    if after is None:
        return None, None
    if isinstance(after, datetime):
        return None, storable_utc(after, "after", InvalidArgumentError)
    if type(after) is not int or after < 0:
        raise InvalidArgumentError(f"after must be a seq (int >= 0) or an aware datetime, got {after!r}")
    return after, None
