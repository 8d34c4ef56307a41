"""
### MicroCDP — daily scoring

Refreshes purchase-propensity scores every day with the current champion (the model the
weekly retrain promoted most recently at or before the run's logical date):

1. **build_features** — `marts.customer_features` compiled for the as-of date (no training
   snapshots);
2. **score** — every customer into `ml.scores` (score, decile 1..10, top reasons);
3. **check_drift** — PSI of features and scores vs the champion's training window into
   `ml.drift` (alerts are logged and flagged, the run does not fail);
4. **publish** — checks every customer has one score for the date, then updates the
   `ml.scores` Asset (`cdp_publish_scores` follows).

Before the first retrain there is no champion: scoring and what follows are *skipped*.
Idempotent per logical date; DuckDB tasks run in the `duckdb_writer` pool.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from cdp.assets import WRITER_POOL, table_asset
from cdp.dag_defaults import START_DATE, default_args
from models.steps import run_step


@dag(
    dag_id="cdp_score_daily",
    schedule="@daily",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=1),
    tags=["microcdp", "ml"],
    doc_md=__doc__,
)
def cdp_score_daily():
    @task(pool=WRITER_POOL)
    def build_features() -> dict:
        """Features of every customer as of the run's logical date."""
        return run_step("build_features", False)

    @task(pool=WRITER_POOL)
    def score() -> dict:
        """Score every customer with the champion (skipped when there is none yet)."""
        return run_step("score_customers", skip_without_champion=True)

    @task(pool=WRITER_POOL)
    def check_drift() -> dict:
        """PSI of features and scores vs the champion's training window."""
        return run_step("check_drift")

    @task(pool=WRITER_POOL, outlets=[table_asset("ml.scores")])
    def publish() -> dict:
        """Audit the date's scores, then announce them."""
        return run_step("check_published", False)

    build_features() >> score() >> check_drift() >> publish()


cdp_score_daily()
