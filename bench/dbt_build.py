"""dbt speed against its ceiling, on a warehouse prepared by ``python -m bench --home DIR``
(optionally multiplied by ``python -m bench.scale_up``).

``python -m bench.dbt_build --home DIR [--increment N] [--relink N] [--memory-limit 8GB]
[--verify] [--dbt-only]`` times, in this process:

- dbt, full:        ``dbt run --full-refresh`` (every model, fct_events rebuilt from scratch)
- ceiling, full:    the same compiled SQL of every model, in dbt's execution order, run directly
                    in DuckDB as ``create or replace table|view ... as <compiled SQL>``
- new data:         N new events land in ``raw.analytics_events`` and identity re-links
                    ``--relink`` anonymous ids that have events to another customer (a merge:
                    their ``identity.clusters`` rows are re-written with a new ``resolved_at``).
                    ``--increment-kind recent`` (default, a day of real traffic): copies of the
                    events just before the build's as_of, with new message ids, moved forward by
                    the span that holds them (the next hours of the same customers' traffic, a
                    share of them from new anonymous visitors), plus ``--late-share`` of late
                    arrivals spread over the whole history; the incremental build's as_of moves
                    forward by that span. ``--increment-kind spread`` (the worst case, a
                    backfill): every new event is a copy of an event spread over the whole
                    history, one hour later, and the as_of stays.
- raw gate:         the Great Expectations raw gate on what was loaded since it last passed
- dbt, incremental: ``dbt run`` (incremental fct_events and whatever else changed)
- verify:           (``--verify``) a second ``dbt run --full-refresh``; every mart must equal
                    what the incremental run left
- dbt tests, mart gate and publish (skipped with ``--dbt-only``)

and prints a Markdown table, plus the slowest models of each dbt run. Both dbt and the ceiling
run with DuckDB's ``memory_limit`` set to ``--memory-limit``. The warehouse is modified (new
events are appended, ids re-linked). To iterate on the incremental path: ``--skip-ceiling``,
``--save-built FILE`` (a copy of the warehouse right after the first full refresh) and, in later
runs, ``--from-built FILE`` (start from a copy of that file: no full refresh, no ceiling).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from cdp.settings import Settings, load_settings
from cdp.transform import dbt_args

AS_OF = datetime(2026, 11, 1)


def _connect(settings: Settings, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """The warehouse, with the DuckDB memory_limit dbt gets (``CDP_DUCKDB_MEMORY_LIMIT``)."""
    config = {"memory_limit": os.environ.get("CDP_DUCKDB_MEMORY_LIMIT", "8GB")}
    return duckdb.connect(str(settings.warehouse_path), read_only=read_only, config=config)


def _dbt(settings: Settings, command: str, as_of: datetime, *extra: str) -> int:
    """Run one dbt command in-process as of a date; returns how many nodes ran; raises if failed."""
    from dbt.adapters.duckdb import DuckDBConnectionManager
    from dbt.cli.main import dbtRunner

    os.environ["CDP_WAREHOUSE"] = str(settings.warehouse_path)  # read by profiles.yml
    try:
        result = dbtRunner().invoke([*dbt_args(settings, command, as_of), *extra])
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


def _ceiling(settings: Settings) -> int:
    """Run the compiled SQL of the last dbt run's models directly in DuckDB, in the same order."""
    target = settings.dbt_target_dir
    manifest = json.loads((target / "manifest.json").read_text())["nodes"]
    order = json.loads((target / "run_results.json").read_text())["results"]
    con = _connect(settings)
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

    con = _connect(settings)
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
    con = _connect(settings)
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


#: Every incremental model and mart as one order-independent checksum row (count and a sum of
#: row hashes), bookkeeping columns left out.
MART_CHECKSUMS = {
    "fct_events": "select count(*), sum(hash(*columns(* exclude (identity_resolved_at,"
    " previous_customer_id, transformed_at)))) from marts.fct_events",
    "fct_sessions": "select count(*), sum(hash(*columns(* exclude (events_transformed_at))))"
    " from marts.fct_sessions",
    "int_events_summarized_daily": "select count(*), sum(hash(*columns(* exclude"
    " (events_transformed_at)))) from intermediate.int_events_summarized_daily",
    "int_customer_categories_summarized": "select count(*), sum(hash(*columns(* exclude"
    " (events_transformed_at)))) from intermediate.int_customer_categories_summarized",
    "customer_profiles": "select count(*), sum(hash(*columns(* exclude (events_transformed_at,"
    " identity_resolved_at, crm_customers_loaded_at, crm_orders_loaded_at, consent_loaded_at,"
    " intent_loaded_at)))) from marts.customer_profiles",
    "customer_features": "select count(*), sum(hash(*columns(*))) from marts.customer_features",
    "fct_orders": "select count(*), sum(hash(*columns(*))) from marts.fct_orders",
}


def mart_checksums(settings: Settings) -> dict[str, tuple]:
    """An order-independent checksum of every incremental model and mart."""
    con = _connect(settings, read_only=True)
    try:
        return {name: con.execute(sql).fetchone() for name, sql in MART_CHECKSUMS.items()}
    finally:
        con.close()


def _profiles_recomputed(settings: Settings) -> str:
    """How many profiles the last (incremental) run re-computed, of all: the rows that carry
    the newest events watermark (the bench's increment always writes fct_events rows)."""
    con = _connect(settings, read_only=True)
    try:
        [(recomputed, profiles)] = con.execute(
            "select count(*) filter (where events_transformed_at = (select"
            " max(events_transformed_at) from marts.customer_profiles)), count(*)"
            " from marts.customer_profiles"
        ).fetchall()
    finally:
        con.close()
    return f"{recomputed:,} of {profiles:,}"


def _verify_against_full_refresh(settings: Settings, as_of: datetime) -> str:
    """Full-refresh after the incremental run; raise unless every mart is the same."""
    incremental = mart_checksums(settings)
    _dbt(settings, "run", as_of, "--full-refresh")
    full = mart_checksums(settings)
    differ = [name for name in MART_CHECKSUMS if incremental[name] != full[name]]
    if differ:
        raise AssertionError(f"incremental run differs from a full refresh in {differ}")
    return "all marts equal"


def _insert_event_copies(
    con: duckdb.DuckDBPyConnection,
    *,
    suffix: str,
    where: str,
    shift: timedelta,
    limit: int,
    new_visitor_share: float = 0.0,
) -> int:
    """Append up to ``limit`` copies of the events matching ``where``: new message ids, moved
    ``shift`` later, loaded now; a hash-picked ``new_visitor_share`` of anonymous ids become
    new (unknown) anonymous visitors. Returns how many landed."""
    per_mille = round(new_visitor_share * 1000)
    new_visitor = f"anonymous_id is not null and hash(anonymous_id) % 1000 < {per_mille}"
    (landed,) = con.execute(
        f"""
        insert into raw.analytics_events
        select * replace (
            message_id || '{suffix}' as message_id,
            case when {new_visitor} then anonymous_id || '{suffix}' else anonymous_id end
                as anonymous_id,
            case when {new_visitor} then null else user_id end as user_id,
            "timestamp" + interval {int(shift.total_seconds())} second as "timestamp",
            'bench-increment' as _batch_id,
            now()::timestamp as _loaded_at
        )
        from raw.analytics_events
        where {where}
        limit {limit}
        """
    ).fetchone()
    return landed


def _spread_over_history(con: duckdb.DuckDBPyConnection, count: int, suffix: str) -> int:
    """Land ``count`` copies of a hash-picked spread of the events before the as_of, 1 h later."""
    (total,) = con.execute("select count(*) from raw.analytics_events").fetchone()
    every = max(1, int(total / (count * 1.1)))  # ~10 % spare, cut by the limit
    return _insert_event_copies(
        con,
        suffix=suffix,
        where=f"\"timestamp\" < timestamp '{AS_OF - timedelta(hours=1)}'"
        f" and hash(message_id) % {every} = 0",
        shift=timedelta(hours=1),
        limit=count,
    )


def _span_before_as_of(con: duckdb.DuckDBPyConnection, count: int) -> timedelta:
    """The span before the as_of (whole minutes) that holds about ``count`` events."""
    (share,) = con.execute(
        f"select 1 - {count} / count(*) from raw.analytics_events"
        f" where \"timestamp\" <= timestamp '{AS_OF}'"
    ).fetchone()
    (since,) = con.execute(
        f'select quantile_disc("timestamp", {max(share, 0.0)}) from raw.analytics_events'
        f" where \"timestamp\" <= timestamp '{AS_OF}'"
    ).fetchone()
    return timedelta(minutes=-((since - AS_OF) // timedelta(minutes=1)))


def land_new_events(
    settings: Settings, count: int, kind: str, late_share: float, new_visitor_share: float
) -> tuple[str, datetime]:
    """Land ``count`` new events of the given kind; returns what landed and the next as_of."""
    suffix = f"-bench-{time.time_ns()}"
    con = _connect(settings)
    try:
        if kind == "spread":
            landed = _spread_over_history(con, count, suffix)
            return f"{landed:,} spread over the history", AS_OF
        late = round(count * late_share)
        span = _span_before_as_of(con, count - late)
        recent = _insert_event_copies(
            con,
            suffix=suffix,
            where=f"\"timestamp\" > timestamp '{AS_OF - span}'"
            f" and \"timestamp\" <= timestamp '{AS_OF}'",
            shift=span,
            limit=count - late,
            new_visitor_share=new_visitor_share,
        )
        late_landed = _spread_over_history(con, late, f"{suffix}-late")
    finally:
        con.close()
    return f"{recent:,} in the next {span} + {late_landed:,} late", AS_OF + span


def _row(name: str, work: Callable[[], object], shown: Callable[[object], object] = str) -> object:
    """Run a step, print its Markdown row (seconds, ``shown(result)``, peak RSS); return result."""
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"| {name} | {seconds:.1f} | {shown(result)} | {rss:,.0f} |", flush=True)
    return result


def _arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.dbt_build", description=__doc__)
    parser.add_argument("--home", required=True, help="CDP_HOME prepared by `python -m bench`")
    parser.add_argument("--increment", type=int, default=100_000, help="new events")
    parser.add_argument(
        "--increment-kind", choices=("recent", "spread"), default="recent",
        help="recent: the next hours of traffic plus late arrivals; spread: a backfill",
    )  # fmt: skip
    parser.add_argument("--late-share", type=float, default=0.05, help="recent: late arrivals")
    parser.add_argument(
        "--new-visitor-share", type=float, default=0.1,
        help="recent: share of anonymous ids that become new visitors",
    )  # fmt: skip
    parser.add_argument("--relink", type=int, default=0, help="anonymous ids identity re-links")
    parser.add_argument("--memory-limit", default="8GB", help="DuckDB memory_limit")
    parser.add_argument("--verify", action="store_true", help="compare with a full refresh")
    parser.add_argument("--dbt-only", action="store_true", help="skip tests, mart gate, publish")
    parser.add_argument("--skip-ceiling", action="store_true", help="no ceiling run")
    parser.add_argument(
        "--save-built", type=Path, help="copy the warehouse here after the full run"
    )
    parser.add_argument(
        "--from-built", type=Path,
        help="start from a copy of this --save-built file: no full refresh, no ceiling",
    )  # fmt: skip
    return parser


def _validated(parser: argparse.ArgumentParser) -> argparse.Namespace:
    args = parser.parse_args()
    if not 0 <= args.late_share <= 1 or not 0 <= args.new_visitor_share <= 1:
        parser.error("--late-share and --new-visitor-share must be within [0, 1]")
    if args.from_built and not args.from_built.is_file():
        parser.error(f"--from-built: no file at {args.from_built}")
    if args.from_built and args.save_built:
        parser.error("--from-built and --save-built exclude each other")
    return args


def _first_full_build(settings: Settings, args: argparse.Namespace) -> str:
    """The first full refresh (and its ceiling), or a copy of a saved one; its slowest models."""
    if args.from_built:
        # a write-ahead log left by an interrupted run would be replayed onto the fresh copy
        Path(f"{settings.warehouse_path}.wal").unlink(missing_ok=True)
        _row(f"copy of the built warehouse {args.from_built}",
             lambda: shutil.copyfile(args.from_built, settings.warehouse_path))  # fmt: skip
        return "(saved earlier)"
    _row("dbt run --full-refresh (all models)",
         lambda: _dbt(settings, "run", AS_OF, "--full-refresh"))  # fmt: skip
    slowest = _slowest_models(settings)
    if not args.skip_ceiling:
        _row("ceiling: same compiled SQL directly in DuckDB",
             lambda: _ceiling(settings))  # fmt: skip
    _pass_raw_gate_so_far(settings)
    if args.save_built:
        _row(f"save the built warehouse to {args.save_built}",
             lambda: shutil.copyfile(settings.warehouse_path, args.save_built))  # fmt: skip
    return slowest


def main() -> None:
    """Run the dbt benchmark and print the table."""
    parser = _arguments()
    args = _validated(parser)
    settings = load_settings({"CDP_HOME": args.home})
    if not settings.warehouse_path.exists() and not args.from_built:
        parser.error(f"no warehouse at {settings.warehouse_path}; run `python -m bench` first")
    os.environ["CDP_DUCKDB_MEMORY_LIMIT"] = args.memory_limit  # read by profiles.yml
    from cdp.publish import publish_snapshot
    from cdp.quality.gate import run_mart_gate, run_raw_gate

    print(f"dbt benchmark at {datetime.now():%Y-%m-%d %H:%M}, as of {AS_OF}, DuckDB memory_limit"
          f" {args.memory_limit}, load average {' '.join(map(str, os.getloadavg()))}")  # fmt: skip
    print("\n| step | seconds | nodes / rows | peak RSS MB |")
    print("| --- | ---: | ---: | ---: |")
    slowest_full = _first_full_build(settings, args)
    con = _connect(settings, read_only=True)
    [(customers, events)] = con.execute(
        "select (select count(distinct customer_id) from identity.clusters),"
        " (select count(*) from raw.analytics_events)"
    ).fetchall()
    con.close()
    print(f"| warehouse: {events:,} raw events, {customers:,} customers | | | |")
    _, as_of = _row(
        f"land {args.increment:,} new events ({args.increment_kind}, SQL insert)",
        lambda: land_new_events(
            settings, args.increment, args.increment_kind, args.late_share,
            args.new_visitor_share,
        ),
        shown=lambda landed: f"{landed[0]}; as_of {landed[1]}",
    )  # fmt: skip
    _row(f"identity re-links {args.relink:,} anonymous ids (SQL update)",
         lambda: _relink_anonymous_ids(settings, args.relink))  # fmt: skip
    _row("raw quality gate (GX, new rows only)",
         lambda: run_raw_gate(settings, "bench")["rows_checked"])  # fmt: skip
    _row(f"dbt run (incremental, as of {as_of})", lambda: _dbt(settings, "run", as_of))
    slowest_incremental = _slowest_models(settings)
    _row("customer_profiles re-computed (rows)", lambda: _profiles_recomputed(settings))
    if args.verify:
        _row("verify: dbt run --full-refresh, compare marts",
             lambda: _verify_against_full_refresh(settings, as_of))  # fmt: skip
    if not args.dbt_only:
        _row("dbt test (data + unit tests)", lambda: _dbt(settings, "test", as_of))
        _row("mart quality gate (GX)",
             lambda: run_mart_gate(settings, "bench", as_of)["expectations"])  # fmt: skip
        _row("publish snapshot",
             lambda: sum(publish_snapshot(settings, "bench", as_of).row_counts.values()),
        )  # fmt: skip
    print(f"\nslowest models, full run: {slowest_full}")
    print(f"slowest models, incremental run: {slowest_incremental}")


if __name__ == "__main__":
    main()
