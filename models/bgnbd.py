"""BG/NBD purchase-process features, fitted on one snapshot's own features (no later data).

The BG/NBD model (Fader, Hardie & Lee 2005; ``lifetimes.BetaGeoFitter``) describes repeat
buying as Poisson purchases until an unobserved dropout. Fitted by maximum likelihood on the
customers of a snapshot, it extrapolates in tenure where trees cannot: a customer older than
any seen in training still gets a sensible probability of being alive. Its two outputs are
added as features of that snapshot, so training, validation and scoring frames each carry the
BG/NBD view as it was at their own as_of date.
"""

from __future__ import annotations

import io
import logging
import warnings
from contextlib import redirect_stdout

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: Columns of ``marts.customer_features`` the BG/NBD summary (frequency, recency, T) comes from.
RFM_COLUMNS = ("purchase_days", "days_since_first_purchase", "days_since_last_purchase")
#: Expected purchases in the next H days, the probability that the customer is alive, and the
#: probability of at least one purchase in the next H days.
EXPECTED = "bgnbd_expected_purchases"
P_ALIVE = "bgnbd_p_alive"
P_PURCHASE = "bgnbd_purchase_probability"
BGNBD_FEATURES = (EXPECTED, P_ALIVE, P_PURCHASE)
#: Fewer repeat buyers than this cannot pin down the four BG/NBD parameters.
MIN_REPEAT_BUYERS = 20
#: Ridge penalties on the parameters, tried in turn: the smallest that lets the fit converge.
PENALIZERS = (1e-4, 1e-2)


def rfm_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Daily BG/NBD inputs of each customer with a purchase: frequency (repeat purchase days),
    recency (days from first to last purchase) and T (days from first purchase to as_of)."""
    buyers = frame[frame["purchase_days"] > 0]
    return pd.DataFrame(
        {
            "frequency": buyers["purchase_days"].to_numpy(dtype=float) - 1,
            "recency": (
                buyers["days_since_first_purchase"] - buyers["days_since_last_purchase"]
            ).to_numpy(dtype=float),
            "T": buyers["days_since_first_purchase"].to_numpy(dtype=float),
        },
        index=buyers.index,
    )


def add_bgnbd_features(frame: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """``frame`` plus BG/NBD expected purchases in the next H days and P(alive).

    Customers without a purchase get NaN (BG/NBD starts at the first purchase). When the
    frame has too few repeat buyers or the fit does not converge, both columns are NaN and a
    warning says why; the tree model then simply learns without them.
    """
    missing = [c for c in RFM_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"BG/NBD features need columns {list(RFM_COLUMNS)}; missing {missing}")
    columns = {name: np.full(len(frame), np.nan) for name in BGNBD_FEATURES}
    summary = rfm_summary(frame)
    fitter = _fit(summary)
    if fitter is not None:
        rows = frame.index.get_indexer(summary.index)
        frequency, recency, age = (summary[c].to_numpy() for c in ("frequency", "recency", "T"))
        alive = np.asarray(fitter.conditional_probability_alive(frequency, recency, age))
        columns[EXPECTED][rows] = np.asarray(
            fitter.conditional_expected_number_of_purchases_up_to_time(
                horizon_days, frequency, recency, age
            )
        )
        columns[P_ALIVE][rows] = alive
        columns[P_PURCHASE][rows] = alive * _purchase_probability_if_alive(
            fitter.params_, frequency, age, horizon_days
        )
    return frame.assign(**columns)


def _purchase_probability_if_alive(params, frequency, age, horizon_days) -> np.ndarray:
    """P(≥ 1 purchase in the next H days | alive): 1 − E[e^{−λH}] with λ's posterior
    Gamma(r + x, α + T). A customer alive now cannot drop out before their next purchase."""
    rate = params["alpha"] + age
    return -np.expm1((params["r"] + frequency) * np.log(rate / (rate + horizon_days)))


def _fit(summary: pd.DataFrame):
    from lifetimes import BetaGeoFitter
    from lifetimes.utils import ConvergenceError

    repeat_buyers = int((summary["frequency"] > 0).sum())
    if repeat_buyers < MIN_REPEAT_BUYERS:
        # expected for early training snapshots (no history yet); the model trains without them
        log.info(
            "BG/NBD features skipped: %d repeat buyers (need %d)", repeat_buyers, MIN_REPEAT_BUYERS
        )
        return None
    for penalizer in PENALIZERS:
        # lifetimes prints scipy's whole result before raising ConvergenceError: keep it aside
        printed = io.StringIO()
        try:
            with warnings.catch_warnings(record=True) as caught, redirect_stdout(printed):
                warnings.simplefilter("always")
                fitter = BetaGeoFitter(penalizer_coef=penalizer).fit(
                    summary["frequency"], summary["recency"], summary["T"]
                )
        except (ConvergenceError, ValueError) as error:
            failure = _first_meaningful_line(printed.getvalue() or str(error))
            log.info("BG/NBD fit with penalizer %s did not converge: %s", penalizer, failure)
            continue
        _log_fit_warnings(caught, penalizer)
        return fitter
    log.warning("BG/NBD features skipped: the fit failed (%s)", failure)
    return None


def _log_fit_warnings(caught: list[warnings.WarningMessage], penalizer: float) -> None:
    """One log line per distinct optimizer warning (lifetimes dumps scipy's whole result)."""
    messages = {line for w in caught if (line := _first_meaningful_line(str(w.message)))}
    for message in sorted(messages):
        log.warning("BG/NBD fit (penalizer %s) used with a warning: %s", penalizer, message)


def _first_meaningful_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def bgnbd_log_odds(frame: pd.DataFrame) -> np.ndarray:
    """BG/NBD log-odds of buying in the horizon from its expected purchases E, log(e^E − 1)
    (a Poisson count with mean E is ≥ 1 with odds e^E − 1); NaN where it has no view.

    E ranks better than the exact P(≥ 1 purchase) (``P_PURCHASE``) on real data: BG/NBD's
    constant-rate assumption understates how reliably heavy buyers come back, and E weighs
    them up. Both stay features of the trees.
    """
    expected = np.clip(frame[EXPECTED].to_numpy(dtype=float), 1e-9, 50.0)
    return np.log(np.expm1(expected))
