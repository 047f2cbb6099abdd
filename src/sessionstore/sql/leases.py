"""Cluster-wide named locks on MariaDB Galera: a row with a lease.

On one MySQL/MariaDB server the cleanup and migration locks are ``GET_LOCK``.
On a Galera cluster that is not enough: ``GET_LOCK`` is local to the node
that took it, so two processes on two nodes would both "hold" it and clean
(or migrate) at once. There the lock is a row of ``sessionstore_leases``
(one per lock name) saying who holds it and until when:

- taking it is one transaction that inserts the row, or takes it over if the
  lease has run out; a transaction on another node doing the same at the same
  moment writes the same primary key, so Galera's certification lets exactly
  one of them commit and aborts the other (error 1213): the loser finds the
  lock taken. A row-level conflict is decided the same way on one server.
- the holder renews its lease while it works (the cleanup job renews every
  third of LEASE_S) and deletes the row when done; a holder that died stops
  renewing, so its lease runs out and the next cleaner takes over after at
  most LEASE_S.
- the holder is named by server and connection (``@@hostname:@@port#CONNECTION_ID()``),
  unique across the cluster, so a process only ever renews or releases its own lease.

The table is created on first use (``CREATE TABLE IF NOT EXISTS``, which
Galera replicates to every node in total order); it is not one of the
migrated tables and ``sessionstore db check`` ignores it. Times are the
database's UTC clock (each node's own: keep the nodes' clocks in sync, as
Galera already requires). This module is MySQL/MariaDB SQL only; the MySQL
dialect rules (sql/dialects.py) call it when the server reports
``wsrep_on``.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from .errors import driver_error

TABLE = "sessionstore_leases"
LEASE_S = 60.0
"""A lease's length; a holder that renews keeps it, one that died loses it after this long."""
MIGRATION_LEASE_S = 3600.0
"""A migration cannot renew while it runs DDL on its connection, so its lease is long (it is
released the moment the migration ends; only a migrator that died leaves it to run out)."""
POLL_S = 0.5
"""How often a waiting taker (the migration lock) tries again."""

_HOLDER = "CONCAT(@@hostname, ':', @@port, '#', CONNECTION_ID())"
_CREATE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (name VARCHAR(191) NOT NULL PRIMARY KEY, "
    "holder VARCHAR(191) NOT NULL, expires_at DATETIME(6) NOT NULL) ENGINE=InnoDB"
)
_EXISTS = f"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '{TABLE}'"
# One statement: insert the lease, or take it over when it has run out (or is ours already).
# MySQL applies the assignments left to right, so expires_at's test sees the new holder.
_TAKE = (
    f"INSERT INTO {TABLE} (name, holder, expires_at) "
    f"VALUES (:n, {_HOLDER}, UTC_TIMESTAMP(6) + INTERVAL :s SECOND) "
    "ON DUPLICATE KEY UPDATE "
    "holder = IF(expires_at < UTC_TIMESTAMP(6) OR holder = VALUES(holder), VALUES(holder), holder), "
    "expires_at = IF(holder = VALUES(holder), VALUES(expires_at), expires_at)"
)
_MINE = f"SELECT holder = {_HOLDER} FROM {TABLE} WHERE name = :n"
_RENEW = f"UPDATE {TABLE} SET expires_at = UTC_TIMESTAMP(6) + INTERVAL :s SECOND WHERE name = :n AND holder = {_HOLDER}"
_RELEASE = f"DELETE FROM {TABLE} WHERE name = :n AND holder = {_HOLDER}"


async def is_galera(conn: AsyncConnection) -> bool:
    """Is this server a node of a Galera cluster (wsrep on)? MySQL has no such variable: no."""
    row = (await conn.execute(text("SHOW VARIABLES LIKE 'wsrep_on'"))).first()
    await conn.commit()
    return row is not None and str(row[1]).upper() == "ON"


async def try_take(conn: AsyncConnection, name: str, lease_s: float = LEASE_S) -> bool:
    """Take the lease `name` for this connection if it is free (or expired); never waits.

    A certification conflict (or deadlock) at commit means another node took it
    in the same instant: not ours.
    """
    if not await conn.scalar(text(_EXISTS)):  # DDL is a cluster-wide pause on Galera: only when needed
        await conn.execute(text(_CREATE))
    await conn.commit()
    try:
        await conn.execute(text(_TAKE), {"n": name, "s": lease_s})
        mine = bool(await conn.scalar(text(_MINE), {"n": name}))
        await conn.commit()
    except Exception as exc:
        await conn.rollback()
        args = driver_error(exc).args
        if args and args[0] in (1213, 1205):
            return False
        raise
    return mine


async def take(conn: AsyncConnection, name: str, timeout_s: float, lease_s: float = MIGRATION_LEASE_S) -> None:
    """Wait up to timeout_s for the lease `name` (polling every POLL_S)."""
    deadline = time.monotonic() + timeout_s
    while not await try_take(conn, name, lease_s):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"could not take the lease {name!r} within {timeout_s}s")
        await asyncio.sleep(POLL_S)


async def renew(conn: AsyncConnection, name: str, lease_s: float = LEASE_S) -> bool:
    """Extend our lease; False if it is no longer ours (it ran out and another holder took it)."""
    done = (await conn.execute(text(_RENEW), {"n": name, "s": lease_s})).rowcount
    await conn.commit()
    return bool(done)


async def release(conn: AsyncConnection, name: str) -> None:
    """Give the lease up (a no-op if it is not ours)."""
    await conn.execute(text(_RELEASE), {"n": name})
    await conn.commit()
