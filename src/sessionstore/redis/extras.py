"""Summaries and track events on Redis (docs/summaries.md): per session, in the session's slot.

Keys (after the user tag): ``sum:<id>`` hash, filter key -> ``<through_seq>|<JSON>``;
``trs:<id>`` hash, track -> its last seq; ``tr:<id>:<track>`` sorted set, the
track's records by seq, member ``<seq>\\n<sec>\\n<µs>\\n<JSON payload>``. They
follow the session: native expiry copied from the session hash when written,
renamed into its tombstone (``tsum:<n>``, ``ttrs:<n>``, ``ttr:<n>:<track>``)
or deleted with it, counted by the cleanup job (``track_events_removed``).

Functions of the service (``svc``: a RedisSessionService, typed Any so that
this module does not import service.py, which calls it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from .. import jsonvalue
from ..errors import SessionNotFoundError
from ..keys import Key
from ..records import Event
from ..summaries import StoredSummary
from ..tracks import TrackEvent
from .codec import MAX_EVENTS, decode_events, from_micros, micros
from .layout import escape

Service = Any


def _names(svc: Service, key: Key, *kinds: str) -> list[str]:
    base = svc.layout.user_base(key.app_name, key.user_id)
    sid = escape(key.session_id)
    return [f"{base}{kind}:{sid}" for kind in kinds]


async def get_summary(svc: Service, key: Key, filter_key: str, now: datetime) -> StoredSummary | None:
    value = await svc._script("GET_SUMMARY", _names(svc, key, "s", "sum"), [micros(now), filter_key], rerun_if_lost=True)
    if not value:
        return None
    through, _, doc = value.partition("|")
    return StoredSummary.from_json(doc, int(through))


async def put_summary(svc: Service, key: Key, filter_key: str, summary: StoredSummary, now: datetime) -> bool:
    doc = orjson.dumps(summary.to_json()).decode()
    args = [micros(now), filter_key, summary.through_seq, doc]
    return bool(await svc._script("PUT_SUMMARY", _names(svc, key, "s", "sum"), args, rerun_if_lost=True))


async def events_after(svc: Service, key: Key, after_seq: int, limit: int, now: datetime) -> list[Event] | None:
    args = [micros(now), after_seq, min(limit, MAX_EVENTS)]
    flat = await svc._script("EVENTS_AFTER", _names(svc, key, "s", "ev"), args, rerun_if_lost=True)
    if flat is None or flat is False:
        return None
    events = decode_events(flat)
    events.reverse()
    return events


def _track_key(svc: Service, key: Key, track: str) -> str:
    return _names(svc, key, "tr")[0] + ":" + escape(track)


async def append_track_event(svc: Service, key: Key, track: str, payload: Any, timestamp: datetime, now: datetime) -> TrackEvent:
    stamp = micros(timestamp)
    keys = _names(svc, key, "s", "trs") + [_track_key(svc, key, track)]
    args = [micros(now), track, stamp // 1_000_000, stamp % 1_000_000, jsonvalue.dumps(payload).decode()]
    seq = await svc._script("APPEND_TRACK", keys, args, rerun_if_lost=False)
    if not seq:
        raise SessionNotFoundError(f"session {key.session_id!r} not found")
    return TrackEvent(track, int(seq), timestamp, jsonvalue.copy_json(payload))


async def get_track_events(
    svc: Service, key: Key, track: str, limit: int, after_seq: int | None, after_time: datetime | None, now: datetime
) -> list[TrackEvent]:
    keys = _names(svc, key, "s") + [_track_key(svc, key, track)]
    when = None if after_time is None else micros(after_time)
    args = [micros(now), after_seq or 0, limit, "" if when is None else when // 1_000_000, "" if when is None else when % 1_000_000]
    members = await svc._script("GET_TRACK", keys, args, rerun_if_lost=True)
    out = []
    for member in members or []:
        seq, sec, usec, payload = member.split("\n", 3)
        out.append(TrackEvent(track, int(seq), from_micros(int(sec) * 1_000_000 + int(usec)), jsonvalue.loads(payload)))
    return out


async def list_tracks(svc: Service, key: Key, now: datetime) -> list[str]:
    names = await svc._script("LIST_TRACKS", _names(svc, key, "s", "trs"), [micros(now)], rerun_if_lost=True)
    return sorted(names or [])
