"""Redis for tests: the shared server (per-run key prefix), and private servers the tests start themselves.

- The shared server: SESSIONSTORE_TEST_REDIS_URL, default redis://127.0.0.1:6379/0.
  Tests use a key prefix of their own (``ss_test_<hex>:``) and delete exactly
  those keys afterwards; nothing here ever flushes a database.
- ``PrivateRedis``: one redis-server on a free loopback port, in a temporary
  directory, with AOF (``appendfsync always``) so a killed server keeps every
  acknowledged write; the restart test kills and restarts it.
- ``PrivateCluster``: three ``--cluster-enabled yes`` servers joined with
  ``redis-cli --cluster create`` (three masters, no replicas), for the
  contract suite on a Redis Cluster.

A missing redis-server skips these tests, except under CI=true, where it fails.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from sessionstore.redaction import redact
from tests.private_servers import free_port, missing, run, until_ready

ENV_VAR = "SESSIONSTORE_TEST_REDIS_URL"
DEFAULT_URL = "redis://127.0.0.1:6379/0"


async def shared_url() -> str:
    """The shared server's URL, if it answers (skips, or under CI fails, otherwise)."""
    import redis.asyncio as aioredis

    url = os.environ.get(ENV_VAR) or DEFAULT_URL
    client = aioredis.Redis.from_url(url)
    try:
        await asyncio.wait_for(client.ping(), 5)
    except Exception as exc:  # noqa: BLE001 - refused, timed out: "not reachable"
        message = f"Redis not reachable; set {ENV_VAR}=redis://host:port/db to run (tried {redact(url)}: {exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    finally:
        await client.aclose()
    return url


def run_prefix() -> str:
    return f"ss_test_{secrets.token_hex(6)}:"


async def delete_prefix(client: Any, prefix: str) -> int:
    """Delete every key under `prefix` (one by one: on a cluster they live in many slots)."""
    escaped = "".join("\\" + ch if ch in "*?[]\\" else ch for ch in prefix)
    keys = [key async for key in client.scan_iter(match=escaped + "*", count=1000)]
    for key in keys:
        await client.delete(key)
    return len(keys)


def _redis_server() -> str:
    found = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
    if found is None or shutil.which("redis-cli") is None:
        missing("redis-server / redis-cli", "install Redis (apt-get install redis-server)")
    return str(found)


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too, and at most 55535 (Redis's limit)."""
    import random
    import socket

    for _ in range(200):
        port = random.randint(20000, 45000)
        try:
            for p in (port, port + 10000):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


class PrivateRedis:
    """One redis-server of the test's own, on a free port, with AOF on."""

    def __init__(self, root: Path, *, cluster: bool = False) -> None:
        self.binary = _redis_server()
        self.root = root
        self.port = cluster_port() if cluster else free_port()
        self.cluster = cluster
        self.proc: asyncio.subprocess.Process | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        argv = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no",
            "--logfile", str(self.root / "redis.log"),
        ]
        if self.cluster:
            argv += ["--cluster-enabled", "yes", "--cluster-config-file", str(self.root / "nodes.conf"),
                     "--cluster-node-timeout", "2000"]
        self.proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL,
                                                         stderr=asyncio.subprocess.DEVNULL)
        await until_ready(self.answers, f"redis-server on port {self.port}", self.proc)

    async def answers(self) -> bool:
        out = await run("redis-cli", "-p", str(self.port), "ping", check=False, timeout=5)
        return "PONG" in out

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no final save; only what AOF already holds survives."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
        self.proc = None

    async def destroy(self) -> None:
        await self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateCluster:
    """Three masters on loopback ports, joined into one Redis Cluster (all 16384 slots)."""

    def __init__(self, root: Path) -> None:
        self.nodes = [PrivateRedis(root / f"node{i}", cluster=True) for i in range(3)]

    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    async def start(self) -> None:
        await asyncio.gather(*(node.start() for node in self.nodes))
        await run("redis-cli", "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes),
                  "--cluster-replicas", "0", "--cluster-yes")
        for _ in range(200):
            info = await run("redis-cli", "-p", str(self.nodes[0].port), "cluster", "info")
            if "cluster_state:ok" in info:
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")

    async def destroy(self) -> None:
        await asyncio.gather(*(node.destroy() for node in self.nodes))


@asynccontextmanager
async def private_cluster() -> AsyncIterator[PrivateCluster]:
    with tempfile.TemporaryDirectory(prefix="sessionstore-cluster-") as tmp:
        cluster = PrivateCluster(Path(tmp))
        try:
            await cluster.start()
            yield cluster
        finally:
            await cluster.destroy()


async def redis_storage(svc: Any) -> dict[str, int]:
    """What a RedisSessionService physically stores, visible or not (test_ttl_cleanup's `storage`):
    session hashes, tombstones, events (live and tombstoned), state fields, state tombstones."""
    client, layout = svc.connection.client, svc.layout
    counts = dict.fromkeys(("sessions", "session_tombstones", "events", "state", "state_tombstones"), 0)
    async for key in client.scan_iter(match=layout.scan_pattern, count=1000):
        base = layout.tag_of(key)
        if base is None:
            continue
        kind = key[len(base):].split(":", 1)[0]
        if kind == "s":
            counts["sessions"] += 1
        elif kind == "ts":
            counts["session_tombstones"] += 1
        elif kind in ("ev", "tev"):
            counts["events"] += await client.zcard(key)
        elif kind in ("user", "state"):
            counts["state"] += await client.hlen(key)
        elif kind in ("utomb", "tomb"):
            counts["state_tombstones"] += await client.zcard(key)
    return counts
