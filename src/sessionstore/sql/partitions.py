"""Partitioned events on PostgreSQL: an install-time option, kept up by the cleanup job.

Why: at scale most of the cleanup's work is deleting the events of expired
sessions row by row. With the events table partitioned, whole partitions
holding only the events of sessions that are gone are dropped instead, which
costs the same for a thousand rows as for ten million and leaves no dead rows
for VACUUM.

The choice: **range partitions by session_pk** (``sessions_per_partition``
consecutive session pks each), not by time and not by hash:

- every unique index of events (``(session_pk, seq)``, ``(session_pk, event_id)``)
  contains session_pk, so they stay enforced across the whole table, as
  PostgreSQL requires of partitioned tables; a time key would have to join
  every unique index and would give up the one-event-per-id guarantee. The
  primary key becomes ``(pk, session_pk)``.
- session pks are handed out in creation order, so each partition is a slice of
  sessions created at about the same time, which tend to expire together;
  hash partitions would mix old and new sessions and could never be dropped.
- a read or append touches one partition (it always names its session_pk).

A ``DEFAULT`` partition catches events of sessions beyond the partitions made
so far, so an append never fails for want of a partition; those rows are
removed by the ordinary row deletes. The cleanup job, when it finds the table
partitioned, keeps AHEAD empty partitions ready beyond the newest session
("create ahead") and drops every partition whose sessions are all gone or
about to be purged in that round ("drop behind": deleted-marked sessions past
the tombstone retention, and with hard deletes also expired ones), under a
lock on those sessions' rows and on the partition, so no append can add to it
meanwhile. The events removed that way are counted in ``events_removed``.

Install: ``migrate(url, partition_events=100_000)`` (``sessionstore db upgrade
--partition-events 100000``) on a database whose events table is still empty;
an already-populated table is refused, since converting it means rewriting
every row (do that in a maintenance window with your own tools).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import ConfigurationError, SchemaError

log = logging.getLogger("sessionstore.cleanup")

AHEAD = 4
"""Empty partitions kept ready beyond the newest session."""
_BOUND = re.compile(r"FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)")


@dataclass(frozen=True)
class Partition:
    name: str
    low: int
    high: int


def _qualified(schema: str | None, name: str) -> str:
    return f'"{schema}"."{name}"' if schema else f'"{name}"'


async def install(
    conn: AsyncConnection, table_prefix: str, schema: str | None, sessions_per_partition: int, url_shown: str
) -> None:
    """Make `{prefix}events` partitioned by range of session_pk (it must be empty); a no-op if it is already."""
    if type(sessions_per_partition) is not int or sessions_per_partition < 1:
        raise ConfigurationError(f"partition_events must be an int >= 1 (sessions per partition), got {sessions_per_partition!r}")
    events = f"{table_prefix}events"
    table = _qualified(schema, events)
    if await partitions(conn, table_prefix, schema) is not None:
        return
    if await conn.scalar(text(f"SELECT EXISTS (SELECT 1 FROM {table})")):
        raise SchemaError(
            f"partition_events is an install-time option: {events} on {url_shown} already holds events. "
            "Partitioning it would rewrite every row; do that in a maintenance window, or install on an empty database."
        )
    oid = await conn.scalar(text("SELECT to_regclass(:t)::oid"), {"t": table})
    indexes = [
        row[0] for row in await conn.execute(
            text("SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = :oid AND NOT indisprimary"),
            {"oid": oid},
        )
    ]
    constraints = list(
        await conn.execute(
            text("SELECT conname, contype::text, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = :oid"),
            {"oid": oid},
        )
    )
    sequence = await conn.scalar(text("SELECT pg_get_serial_sequence(:t, 'pk')"), {"t": table})
    new = _qualified(schema, f"{events}__partitioned")
    if sequence:
        await conn.execute(text(f"ALTER SEQUENCE {sequence} OWNED BY NONE"))
    await conn.execute(text(f"CREATE TABLE {new} (LIKE {table} INCLUDING DEFAULTS) PARTITION BY RANGE (session_pk)"))
    await conn.execute(text(f"DROP TABLE {table}"))
    await conn.execute(text(f'ALTER TABLE {new} RENAME TO "{events}"'))
    if sequence:
        await conn.execute(text(f"ALTER SEQUENCE {sequence} OWNED BY {table}.pk"))
    for name, kind, definition in constraints:
        if kind == "p":
            definition = "PRIMARY KEY (pk, session_pk)"
        await conn.execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))
    for definition in indexes:
        await conn.execute(text(definition))
    await conn.execute(text(f'CREATE TABLE {_qualified(schema, f"{events}_default")} PARTITION OF {table} DEFAULT'))
    for n in range(AHEAD):
        await _create(conn, table_prefix, schema, n * sessions_per_partition, (n + 1) * sessions_per_partition)


async def partitions(conn: AsyncConnection, table_prefix: str, schema: str | None) -> list[Partition] | None:
    """The range partitions of events, lowest first; None if the table is not partitioned."""
    table = _qualified(schema, f"{table_prefix}events")
    kind = await conn.scalar(text("SELECT relkind::text FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table})
    if kind != "p":
        return None
    rows = await conn.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:t)"
        ),
        {"t": table},
    )
    found = []
    for name, bound in rows:
        match = _BOUND.search(bound or "")
        if match:
            found.append(Partition(name, int(match[1]), int(match[2])))
    return sorted(found, key=lambda p: p.low)


async def _create(conn: AsyncConnection, table_prefix: str, schema: str | None, low: int, high: int) -> None:
    name = _qualified(schema, f"{table_prefix}events_p{low}")
    parent = _qualified(schema, f"{table_prefix}events")
    await conn.execute(text(f"CREATE TABLE {name} PARTITION OF {parent} FOR VALUES FROM ({low}) TO ({high})"))


async def maintain(
    conn: AsyncConnection, tables: Any, schema: str | None, *, hard_delete: bool, now: datetime, horizon: datetime
) -> int | None:
    """Create partitions ahead and drop those whose sessions are all gone. Returns the events
    dropped with them, or None if events is not partitioned. Runs its own short transactions."""
    prefix = tables.prefix
    found = await partitions(conn, prefix, schema)
    await conn.commit()
    if found is None:
        return None
    sessions = _qualified(schema, tables.sessions.name)
    newest = int(await conn.scalar(text(f"SELECT COALESCE(MAX(pk), 0) FROM {sessions}")) or 0)
    await conn.commit()
    dropped = 0
    for part in found:
        if part.high > newest:
            continue  # may still receive sessions
        try:
            dropped_here = await _drop_if_gone(conn, part, sessions, schema, hard_delete, now, horizon)
        except Exception as exc:  # noqa: BLE001 - a deadlock or lock timeout: the next round tries again
            log.warning("sessionstore cleanup could not drop partition %s: %s", part.name, exc)
            continue
        if dropped_here is not None:
            dropped += dropped_here
            log.info("sessionstore cleanup dropped partition %s (%d events)", part.name, dropped_here)
    if found:
        size = found[-1].high - found[-1].low
        # Sessions whose events went to the default partition keep them there: a range
        # partition over them could not be made. New partitions start above them.
        default = _qualified(schema, f"{prefix}events_default")
        overflow = await conn.scalar(text(f"SELECT MAX(session_pk) FROM {default}"))
        await conn.commit()
        top = found[-1].high
        if overflow is not None and overflow >= top:
            top = (int(overflow) // size + 1) * size
        while top <= newest + AHEAD * size:
            try:
                async with conn.begin():
                    await _create(conn, prefix, schema, top, top + size)
            except Exception as exc:  # noqa: BLE001 - e.g. the default partition holds rows of that range
                log.warning("sessionstore cleanup could not create partition from %d: %s", top, exc)
                break
            top += size
    return dropped


async def _drop_if_gone(
    conn: AsyncConnection, part: Partition, sessions: str, schema: str | None, hard_delete: bool,
    now: datetime, horizon: datetime,
) -> int | None:
    """Drop one partition if none of its sessions is to stay; the events it held, or None."""
    doomed = "(deleted_at IS NOT NULL AND deleted_at <= :horizon)"
    if hard_delete:
        doomed = "(deleted_at IS NOT NULL OR expires_at <= :now)"
    params = {"low": part.low, "high": part.high, "now": now, "horizon": horizon}
    async with conn.begin():
        # Lock the partition's sessions first (the order appends take: session row, then events).
        await conn.execute(text(f"SELECT pk FROM {sessions} WHERE pk >= :low AND pk < :high FOR UPDATE"), params)
        staying = await conn.scalar(
            text(f"SELECT EXISTS (SELECT 1 FROM {sessions} WHERE pk >= :low AND pk < :high AND NOT {doomed})"), params
        )
        if staying:
            return None
        name = _qualified(schema, part.name)
        await conn.execute(text(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE"))
        count = int(await conn.scalar(text(f"SELECT COUNT(*) FROM {name}")) or 0)
        await conn.execute(text(f"DROP TABLE {name}"))
    return count


__all__ = ["AHEAD", "Partition", "install", "maintain", "partitions"]
