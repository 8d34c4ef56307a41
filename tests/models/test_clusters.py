"""Behavioural clusters: k from the data, outliers cut, ids stable across retrains, names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.clusters import fit_clusters

#: Three planted behaviours: lapsed one-off buyers, loyal frequent buyers, active browsers.
GROUPS = [
    {"days_since_last_purchase": 300, "purchase_count": 1, "revenue_total": 40, "events_30d": 0},
    {"days_since_last_purchase": 10, "purchase_count": 20, "revenue_total": 2000, "events_30d": 2},
    {"days_since_last_purchase": 90, "purchase_count": 2, "revenue_total": 100, "events_30d": 60},
]


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    rows = []
    for group, centre in enumerate(GROUPS):
        for i in range(300):
            noisy = {k: max(v * rng.lognormal(0, 0.15), 0) for k, v in centre.items()}
            rows.append({"customer_id": f"g{group}-{i:03d}", "group": group, **noisy})
    frame = pd.DataFrame(rows)
    frame.loc[0, ["purchase_count", "revenue_total", "events_30d"]] = [5000, 9e7, 9000]
    return frame.assign(days_since_first_seen=400.0)


@pytest.fixture(scope="module")
def first(customers):
    return fit_clusters(customers, seed=1)


def test_finds_the_planted_groups_and_cuts_the_outlier(customers, first):
    result = first
    assert result.k == 3
    purity = pd.crosstab(customers["group"], result.assignments["cluster_id"]).max(axis=1)
    assert (purity >= 295).all()
    outliers = result.assignments.loc[result.assignments["is_outlier"], "customer_id"]
    assert "g0-000" in set(outliers) and len(outliers) < 10
    assert result.silhouette > 0.5 and result.davies_bouldin < 1.0
    assert [c["k"] for c in result.candidates] == list(range(2, 9))


def test_names_describe_what_sets_each_cluster_apart(first):
    result = first
    assignments = result.assignments
    names = dict(zip(assignments["customer_id"], assignments["cluster_name"], strict=True))
    assert "lapsed" in names["g0-001"]
    assert "frequent buyers" in names["g1-001"] or "high spend" in names["g1-001"]
    assert "active online" in names["g2-001"]
    assert result.centroids["cluster_name"].is_unique


def _ids(result, frame) -> dict[str, int]:
    return dict(zip(frame["customer_id"], result.assignments["cluster_id"], strict=True))


def test_ids_stay_put_across_retrains_on_the_same_data(customers, first):
    shuffled = customers.sample(frac=1.0, random_state=3).reset_index(drop=True)
    second = fit_clusters(shuffled, previous_centroids=first.centroids, seed=11)
    assert _ids(second, shuffled) == _ids(first, customers)
    assert second.centroids["cluster_name"].tolist() == first.centroids["cluster_name"].tolist()


def test_new_centroids_inherit_the_ids_of_the_nearest_previous_ones(customers, first):
    renamed = {0: 7, 1: 3, 2: 5}  # ids an older run had handed out
    previous = first.centroids.assign(cluster_id=first.centroids["cluster_id"].map(renamed))
    second = fit_clusters(customers, previous_centroids=previous, seed=11)
    expected = {c: renamed[i] for c, i in _ids(first, customers).items()}
    assert _ids(second, customers) == expected
