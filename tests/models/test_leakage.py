"""Point-in-time features: nothing observed after the as-of date can reach a feature or label."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pandas as pd
import pytest

from models.features import FeatureStore, LeakageError, SnapshotPlan, compile_feature_query
from models.orders_only import build_feature_table, load_orders_as_marts

AS_OF = datetime(2026, 3, 1)


def _orders(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "ordered_at", "total_amount"])
    return frame.assign(ordered_at=pd.to_datetime(frame["ordered_at"]))


PAST = _orders(
    [("ann", "2026-01-05", 20.0), ("ann", "2026-02-20", 35.0), ("bob", "2025-11-01", 99.0)]
)
FUTURE = _orders(
    [("ann", "2026-03-02", 500.0), ("bob", "2026-04-01", 5.0), ("cy", "2026-03-10", 7.0)]
)


@pytest.fixture(scope="module")
def query(tmp_path_factory):
    from cdp.settings import load_settings

    home = tmp_path_factory.mktemp("leakage")
    return compile_feature_query(load_settings({"CDP_HOME": str(home)}))


def _store(tmp_path, query, orders, cutoff) -> FeatureStore:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    load_orders_as_marts(con, orders)
    build_feature_table(con, query, cutoff)
    return FeatureStore(query, con, cutoff)


def test_features_ignore_everything_after_their_as_of(tmp_path, query):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    only_past = _store(tmp_path / "a", query, PAST, AS_OF).features(AS_OF)
    with_future = _store(
        tmp_path / "b", query, pd.concat([PAST, FUTURE]), AS_OF + timedelta(days=60)
    )
    pd.testing.assert_frame_equal(with_future.features(AS_OF), only_past)
    ann = only_past.set_index("customer_id").loc["ann"]
    assert (ann["purchase_count"], ann["revenue_total"], ann["days_since_last_purchase"]) == (
        2,
        55.0,
        9,
    )
    assert "cy" not in set(only_past["customer_id"])  # not a customer yet


def test_a_feature_or_label_after_the_cutoff_cannot_be_built(tmp_path, query):
    store = _store(tmp_path, query, pd.concat([PAST, FUTURE]), AS_OF)
    with pytest.raises(LeakageError, match="after the cut-off"):
        store.features(AS_OF + timedelta(days=1))
    with pytest.raises(LeakageError, match="ends after the data cut-off"):
        store.labelled(AS_OF - timedelta(days=10), horizon_days=30)


def test_labels_count_purchases_inside_the_window_only(tmp_path, query):
    store = _store(tmp_path, query, pd.concat([PAST, FUTURE]), AS_OF + timedelta(days=60))
    labels = store.labelled(AS_OF, horizon_days=30).set_index("customer_id")["label"]
    assert labels.to_dict() == {"ann": 1, "bob": 0}  # bob's next order is day 31


def test_every_label_window_of_the_plan_ends_by_the_scoring_date():
    plan = SnapshotPlan(AS_OF, horizon_days=92, training_snapshots=5, step_days=28)
    assert plan.validation_on + timedelta(days=92) == AS_OF
    assert all(on + timedelta(days=92) < AS_OF for on in plan.training_on)
    assert plan.training_on == sorted(plan.training_on, reverse=True)
