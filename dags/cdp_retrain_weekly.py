"""
### MicroCDP — weekly retrain

Retrains the purchase-propensity model and the behavioural clusters as of the run's logical
date, and publishes fresh scores and cluster assignments:

1. **build_features** — compiles `marts.customer_features` for the as-of date and for past
   snapshots (point-in-time), labels each snapshot with "purchased within the next H days"
   (`CDP_PROPENSITY_HORIZON_DAYS`); every label window ends by the as-of date;
2. **train** — LightGBM on the older snapshots (class-weighted), early stopping and Platt
   calibration on half of the latest complete window; artifact under `$CDP_HOME/models/`;
3. **evaluate** — challenger vs champion on the other half of that window;
4. **promote_or_keep** — writes `ml.model_runs`; the challenger becomes champion unless its
   ROC AUC is worse than the champion's by more than `CDP_PROPENSITY_PROMOTION_TOLERANCE`
   (the reason is recorded either way);
5. **score** — the champion scores every customer into `ml.scores` (decile, top reasons);
6. **check_drift** — PSI of features and scores vs the champion's training window into
   `ml.drift`; above `CDP_DRIFT_PSI_THRESHOLD` it logs a warning and flags the row (the run
   does not fail: the champion's scores are still the best available);
7. **assign_clusters** — K-Means (k by silhouette), outliers flagged, ids matched to last run;
8. **publish** — checks every customer has one score and one cluster for the date, then
   updates the `ml.scores` / `ml.cluster_assignments` Assets (`cdp_publish_scores` follows).

Every task is idempotent for its logical date (re-runs replace that date's rows), so runs can
be retried and backfilled. Tasks that touch DuckDB run in the `duckdb_writer` pool.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from cdp.assets import WRITER_POOL, table_asset
from cdp.dag_defaults import START_DATE, default_args
from models.steps import run_step


@dag(
    dag_id="cdp_retrain_weekly",
    schedule="@weekly",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=1),
    tags=["microcdp", "ml"],
    doc_md=__doc__,
)
def cdp_retrain_weekly():
    @task(pool=WRITER_POOL)
    def build_features() -> dict:
        """Point-in-time feature snapshots and labels for the run's as-of."""
        return run_step("build_features")

    @task
    def train() -> str:
        """Fit the challenger (reads feature files, writes its artifact); returns its version."""
        return run_step("train_challenger")

    @task(pool=WRITER_POOL)
    def evaluate(version: str) -> dict:
        """Challenger vs champion on the same held-out window."""
        return run_step("evaluate_challenger", version)

    @task(pool=WRITER_POOL)
    def promote_or_keep(decision: dict) -> dict:
        """Record the run in ml.model_runs, promoting the challenger or keeping the champion."""
        return run_step("record_decision", decision)

    @task(pool=WRITER_POOL)
    def score() -> dict:
        """Score every customer with the champion."""
        return run_step("score_customers")

    @task(pool=WRITER_POOL)
    def check_drift() -> dict:
        """PSI of features and scores vs the champion's training window."""
        return run_step("check_drift")

    @task(pool=WRITER_POOL)
    def assign_clusters() -> dict:
        """Behavioural clusters with ids matched to the previous run."""
        return run_step("assign_clusters")

    @task(
        pool=WRITER_POOL, outlets=[table_asset("ml.scores"), table_asset("ml.cluster_assignments")]
    )
    def publish() -> dict:
        """Audit the date's scores and clusters, then announce them."""
        return run_step("check_published", True)

    features = build_features()
    version = train()
    features >> version
    published = publish()
    promote_or_keep(evaluate(version)) >> score() >> check_drift() >> published
    features >> assign_clusters() >> published


cdp_retrain_weekly()
