"""A private 3-node MariaDB Galera cluster on loopback, for the multi-master tests.

Node 1 bootstraps the cluster (``--wsrep-new-cluster``); nodes 2 and 3 join
it and receive its state by rsync SST. Every node has its own data directory
under one temporary directory and its own ports (client, group communication,
IST, SST), all on 127.0.0.1, so nothing touches the shared server on 3306.
Starting takes 10-30 s on this machine, which is why the tests share one
cluster per run (a session-scoped fixture in tests/test_galera.py).

Needs Debian's ``galera-4`` (the wsrep provider library) and ``rsync`` next to
the installed MariaDB server; without them the tests skip with a message
(under CI=true, where ``.ci/run`` installs them, they fail instead).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
from pathlib import Path

from tests.private_servers import PrivateMariaDB, free_port, missing, run, until_ready

PROVIDERS = ("/usr/lib/galera/libgalera_smm.so", "/usr/lib/galera-4/libgalera_smm.so", "/usr/lib64/galera-4/libgalera_smm.so")


def galera_provider() -> str:
    """The wsrep provider library (skips, or fails under CI, when it is not installed)."""
    explicit = os.environ.get("SESSIONSTORE_TEST_GALERA_PROVIDER")
    for path in ([explicit] if explicit else []) + list(PROVIDERS):
        if os.path.exists(path):
            return path
    missing(
        "the Galera wsrep provider (libgalera_smm.so)",
        "apt-get install galera-4 rsync (or set SESSIONSTORE_TEST_GALERA_PROVIDER)",
    )
    raise AssertionError("unreachable")


class GaleraNode(PrivateMariaDB):
    """One node: a PrivateMariaDB started with wsrep on."""

    def __init__(self, server: str, install: str, root: Path, port: int) -> None:
        super().__init__(server, install, root, port)
        self.gcomm_port = free_port()
        self.ist_port = free_port()
        self.sst_port = free_port()
        self.provider = ""
        self.cluster_address = ""
        self.run_as = "mysql"

    def wsrep_args(self, bootstrap: bool) -> list[str]:
        opts = (
            f"gmcast.listen_addr=tcp://127.0.0.1:{self.gcomm_port};ist.recv_addr=127.0.0.1:{self.ist_port};"
            "gcache.size=64M;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT6S;evs.install_timeout=PT6S"
        )
        args = [
            "--wsrep-on=ON", f"--wsrep-provider={self.provider}", "--wsrep-cluster-name=sessionstore-test",
            f"--wsrep-cluster-address={self.cluster_address}", f"--wsrep-node-address=127.0.0.1:{self.gcomm_port}",
            f"--wsrep-provider-options={opts}", "--wsrep-sst-method=rsync",
            f"--wsrep-sst-receive-address=127.0.0.1:{self.sst_port}",
            "--binlog-format=ROW", "--innodb-autoinc-lock-mode=2", "--default-storage-engine=InnoDB",
        ]
        return args + (["--wsrep-new-cluster"] if bootstrap else [])

    async def start_node(self, bootstrap: bool) -> float:
        argv = [
            self.server, "--no-defaults", f"--datadir={self.data}", f"--socket={self.root / 'mysqld.sock'}",
            f"--port={self.port}", "--bind-address=127.0.0.1", f"--pid-file={self.root / 'mysqld.pid'}",
            f"--log-error={self.root / 'server.log'}", "--skip-name-resolve",
            "--innodb-buffer-pool-size=32M", "--innodb-flush-log-at-trx-commit=1", "--max-connections=200",
            *self.wsrep_args(bootstrap),
        ]
        if os.geteuid() == 0:
            # Not as root: the rsync daemon of the state transfer, started by a root server,
            # would switch to "nobody" and could not write the joiner's data directory.
            argv.append(f"--user={self.run_as}")
        log = open(self.root / "stdout.log", "ab")
        self.proc = await asyncio.create_subprocess_exec(*argv, stdout=log, stderr=log)
        log.close()
        return await until_ready(self.synced, f"Galera node on port {self.port}", self.proc)

    async def synced(self) -> bool:
        """Does it accept logins and report itself Synced with the cluster?"""
        import aiomysql

        try:
            conn = await aiomysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=2)
        except Exception:  # noqa: BLE001 - not up yet (or still receiving its SST)
            return False
        try:
            async with conn.cursor() as cur:
                await cur.execute("SHOW STATUS LIKE 'wsrep_local_state_comment'")
                row = await cur.fetchone()
            return row is not None and row[1] == "Synced"
        except Exception:  # noqa: BLE001 - the node refuses queries until it has joined
            return False
        finally:
            conn.close()

    def url(self, user: str = "root", password: str | None = None, database: str = "mysql") -> str:
        return super().url(user, password, database)


class GaleraCluster:
    """Three GaleraNodes forming one cluster."""

    def __init__(self, nodes: list[GaleraNode], root: Path) -> None:
        self.nodes = nodes
        self.root = root

    @classmethod
    async def create(cls, root: Path, size: int = 3) -> GaleraCluster:
        provider = galera_provider()
        if shutil.which("rsync") is None:
            missing("rsync (Galera's state transfer)", "apt-get install rsync")
        nodes: list[GaleraNode] = []
        for i in range(size):
            base = await PrivateMariaDB.create(root / f"node{i + 1}")
            node = GaleraNode(base.server, base.install, base.root, base.port)
            node.provider = provider
            nodes.append(node)
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("mysql")
            except KeyError:
                missing(
                    "a mysql user",
                    "Galera's rsync state transfer cannot run as root; create it (apt-get install mariadb-server does)",
                )
            for path in [root, *root.rglob("*")]:
                shutil.chown(path, user="mysql", group="mysql")
        address = "gcomm://" + ",".join(f"127.0.0.1:{n.gcomm_port}" for n in nodes)
        for node in nodes:
            node.cluster_address = address
        return cls(nodes, root)

    async def start(self) -> None:
        await self.nodes[0].start_node(bootstrap=True)
        for node in self.nodes[1:]:  # one SST at a time: the donor serves one joiner
            await node.start_node(bootstrap=False)

    async def cluster_size(self, node: GaleraNode) -> int:
        out = await run(
            "mariadb", "--no-defaults", "-h", "127.0.0.1", "-P", str(node.port), "-u", "root", "-N", "-e",
            "SHOW STATUS LIKE 'wsrep_cluster_size'", check=False,
        )
        parts = out.split()
        return int(parts[-1]) if parts and parts[-1].isdigit() else 0

    async def kill(self, node: GaleraNode) -> None:
        await node.stop(signal.SIGKILL)

    async def destroy(self) -> None:
        for node in reversed(self.nodes):
            try:
                await node.stop(signal.SIGKILL)
            except Exception:  # noqa: BLE001 - tear down the rest anyway
                pass
        shutil.rmtree(self.root, ignore_errors=True)


__all__ = ["GaleraCluster", "GaleraNode", "galera_provider"]
