"""Values to and from the strings Redis stores: times, events, state cells, deltas as script arguments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from .. import jsonvalue
from ..events import PreparedEvent
from ..records import Event
from ..state import DELETE

NATIVE_GRACE = timedelta(minutes=1)
"""How long after its logical expiry (plus, with soft_delete, the tombstone retention) Redis drops a key itself."""

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)

MAX_EVENTS = 2**40
"""Stands for no limit in the scripts' event counts: more than any session holds, and still an
exact integer in Lua (the service's own "no limit" for reads, 2**62, is not)."""


def micros(when: datetime) -> int:
    """Microseconds since the epoch (exact: integer arithmetic on timedelta)."""
    return (when - EPOCH) // _MICRO


def from_micros(value: str | int) -> datetime:
    return EPOCH + timedelta(microseconds=int(value))


def millis(duration: timedelta | None) -> str:
    """A duration as PEXPIRE milliseconds ('' = no expiry), at least 1."""
    if duration is None:
        return ""
    return str(max(1, -(-duration // timedelta(milliseconds=1))))


def event_member(prepared: PreparedEvent) -> str:
    """The sorted-set member of an event: id, timestamp (seconds, microseconds) and the JSON of the rest.

    The id leads so that a trim can drop it from the id index; the timestamp
    follows so that a read with ``after`` filters without decoding JSON.
    """
    event = prepared.event
    stamp = micros(event.timestamp)
    removed = [k for k, v in event.state_delta.items() if v is DELETE]
    content, metadata, delta = prepared.json
    head = orjson.dumps([event.author, event.invocation_id, event.branch, removed]).decode()
    return f"{event.id}\n{stamp // 1_000_000}\n{stamp % 1_000_000}\n[{head[1:-1]},{content},{metadata},{delta}]"


def decode_event(member: str, seq: int) -> Event:
    event_id, sec, usec, body = member.split("\n", 3)
    author, invocation_id, branch, removed, content, metadata, delta = orjson.loads(body)
    for name in removed:
        delta[name] = DELETE
    when = from_micros(int(sec) * 1_000_000 + int(usec))
    return Event(author, content, event_id, invocation_id, when, delta, False, branch, metadata, seq)


def decode_events(flat: Sequence[Any]) -> list[Event]:
    """ZRANGE … WITHSCORES output (member, seq, member, seq …) to events in seq order."""
    return [decode_event(flat[i], int(float(flat[i + 1]))) for i in range(0, len(flat), 2)]


def cell(value: Any, expires_us: int | None) -> str:
    """A shared-state hash value: its expiry (µs, empty for never), a bar, then its JSON."""
    return f"{'' if expires_us is None else expires_us}|{jsonvalue.dumps(value).decode()}"


def live_cells(flat: Sequence[str], now_us: int) -> dict[str, Any]:
    """HGETALL of a shared-state hash to {key: value}, leaving out expired keys."""
    out: dict[str, Any] = {}
    for i in range(0, len(flat), 2):
        stamp, _, text = flat[i + 1].partition("|")
        if stamp and int(stamp) <= now_us:
            continue
        out[flat[i]] = jsonvalue.loads(text)
    return out


def session_state(flat: Sequence[str]) -> dict[str, Any]:
    return {flat[i]: jsonvalue.loads(flat[i + 1]) for i in range(0, len(flat), 2)}


def delta_args(delta: dict[str, Any], expires_us: int | None, *, shared: bool) -> list[str]:
    """A delta as script arguments: n sets, key, value …, n deletions, key …"""
    sets: list[str] = []
    dels: list[str] = []
    for name, value in delta.items():
        if value is DELETE:
            dels.append(name)
        else:
            sets += (name, cell(value, expires_us) if shared else jsonvalue.dumps(value).decode())
    return [str(len(sets) // 2), *sets, str(len(dels)), *dels]
