"""Freshness of minutes-fresh segments: from an event file landing to its membership row.

``python -m bench.segments_latency --events 10000000`` generates the sources (the generator's
full set, ``--events`` analytics events), loads them and resolves identity once (the base
warehouse, timed but not part of the latency), then ``--runs`` times:

1. writes a small JSONL file into ``landing/analytics/events/``: a burst of 4 product views by a
   new anonymous visitor (a ``rapid_browsers`` member at T), plus ``--noise`` other events;
2. runs the micro-batch (``run_microbatch``: ingest → identity → ``refresh: minutes`` segments);
3. stops the clock when the visitor's ``rapid_browsers`` row is in ``segments.membership``.

A last run goes through the Airflow DAG (``dag.test()`` of ``cdp_segments_microbatch``) to show
the task overhead. Scheduling delay (the DAG's 5-minute interval) is not included. Prints a
Markdown table with each step's seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench.ingest_events import _generate as generate_sources
from cdp.contracts import CONTRACTS
from cdp.segments.microbatch import EVENTS_SOURCE, run_microbatch
from cdp.settings import Settings, load_settings
from cdp.warehouse import connect

END = date(2026, 10, 31)  # the generator's last day in bench.ingest_events
SEGMENT = "rapid_browsers"


def _base_warehouse(settings: Settings, events: int) -> None:
    """Generate, ingest every source and resolve identity once (skipped if already built)."""
    from identity import resolve_identities
    from ingestion import ingest_entity

    marker = settings.home / ".base-built"
    if marker.exists():
        return
    if not (settings.landing_dir / EVENTS_SOURCE).is_dir():
        started = time.perf_counter()
        lines = generate_sources(settings.landing_dir, events, seed=1)
        print(f"generated {lines:,} event lines in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    rows = sum(r.rows_loaded for source in CONTRACTS for r in ingest_entity(settings, source))
    print(f"ingested {rows:,} rows (all sources) in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    with connect(settings) as con:
        result = resolve_identities(con, "bench-base")
    print(f"identity: {result.records:,} records in {time.perf_counter() - started:.0f} s")
    marker.touch()


def _land_file(settings: Settings, name: str, visitor: str, at: datetime, noise: int) -> None:
    """The burst of ``visitor`` 13..10 minutes before ``at`` plus ``noise`` random events."""
    rng = random.Random(name)
    events = [(visitor, "product_viewed", at - timedelta(minutes=m)) for m in (13, 12, 11, 10)]
    events += [
        (f"{name}-noise-{rng.randrange(noise // 5 + 1)}",
         rng.choice(("product_viewed", "product_added_to_cart", "order_completed")),
         at - timedelta(seconds=rng.randrange(3600)))
        for _ in range(noise)
    ]  # fmt: skip
    lines = [
        json.dumps({"messageId": f"{name}-{i}", "type": "track", "event": event,
                    "anonymousId": anonymous_id, "timestamp": ts.isoformat() + "Z",
                    "properties": {"product_id": "p1", "category": "electronics", "price": 99.0}})
        for i, (anonymous_id, event, ts) in enumerate(events)
    ]  # fmt: skip
    folder = settings.landing_dir / EVENTS_SOURCE
    tmp = folder / f".{name}.jsonl"
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.rename(folder / f"{name}.jsonl")  # lands atomically, like a well-behaved producer


def _is_member(settings: Settings, visitor: str) -> bool:
    with connect(settings, read_only=True) as con:
        row = con.execute(
            """
            select count(*) from segments.membership m
            join identity.clusters c
              on c.customer_id = m.customer_id and c.id_type = 'anonymous_id'
            where m.segment = ? and c.source_record_id = ?
            """,
            [SEGMENT, visitor],
        ).fetchone()
    return bool(row[0])


def _measure(
    settings: Settings, name: str, at: datetime, noise: int, run: Callable[[], dict[str, float]]
) -> str:
    visitor = f"{name}-visitor"
    landed = time.perf_counter()
    _land_file(settings, name, visitor, at, noise)
    steps = run()
    if not _is_member(settings, visitor):
        raise RuntimeError(f"{visitor} is not in {SEGMENT} after the micro-batch")
    latency = time.perf_counter() - landed
    detail = " | ".join(
        f"{steps[s]:.1f}" if s in steps else "–" for s in ("ingest", "identity", "segments")
    )
    return f"| {name} | {noise + 4:,} | {detail} | **{latency:.1f}** |"


def _airflow_run(dag: object, at: datetime) -> dict[str, float]:
    dag_run = dag.test(logical_date=at.replace(tzinfo=UTC))
    if str(dag_run.state) != "success":
        raise RuntimeError(f"micro-batch DAG run ended {dag_run.state}")
    return {}  # per-step seconds are in the task logs


def main() -> None:
    """Build the base warehouse once, then measure file-landed → membership-row latency."""
    parser = argparse.ArgumentParser(prog="python -m bench.segments_latency", description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--noise", type=int, default=1000, help="extra events per landed file")
    parser.add_argument("--home", help="CDP_HOME to use/reuse (default: a new temporary folder)")
    args = parser.parse_args()

    home = Path(args.home or tempfile.mkdtemp(prefix="cdp-bench-segments-"))
    settings = load_settings({"CDP_HOME": str(home), "CDP_QUARANTINE_MAX_SHARE": "0.05"})
    settings.ensure_dirs()
    _base_warehouse(settings, args.events)
    with connect(settings, read_only=True) as con:
        events = con.execute("select count(*) from raw.analytics_events").fetchone()[0]
    print(f"\nwarehouse {settings.warehouse_path}: {events:,} events")
    print("\n| run | events in file | ingest s | identity s | segments s | landed → member s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    start = datetime.combine(END + timedelta(days=1), datetime.min.time())
    for i in range(args.runs):
        at = start + timedelta(minutes=i)

        def direct(at: datetime = at) -> dict[str, float]:
            return run_microbatch(settings, f"bench-{at:%H%M}", at).seconds

        print(_measure(settings, f"direct-{i + 1}", at, args.noise, direct))

    from cdp import airflow_env
    from cdp.runner import load_dags

    airflow_env.configure(settings)
    airflow_env.migrate_metadata_db()
    dag = load_dags(settings)["cdp_segments_microbatch"]  # parsing is the scheduler's, not timed
    at = start + timedelta(minutes=args.runs)
    print(_measure(settings, "airflow-dag", at, args.noise, lambda: _airflow_run(dag, at)))


if __name__ == "__main__":
    main()
