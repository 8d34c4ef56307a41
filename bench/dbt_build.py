"""dbt speed against its ceiling, on a warehouse prepared by ``python -m bench --home DIR``.

``python -m bench.dbt_build --home DIR [--increment N]`` times, in this process:

- dbt, full:        ``dbt run --full-refresh`` (every model, fct_events rebuilt from scratch)
- ceiling, full:    the same compiled SQL of every model, in dbt's execution order, run directly
                    in DuckDB as ``create or replace table|view ... as <compiled SQL>``
- dbt, incremental: ``dbt run`` after N new events landed in ``raw.analytics_events`` (copies of
                    existing events with new message ids, so they hit the same customers)
- dbt tests:        ``dbt test`` (data + unit tests) on the result
- mart gate and publish: the Great Expectations mart gate and the snapshot publish

and prints a Markdown table. The warehouse is modified (new events are appended).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import duckdb

from cdp.settings import Settings, load_settings
from cdp.transform import dbt_args

AS_OF = datetime(2026, 11, 1)


def _dbt(settings: Settings, command: str, *extra: str) -> int:
    """Run one dbt command in-process; returns how many nodes ran; raises on failure."""
    from dbt.adapters.duckdb import DuckDBConnectionManager
    from dbt.cli.main import dbtRunner

    os.environ["CDP_WAREHOUSE"] = str(settings.warehouse_path)  # read by profiles.yml
    try:
        result = dbtRunner().invoke([*dbt_args(settings, command, AS_OF), *extra])
    finally:
        DuckDBConnectionManager.close_all_connections()
    if not result.success:
        raise RuntimeError(f"dbt {command} failed: {result.exception}")
    return len(result.result)


def _ceiling(settings: Settings) -> int:
    """Run the compiled SQL of the last dbt run's models directly in DuckDB, in the same order."""
    target = settings.dbt_target_dir
    manifest = json.loads((target / "manifest.json").read_text())["nodes"]
    order = json.loads((target / "run_results.json").read_text())["results"]
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        for result in order:
            node = manifest[result["unique_id"]]
            kind = "view" if node["config"]["materialized"] == "view" else "table"
            relation = f'"{node["schema"]}"."{node["alias"]}"'
            con.execute(f"create or replace {kind} {relation} as {node['compiled_code']}")
    finally:
        con.close()
    return len(order)


def _land_new_events(settings: Settings, count: int) -> int:
    """Append ``count`` new events (copies with new ids, one hour later, loaded now)."""
    suffix = f"-bench-{time.time_ns()}"
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        con.execute(
            f"""
            insert into raw.analytics_events
            select * replace (
                message_id || '{suffix}' as message_id,
                "timestamp" + interval 1 hour as "timestamp",
                'bench-increment' as _batch_id,
                now()::timestamp as _loaded_at
            )
            from raw.analytics_events
            where "timestamp" < timestamp '{AS_OF - timedelta(hours=1)}'
            using sample {count} rows
            """
        )
    finally:
        con.close()
    return count


def _row(name: str, work: Callable[[], object]) -> str:
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return f"| {name} | {seconds:.1f} | {result} | {rss:,.0f} |"


def main() -> None:
    """Run the dbt benchmark and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.dbt_build", description=__doc__)
    parser.add_argument("--home", required=True, help="CDP_HOME prepared by `python -m bench`")
    parser.add_argument("--increment", type=int, default=100_000, help="new events")
    args = parser.parse_args()
    settings = load_settings({"CDP_HOME": args.home})
    if not settings.warehouse_path.exists():
        parser.error(f"no warehouse at {settings.warehouse_path}; run `python -m bench` first")
    from cdp.publish import publish_snapshot
    from cdp.quality.gate import run_mart_gate

    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    [(customers, events)] = con.execute(
        "select (select count(*) from identity.clusters),"
        " (select count(*) from raw.analytics_events)"
    ).fetchall()
    con.close()
    print(f"dbt benchmark: {events:,} raw events, {customers:,} identities, as of {AS_OF}")
    print("\n| step | seconds | nodes / rows | peak RSS MB |")
    print("| --- | ---: | ---: | ---: |")
    print(
        _row("dbt run --full-refresh (all models)", lambda: _dbt(settings, "run", "--full-refresh"))
    )
    print(_row("ceiling: same compiled SQL directly in DuckDB", lambda: _ceiling(settings)))
    print(
        _row(
            f"land {args.increment:,} new events (SQL insert)",
            lambda: _land_new_events(settings, args.increment),
        )
    )
    print(
        _row("dbt run (incremental fct_events, other marts rebuilt)", lambda: _dbt(settings, "run"))
    )
    print(_row("dbt test (data + unit tests)", lambda: _dbt(settings, "test")))
    print(
        _row(
            "mart quality gate (GX)",
            lambda: run_mart_gate(settings, "bench", AS_OF)["expectations"],
        )
    )
    print(
        _row(
            "publish snapshot",
            lambda: sum(publish_snapshot(settings, "bench", AS_OF).row_counts.values()),
        )
    )


if __name__ == "__main__":
    main()
