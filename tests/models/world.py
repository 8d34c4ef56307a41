"""A synthetic world where buying depends on known features, written as feature files."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from cdp.settings import Settings
from models.pipeline import FeatureFiles

#: The features that drive the label, strongest first.
PLANTED = ["recent_visits", "cart_value"]
NOISE = ["shoe_size", "lucky_number", "favourite_hour"]


def world(rows: int, seed: int, as_of: datetime) -> pd.DataFrame:
    """Customers whose purchase odds rise with the planted features only."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(size=rows) for name in PLANTED + NOISE})
    logit = -2.0 + 2.0 * frame["recent_visits"] + 1.0 * frame["cart_value"]
    frame["label"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    frame.insert(0, "features_as_of", as_of)
    frame.insert(0, "customer_id", [f"c{seed}-{i:05d}" for i in range(rows)])
    return frame


def write_feature_files(settings: Settings, as_of: datetime, horizon_days: int = 30) -> None:
    """What ``build_features`` would write for as_of, drawn from the synthetic world."""
    files = FeatureFiles.for_as_of(settings, as_of)
    files.directory.mkdir(parents=True, exist_ok=True)
    snapshots = [world(2000, seed, as_of - timedelta(days=30 * seed)) for seed in (2, 3)]
    pd.concat(snapshots, ignore_index=True).to_parquet(files.path("train"))
    world(2000, 1, as_of - timedelta(days=horizon_days)).to_parquet(files.path("validation"))
    world(1000, 9, as_of).drop(columns="label").to_parquet(files.path("current"))
    plan = {"as_of": str(as_of), "horizon_days": horizon_days}
    (files.directory / "plan.json").write_text(json.dumps(plan))
