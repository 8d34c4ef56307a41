"""LightGBM purchase propensity: weighted fit with early stopping, Platt calibration, reasons."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

MODEL_NAME = "purchase_propensity"


@dataclass(frozen=True)
class TrainingParams:
    """LightGBM settings; ``num_threads`` stays small because the machine is shared."""

    learning_rate: float = 0.05
    num_leaves: int = 15
    min_child_samples: int = 40
    feature_fraction: float = 0.9
    lambda_l2: float = 1.0
    max_rounds: int = 400
    early_stopping_rounds: int = 30
    num_threads: int = 1
    seed: int = 7

    def lightgbm(self, scale_pos_weight: float) -> dict:
        """Parameters for ``lgb.train`` (the class weight balances positives and negatives)."""
        return {
            "objective": "binary",
            "metric": "auc",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "lambda_l2": self.lambda_l2,
            "scale_pos_weight": scale_pos_weight,
            "num_threads": self.num_threads,
            "seed": self.seed,
            "deterministic": True,
            "force_col_wise": True,
            "verbosity": -1,
        }


def _check_two_classes(labels: pd.Series, what: str) -> None:
    if labels.nunique() < 2:
        raise ValueError(
            f"the {what} rows ({len(labels)}) hold only one label {sorted(set(labels))}"
            ": a propensity model needs buyers and non-buyers (more history or a longer horizon)"
        )


@dataclass
class PropensityModel:
    """A fitted booster plus its feature list and Platt calibration (p = σ(a·logit + b))."""

    booster: lgb.Booster
    features: list[str]
    platt_a: float
    platt_b: float

    def raw_scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Uncalibrated log-odds."""
        return self.booster.predict(frame[self.features], raw_score=True)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated purchase probabilities."""
        return 1.0 / (1.0 + np.exp(-(self.platt_a * self.raw_scores(frame) + self.platt_b)))

    def importance(self) -> list[tuple[str, float]]:
        """Features by total gain, most important first."""
        gains = self.booster.feature_importance(importance_type="gain")
        return sorted(zip(self.features, map(float, gains), strict=True), key=lambda p: -p[1])

    def top_reasons(self, frame: pd.DataFrame, count: int = 3) -> list[str]:
        """Per row, JSON of the features that moved its score most (LightGBM ``pred_contrib``)."""
        contributions = self.booster.predict(frame[self.features], pred_contrib=True)[:, :-1]
        values = frame[self.features].to_numpy(dtype=float)
        top = np.argsort(-np.abs(contributions), axis=1)[:, :count]
        reasons = []
        for row, columns in enumerate(top):
            reasons.append(
                json.dumps(
                    [
                        {
                            "feature": self.features[c],
                            "value": None if np.isnan(values[row, c]) else values[row, c],
                            "contribution": round(float(contributions[row, c]), 4),
                        }
                        for c in columns
                    ]
                )
            )
        return reasons

    def save(self, directory: Path) -> None:
        """Write ``model.txt`` (LightGBM) and ``calibration.json``."""
        directory.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(directory / "model.txt"))
        calibration = {"features": self.features, "platt_a": self.platt_a, "platt_b": self.platt_b}
        (directory / "calibration.json").write_text(json.dumps(calibration, indent=2))

    @classmethod
    def load(cls, directory: Path) -> PropensityModel:
        """Read a model written by ``save``."""
        calibration = json.loads((directory / "calibration.json").read_text())
        booster = lgb.Booster(model_file=str(directory / "model.txt"))
        return cls(booster, calibration["features"], calibration["platt_a"], calibration["platt_b"])


def fit_propensity(
    train: pd.DataFrame, tune: pd.DataFrame, features: list[str], params: TrainingParams
) -> PropensityModel:
    """Fit on ``train`` (class-weighted), stop early and calibrate on ``tune``."""
    from sklearn.linear_model import LogisticRegression

    _check_two_classes(train["label"], "training")
    _check_two_classes(tune["label"], "tuning")
    positives = float(train["label"].sum())
    train_set = lgb.Dataset(train[features], train["label"], free_raw_data=False)
    tune_set = lgb.Dataset(tune[features], tune["label"], reference=train_set)
    booster = lgb.train(
        params.lightgbm(scale_pos_weight=(len(train) - positives) / positives),
        train_set,
        num_boost_round=params.max_rounds,
        valid_sets=[tune_set],
        callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)],
    )
    booster = booster.model_from_string(
        booster.model_to_string(num_iteration=booster.best_iteration)
    )
    raw = booster.predict(tune[features], raw_score=True).reshape(-1, 1)
    platt = LogisticRegression(C=1e6).fit(raw, tune["label"].to_numpy())
    return PropensityModel(booster, features, float(platt.coef_[0, 0]), float(platt.intercept_[0]))


def params_dict(params: TrainingParams) -> dict:
    """The training parameters as a plain dict (stored with the model)."""
    return asdict(params)
