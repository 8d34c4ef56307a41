"""
### MicroCDP — build

Runs once per ingest run that loaded new rows (the `raw` Asset):

1. **resolve_identity** — links CRM records, analytics ids and identify traits into
   `identity.clusters` (one stable `customer_id` per person);
2. **dbt_build** — the dbt project (staging → intermediate → marts) and all its tests;
   a failing model or test fails this task;
3. **refresh_segments** — evaluates the segment definitions against `marts.customer_profiles`
   into `segments.membership` / `membership_history` / `sizes`.

Every task writes DuckDB, so each runs in the `duckdb_writer` pool. The run's logical date
is the *as of* time for every window and recency.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, get_current_context, task

from cdp.assets import PROFILES_ASSET, RAW_LANDED, SEGMENTS_ASSET, WRITER_POOL
from cdp.dag_defaults import default_args


@dag(
    dag_id="cdp_build",
    schedule=[RAW_LANDED],  # one event per ingest run that loaded new rows
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=1),
    tags=["microcdp", "build"],
    doc_md=__doc__,
)
def cdp_build():
    @task(pool=WRITER_POOL)
    def resolve_identity() -> dict:
        """Rebuild identity clusters from raw."""
        from cdp.logical_time import run_identifier
        from cdp.settings import load_settings
        from cdp.warehouse import connect
        from identity import resolve_identities

        with connect(load_settings()) as con:
            result = resolve_identities(con, run_identifier(get_current_context()))
        return {"records": result.records, "customers": result.customers, **result.edges_by_rule}

    @task(pool=WRITER_POOL, outlets=[PROFILES_ASSET])
    def dbt_build() -> dict:
        """Build and test every dbt model as of the run's logical date."""
        from cdp.logical_time import run_as_of
        from cdp.settings import load_settings
        from cdp.transform import dbt_build as build

        return build(load_settings(), run_as_of(get_current_context()))

    @task(pool=WRITER_POOL, outlets=[SEGMENTS_ASSET])
    def refresh_segments() -> dict:
        """Evaluate every segment definition and record membership changes."""
        from cdp.logical_time import run_as_of, run_identifier
        from cdp.segments.refresh import refresh_segments as refresh
        from cdp.settings import load_settings

        context = get_current_context()
        return refresh(load_settings(), run_identifier(context), run_as_of(context))

    resolve_identity() >> dbt_build() >> refresh_segments()


cdp_build()
