"""Population stability (PSI) of features and scores against the training window."""

from __future__ import annotations

import numpy as np
import pandas as pd

_EPSILON = 1e-4  # floor for empty bins, so PSI stays finite


def reference_bins(values: pd.Series, bins: int = 10) -> dict:
    """Decile edges of a reference distribution and the share of values in each bin (+ nulls)."""
    present = values.dropna().to_numpy(dtype=float)
    edges = (
        np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])) if len(present) else []
    )
    return {"edges": [float(e) for e in edges], "shares": _shares(values, edges)}


def _shares(values: pd.Series, edges) -> list[float]:
    """Share of values per bin defined by inner edges; the last entry is the null share."""
    numbers = values.to_numpy(dtype=float)
    present = numbers[~np.isnan(numbers)]
    counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1)
    total = max(len(numbers), 1)
    return [float(c) / total for c in counts] + [float(len(numbers) - len(present)) / total]


def psi(reference: dict, values: pd.Series) -> float:
    """Population stability index of ``values`` against a ``reference_bins`` result."""
    expected = np.maximum(np.asarray(reference["shares"]), _EPSILON)
    actual = np.maximum(np.asarray(_shares(values, reference["edges"])), _EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def drift_table(
    references: dict[str, dict], current: dict[str, pd.Series], threshold: float
) -> pd.DataFrame:
    """One row per monitored series: its PSI and whether it crosses the alert threshold."""
    rows = [
        {"name": name, "psi": psi(references[name], current[name])}
        for name in references
        if name in current
    ]
    frame = pd.DataFrame(rows, columns=["name", "psi"])
    return frame.assign(threshold=threshold, is_alert=frame["psi"] > threshold)
