"""RedisSessionService: the contract on Redis (standalone or Redis Cluster), one Lua script per write.

Round trips: on a standalone server every operation is one script call (the
app's state keys are passed to the same script, so an event's ``app:`` keys
land atomically with it and a read returns all three state levels at once).
On a cluster the app's keys live in another slot: reads fetch the app state
with a second call sent concurrently with the first, and ``app:`` keys of a
write are applied by a second script right after the session's commits
(docs/backends.md, "Redis": not atomic with the event there).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from .. import jsonvalue
from ..cursor import Cursor
from ..errors import ConfigurationError, ConflictError, SessionExistsError, SessionNotFoundError
from ..events import PreparedEvent
from ..keys import Key, UserKey
from ..metadata import Unset
from ..options import ServiceOptions
from ..records import CleanupProgress, CleanupResult, Event, Session
from ..service import SessionService
from ..state import ScopedDelta, merged_view
from ..summaries import StoredSummary
from ..tracks import TrackEvent
from . import extras, extras_scripts, history, history_scripts, scripts
from .cleanup import run_cleanup
from .codec import (
    MAX_EVENTS,
    NATIVE_GRACE,
    decode_event,
    decode_events,
    delta_args,
    event_member,
    from_micros,
    live_cells,
    micros,
    millis,
    session_state,
)
from .connection import DEFAULT_PREFIX, POOL_SIZE, POOL_TIMEOUT_S, Connection, make_client, prefix_from_url
from .layout import KeyLayout


class RedisSessionService(SessionService):
    """The contract on Redis. Build it with ``open_service("redis://…")`` (or ``rediss://``,
    ``redis+cluster://``, or ``cluster=True``); ``key_prefix`` namespaces every key (also
    given in the URL as ``?key_prefix=…``, so a URL alone names one deployment's keys)."""

    def __init__(
        self,
        url: str,
        options: ServiceOptions | None = None,
        *,
        key_prefix: str = DEFAULT_PREFIX,
        cluster: bool | None = None,
        pool_size: int = POOL_SIZE,
        pool_timeout: float = POOL_TIMEOUT_S,
        **client_options: Any,
    ) -> None:
        super().__init__(options)
        url, key_prefix = prefix_from_url(url, key_prefix)
        if not isinstance(key_prefix, str):
            raise ConfigurationError(f"key_prefix must be a str, got {key_prefix!r}")
        if isinstance(pool_timeout, bool) or not isinstance(pool_timeout, (int, float)) or pool_timeout <= 0:
            raise ConfigurationError(f"pool_timeout must be a positive number of seconds, got {pool_timeout!r}")
        client, is_cluster = make_client(url, cluster=cluster, pool_size=pool_size, **client_options)
        self.connection = Connection(client, url, is_cluster, pool_size=pool_size, pool_timeout=float(pool_timeout))
        self.layout = KeyLayout(key_prefix)
        sources = (scripts, history_scripts, extras_scripts)
        self.scripts = {
            name: client.register_script(next(getattr(m, name) for m in sources if hasattr(m, name))) for name in _SCRIPTS
        }
        o = self.options
        soft_extra = o.tombstone_retention if o.soft_delete else timedelta(0)
        self._soft = "1" if o.soft_delete else "0"
        self._tpx = millis(o.tombstone_retention + NATIVE_GRACE)
        self._px = {name: millis(None if ttl is None else ttl + soft_extra + NATIVE_GRACE)
                    for name, ttl in (("session", o.session_ttl), ("user", o.user_state_ttl), ("app", o.app_state_ttl))}

    @property
    def is_cluster(self) -> bool:
        return self.connection.is_cluster

    @property
    def trim_limit(self) -> int:
        """The event count appends trim a session to: event_limit, or MAX_EVENTS (keep every event)."""
        return MAX_EVENTS if self.options.event_limit is None else self.options.event_limit

    @property
    def db_system(self) -> str:
        """What telemetry reports as ``db.system`` (OpenTelemetry's name for Redis)."""
        return "redis"

    async def _close(self) -> None:
        await self.connection.close()

    # ------------------------------------------------------------------ plumbing

    async def _script(self, name: str, keys: list[str], args: list[Any], *, rerun_if_lost: bool) -> Any:
        script = self.scripts[name]
        return await self.connection.run(lambda: script(keys=keys, args=args), rerun_if_lost=rerun_if_lost)

    async def _call(self, method: str, *args: Any) -> Any:
        client = self.connection.client
        return await self.connection.run(lambda: getattr(client, method)(*args), rerun_if_lost=True)

    def _keys(self, key: Key) -> list[str]:
        keys = self.layout.session_keys(key.app_name, key.user_id, key.session_id)
        if not self.is_cluster:  # one script sees the app's state too
            keys += self.layout.app_keys(key.app_name)
        return keys

    def _expiry(self, ttl: timedelta | None, now: datetime) -> int | None:
        return None if ttl is None else micros(now + ttl)

    def _head(self, key: Key, now: datetime) -> list[Any]:
        """ARGV 1-10 of the session scripts."""
        expires = self._expiry(self.options.session_ttl, now)
        return [
            self.layout.user_base(key.app_name, key.user_id), key.session_id, micros(now),
            "" if expires is None else expires, self._px["session"], self._soft, self._tpx, self._px["user"], self._px["app"],
            self.layout.app_member(key.session_id, key.user_id),
        ]

    def _shared_args(self, scoped: ScopedDelta, now: datetime) -> list[str]:
        o = self.options
        app = scoped.app if not self.is_cluster else {}
        return delta_args(scoped.user, self._expiry(o.user_state_ttl, now), shared=True) + delta_args(
            app, self._expiry(o.app_state_ttl, now), shared=True
        )

    async def _write_app(self, app_name: str, delta: dict[str, Any], now: datetime) -> list[str]:
        """Apply an app delta with its own script (the app's slot); return the app's state hash."""
        args = [micros(now), self._soft, self._px["app"], self._tpx,
                *delta_args(delta, self._expiry(self.options.app_state_ttl, now), shared=True)]
        result: list[str] = await self._script("SHARED", self.layout.app_keys(app_name), args, rerun_if_lost=False)
        return result

    async def _app_hash(self, app_name: str) -> list[str]:
        return await self._hgetall(self.layout.app_keys(app_name)[0])

    async def _hgetall(self, name: str) -> list[str]:
        mapping: dict[str, str] = await self._call("hgetall", name)
        return [item for pair in mapping.items() for item in pair]

    def _session(self, key: Key, sid: str, meta: list[Any], state: list[str], events: list[Event],
                 user: list[str], app: list[str], now_us: int, metadata: list[str]) -> Session:
        """A Session from script output: meta is (created, updated, expires, version, title)."""
        return Session(
            id=sid, app_name=key.app_name, user_id=key.user_id,
            state=merged_view(session_state(state), live_cells(app, now_us), live_cells(user, now_us)),
            events=events, version=int(meta[3]), created_at=from_micros(meta[0]), updated_at=from_micros(meta[1]),
            title=meta[4], metadata=session_state(metadata),
        )

    async def _index_in_app(self, key: Key, now: datetime) -> None:
        """On a cluster, the app-wide index lives in the app's slot: updated after the session's script."""
        if self.is_cluster:
            member = self.layout.app_member(key.session_id, key.user_id)
            await self._call("zadd", self.layout.app_keys(key.app_name)[3], {member: micros(now)})

    # ------------------------------------------------------------------ sessions

    async def _create_session(self, key: Key, scoped: ScopedDelta, now: datetime) -> Session:
        args = self._head(key, now) + delta_args(scoped.session, None, shared=False) + self._shared_args(scoped, now)
        result = await self._script("CREATE", self._keys(key), args, rerun_if_lost=False)
        if result[0] == 0:
            raise SessionExistsError(f"session {key.session_id!r} already exists")
        if self.is_cluster:
            await self._index_in_app(key, now)
            app = await self._write_app(key.app_name, scoped.app, now) if scoped.app else await self._app_hash(key.app_name)
        else:
            app = result[2]
        now_us = micros(now)
        return Session(
            id=key.session_id, app_name=key.app_name, user_id=key.user_id,
            state=merged_view(jsonvalue.copy_json(scoped.session), live_cells(app, now_us), live_cells(result[1], now_us)),
            version=0, created_at=now, updated_at=now,
        )

    async def _get_session(self, key: Key, limit: int, after: datetime | None, now: datetime) -> Session | None:
        now_us = micros(now)
        refresh = self.options.refresh_on_read and self.options.session_ttl is not None
        after_us = micros(after) if after is not None else None
        expires = self._expiry(self.options.session_ttl, now) if refresh else None
        args = [
            self.layout.user_base(key.app_name, key.user_id), key.session_id, now_us, min(limit, MAX_EVENTS),
            "" if after_us is None else after_us // 1_000_000, "" if after_us is None else after_us % 1_000_000,
            "" if expires is None else expires, self._px["session"],
        ]
        read = self._script("READ", self._keys(key), args, rerun_if_lost=True)
        if self.is_cluster:
            result, app = await asyncio.gather(read, self._app_hash(key.app_name))
        else:
            result = await read
            app = result[5] if result else []
        if not result:
            return None
        meta, state, flat, user, metadata = result[0], result[1], result[2], result[3], result[4]
        return self._session(key, key.session_id, meta, state, decode_events(flat), user, app, now_us, metadata)

    async def _list_sessions(self, user_key: UserKey, limit: int, after: Cursor | None, now: datetime) -> list[Session]:
        now_us = micros(now)
        user_keys = self.layout.user_keys(user_key.app_name, user_key.user_id)
        keys = [user_keys[0], user_keys[2]]
        if not self.is_cluster:
            keys.append(self.layout.app_keys(user_key.app_name)[0])
        args = [self.layout.user_base(user_key.app_name, user_key.user_id), now_us, limit,
                "" if after is None else micros(after.updated_at), "" if after is None else after.session_id]
        listing = self._script("LIST", keys, args, rerun_if_lost=True)
        if self.is_cluster:
            result, app = await asyncio.gather(listing, self._app_hash(user_key.app_name))
        else:
            result = await listing
            app = result[1]
        key = Key(user_key.app_name, user_key.user_id, "-")
        return [self._session(key, sid, meta, state, [], result[0], app, now_us, md) for sid, meta, state, md in result[2:]]

    async def _delete_session(self, key: Key, now: datetime) -> None:
        member = self.layout.app_member(key.session_id, key.user_id)
        args = [self.layout.user_base(key.app_name, key.user_id), key.session_id, micros(now), self._soft, self._tpx, member]
        updated = await self._script("DELETE", self._keys(key), args, rerun_if_lost=True)
        if updated and self.is_cluster:
            await self._unindex(key.app_name, member, updated)

    async def _unindex(self, app_name: str, member: str, score: Any) -> None:
        await self._script("UNINDEX", [self.layout.app_keys(app_name)[3]], [member, score], rerun_if_lost=True)

    # ------------------------------------------------------------------ events and state

    async def _append_event(
        self, key: Key, prepared: PreparedEvent, expected_version: int | None, now: datetime, known_version: int
    ) -> tuple[Event, int, bool]:
        event = prepared.event
        scoped = prepared.scoped
        args = self._head(key, now) + [
            "" if expected_version is None else expected_version, self.trim_limit, event.id, event_member(prepared),
            *delta_args(scoped.session, None, shared=False), *self._shared_args(scoped, now),
        ]
        attempts = 0

        async def attempt() -> Any:
            nonlocal attempts
            attempts += 1
            return await self.scripts["WRITE"](keys=self._keys(key), args=args)

        result = await self.connection.run(attempt, rerun_if_lost=True)
        status = result[0]
        if status == "missing":
            raise SessionNotFoundError(f"session {key.session_id!r} not found")
        if status == "conflict":
            raise ConflictError(
                f"session {key.session_id!r} is at version {result[1]}, not {expected_version}",
                expected=expected_version if expected_version is not None else -1, actual=int(result[1]),
            )
        if status == "dup":
            if attempts > 1 and self.is_cluster and scoped.app:  # our own first attempt stored it: finish it
                await self._write_app(key.app_name, scoped.app, now)
            return decode_event(result[2], int(result[1])), int(result[3]), True
        await self._index_in_app(key, now)
        if self.is_cluster and scoped.app:
            await self._write_app(key.app_name, scoped.app, now)
        event.seq = int(result[1])
        return event, int(result[2]), False

    async def _update_session_state(self, key: Key, scoped: ScopedDelta, now: datetime) -> None:
        args = self._head(key, now) + ["", self.trim_limit, "", "",
                                       *delta_args(scoped.session, None, shared=False), *self._shared_args(scoped, now)]
        result = await self._script("WRITE", self._keys(key), args, rerun_if_lost=False)
        if result[0] == "missing":
            raise SessionNotFoundError(f"session {key.session_id!r} not found")
        await self._index_in_app(key, now)
        if self.is_cluster and scoped.app:
            await self._write_app(key.app_name, scoped.app, now)

    async def _update_shared_state(self, scoped: ScopedDelta, app_name: str, user_id: str | None, now: datetime) -> None:
        if scoped.app:
            await self._write_app(app_name, scoped.app, now)
        if scoped.user and user_id is not None:
            keys = self.layout.user_keys(app_name, user_id)
            args = [micros(now), self._soft, self._px["user"], self._tpx,
                    *delta_args(scoped.user, self._expiry(self.options.user_state_ttl, now), shared=True)]
            await self._script("SHARED", [keys[2], keys[3], keys[5]], args, rerun_if_lost=False)

    async def _list_app_state(self, app_name: str, now: datetime) -> dict[str, Any]:
        return live_cells(await self._app_hash(app_name), micros(now))

    async def _list_user_state(self, user_key: UserKey, now: datetime) -> dict[str, Any]:
        name = self.layout.user_keys(user_key.app_name, user_key.user_id)[2]
        return live_cells(await self._hgetall(name), micros(now))

    # ------------------------------------------------------------------ history and metadata (history.py)

    async def _append_events(
        self, key: Key, prepared: list[PreparedEvent], expected_version: int | None, now: datetime
    ) -> tuple[list[Event], int, list[bool]]:
        return await history.append_events(self, key, prepared, expected_version, now)

    async def _delete_event(self, key: Key, event_id: str, now: datetime) -> bool:
        return await history.delete_event(self, key, event_id, now)

    async def _list_events(
        self, key: Key, after_seq: int | None, before_seq: int | None, limit: int, forward: bool, now: datetime
    ) -> list[Event]:
        return await history.list_events(self, key, after_seq, before_seq, limit, forward, now)

    async def _trim_events(self, key: Key, keep_last: int, now: datetime) -> int:
        return await history.trim_events(self, key, keep_last, now)

    async def _set_session_metadata(self, key: Key, title: str | None | Unset, delta: dict[str, Any], now: datetime) -> None:
        await history.set_metadata(self, key, title, delta, now)

    async def _list_app_sessions(self, app_name: str, limit: int, after: Cursor | None, now: datetime) -> list[Session]:
        return await history.list_app_sessions(self, app_name, limit, after, now)

    # ------------------------------------------------------------------ summaries and track events (extras.py)

    async def _get_summary(self, key: Key, filter_key: str, now: datetime) -> StoredSummary | None:
        return await extras.get_summary(self, key, filter_key, now)

    async def _put_summary(self, key: Key, filter_key: str, summary: StoredSummary, now: datetime) -> bool:
        return await extras.put_summary(self, key, filter_key, summary, now)

    async def _events_after(self, key: Key, after_seq: int, limit: int, now: datetime) -> list[Event] | None:
        return await extras.events_after(self, key, after_seq, limit, now)

    async def _append_track_event(self, key: Key, track: str, payload: Any, timestamp: datetime, now: datetime) -> TrackEvent:
        return await extras.append_track_event(self, key, track, payload, timestamp, now)

    async def _get_track_events(
        self, key: Key, track: str, limit: int, after_seq: int | None, after_time: datetime | None, now: datetime
    ) -> list[TrackEvent]:
        return await extras.get_track_events(self, key, track, limit, after_seq, after_time, now)

    async def _list_tracks(self, key: Key, now: datetime) -> list[str]:
        return await extras.list_tracks(self, key, now)

    # ------------------------------------------------------------------ retention

    async def _cleanup(self, dry_run: bool, progress: CleanupProgress | None) -> CleanupResult:
        return await run_cleanup(self, dry_run, progress)


_SCRIPTS = (
    "CREATE", "WRITE", "APPEND_BATCH", "SHARED", "READ", "LIST", "DELETE", "DELETE_EVENT", "LIST_EVENTS", "TRIM_EVENTS",
    "METADATA", "LIST_APP", "UNINDEX", "CLEAN_SESSIONS", "CLEAN_STATE", "UNLOCK", "EXTEND_LOCK",
    "GET_SUMMARY", "PUT_SUMMARY", "EVENTS_AFTER", "APPEND_TRACK", "GET_TRACK", "LIST_TRACKS",
)
