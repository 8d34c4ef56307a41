"""LightGBM purchase propensity: weighted fit with early stopping, a calibrated stacked blend
with BG/NBD, and per-customer reasons."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.bgnbd import EXPECTED, bgnbd_log_odds
from models.metrics import top_decile_lift

MODEL_NAME = "purchase_propensity"


@dataclass(frozen=True)
class TrainingParams:
    """LightGBM settings; ``num_threads`` stays small because the machine is shared.

    Small, strongly regularized trees: with BG/NBD as the starting margin the booster only
    learns a correction, and weak learners keep that correction from chasing snapshot noise.
    """

    learning_rate: float = 0.05
    num_leaves: int = 4
    min_child_samples: int = 400
    feature_fraction: float = 0.9
    lambda_l2: float = 10.0
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


#: Candidate weights of the trees' correction on top of the BG/NBD margin (0 = BG/NBD alone).
TREE_WEIGHTS = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))


def base_margin(frame: pd.DataFrame, stacked: bool) -> np.ndarray:
    """Where boosting starts for each row: BG/NBD's log-odds (0 where it has none), or 0."""
    if not stacked:
        return np.zeros(len(frame))
    return np.nan_to_num(bgnbd_log_odds(frame), nan=0.0)


def calibration_inputs(raw: np.ndarray, frame: pd.DataFrame, stacked: bool) -> np.ndarray:
    """Inputs of the final logistic layer: the blended log-odds, plus a no-BG/NBD flag when
    stacked (customers without a purchase start from margin 0, not from a BG/NBD view)."""
    if not stacked:
        return raw.reshape(-1, 1)
    return np.column_stack([raw, np.isnan(bgnbd_log_odds(frame)).astype(float)])


@dataclass
class PropensityModel:
    """A hybrid of BG/NBD and LightGBM, and the logistic calibration on top.

    With BG/NBD features (``models.bgnbd``) the booster is fitted as a correction to BG/NBD's
    log-odds (its init score), and the blended log-odds are margin + ``tree_weight`` · trees,
    the weight chosen on the tune half. BG/NBD carries what trees cannot extrapolate (older
    customers than any in training); trees add what BG/NBD ignores (spend, trends). Without
    BG/NBD features the model is the booster alone (weight 1, Platt scaling).
    """

    booster: lgb.Booster
    features: list[str]
    tree_weight: float
    calibration_coef: list[float]
    calibration_intercept: float

    @property
    def stacked(self) -> bool:
        """Whether the booster corrects a BG/NBD margin."""
        return EXPECTED in self.features

    def raw_scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Uncalibrated blended log-odds."""
        trees = self.booster.predict(frame[self.features], raw_score=True)
        return base_margin(frame, self.stacked) + self.tree_weight * trees

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated purchase probabilities."""
        inputs = calibration_inputs(self.raw_scores(frame), frame, self.stacked)
        logits = inputs @ np.asarray(self.calibration_coef) + self.calibration_intercept
        return 1.0 / (1.0 + np.exp(-logits))

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
        """Write ``model.txt`` (LightGBM) and ``calibration.json`` (features, final layer)."""
        directory.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(directory / "model.txt"))
        calibration = {
            "features": self.features,
            "tree_weight": self.tree_weight,
            "calibration_coef": self.calibration_coef,
            "calibration_intercept": self.calibration_intercept,
        }
        (directory / "calibration.json").write_text(json.dumps(calibration, indent=2))

    @classmethod
    def load(cls, directory: Path) -> PropensityModel:
        """Read a model written by ``save`` (or by the earlier Platt-only layout)."""
        calibration = json.loads((directory / "calibration.json").read_text())
        booster = lgb.Booster(model_file=str(directory / "model.txt"))
        if "platt_a" in calibration:
            layer = (1.0, [calibration["platt_a"]], calibration["platt_b"])
        else:
            layer = tuple(calibration[k] for k in ("tree_weight", "calibration_coef",
                                                   "calibration_intercept"))  # fmt: skip
        return cls(booster, calibration["features"], *layer)


def fit_propensity(
    train: pd.DataFrame, tune: pd.DataFrame, features: list[str], params: TrainingParams
) -> PropensityModel:
    """Fit on ``train`` (class-weighted) and stop early on ``tune``; choose the trees' weight in
    the BG/NBD blend and calibrate, both on ``tune`` only. Finally the trees are refitted with
    the chosen number of rounds on ``train`` + ``tune``: the tune window is the most recent
    labelled history, closest to the scoring date, and nothing chosen on it changes."""
    from sklearn.linear_model import LogisticRegression

    _check_two_classes(train["label"], "training")
    _check_two_classes(tune["label"], "tuning")
    stacked = EXPECTED in features
    booster = _boost(train, features, params, params.max_rounds, stop_on=tune)
    model = PropensityModel(booster, features, 1.0, [], 0.0)
    if stacked:
        model.tree_weight = choose_tree_weight(model, tune)
    inputs = calibration_inputs(model.raw_scores(tune), tune, stacked)
    layer = LogisticRegression(C=1e6).fit(inputs, tune["label"].to_numpy())
    model.calibration_coef = [float(c) for c in layer.coef_[0]]
    model.calibration_intercept = float(layer.intercept_[0])
    both = pd.concat([train, tune], ignore_index=True)
    model.booster = _boost(both, features, params, booster.current_iteration())
    return model


def _boost(
    train: pd.DataFrame,
    features: list[str],
    params: TrainingParams,
    rounds: int,
    stop_on: pd.DataFrame | None = None,
) -> lgb.Booster:
    """Class-weighted boosting from the BG/NBD margin (when present); with ``stop_on`` it
    stops early on that frame and keeps the best iteration."""
    stacked = EXPECTED in features
    positives = float(train["label"].sum())
    train_set = lgb.Dataset(train[features], train["label"], free_raw_data=False,
                            init_score=base_margin(train, stacked))  # fmt: skip
    options = {}
    if stop_on is not None:
        stop_set = lgb.Dataset(stop_on[features], stop_on["label"], reference=train_set,
                               init_score=base_margin(stop_on, stacked))  # fmt: skip
        options = {
            "valid_sets": [stop_set],
            "callbacks": [lgb.early_stopping(params.early_stopping_rounds, verbose=False)],
        }
    booster = lgb.train(
        params.lightgbm(scale_pos_weight=(len(train) - positives) / positives),
        train_set,
        num_boost_round=rounds,
        **options,
    )
    if stop_on is None:
        return booster
    return booster.model_from_string(booster.model_to_string(num_iteration=booster.best_iteration))


def choose_tree_weight(model: PropensityModel, tune: pd.DataFrame) -> float:
    """The weight of the trees in the blend with the best top-decile lift on ``tune`` (ties:
    best ROC AUC, then the smaller weight). 0 keeps BG/NBD alone when the trees do not help."""
    from sklearn.metrics import roc_auc_score

    labels = tune["label"].to_numpy()
    margin = base_margin(tune, True)
    trees = model.booster.predict(tune[model.features], raw_score=True)
    scored = []
    for weight in TREE_WEIGHTS:
        blended = margin + weight * trees
        lift = round(top_decile_lift(labels, blended), 3)
        scored.append((lift, round(roc_auc_score(labels, blended), 4), -weight))
    return float(-max(scored)[2])


def params_dict(params: TrainingParams) -> dict:
    """The training parameters as a plain dict (stored with the model)."""
    return asdict(params)
