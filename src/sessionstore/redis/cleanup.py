"""The cleanup job on Redis: what native expiry does not do, under a lock so that one cleaner works at a time.

Redis drops a session's keys by itself, but only a grace period after the
session's logical expiry (plus the tombstone retention with soft_delete),
and it cannot drop one field of a hash (an app or user state key) or one
member of a sorted set (a user's index entry). A round does, per user tag
and then per app tag, each as one script on that tag's slot:

1. expire sessions whose ``exp`` entry is due (soft: a tombstone; hard: the
   keys go), dropping index entries of sessions Redis already removed;
2. purge session tombstones older than ``tombstone_retention``;
3. expire app and user state keys, purge their tombstones.

The tags are found with SCAN over the prefix (every primary of a cluster):
the only keyspace walk in the backend, and only here. The lock is a key set
with NX and an expiry, holding a random token; it is extended while the
round runs and deleted only by the token's owner.
"""

from __future__ import annotations

import logging
import time
from time import perf_counter
from typing import Any

from ..records import CleanupProgress, CleanupResult, new_id
from .codec import NATIVE_GRACE, micros, millis

RedisSessionService = Any  # (the service: connection, layout, scripts, options, _now; not imported: no cycle)

log = logging.getLogger("sessionstore.cleanup")

LOCK_MS = 60_000
"""The lock's expiry: a cleaner that dies frees it within this time."""
EXTEND_EVERY_S = 10.0


async def run_cleanup(svc: RedisSessionService, dry_run: bool, progress: CleanupProgress | None) -> CleanupResult:
    started = perf_counter()
    now = svc._now()
    result = CleanupResult(dry_run=dry_run)
    conn, layout = svc.connection, svc.layout
    client = conn.client
    token = new_id()
    held = await conn.run(lambda: client.set(layout.lock_key, token, nx=True, px=LOCK_MS), rerun_if_lost=True)
    if not held:
        result.skipped = True
        result.seconds = perf_counter() - started
        log.info("sessionstore cleanup skipped: another cleaner holds %s", layout.lock_key,
                 extra={"cleanup": result.as_dict()})
        return result
    try:
        await _round(svc, now, dry_run, progress, result, token)
    finally:
        await conn.run(lambda: svc.scripts["UNLOCK"](keys=[layout.lock_key], args=[token]), rerun_if_lost=True)
    result.seconds = perf_counter() - started
    log.info("sessionstore cleanup %s", result.log_line(), extra={"cleanup": result.as_dict()})
    return result


async def _round(svc: RedisSessionService, now: Any, dry_run: bool, progress: CleanupProgress | None,
                 result: CleanupResult, token: str) -> None:
    o = svc.options
    conn, layout = svc.connection, svc.layout
    users, apps = await _tags(svc)
    now_us = micros(now)
    horizon = micros(now - o.tombstone_retention)
    soft = "1" if o.soft_delete else "0"
    tpx = millis(o.tombstone_retention + NATIVE_GRACE)
    dry = "1" if dry_run else "0"
    extended = time.monotonic()

    async def keep_lock() -> None:
        nonlocal extended
        if time.monotonic() - extended > EXTEND_EVERY_S:
            await conn.run(lambda: svc.scripts["EXTEND_LOCK"](keys=[layout.lock_key], args=[token, LOCK_MS]),
                           rerun_if_lost=True)
            extended = time.monotonic()

    def report(step: str, n: int) -> None:
        if progress is not None and n:
            progress(step, n)

    for base in sorted(users):
        keys = [base + name for name in ("idx", "exp", "user", "utomb", "tombs", "n")]
        more = 1
        while more:
            args = [base, now_us, horizon, soft, tpx, o.cleanup_batch_size, dry]
            expired, removed, purged, more, tracks = await conn.run(
                lambda k=keys, a=args: svc.scripts["CLEAN_SESSIONS"](keys=k, args=a), rerun_if_lost=True
            )
            result.sessions_expired += expired
            result.events_removed += removed
            result.tombstones_purged += purged
            report("sessions expired", expired)
            report("events removed", removed)
            report("tombstones purged", purged)
            result.track_events_removed += tracks
            report("track events removed", tracks)
            await keep_lock()
    for kind, bases in (("app", apps), ("user", users)):
        for base in sorted(bases):
            names = ("state", "tomb", "n") if kind == "app" else ("user", "utomb", "n")
            args = [now_us, horizon, soft, tpx, dry]
            expired, purged = await conn.run(
                lambda b=base, n=names, a=args: svc.scripts["CLEAN_STATE"](keys=[b + x for x in n], args=a),
                rerun_if_lost=True,
            )
            if kind == "app":
                result.app_state_expired += expired
            else:
                result.user_state_expired += expired
            result.tombstones_purged += purged
            report(f"{kind} state expired", expired)
            report("tombstones purged", purged)
            await keep_lock()


async def _tags(svc: RedisSessionService) -> tuple[set[str], set[str]]:
    """The user and app bases that have keys under the prefix (SCAN, every primary of a cluster)."""
    layout = svc.layout
    users: set[str] = set()
    apps: set[str] = set()

    async def scan() -> None:
        users.clear()
        apps.clear()
        async for key in svc.connection.client.scan_iter(match=layout.scan_pattern, count=1000):
            base = layout.tag_of(key)
            if base is None:
                continue
            kind = base[len(layout.prefix) + 1 : len(layout.prefix) + 3]
            (users if kind == "u:" else apps if kind == "a:" else set()).add(base)

    await svc.connection.run(scan, rerun_if_lost=True)
    return users, apps
