"""
### MicroCDP — build

Runs once per ingest run that loaded new rows (the `raw` Asset):

1. **check_raw_quality** — Great Expectations gate on the raw rows loaded since the last passed
   gate (schema, required fields, unique event ids, timestamp ranges, email/phone validity);
2. **resolve_identity** — links CRM records, analytics ids and identify traits into
   `identity.clusters` (one stable `customer_id` per person);
3. **dbt_build** — the dbt project (staging → intermediate → marts): one task per model
   (astronomer-cosmos, read from the dbt manifest), then one task running every dbt test; a
   failing model is its own red task and nothing downstream of it runs; **profiles_built**
   announces `marts.customer_profiles` once all of them succeeded;
4. **refresh_segments** — evaluates every segment definition (profiles, events, model outputs)
   into `segments.membership` / `membership_history` / `sizes`; a segment the micro-batch
   already evaluated at a later time is replayed (computed, not written);
5. **check_mart_quality** — Great Expectations gate on the marts (one row per customer, money
   and scores in range, row-count change vs the last publish, freshness);
6. **publish_snapshot** — atomically replaces the analysts' read-only, pseudonymized snapshot
   `$CDP_HOME/publish/warehouse.duckdb` (previous ones kept for rollback).

A failed gate fails its task naming the expectations and offending rows (results in
`audit.quality_results` and the Data Docs under `$CDP_HOME/quality`); nothing after it runs, so
the previous snapshot stays published.

Every task writes DuckDB, so each runs in the `duckdb_writer` pool. The run's logical date
is the *as of* time for every window and recency.
"""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task

from cdp.assets import RAW_LANDED, SEGMENTS_ASSET, WRITER_POOL
from cdp.dag_defaults import START_DATE, default_args
from cdp.dbt_tasks import dbt_build_tasks
from cdp.settings import load_settings


@dag(
    dag_id="cdp_build",
    schedule=[RAW_LANDED],  # one event per ingest run that loaded new rows
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=1),
    tags=["microcdp", "build"],
    doc_md=__doc__,
)
def cdp_build():
    dbt_first, dbt_last = dbt_build_tasks(load_settings())

    @task(pool=WRITER_POOL)
    def resolve_identity() -> dict:
        """Resolve the records loaded since the last run into stable customer ids."""
        from cdp.logical_time import run_identifier
        from cdp.settings import load_settings
        from cdp.warehouse import connect
        from identity import resolve_identities

        with connect(load_settings()) as con:
            result = resolve_identities(con, run_identifier(get_current_context()))
        return {
            "mode": result.mode,
            "records": result.records,
            "customers": result.customers,
            "records_touched": result.records_touched,
            "guard_events": result.guard_events,
            "id_changes": result.id_changes,
            **result.edges_by_rule,
        }

    @task(pool=WRITER_POOL, outlets=[SEGMENTS_ASSET])
    def refresh_segments() -> dict:
        """Evaluate every segment definition and record membership changes."""
        from cdp.logical_time import run_as_of, run_identifier
        from cdp.segments.refresh import refresh_segments as refresh
        from cdp.settings import load_settings

        context = get_current_context()
        return refresh(load_settings(), run_identifier(context), run_as_of(context))

    @task(pool=WRITER_POOL)
    def check_raw_quality() -> dict:
        """Quality gate on newly loaded raw rows; fails loudly naming expectations and rows."""
        from cdp.logical_time import run_identifier
        from cdp.quality.gate import run_raw_gate
        from cdp.settings import load_settings

        return run_raw_gate(load_settings(), run_identifier(get_current_context()))

    @task(pool=WRITER_POOL)
    def check_mart_quality() -> dict:
        """Quality gate on the marts before anything is published."""
        from cdp.publish_steps import check_mart_quality as check

        return check(get_current_context())

    @task(pool=WRITER_POOL)
    def publish_snapshot() -> dict:
        """Atomically publish the pseudonymized analyst snapshot (write → audit → publish)."""
        from cdp.publish_steps import publish_snapshot as publish

        return publish(get_current_context())

    (check_raw_quality() >> resolve_identity() >> dbt_first)
    (dbt_last >> refresh_segments() >> check_mart_quality() >> publish_snapshot())


cdp_build()
