"""The weekly retrain and the daily scoring DAGs, end to end with ``dag.test()``.

The warehouse holds the marts the feature model reads, built from the generator's CRM orders
(``models.orders_only``): the full ingest → identity → dbt path is covered by
tests/test_end_to_end.py; here the point is the ML DAGs themselves.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta

import duckdb
import pandas as pd
import pytest

from cdp import airflow_env
from cdp.generate import GenerateConfig, generate
from cdp.runner import load_dags
from cdp.settings import load_settings
from models.features import compile_feature_query
from models.orders_only import build_feature_table, load_orders_as_marts

AS_OF = datetime(2026, 11, 1)


def _generated_orders(landing) -> pd.DataFrame:
    raw = pd.read_csv(landing / "crm" / "orders" / "orders.csv", dtype=str)
    orders = pd.DataFrame(
        {
            "customer_id": raw["crm_customer_id"],
            "ordered_at": pd.to_datetime(raw["ordered_at"], errors="coerce", format="ISO8601"),
            "total_amount": pd.to_numeric(raw["total_amount"], errors="coerce"),
        }
    ).dropna()  # the generator's deliberately dirty rows (the platform quarantines them)
    return orders.assign(ordered_at=orders["ordered_at"].dt.tz_localize(None))


@pytest.fixture(scope="module")
def ml_platform(tmp_path_factory):
    home = tmp_path_factory.mktemp("ml-dags")
    settings = load_settings({"CDP_HOME": str(home), "AIRFLOW_HOME": os.environ["AIRFLOW_HOME"]})
    settings.ensure_dirs()
    generate(
        GenerateConfig(
            landing_dir=settings.landing_dir, truth_dir=home / "truth", customers=2000,
            events=2000, seed=11, end_date=date(2026, 10, 31), days=240,
        )
    )  # fmt: skip
    query = compile_feature_query(settings)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        load_orders_as_marts(con, _generated_orders(settings.landing_dir))
        build_feature_table(con, query, AS_OF)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("CDP_HOME", "CDP_WAREHOUSE", "CDP_LANDING", "CDP_PUBLISH", "CDP_DAGS_DIR"):
            patch.setenv(name, os.environ.get(name, ""))
        airflow_env.export_settings(settings)
        airflow_env.migrate_metadata_db()
        dags = load_dags(settings)
        retrain = dags["cdp_retrain_weekly"].test(logical_date=AS_OF.replace(tzinfo=UTC))
        daily = dags["cdp_score_daily"].test(
            logical_date=(AS_OF + timedelta(days=1)).replace(tzinfo=UTC)
        )
        yield settings, retrain, daily


def _query(settings, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_both_runs_succeed_with_every_task(ml_platform):
    _, retrain, daily = ml_platform
    for run in (retrain, daily):
        states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        assert str(run.state) == "success", states
        assert set(states.values()) == {"success"}


def test_retrain_records_a_promoted_champion_with_metrics_and_artifact(ml_platform):
    settings, _, _ = ml_platform
    [(version, promoted, champion, auc, lift, ece, rows, path, reason)] = _query(
        settings,
        "select model_version, is_promoted, is_champion, roc_auc, top_decile_lift,"
        " calibration_error, training_rows, artifact_path, decision_reason from ml.model_runs",
    )
    assert promoted and champion and "no champion" in reason
    assert 0.5 < auc <= 1 and lift > 1 and 0 <= ece < 0.2 and rows > 1000
    metadata = json.loads((settings.home / "models" / "purchase_propensity" / version /
                           "metadata.json").read_text())  # fmt: skip
    assert path.endswith(version) and len(metadata["training_data_hash"]) == 64
    assert metadata["params"]["num_threads"] == 1 and "purchase_count" in metadata["features"]


def test_every_customer_gets_one_score_per_day_and_one_cluster(ml_platform):
    settings, _, _ = ml_platform
    [(customers,)] = _query(settings, "select count(*) from marts.customer_features")
    for scored_at in (AS_OF, AS_OF + timedelta(days=1)):
        [(rows, distinct, low, high)] = _query(
            settings,
            "select count(*), count(distinct customer_id), min(decile), max(decile)"
            " from ml.scores where scored_at = ?",
            [scored_at],
        )
        assert (rows, distinct, low, high) == (customers, customers, 1, 10)
    [(reasons,)] = _query(settings, "select top_reasons from ml.current_scores limit 1")
    assert {"feature", "value", "contribution"} <= set(json.loads(reasons)[0])
    [(clustered, named, k)] = _query(
        settings,
        "select count(*), count(cluster_name), count(distinct cluster_id) from ml.current_clusters",
    )
    assert clustered == named == customers and k >= 2
    [(k_run, silhouette)] = _query(settings, "select k, silhouette from ml.cluster_runs")
    assert k_run <= k and -1 <= silhouette <= 1


def test_drift_is_recorded_for_every_feature_and_the_score(ml_platform):
    settings, _, _ = ml_platform
    rows = _query(settings, "select as_of, kind, count(*) from ml.drift group by all order by 1, 2")
    features = len(json.loads(_query(settings, "select features from ml.model_runs")[0][0]))
    assert rows == [
        (AS_OF, "feature", features), (AS_OF, "score", 1),
        (AS_OF + timedelta(days=1), "feature", features), (AS_OF + timedelta(days=1), "score", 1),
    ]  # fmt: skip
