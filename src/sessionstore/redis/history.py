"""Batch appends, history edits, list_events, list_app_sessions and session metadata on Redis.

Functions of the service (``svc``: a RedisSessionService, typed Any so that
this module does not import service.py, which calls it), each one script on
the session's slot. The app-wide index behind list_app_sessions lives in the
app's slot: on a standalone server the session scripts keep it in the same
script; on a cluster it is updated by a follow-up call and checked against
the sessions when listed (entries of deleted or expired sessions are skipped
and dropped, only if unchanged since: UNINDEX).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from ..cursor import Cursor
from ..errors import ConflictError, SessionNotFoundError
from ..events import PreparedEvent
from ..keys import Key
from ..metadata import Unset
from ..records import Event, Session
from .codec import decode_event, decode_events, delta_args, micros

Service = Any


def _not_found(key: Key) -> SessionNotFoundError:
    return SessionNotFoundError(f"session {key.session_id!r} not found")


async def append_events(
    svc: Service, key: Key, prepared: list[PreparedEvent], expected_version: int | None, now: datetime
) -> tuple[list[Event], int, list[bool]]:
    from .codec import event_member

    user_expiry = svc._expiry(svc.options.user_state_ttl, now)
    app_expiry = svc._expiry(svc.options.app_state_ttl, now)
    args = svc._head(key, now) + ["" if expected_version is None else expected_version, svc.trim_limit, len(prepared)]
    for p in prepared:
        app = {} if svc.is_cluster else p.scoped.app
        args += [p.event.id, event_member(p), *delta_args(p.scoped.session, None, shared=False),
                 *delta_args(p.scoped.user, user_expiry, shared=True), *delta_args(app, app_expiry, shared=True)]
    result = await svc._script("APPEND_BATCH", svc._keys(key), args, rerun_if_lost=True)
    status = result[0]
    if status == "missing":
        raise _not_found(key)
    if status == "conflict":
        raise ConflictError(
            f"session {key.session_id!r} is at version {result[1]}, not {expected_version}",
            expected=expected_version if expected_version is not None else -1, actual=int(result[1]),
        )
    stored: list[Event] = []
    duplicates: list[bool] = []
    app_delta: dict[str, Any] = {}
    for p, (seq, member) in zip(prepared, result[2:], strict=True):
        if member:
            stored.append(decode_event(member, int(seq)))
            duplicates.append(True)
        else:
            p.event.seq = int(seq)
            stored.append(p.event)
            duplicates.append(False)
            app_delta.update(p.scoped.app)  # (in order: a later value or DELETE wins)
    if status == "ok":
        await svc._index_in_app(key, now)
        if svc.is_cluster and app_delta:
            await svc._write_app(key.app_name, app_delta, now)
    return stored, int(result[1]), duplicates


async def delete_event(svc: Service, key: Key, event_id: str, now: datetime) -> bool:
    names = svc.layout.session_keys(key.app_name, key.user_id, key.session_id)
    done = await svc._script("DELETE_EVENT", [names[0], names[2], names[3]], [micros(now), event_id], rerun_if_lost=True)
    return bool(done)


async def list_events(
    svc: Service, key: Key, after_seq: int | None, before_seq: int | None, limit: int, forward: bool, now: datetime
) -> list[Event]:
    names = svc.layout.session_keys(key.app_name, key.user_id, key.session_id)
    low = "-inf" if after_seq is None else f"({after_seq}"
    high = "+inf" if before_seq is None else f"({before_seq}"
    flat = await svc._script(
        "LIST_EVENTS", [names[0], names[2]], [micros(now), low, high, limit, "1" if forward else "0"], rerun_if_lost=True
    )
    if flat is None or flat is False:
        raise _not_found(key)
    return decode_events(flat)


async def trim_events(svc: Service, key: Key, keep_last: int, now: datetime) -> int:
    names = svc.layout.session_keys(key.app_name, key.user_id, key.session_id)
    removed = await svc._script("TRIM_EVENTS", names[:4], [micros(now), keep_last], rerun_if_lost=False)
    if int(removed) < 0:
        raise _not_found(key)
    return int(removed)


async def set_metadata(svc: Service, key: Key, title: str | None | Unset, delta: dict[str, Any], now: datetime) -> None:
    names = [svc.layout.session_keys(key.app_name, key.user_id, key.session_id)[0],
             svc.layout.metadata_key(key.app_name, key.user_id, key.session_id)]
    mode = "keep" if isinstance(title, Unset) else "clear" if title is None else "set"
    args = [micros(now), mode, title if isinstance(title, str) else "",
            *delta_args(delta, None, shared=False)]
    if not await svc._script("METADATA", names, args, rerun_if_lost=True):
        raise _not_found(key)


async def list_app_sessions(svc: Service, app_name: str, limit: int, after: Cursor | None, now: datetime) -> list[Session]:
    app_keys = svc.layout.app_keys(app_name)
    now_us = micros(now)
    score = "" if after is None else micros(after.updated_at)
    member = "" if after is None else svc.layout.app_member(after.session_id, after.user_id or "")
    stem = svc.layout.user_stem(app_name)
    if not svc.is_cluster:
        result = await svc._script("LIST_APP", [app_keys[3], app_keys[0]], [stem, now_us, limit, score, member, "1"],
                                   rerun_if_lost=True)
        app = result[0]
        return [_app_session(svc, app_name, entry[0], entry[2], entry[3], entry[4], entry[5], app, now_us)
                for entry in result[1:]]
    found: list[Session] = []
    app = await svc._app_hash(app_name)
    while len(found) < limit:
        want = limit - len(found)
        result = await svc._script("LIST_APP", [app_keys[3]], [stem, now_us, want, score, member, "0"], rerun_if_lost=True)
        candidates = result[1:]
        reads = await asyncio.gather(*(_read_candidate(svc, app_name, m, now_us) for m, _ in candidates))
        for (m, s), read in zip(candidates, reads, strict=True):
            if read is None:
                await svc._unindex(app_name, m, s)
                continue
            meta, state, _, user, metadata = read
            found.append(_app_session(svc, app_name, m, meta, state, metadata, user, app, now_us))
        if len(candidates) < want:
            break
        member, score = candidates[-1]
    return found[:limit]


async def _read_candidate(svc: Service, app_name: str, member: str, now_us: int) -> Any:
    sid, _, user = member.partition("\0")
    key = Key(app_name, user, sid)
    args = [svc.layout.user_base(app_name, user), sid, now_us, 0, "", "", "", svc._px["session"]]
    return await svc._script("READ", svc.layout.session_keys(key.app_name, key.user_id, sid), args, rerun_if_lost=True) or None


def _app_session(svc: Service, app_name: str, member: str, meta: list[Any], state: list[str], metadata: list[str],
                 user: list[str], app: list[str], now_us: int) -> Session:
    sid, _, user_id = member.partition("\0")
    session: Session = svc._session(Key(app_name, user_id, sid), sid, meta, state, [], user, app, now_us, metadata)
    return session

