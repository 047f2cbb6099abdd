"""Run the benchmarks: `python -m benchmarks [--db sqlite,postgresql,mysql] [--quick] [--only append,get,...]`.

Each figure is measured in this one run on this machine; compare the ratios,
not the absolute numbers.

Kinds: issue 3's ``append`` and ``get``, issue 5's ``cleanup``, and issue
10's ``get20``, ``full``, ``list``, ``append_delta`` and ``concurrent``, issue 11's
``write_behind`` and ``tracing``, issue 13's ``adk`` and ``agents`` (the adapters vs the
frameworks' own SQL storage), issue 15's ``redis`` (the Redis backend vs a raw redis-py
pipeline and vs the --db backend) — docs/benchmarks.md says what each measures and against what.
Issue 16's scaling figures, which start servers of their own: ``python -m benchmarks.scaling``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from .common import DATABASES

ByDatabase = dict[str, float]
TARGETS: dict[str, list[tuple[str, str, float | ByDatabase]]] = {
    "append": [("ratio", ">=", 0.6)],
    "get": [("ratio", "<=", 1.3)],
    "get20": [("ratio", "<=", 1.5), ("sdk_ratio", "<", 1.0)],
    "full": [("ratio", "<=", 1.5)],
    "list": [("p50_10k_ms", "<=", {"sqlite": 1.5, "postgresql": 1.5, "mysql": 2.5}), ("flat_ratio", "<=", 1.2)],
    "append_delta": [("ratio", ">=", {"sqlite": 0.8, "postgresql": 0.8, "mysql": 0.7})],
    "concurrent": [("ratio", ">=", 0.7)],
    "cleanup": [("p99_ratio", "<=", 3.0)],
    # the durable rate: the servers store sessions in parallel, so write-behind adds throughput; SQLite
    # writes one transaction at a time, so there it hides latency only and its queue may cost up to 15 %
    "write_behind": [("latency_ratio", ">=", 5.0), ("rate_ratio", ">=", {"sqlite": 0.85, "postgresql": 1.0, "mysql": 1.0})],
    # the SDK recording every span, and sessionstore's own wrapper alone (no-op providers); the
    # figure sdk_floor_pct says what the SDK alone costs the same call (benchmarks/tracing.py)
    "tracing": [("overhead_pct", "<=", 5.0), ("noop_overhead_pct", "<=", 5.0)],
    # issue 13: through each adapter vs the framework's own SQL storage (no slower than it)
    "adk": [("ratio", ">=", 1.0), ("read_ratio", "<=", 1.0)],
    "agents": [("ratio", ">=", 1.0), ("read_ratio", "<=", 1.0)],
    "redis": [("append_ratio", ">=", 0.7), ("get20_ratio", ">=", 0.7)],
}
"""Per kind: (figure, comparison, target), the target either one number or one per database."""

KINDS = tuple(TARGETS)
"""Every kind, in the order a run measures them."""


def _verdict(db: str, kind: str, figures: dict[str, float]) -> str:
    verdicts = []
    for field, op, target in TARGETS[kind]:
        bound = target[db] if isinstance(target, dict) else target
        value = figures[field]
        ok = {">=": value >= bound, "<=": value <= bound, "<": value < bound}[op]
        verdicts.append(f"{field}={value:.2f} (target {op} {bound}) {'OK' if ok else 'MISSED'}")
    return "; ".join(verdicts)


def _workloads(quick: bool) -> dict[str, Callable[[str], Awaitable[dict[str, float]]]]:
    from .appends import bench_append, bench_get
    from .concurrent import bench_concurrent
    from .delta_appends import bench_append_delta
    from .listing import bench_list
    from .reads import bench_full, bench_get20
    from .redis_compare import bench_redis
    from .tracing import bench_tracing
    from .write_behind import bench_write_behind

    def q(small: int, full: int) -> int:
        return small if quick else full

    async def cleanup(db: str) -> dict[str, float]:
        from .cleanup import bench_cleanup

        return await bench_cleanup(db, q(20_000, 200_000))

    return {
        "append": lambda db: bench_append(db, q(400, 2000)),
        "get": lambda db: bench_get(db, q(50, 300)),
        "get20": lambda db: bench_get20(db, q(50, 300)),
        "full": lambda db: bench_full(db, q(20, 150)),
        "list": lambda db: bench_list(db, q(50, 300)),
        "append_delta": lambda db: bench_append_delta(db, q(400, 2000)),
        "concurrent": lambda db: bench_concurrent(db, q(4, 32), rounds=q(4, 8)),
        "cleanup": cleanup,
        "write_behind": lambda db: bench_write_behind(db, q(400, 4000)),
        "tracing": lambda db: bench_tracing(db, q(100, 3000)),
        "adk": lambda db: _adapters().bench_adk(db, q(100, 600), q(50, 300)),
        "agents": lambda db: _adapters().bench_agents(db, q(100, 600), q(50, 300)),
        "redis": lambda db: bench_redis(db, q(400, 2000)),
    }


def _adapters() -> Any:
    from . import adapters  # needs the adk and openai-agents extras (make bench installs them)

    return adapters


async def main(args: argparse.Namespace) -> None:
    only = [kind.strip() for kind in args.only.split(",") if kind.strip()]
    unknown = sorted(set(only) - set(KINDS))
    if unknown:
        raise SystemExit(f"unknown benchmark kind(s): {', '.join(unknown)} (known: {', '.join(KINDS)})")
    workloads = _workloads(args.quick)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for db in args.db.split(","):
        results[db] = {}
        for kind in KINDS:
            if kind not in only:
                continue
            figures = results[db][kind] = await workloads[kind](db)
            shown = " ".join(f"{k}={v:.2f}" for k, v in figures.items())
            print(f"{db:<10} {kind:<12} {shown}\n{'':<23} {_verdict(db, kind, figures)}", flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=",".join(DATABASES))
    parser.add_argument("--only", default=",".join(KINDS), help=f"comma-separated kinds: {', '.join(KINDS)}")
    parser.add_argument("--quick", action="store_true", help="smaller workloads (for a smoke run)")
    parser.add_argument("--json", help="also write the figures to this file")
    asyncio.run(main(parser.parse_args()))
