"""Time each pipeline stage on generated data: ``python -m bench [--customers N --events M]``.

Stages run in-process in data-flow order (generate → ingest → identity → dbt build) on a fresh
CDP_HOME; prints a Markdown table row per stage with seconds, rows/s and peak RSS so far.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

from cdp.contracts import CONTRACTS
from cdp.generate import GenerateConfig, generate
from cdp.settings import load_settings
from cdp.transform import dbt_build
from cdp.warehouse import connect
from identity import resolve_identities
from ingestion import ingest_entity


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def _timed(name: str, rows: Callable[[object], int], work: Callable[[], object]) -> str:
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    count = rows(result)
    return (
        f"| {name} | {seconds:.1f} | {count:,} | {count / seconds:,.0f} | {_peak_rss_mb():,.0f} |"
    )


def main() -> None:
    """Run the stage benchmark and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--home", help="CDP_HOME to use (default: a new temporary folder)")
    args = parser.parse_args()

    home = Path(args.home or tempfile.mkdtemp(prefix="cdp-bench-"))
    settings = load_settings({"CDP_HOME": str(home)})
    settings.ensure_dirs()
    end = date(2026, 10, 31)
    config = GenerateConfig(
        landing_dir=settings.landing_dir,
        truth_dir=home / "truth",
        customers=args.customers,
        events=args.events,
        seed=42,
        end_date=end,
        days=90,
    )

    def ingest_all() -> int:
        return sum(r.rows_read for source in CONTRACTS for r in ingest_entity(settings, source))

    def identity() -> int:
        with connect(settings) as con:
            return resolve_identities(con, "bench").records

    as_of = datetime.combine(end + timedelta(days=1), datetime.min.time())
    print(f"MicroCDP stage benchmark: {args.customers:,} customers, {args.events:,} events")
    print("\n| stage | seconds | rows | rows/s | peak RSS MB |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(_timed("generate", lambda s: s["event_lines"], lambda: generate(config)))
    print(_timed("ingest (all sources)", lambda n: n, ingest_all))
    print(_timed("identity (rules + model, full run)", lambda n: n, identity))
    print(_timed("dbt build (models + tests)", lambda c: sum(c.values()),
                 lambda: dbt_build(settings, as_of)))  # fmt: skip
    size_mb = settings.warehouse_path.stat().st_size >> 20
    print(f"\nwarehouse: {settings.warehouse_path} ({size_mb} MB)")


if __name__ == "__main__":
    main()
