"""The BG/NBD + LightGBM hybrid: BG/NBD features as lifetimes computes them, a blend weight
learned on the tune half only, and no loss to BG/NBD in a world BG/NBD generates."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from bench.propensity_vs_bgnbd import compare, simulate_bgnbd_orders
from models.bgnbd import EXPECTED, P_ALIVE, P_PURCHASE, add_bgnbd_features
from models.features import FeatureStore, compile_feature_query
from models.metrics import evaluate
from models.orders_only import build_feature_table, load_orders_as_marts
from models.pipeline import split_validation
from models.propensity import TrainingParams, fit_propensity

AS_OF = datetime(2025, 10, 1)


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    return simulate_bgnbd_orders(4000, AS_OF + timedelta(days=30))


def test_bgnbd_features_equal_lifetimes_on_the_same_orders(tmp_path, simulated):
    from lifetimes import BetaGeoFitter
    from lifetimes.utils import summary_data_from_transaction_data

    from cdp.settings import load_settings

    past = simulated[simulated["ordered_at"] <= AS_OF]
    query = compile_feature_query(load_settings({"CDP_HOME": str(tmp_path)}))
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        load_orders_as_marts(con, past)
        build_feature_table(con, query, AS_OF)
        frame = add_bgnbd_features(FeatureStore(query, con, AS_OF).features(AS_OF), 30)
    ours = frame.set_index("customer_id")
    summary = summary_data_from_transaction_data(
        past, "customer_id", "ordered_at", observation_period_end=AS_OF, freq="D"
    )
    fitter = BetaGeoFitter(penalizer_coef=1e-4).fit(
        summary["frequency"], summary["recency"], summary["T"]
    )
    args = (summary["frequency"], summary["recency"], summary["T"])
    theirs = pd.DataFrame(
        {
            EXPECTED: fitter.conditional_expected_number_of_purchases_up_to_time(30, *args),
            P_ALIVE: fitter.conditional_probability_alive(*args),
        },
        index=summary.index.astype(str),
    )
    for column in (EXPECTED, P_ALIVE):
        np.testing.assert_allclose(ours.loc[theirs.index, column], theirs[column], rtol=1e-3)
    assert ((ours[P_PURCHASE] > 0) & (ours[P_PURCHASE] <= ours[P_ALIVE])).all()


def test_too_few_repeat_buyers_leave_the_bgnbd_features_empty():
    frame = pd.DataFrame(
        {"purchase_days": [1, 2, 0], "days_since_first_purchase": [10, 40, None],
         "days_since_last_purchase": [10, 5, None]}
    )  # fmt: skip
    enriched = add_bgnbd_features(frame, 30)
    assert enriched[[EXPECTED, P_ALIVE, P_PURCHASE]].isna().all().all()


def _labels(frame: pd.DataFrame, seed: int, trees_matter: bool) -> np.ndarray:
    """Buying follows BG/NBD's expected purchases, plus the planted feature if ``trees_matter``."""
    rng = np.random.default_rng(seed)
    logit = np.log(np.expm1(np.clip(frame[EXPECTED].to_numpy(), 1e-9, None)))
    if trees_matter:
        logit = logit + 1.5 * frame["planted"].to_numpy()
    return (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)


def _frame(rows: int, seed: int) -> pd.DataFrame:
    """BG/NBD columns, a planted feature and labels that depend on both."""
    rng = np.random.default_rng(seed)
    expected = rng.gamma(0.6, 0.5, size=rows)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{seed}-{i}" for i in range(rows)],
            EXPECTED: expected,
            P_ALIVE: rng.uniform(size=rows),
            P_PURCHASE: -np.expm1(-expected),
            "planted": rng.normal(size=rows),
        }
    )
    return frame.assign(label=_labels(frame, seed, trees_matter=True))


def test_the_blend_weight_is_learned_on_the_tune_half():
    features = [EXPECTED, P_ALIVE, P_PURCHASE, "planted"]
    train = _frame(6000, 1)
    tune, holdout = split_validation(_frame(6000, 2))
    model = fit_propensity(train, tune, features, TrainingParams())
    assert model.tree_weight > 0.5  # the trees find the planted signal BG/NBD misses
    # Same training rows, but a tune half where only BG/NBD matters: early stopping and the
    # blend weight, both chosen there, leave a model that ranks (almost) like BG/NBD.
    bgnbd_only_tune = tune.assign(label=_labels(tune, 3, trees_matter=False))
    bgnbd_only = fit_propensity(train, bgnbd_only_tune, features, TrainingParams())
    bgnbd = holdout[EXPECTED]
    closeness = [bgnbd.corr(pd.Series(m.predict(holdout), index=holdout.index), "spearman")
                 for m in (model, bgnbd_only)]  # fmt: skip
    assert closeness[1] > 0.95 > closeness[0]
    labels = holdout["label"].to_numpy()
    assert (
        evaluate(labels, model.predict(holdout))["roc_auc"]
        > evaluate(labels, holdout[EXPECTED].to_numpy())["roc_auc"]
    )


def test_the_hybrid_does_not_lose_to_bgnbd_where_bgnbd_is_the_truth(tmp_path, simulated):
    result = compare(simulated, AS_OF, 30, tmp_path)
    ours, theirs = result["lightgbm"], result["bgnbd"]
    assert ours["roc_auc"] >= theirs["roc_auc"] - 0.01
    assert ours["top_decile_lift"] >= theirs["top_decile_lift"] * 0.97
