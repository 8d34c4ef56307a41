"""
### MicroCDP — publish scores

Runs after every scoring run (the `ml.scores` Asset that `cdp_retrain_weekly` and
`cdp_score_daily` update), so fresh scores reach analysts without waiting for the next build:

1. **refresh_model_segments** — segments built on model outputs (`kind: model`, e.g.
   `likely_buyers`) are re-evaluated against the new scores and clusters;
2. **check_mart_quality** — the mart gate (one row per customer, scores within [0, 1], …);
3. **publish_snapshot** — atomically replaces the analysts' read-only, pseudonymized snapshot.

A failed gate fails the run naming the expectations and rows; the previous snapshot stays.
Every task writes DuckDB, so each runs in the `duckdb_writer` pool. The run is about the
time the newest scores are as of (its logical date when run by `cdp run`), never the clock.
"""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task

from cdp.assets import SEGMENTS_ASSET, WRITER_POOL, table_asset
from cdp.dag_defaults import START_DATE, default_args


@dag(
    dag_id="cdp_publish_scores",
    schedule=[table_asset("ml.scores")],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=1),
    tags=["microcdp", "ml", "publish"],
    doc_md=__doc__,
)
def cdp_publish_scores():
    @task(pool=WRITER_POOL, outlets=[SEGMENTS_ASSET])
    def refresh_model_segments() -> dict:
        """Model segments (``kind: model``) follow the fresh scores and clusters."""
        from cdp.publish_steps import refresh_model_segments as refresh

        return refresh(get_current_context())

    @task(pool=WRITER_POOL)
    def check_mart_quality() -> dict:
        """Quality gate (scores in [0, 1] included) before the snapshot is replaced."""
        from cdp.publish_steps import check_mart_quality as check
        from cdp.publish_steps import scores_as_of

        context = get_current_context()
        return check(context, scores_as_of(context))

    @task(pool=WRITER_POOL)
    def publish_snapshot() -> dict:
        """Atomically publish the analyst snapshot with the new scores and segments."""
        from cdp.publish_steps import publish_snapshot as publish
        from cdp.publish_steps import scores_as_of

        context = get_current_context()
        return publish(context, scores_as_of(context))

    refresh_model_segments() >> check_mart_quality() >> publish_snapshot()


cdp_publish_scores()
