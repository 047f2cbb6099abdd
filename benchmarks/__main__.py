"""Run the benchmarks: `python -m benchmarks [--db sqlite,postgresql,mysql] [--quick] [--only append,get,cleanup]`.

Each figure is measured in this one run on this machine; compare the ratios,
not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from .appends import bench_append, bench_get
from .common import DATABASES

TARGETS = {"append": ("ratio", ">=", 0.6), "get": ("ratio", "<=", 1.3), "cleanup": ("p99_ratio", "<=", 3.0)}


def _verdict(kind: str, figures: dict[str, float]) -> str:
    field, op, target = TARGETS[kind]
    value = figures[field]
    ok = value >= target if op == ">=" else value <= target
    return f"{field}={value:.2f} (target {op} {target}) {'OK' if ok else 'MISSED'}"


async def main(args: argparse.Namespace) -> None:
    results: dict[str, dict[str, dict[str, float]]] = {}
    for db in args.db.split(","):
        results[db] = {}
        if "append" in args.only:
            results[db]["append"] = await bench_append(db, 400 if args.quick else 2000)
        if "get" in args.only:
            results[db]["get"] = await bench_get(db, 50 if args.quick else 300)
        if "cleanup" in args.only:
            from .cleanup import bench_cleanup

            results[db]["cleanup"] = await bench_cleanup(db, 20_000 if args.quick else 200_000)
        for kind, figures in results[db].items():
            shown = " ".join(f"{k}={v:.2f}" for k, v in figures.items())
            print(f"{db:<10} {kind:<8} {shown}\n{'':<19} {_verdict(kind, figures)}", flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=",".join(DATABASES))
    parser.add_argument("--only", default="append,get,cleanup")
    parser.add_argument("--quick", action="store_true", help="smaller workloads (for a smoke run)")
    parser.add_argument("--json", help="also write the figures to this file")
    asyncio.run(main(parser.parse_args()))
