"""A private PostgreSQL primary with one streaming replica, for the read-replica tests and benchmark.

The primary is a PrivatePostgres (initdb in a temporary directory, its own
port, never the shared server) that also accepts replication connections;
the replica is made from it with ``pg_basebackup -R`` into another
directory and started on another port as a hot standby.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.private_servers import PrivatePostgres, free_port, run


async def primary_and_replica(root: Path) -> tuple[PrivatePostgres, PrivatePostgres]:
    """Start both under `root` (made reachable by the postgres user); the caller destroys them."""
    root.chmod(0o755)
    (root / "primary").mkdir()
    primary = await PrivatePostgres.create(root / "primary")
    hba = primary.data / "pg_hba.conf"
    hba.write_text("host replication postgres 127.0.0.1/32 trust\n" + hba.read_text())
    with open(primary.data / "postgresql.conf", "a") as conf:
        conf.write("wal_level = replica\nmax_wal_senders = 4\n")
    await primary.start()

    replica_root = root / "replica"
    replica_root.mkdir()
    replica = PrivatePostgres(primary.bindir, replica_root, free_port())
    try:
        await _start_replica(primary, replica, replica_root)
    except BaseException:
        await replica.destroy()
        await primary.destroy()
        raise
    return primary, replica


async def _start_replica(primary: PrivatePostgres, replica: PrivatePostgres, replica_root: Path) -> None:
    if replica._as_postgres:  # as root, PostgreSQL's commands run as the postgres user
        shutil.chown(replica_root, user="postgres")
    await run(
        *replica._as_postgres, str(primary.bindir / "pg_basebackup"), "-h", "127.0.0.1",
        "-p", str(primary.port), "-U", "postgres", "-D", str(replica.data), "-R", "-X", "stream", "--no-sync",
    )
    with open(replica.data / "postgresql.conf", "a") as conf:
        conf.write(f"\nport = {replica.port}\nunix_socket_directories = '{replica_root}'\nhot_standby = on\n")
    await replica.start()


__all__ = ["primary_and_replica"]
