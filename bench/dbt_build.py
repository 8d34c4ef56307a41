"""dbt speed against its ceiling, on a warehouse prepared by ``python -m bench --home DIR``
(optionally multiplied by ``python -m bench.scale_up``).

``python -m bench.dbt_build --home DIR [--increment N] [--relink N] [--memory-limit 8GB]
[--verify] [--dbt-only]`` times, in this process:

- dbt, full:        ``dbt run --full-refresh`` (every model, fct_events rebuilt from scratch)
- ceiling, full:    the same compiled SQL of every model, in dbt's execution order, run directly
                    in DuckDB as ``create or replace table|view ... as <compiled SQL>``
- new data:         N new events land in ``raw.analytics_events`` (copies of existing events with
                    new message ids, so they hit the same customers), and identity re-links
                    ``--relink`` anonymous ids that have events to another customer (a merge:
                    their ``identity.clusters`` rows are re-written with a new ``resolved_at``)
- raw gate:         the Great Expectations raw gate on what was loaded since it last passed
- dbt, incremental: ``dbt run`` (incremental fct_events and whatever else changed)
- verify:           (``--verify``) a second ``dbt run --full-refresh``; every mart must equal
                    what the incremental run left
- dbt tests, mart gate and publish (skipped with ``--dbt-only``)

and prints a Markdown table, plus the slowest models of each dbt run. Both dbt and the ceiling
run with DuckDB's ``memory_limit`` set to ``--memory-limit``. The warehouse is modified (new
events are appended, ids re-linked).
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
        failed = [
            f"{r.node.name}: {r.message}"
            for r in getattr(result.result, "results", [])
            if str(r.status) in ("error", "fail")
        ]
        raise RuntimeError(f"dbt {command} failed: {result.exception or '; '.join(failed)}")
    return len(result.result)


def _slowest_models(settings: Settings, top: int = 5) -> str:
    """The last dbt run's slowest models as ``name s, …``."""
    results = json.loads((settings.dbt_target_dir / "run_results.json").read_text())["results"]
    timed = sorted(results, key=lambda r: -r["execution_time"])[:top]
    return ", ".join(f"{r['unique_id'].split('.')[-1]} {r['execution_time']:.1f} s" for r in timed)


def _ceiling(settings: Settings, memory_limit: str) -> int:
    """Run the compiled SQL of the last dbt run's models directly in DuckDB, in the same order."""
    target = settings.dbt_target_dir
    manifest = json.loads((target / "manifest.json").read_text())["nodes"]
    order = json.loads((target / "run_results.json").read_text())["results"]
    con = duckdb.connect(str(settings.warehouse_path), config={"memory_limit": memory_limit})
    try:
        for result in order:
            node = manifest[result["unique_id"]]
            kind = "view" if node["config"]["materialized"] == "view" else "table"
            relation = f'"{node["schema"]}"."{node["alias"]}"'
            con.execute(f"create or replace {kind} {relation} as {node['compiled_code']}")
    finally:
        con.close()
    return len(order)


def _pass_raw_gate_so_far(settings: Settings) -> None:
    """Mark every raw row loaded so far as checked, as a passed raw gate of the last build did."""
    from cdp.quality.store import advance_watermarks

    con = duckdb.connect(str(settings.warehouse_path))
    try:
        tables = [
            f"raw.{name}"
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = 'raw'"
            ).fetchall()
        ]
        high_water = {
            table: until
            for table in tables
            if (until := con.execute(f"select max(_loaded_at) from {table}").fetchone()[0])
        }
        advance_watermarks(con, high_water, "bench-previous-build")
    finally:
        con.close()


def _relink_anonymous_ids(settings: Settings, count: int) -> int:
    """Merge ``count`` anonymous ids that have events into another customer (an identity run)."""
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        con.execute(
            f"""
            create or replace temp table relinked as
            with eligible as (
                select source_record_id, customer_id
                from identity.clusters
                where id_type = 'anonymous_id'
                    and source_record_id in (select anonymous_id from raw.analytics_events)
            ),
            sampled as (
                select * from eligible using sample {count + 1} rows
            ),
            picked as (
                select *, lead(customer_id) over (order by source_record_id) as new_customer_id
                from sampled
            )
            select * from picked
            where new_customer_id is not null and new_customer_id <> customer_id
            """
        )
        con.execute(
            """
            update identity.clusters as c
            set customer_id = r.new_customer_id, run_id = 'bench-relink',
                resolved_at = now()::timestamp
            from relinked as r
            where c.id_type = 'anonymous_id' and c.source_record_id = r.source_record_id
            """
        )
        con.execute(
            """
            insert into identity.id_history
            select 'bench-relink', customer_id, new_customer_id, 'merge', count(*),
                now()::timestamp
            from relinked group by all
            """
        )
        return con.execute("select count(*) from relinked").fetchone()[0]
    finally:
        con.close()


#: Every mart as one order-independent checksum row (count and a sum of row hashes).
MART_CHECKSUMS = {
    "fct_events": "select count(*), sum(hash(*columns(* exclude (identity_resolved_at))))"
    " from marts.fct_events",
    "fct_sessions": "select count(*), sum(hash(*columns(*))) from marts.fct_sessions",
    "customer_profiles": "select count(*), sum(hash(*columns(*))) from marts.customer_profiles",
    "customer_features": "select count(*), sum(hash(*columns(*))) from marts.customer_features",
    "fct_orders": "select count(*), sum(hash(*columns(*))) from marts.fct_orders",
}


def mart_checksums(settings: Settings) -> dict[str, tuple]:
    """An order-independent checksum of every mart (fct_events' bookkeeping column left out)."""
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return {name: con.execute(sql).fetchone() for name, sql in MART_CHECKSUMS.items()}
    finally:
        con.close()


def _verify_against_full_refresh(settings: Settings) -> str:
    """Full-refresh after the incremental run; raise unless every mart is the same."""
    incremental = mart_checksums(settings)
    _dbt(settings, "run", "--full-refresh")
    full = mart_checksums(settings)
    differ = [name for name in MART_CHECKSUMS if incremental[name] != full[name]]
    if differ:
        raise AssertionError(f"incremental run differs from a full refresh in {differ}")
    return "all marts equal"


def _land_new_events(settings: Settings, count: int) -> int:
    """Append up to ``count`` new events (copies of a hash-picked spread of events with new ids,
    one hour later, loaded now); returns how many landed."""
    suffix = f"-bench-{time.time_ns()}"
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        (total,) = con.execute("select count(*) from raw.analytics_events").fetchone()
        every = max(1, int(total / (count * 1.1)))  # ~10 % spare, cut by the limit
        (landed,) = con.execute(
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
                and hash(message_id) % {every} = 0
            limit {count}
            """
        ).fetchone()
    finally:
        con.close()
    return landed


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
    parser.add_argument("--relink", type=int, default=0, help="anonymous ids identity re-links")
    parser.add_argument("--memory-limit", default="8GB", help="DuckDB memory_limit")
    parser.add_argument("--verify", action="store_true", help="compare with a full refresh")
    parser.add_argument("--dbt-only", action="store_true", help="skip tests, mart gate, publish")
    args = parser.parse_args()
    settings = load_settings({"CDP_HOME": args.home})
    if not settings.warehouse_path.exists():
        parser.error(f"no warehouse at {settings.warehouse_path}; run `python -m bench` first")
    os.environ["CDP_DUCKDB_MEMORY_LIMIT"] = args.memory_limit  # read by profiles.yml
    from cdp.publish import publish_snapshot
    from cdp.quality.gate import run_mart_gate, run_raw_gate

    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    [(customers, events)] = con.execute(
        "select (select count(distinct customer_id) from identity.clusters),"
        " (select count(*) from raw.analytics_events)"
    ).fetchall()
    con.close()
    print(f"dbt benchmark: {events:,} raw events, {customers:,} customers, as of {AS_OF},"
          f" DuckDB memory_limit {args.memory_limit}, load {os.getloadavg()[0]:.2f}")  # fmt: skip
    print("\n| step | seconds | nodes / rows | peak RSS MB |")
    print("| --- | ---: | ---: | ---: |")
    slowest = {}
    print(
        _row("dbt run --full-refresh (all models)", lambda: _dbt(settings, "run", "--full-refresh"))
    )
    slowest["full"] = _slowest_models(settings)
    print(
        _row(
            "ceiling: same compiled SQL directly in DuckDB",
            lambda: _ceiling(settings, args.memory_limit),
        )
    )
    _pass_raw_gate_so_far(settings)
    print(
        _row(
            f"land {args.increment:,} new events (SQL insert)",
            lambda: _land_new_events(settings, args.increment),
        )
    )
    print(
        _row(
            f"identity re-links {args.relink:,} anonymous ids (SQL update)",
            lambda: _relink_anonymous_ids(settings, args.relink),
        )
    )
    print(
        _row(
            "raw quality gate (GX, new rows only)",
            lambda: run_raw_gate(settings, "bench")["rows_checked"],
        )
    )
    print(_row("dbt run (incremental)", lambda: _dbt(settings, "run")))
    slowest["incremental"] = _slowest_models(settings)
    if args.verify:
        print(
            _row("verify: dbt run --full-refresh, compare marts",
                 lambda: _verify_against_full_refresh(settings))
        )  # fmt: skip
    if not args.dbt_only:
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
    for run, models in slowest.items():
        print(f"\nslowest models, {run} run: {models}")


if __name__ == "__main__":
    main()
