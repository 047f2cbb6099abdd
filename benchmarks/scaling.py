"""Issue 16's scaling figures: Galera through 1 vs 3 nodes, retries under contention, replica reads.

``python -m benchmarks.scaling [--quick] [--only galera,replica]``

Starts its own servers on loopback, as the tests do (tests/galera.py,
tests/pg_replica.py): a 3-node MariaDB Galera cluster, and a PostgreSQL
primary with one streaming replica. Every node and server runs on this one
machine, sharing its cores, so these figures show how the pieces behave and
what they cost, not what separate machines would gain: on one box three
Galera nodes cannot write faster than one, and a replica cannot add read
capacity, since every server competes for the same CPUs.

Figures:

- ``galera``: appends/s with 12 writers, each on its own session, all
  through node 1 vs 4 through each node (no two writers on one session);
  then the contended case, 3 writers per session (one per node, or all three
  on node 1), with the retries per append the retry loop made (RETRIES).
- ``replica``: get_session (20 newest events) per second with 16 readers
  through a service reading from the primary vs one with ``read_url`` (the
  share of reads the replica served is reported too).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
from pathlib import Path
from time import perf_counter

from sqlalchemy import text

import sessionstore as ss
from sessionstore.retry import RETRIES
from sessionstore.sql.engine import make_engine
from sessionstore.sql.migrate import migrate
from sessionstore.sql.service import SQLSessionService

APP = "bench-scaling"


async def _appends(urls: list[str], writers_per_url: int, sessions: list[str], per_writer: int) -> tuple[float, float]:
    """Writers spread over `urls` append to `sessions` (writer i to session i % len); (appends/s, retries/append)."""
    services = [ss.open_service(url, cleanup_interval=None, pool_size=writers_per_url + 2) for url in urls]
    try:
        for svc in services:
            await svc.start()
        for sid in sessions:
            await services[0].create_session(ss.Key(APP, "u", sid))
        await asyncio.sleep(0.5)  # let the other nodes apply the creations

        async def writer(svc: ss.SessionService, sid: str) -> None:
            session = None
            while session is None:  # until this node has applied the creation
                session = await svc.get_session(ss.Key(APP, "u", sid), event_num=0)
                await asyncio.sleep(0.01)
            for i in range(per_writer):
                await svc.append_event(session, ss.Event(author="a", content=i, state_delta={f"k{i % 8}": i}))

        jobs = []
        n = 0
        for svc in services:
            for _ in range(writers_per_url):
                jobs.append(writer(svc, sessions[n % len(sessions)]))
                n += 1
        before = RETRIES.snapshot()["retried"]
        started = perf_counter()
        await asyncio.gather(*jobs)
        elapsed = perf_counter() - started
        total = len(jobs) * per_writer
        return total / elapsed, (RETRIES.snapshot()["retried"] - before) / total
    finally:
        for svc in services:
            await svc.close()


async def _fresh_database(admin_url: str, name: str, node_urls: list[str]) -> list[str]:
    engine = make_engine(admin_url)
    async with engine.connect() as conn:
        await conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        await conn.execute(text(f"CREATE DATABASE {name}"))
    await engine.dispose()
    await asyncio.sleep(0.5)
    urls = [url.rsplit("/", 1)[0] + f"/{name}" for url in node_urls]
    await migrate(urls[0])
    await asyncio.sleep(0.5)
    return urls


async def bench_galera(quick: bool) -> dict[str, float]:
    from tests.galera import GaleraCluster

    per_writer = 20 if quick else 60
    root = Path(tempfile.mkdtemp(prefix="ssbench-galera-"))
    cluster = await GaleraCluster.create(root)
    figures: dict[str, float] = {}
    try:
        await cluster.start()
        nodes = [node.url() for node in cluster.nodes]
        own = [f"own{i}" for i in range(12)]
        for label, urls, per_url in (("1node", nodes[:1], 12), ("3nodes", nodes, 4)):
            db = await _fresh_database(nodes[0], f"bench_{label}", nodes)
            rate, retries = await _appends(db if len(urls) > 1 else db[:1], per_url, own, per_writer)
            figures[f"appends_s_{label}"] = rate
            figures[f"retries_per_append_{label}"] = retries
        shared = [f"hot{i}" for i in range(3)]
        for label, urls, per_url in (("contended_1node", nodes[:1], 9), ("contended_3nodes", nodes, 3)):
            db = await _fresh_database(nodes[0], f"bench_{label}", nodes)
            rate, retries = await _appends(db if len(urls) > 1 else db[:1], per_url, shared, per_writer // 2)
            figures[f"appends_s_{label}"] = rate
            figures[f"retries_per_append_{label}"] = retries
    finally:
        await cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)
    return figures


async def _reads(svc: ss.SessionService, sessions: list[str], readers: int, seconds: float) -> float:
    done = 0
    deadline = perf_counter() + seconds

    async def reader(n: int) -> None:
        nonlocal done
        i = n
        while perf_counter() < deadline:
            got = await svc.get_session(ss.Key(APP, "u", sessions[i % len(sessions)]), event_num=20)
            assert got is not None and len(got.events) == 20
            done += 1
            i += readers

    started = perf_counter()
    await asyncio.gather(*(reader(n) for n in range(readers)))
    return done / (perf_counter() - started)


async def bench_replica(quick: bool) -> dict[str, float]:
    from tests.pg_replica import primary_and_replica

    seconds = 3.0 if quick else 10.0
    root = Path(tempfile.mkdtemp(prefix="ssbench-pgrep-"))
    primary, replica = await primary_and_replica(root)
    figures: dict[str, float] = {}
    try:
        await migrate(primary.url())
        sessions = [f"s{i}" for i in range(50)]
        async with ss.open_service(primary.url(), cleanup_interval=None) as writer:
            for sid in sessions:
                s = await writer.create_session(ss.Key(APP, "u", sid))
                for i in range(20):
                    await writer.append_event(s, ss.Event(author="a", content={"i": i, "text": "x" * 200}))
        await asyncio.sleep(1.0)
        readers = 16
        async with ss.open_service(primary.url(), cleanup_interval=None, pool_size=readers) as svc:
            await _reads(svc, sessions, readers, 1.0)  # warm-up
            figures["reads_s_primary"] = await _reads(svc, sessions, readers, seconds)
        async with ss.open_service(
            primary.url(), cleanup_interval=None, pool_size=readers, read_url=replica.url()
        ) as svc:
            assert isinstance(svc, SQLSessionService) and svc.router is not None
            await _reads(svc, sessions, readers, 1.0)
            before_replica, before_primary = svc.router.replicas[0].reads, svc.router.primary_reads
            figures["reads_s_replica"] = await _reads(svc, sessions, readers, seconds)
            served = svc.router.replicas[0].reads - before_replica
            figures["replica_share"] = served / max(1, served + svc.router.primary_reads - before_primary)
    finally:
        await replica.destroy()
        await primary.destroy()
        shutil.rmtree(root, ignore_errors=True)
    return figures


async def main(args: argparse.Namespace) -> None:
    kinds = {"galera": bench_galera, "replica": bench_replica}
    for kind in [k.strip() for k in args.only.split(",") if k.strip()]:
        figures = await kinds[kind](args.quick)
        print(f"{kind:<8} " + " ".join(f"{k}={v:.3f}" for k, v in figures.items()), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="galera,replica")
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args()))
