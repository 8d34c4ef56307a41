"""Behavioural clusters: K-Means on standardized RFM, engagement and category-mix features.

k is chosen by silhouette (Davies–Bouldin breaks ties), far-out customers are cut by distance to
their centroid and flagged rather than pulling centroids, and cluster ids stay stable across
retrains by matching new centroids to the previous run's (Hungarian assignment).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import davies_bouldin_score, silhouette_score
from sklearn.preprocessing import StandardScaler

#: Behavioural inputs: feature → (word when low, word when high), used to name clusters.
CLUSTER_FEATURES: dict[str, tuple[str, str]] = {
    "days_since_last_purchase": ("recent buyers", "lapsed"),
    "purchase_count": ("few orders", "frequent buyers"),
    "revenue_total": ("low spend", "high spend"),
    "avg_order_value": ("small baskets", "big baskets"),
    "events_30d": ("quiet online", "active online"),
    "events_90d": ("rarely online", "regular visitors"),
    "cart_adds_30d": ("no cart adds", "cart adders"),
    "distinct_categories": ("narrow interest", "broad interest"),
    "top_category_share": ("mixed basket", "category loyal"),
}
#: Features that are not heavy-tailed counts or amounts (kept linear, not log-scaled).
_LINEAR = {"top_category_share"}
#: Silhouette is quadratic in rows: measure it on a fixed-seed sample of at most this many.
_QUALITY_SAMPLE = 3000
#: A customer further from its centroid than Q3 + this many IQRs (of all distances) is an outlier.
_OUTLIER_IQRS = 3.0
#: A first-pass cluster holding less than this share of customers is made of outliers.
_MIN_CLUSTER_SHARE = 0.01


@dataclass(frozen=True)
class ClusterResult:
    """Assignments, named centroids and quality of one clustering run."""

    assignments: pd.DataFrame  # customer_id, cluster_id, cluster_name, is_outlier
    centroids: pd.DataFrame  # cluster_id, cluster_name, size, one column per feature
    k: int
    silhouette: float
    davies_bouldin: float
    candidates: list[dict]
    outlier_distance: float
    features: list[str]


def behaviour_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """The clustering inputs of a feature frame: nulls filled, counts/amounts log-scaled."""
    columns = [c for c in CLUSTER_FEATURES if c in frame.columns]
    matrix = frame[columns].astype(float).copy()
    if "days_since_last_purchase" in matrix:  # never bought: as lapsed as their whole history
        matrix["days_since_last_purchase"] = matrix["days_since_last_purchase"].fillna(
            frame["days_since_first_seen"].astype(float)
        )
    matrix = matrix.fillna(0.0)
    for column in matrix.columns.difference(list(_LINEAR)):
        matrix[column] = np.log1p(matrix[column].clip(lower=0))
    varying = [c for c in matrix.columns if matrix[c].std() > 0]
    return matrix[varying]


def _sample(rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(rows, size=min(rows, _QUALITY_SAMPLE), replace=False))


def _choose_k(z: np.ndarray, k_range: range, seed: int) -> tuple[int, list[dict]]:
    """Best k by silhouette (then lower Davies–Bouldin), with every candidate's scores."""
    sample = z[_sample(len(z), seed)]
    candidates = []
    for k in k_range:
        if k >= len(sample):
            break
        labels = KMeans(k, n_init=4, random_state=seed).fit_predict(sample)
        if len(set(labels)) < 2:
            continue
        candidates.append(
            {
                "k": k,
                "silhouette": float(silhouette_score(sample, labels)),
                "davies_bouldin": float(davies_bouldin_score(sample, labels)),
            }
        )
    if not candidates:
        raise ValueError(f"cannot cluster {len(z)} customers into {list(k_range)} groups")
    best = max(candidates, key=lambda c: (round(c["silhouette"], 4), -c["davies_bouldin"]))
    return best["k"], candidates


def _outliers(z: np.ndarray, k_range: range, seed: int) -> tuple[np.ndarray, float]:
    """Customers far from their centroid (Q3 + 3 IQR) or in a cluster too small to act on,
    found with a first clustering of everyone; returns the mask and the distance cut."""
    k, _ = _choose_k(z, k_range, seed)
    first = KMeans(k, n_init=4, random_state=seed).fit(z)
    distances = np.linalg.norm(z - first.cluster_centers_[first.labels_], axis=1)
    q1, q3 = np.percentile(distances, [25, 75])
    cut = float(q3 + _OUTLIER_IQRS * (q3 - q1))
    sizes = np.bincount(first.labels_, minlength=k)
    tiny = sizes[first.labels_] < max(2, _MIN_CLUSTER_SHARE * len(z))
    return (distances > cut) | tiny, cut


def _stable_ids(
    centers: np.ndarray, sizes: np.ndarray, previous: np.ndarray | None, previous_ids: list[int]
) -> list[int]:
    """Cluster id per new centroid: the matched previous id, else the next free id."""
    if previous is None or len(previous) == 0:
        order = np.argsort(-sizes, kind="stable")  # first run: biggest cluster is 0
        ids = np.empty(len(centers), dtype=int)
        ids[order] = np.arange(len(centers))
        return ids.tolist()
    cost = np.linalg.norm(centers[:, None, :] - previous[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(cost)
    ids = [-1] * len(centers)
    for row, col in zip(rows, cols, strict=True):
        ids[row] = previous_ids[col]
    next_id = max(previous_ids) + 1
    for row in range(len(centers)):
        if ids[row] == -1:
            ids[row], next_id = next_id, next_id + 1
    return ids


def _names(z_centers: np.ndarray, features: list[str], ids: list[int]) -> list[str]:
    """A name per cluster from its two most distinctive features (|z| of the centroid)."""
    names = []
    for center, cluster_id in zip(z_centers, ids, strict=True):
        strongest = [i for i in np.argsort(-np.abs(center))[:2] if abs(center[i]) >= 0.5]
        words = [CLUSTER_FEATURES[features[i]][int(center[i] > 0)] for i in strongest]
        name = ", ".join(words) or "average"
        names.append(name if name not in names else f"{name} #{cluster_id}")
    return names


def fit_clusters(
    frame: pd.DataFrame,
    previous_centroids: pd.DataFrame | None = None,
    k_range: range = range(2, 9),
    seed: int = 7,
) -> ClusterResult:
    """Cluster the customers of a feature frame; reuse previous ids for matching centroids."""
    matrix = behaviour_matrix(frame)
    features = list(matrix.columns)
    scaler = StandardScaler().fit(matrix)
    z = scaler.transform(matrix)
    is_outlier, cut = _outliers(z, k_range, seed)
    k, candidates = _choose_k(z[~is_outlier], k_range, seed)
    final = KMeans(k, n_init=4, random_state=seed).fit(z[~is_outlier])
    labels = final.predict(z)
    sizes = np.bincount(labels[~is_outlier], minlength=k)
    previous = None
    previous_ids: list[int] = []
    if previous_centroids is not None and len(previous_centroids):
        aligned = previous_centroids.reindex(columns=features).fillna(0.0)
        previous = scaler.transform(aligned)
        previous_ids = previous_centroids["cluster_id"].astype(int).tolist()
    ids = _stable_ids(final.cluster_centers_, sizes, previous, previous_ids)
    names = _names(final.cluster_centers_, features, ids)
    inliers = np.flatnonzero(~is_outlier)
    sample = inliers[_sample(len(inliers), seed)]
    centroids = pd.DataFrame(scaler.inverse_transform(final.cluster_centers_), columns=features)
    centroids.insert(0, "size", sizes)
    centroids.insert(0, "cluster_name", names)
    centroids.insert(0, "cluster_id", ids)
    assignments = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].to_numpy(),
            "cluster_id": np.asarray(ids)[labels],
            "cluster_name": np.asarray(names, dtype=object)[labels],
            "is_outlier": is_outlier,
        }
    )
    return ClusterResult(
        assignments=assignments,
        centroids=centroids.sort_values("cluster_id", ignore_index=True),
        k=k,
        silhouette=float(silhouette_score(z[sample], labels[sample])),
        davies_bouldin=float(davies_bouldin_score(z[inliers], labels[inliers])),
        candidates=candidates,
        outlier_distance=cut,
        features=features,
    )
