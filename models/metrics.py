"""Quality measures of a probability model on a labelled window."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score


def top_decile_lift(labels: np.ndarray, scores: np.ndarray) -> float:
    """Purchase rate among the top 10 % by score divided by the overall purchase rate.

    Customers tied with the score at the cut count in proportion to the slots left (the
    expected lift under random tie-breaking), so row order never decides the result.
    """
    labels = np.asarray(labels, dtype=float)
    scores = np.asarray(scores, dtype=float)
    if labels.mean() == 0:
        return float("nan")
    slots = max(1, int(np.ceil(len(scores) * 0.1)))
    cut = np.sort(scores)[::-1][slots - 1]
    above, tied = scores > cut, scores == cut
    buyers = labels[above].sum() + (slots - above.sum()) * labels[tied].mean()
    return float(buyers / slots / labels.mean())


def expected_calibration_error(
    labels: np.ndarray, probabilities: np.ndarray, bins: int = 10
) -> float:
    """Mean |observed rate - mean probability| over equal-size score bins, weighted by size."""
    labels = np.asarray(labels, dtype=float)
    probabilities = np.asarray(probabilities, dtype=float)
    order = np.argsort(probabilities, kind="stable")
    error = 0.0
    for chunk in np.array_split(order, bins):
        if len(chunk):
            error += len(chunk) * abs(labels[chunk].mean() - probabilities[chunk].mean())
    return float(error / len(labels))


def evaluate(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC, log-loss, top-decile lift and calibration error of probabilities."""
    labels = np.asarray(labels, dtype=int)
    if labels.min() == labels.max():
        raise ValueError(
            f"the evaluation window has only one class ({labels.max()}) in {len(labels)} rows: "
            "no ranking quality can be measured"
        )
    clipped = np.clip(probabilities, 1e-6, 1 - 1e-6)
    return {
        "roc_auc": float(roc_auc_score(labels, probabilities)),
        "pr_auc": float(average_precision_score(labels, probabilities)),
        "log_loss": float(log_loss(labels, clipped, labels=[0, 1])),
        "top_decile_lift": top_decile_lift(labels, probabilities),
        "calibration_error": expected_calibration_error(labels, probabilities),
        "positive_rate": float(labels.mean()),
        "rows": int(len(labels)),
    }
