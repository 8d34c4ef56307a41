"""The propensity model finds a planted signal, calibrates it and explains each score."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest

from models.metrics import evaluate
from models.pipeline import split_validation
from models.propensity import PropensityModel, TrainingParams, fit_propensity
from models.scoring import deciles, score_frame
from tests.models.world import NOISE, PLANTED, world

AS_OF = datetime(2026, 6, 1)


@pytest.fixture(scope="module")
def fitted():
    train = world(4000, 2, AS_OF)
    tune, holdout = split_validation(world(4000, 1, AS_OF))
    model = fit_propensity(train, tune, PLANTED + NOISE, TrainingParams())
    return model, holdout


def test_model_finds_the_planted_signal_and_ranks_it_first(fitted):
    model, holdout = fitted
    metrics = evaluate(holdout["label"], model.predict(holdout))
    assert metrics["roc_auc"] > 0.8
    assert metrics["top_decile_lift"] > 2.5
    assert [name for name, _ in model.importance()[:2]] == PLANTED


def test_probabilities_are_calibrated_despite_class_weighting(fitted):
    model, holdout = fitted
    probabilities = model.predict(holdout)
    assert evaluate(holdout["label"], probabilities)["calibration_error"] < 0.05
    assert abs(probabilities.mean() - holdout["label"].mean()) < 0.03


def test_scores_carry_deciles_and_the_features_behind_them(fitted, tmp_path):
    model, holdout = fitted
    model.save(tmp_path / "m")
    reloaded = PropensityModel.load(tmp_path / "m")
    scored = score_frame(reloaded, holdout)
    np.testing.assert_allclose(scored["score"], model.predict(holdout))
    assert sorted(scored["decile"].unique()) == list(range(1, 11))
    assert scored.loc[scored["score"].idxmax(), "decile"] == 10
    top = scored.sort_values("score").iloc[-1]
    reasons = json.loads(top["top_reasons"])
    assert len(reasons) == 3 and reasons[0]["feature"] in PLANTED
    assert reasons[0]["contribution"] > 0


def test_deciles_split_ties_evenly_and_keep_small_sets_in_range():
    assert np.bincount(deciles(np.zeros(100)))[1:].tolist() == [10] * 10
    assert set(deciles(np.array([0.3, 0.1]))) <= set(range(1, 11))


def test_a_window_with_one_class_is_refused_with_a_clear_message():
    train = world(500, 2, AS_OF)
    tune = world(500, 1, AS_OF).assign(label=0)
    with pytest.raises(ValueError, match="only one label"):
        fit_propensity(train, tune, PLANTED, TrainingParams())
