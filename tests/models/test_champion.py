"""Champion/challenger: a worse challenger is recorded but the champion keeps scoring."""

from __future__ import annotations

from datetime import datetime

from cdp.warehouse import connect
from models import pipeline
from models.propensity import TrainingParams
from tests.models.world import write_feature_files

FIRST, SECOND = datetime(2026, 6, 1), datetime(2026, 6, 8)
#: One stump on one feature: a model that cannot be as good as a real fit.
CRIPPLED = TrainingParams(num_leaves=2, max_rounds=1, feature_fraction=0.2, seed=3)


def _retrain(settings, as_of, run_id, params=None) -> dict:
    write_feature_files(settings, as_of)
    version = pipeline.train_challenger(settings, as_of, run_id, params)
    decision = pipeline.evaluate_challenger(settings, as_of, run_id, version)
    pipeline.record_decision(settings, as_of, run_id, decision)
    return decision


def _runs(settings):
    with connect(settings, read_only=True) as con:
        return con.execute(
            "select model_version, as_of, is_promoted, is_champion, decision_reason, roc_auc,"
            " training_rows, training_data_hash, features from ml.model_runs order by as_of"
        ).fetchall()


def test_worse_challenger_is_recorded_but_the_champion_keeps_scoring(settings, monkeypatch):
    monkeypatch.setenv("CDP_PROPENSITY_PROMOTION_TOLERANCE", "0.01")
    first = _retrain(settings, FIRST, "run-1")
    assert first["promote"] and "no champion" in first["reason"]
    second = _retrain(settings, SECOND, "run-2", CRIPPLED)
    assert not second["promote"]
    assert second["champion_version"] == first["model_version"]
    assert "champion kept" in second["reason"] and "tolerance 0.01" in second["reason"]

    (v1, _, promoted1, champion1, _, auc1, rows, data_hash, features), run2 = _runs(settings)
    assert (promoted1, champion1) == (True, True)
    assert run2[2:4] == (False, False) and run2[4] == second["reason"]
    assert run2[5] < auc1 - 0.01
    assert rows == 4000 and len(data_hash) == 64 and "recent_visits" in features

    scored = pipeline.score_customers(settings, SECOND, "run-2")
    assert scored == {"model_version": v1, "scored": 1000}


def test_retraining_the_same_date_replaces_its_run(settings):
    first = _retrain(settings, FIRST, "run-1")
    again = _retrain(settings, FIRST, "run-1-retry")
    assert again["model_version"] == first["model_version"]  # same data + params → same version
    assert again["promote"] and "no champion" in again["reason"]  # not compared with itself
    assert len(_runs(settings)) == 1


def test_a_challenger_within_tolerance_is_promoted(settings, monkeypatch):
    monkeypatch.setenv("CDP_PROPENSITY_PROMOTION_TOLERANCE", "1.0")
    first = _retrain(settings, FIRST, "run-1")
    second = _retrain(settings, SECOND, "run-2", CRIPPLED)
    assert second["promote"] and second["reason"].startswith("promoted:")
    runs = _runs(settings)
    assert [r[3] for r in runs] == [False, True]  # the flag moved to the newest promoted model
    assert (
        pipeline.score_customers(settings, SECOND, "r")["model_version"] != first["model_version"]
    )
    assert pipeline.score_customers(settings, FIRST, "r")["model_version"] == first["model_version"]
