"""
### MicroCDP — segments micro-batch

Keeps time-window audiences fresh within minutes, without waiting for a dbt build:

1. **ingest_new_events** — loads new files from `$CDP_HOME/landing/analytics/events/` into
   `raw.analytics_events` (a file is loaded once per content; nothing new → the run skips
   identity);
2. **resolve_identity** — gives new anonymous/user ids a `customer_id` in `identity.clusters`;
3. **refresh_dynamic_segments** — re-evaluates the segments with `refresh: minutes` (rapid
   browsers, cart abandoners, ...) over raw events joined to identity, as of the run's logical
   time, and records entries/exits in `segments.membership` / `membership_history`.

Every task writes DuckDB, so each runs in the `duckdb_writer` pool. The same steps run
in-process with `cdp segments microbatch` (`cdp.segments.microbatch.run_microbatch`).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from cdp.assets import RAW_ASSETS, SEGMENTS_ASSET, WRITER_POOL
from cdp.dag_defaults import START_DATE, default_args


@dag(
    dag_id="cdp_segments_microbatch",
    schedule=timedelta(minutes=5),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=1),
    tags=["microcdp", "segments"],
    doc_md=__doc__,
)
def cdp_segments_microbatch():
    @task(pool=WRITER_POOL, outlets=[RAW_ASSETS["analytics/events"]])
    def ingest_new_events() -> dict:
        """Load new analytics event files; skip identity when nothing new arrived."""
        from cdp.segments.microbatch import ingest_new_events as ingest
        from cdp.settings import load_settings

        summary = ingest(load_settings())
        return {"files": summary.files, "rows_loaded": summary.rows_loaded}

    @task(pool=WRITER_POOL)
    def resolve_identity(loaded: dict) -> int:
        """Assign customer ids to new identifiers."""
        from cdp.logical_time import run_identifier
        from cdp.segments.microbatch import resolve_new_identifiers
        from cdp.settings import load_settings

        if not loaded["rows_loaded"]:
            raise AirflowSkipException("no new events: identity is unchanged")
        return resolve_new_identifiers(load_settings(), run_identifier(get_current_context()))

    @task(pool=WRITER_POOL, outlets=[SEGMENTS_ASSET], trigger_rule="none_failed")
    def refresh_dynamic_segments() -> dict:
        """Re-evaluate the minutes-fresh segments as of the run's logical time."""
        from cdp.logical_time import run_as_of, run_identifier
        from cdp.segments.microbatch import refresh_dynamic_segments as refresh
        from cdp.settings import load_settings

        context = get_current_context()
        return refresh(load_settings(), run_identifier(context), run_as_of(context))

    resolve_identity(ingest_new_events()) >> refresh_dynamic_segments()


cdp_segments_microbatch()
