"""Leakage-free comparison of the platform's propensity model with BG/NBD on an orders file.

``python -m bench.propensity_vs_bgnbd ORDERS --as-of 1997-09-30 --horizon 92 30``
``python -m bench.propensity_vs_bgnbd --simulate 20000 --as-of 2025-10-01 --horizon 92 30``

``--simulate N`` replaces the file with N customers of a world where BG/NBD is the true
purchase process (customers joining over two years): there BG/NBD is the best possible
ranking, so the platform's model must not lose to it.

Only orders up to ``--as-of`` reach the models. The platform path runs unchanged on stand-in
marts built from those orders (``models.orders_only``): the dbt feature model compiled for
past snapshots, the temporal training protocol, calibration, and champion scoring. BG/NBD
(``lifetimes.BetaGeoFitter``) is fitted on the same orders and ranks customers by their
expected purchases in the next H days. Both are then judged on who actually bought in
(as_of, as_of + H], which neither saw.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from cdp.settings import load_settings
from models import pipeline
from models.features import compile_feature_query
from models.metrics import evaluate
from models.orders_only import build_feature_table, load_orders_as_marts


def read_orders(path: Path, customer: str, date: str, amount: str, date_format: str | None,
                sep: str) -> pd.DataFrame:  # fmt: skip
    """customer_id, ordered_at, total_amount from a delimited orders file (clear errors)."""
    separator = r"\s+" if sep == "whitespace" else sep
    raw = pd.read_csv(path, sep=separator, dtype=str)
    missing = [c for c in (customer, date, amount) if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: no column(s) {missing}; the file has {list(raw.columns)}")
    ordered_at = pd.to_datetime(raw[date], format=date_format, errors="coerce")
    total = pd.to_numeric(raw[amount], errors="coerce")
    for column, parsed in ((date, ordered_at), (amount, total)):
        bad = parsed.isna() & raw[column].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(
                f"{path}: row {row + 2}, field {column!r}: cannot parse {raw[column].iloc[row]!r}"
            )
    return pd.DataFrame(
        {"customer_id": raw[customer].str.strip(), "ordered_at": ordered_at, "total_amount": total}
    )


#: BG/NBD parameters of the simulated world (per day; close to the CDNOW fit).
SIMULATED_PARAMS = {"r": 0.25, "alpha": 30.0, "a": 0.8, "b": 2.5}


def simulate_bgnbd_orders(customers: int, end: datetime, seed: int = 7) -> pd.DataFrame:
    """Orders up to ``end`` of customers who join uniformly over two years and then buy exactly
    as BG/NBD assumes: Poisson purchases at a Gamma(r, α) rate, after each repeat purchase
    dropping out with a Beta(a, b) probability. Amounts are independent of behaviour."""
    rng = np.random.default_rng(seed)
    params = SIMULATED_PARAMS
    rates = rng.gamma(params["r"], 1 / params["alpha"], size=customers)
    dropouts = rng.beta(params["a"], params["b"], size=customers)
    ages = rng.integers(30, 730, size=customers)
    rows = []
    for customer, (rate, dropout, age) in enumerate(zip(rates, dropouts, ages, strict=True)):
        day = 0.0
        rows.append((customer, 0.0, age))
        while True:
            day += rng.exponential(1 / rate)
            if day > age:
                break
            rows.append((customer, day, age))
            if rng.random() < dropout:
                break
    frame = pd.DataFrame(rows, columns=["customer", "day", "age"])
    born = pd.Timestamp(end) - pd.to_timedelta(frame["age"], unit="D")
    return pd.DataFrame(
        {
            "customer_id": "s" + frame["customer"].astype(str),
            "ordered_at": (born + pd.to_timedelta(frame["day"], unit="D")).dt.floor("D"),
            "total_amount": rng.lognormal(3.0, 0.5, size=len(frame)).round(2),
        }
    )


def platform_scores(orders: pd.DataFrame, as_of: datetime, horizon: int, home: Path) -> tuple:
    """Scores of the platform's model trained and scored as of ``as_of`` (orders up to it only)."""
    settings = load_settings({"CDP_HOME": str(home), "CDP_PROPENSITY_HORIZON_DAYS": str(horizon)})
    settings.ensure_dirs()
    query = compile_feature_query(settings)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        load_orders_as_marts(con, orders[orders["ordered_at"] <= as_of])
        build_feature_table(con, query, as_of)
    started = time.perf_counter()
    pipeline.build_features(settings, as_of, "bench")
    version = pipeline.train_challenger(settings, as_of, "bench")
    pipeline.record_decision(
        settings, as_of, "bench", pipeline.evaluate_challenger(settings, as_of, "bench", version)
    )
    pipeline.score_customers(settings, as_of, "bench")
    seconds = time.perf_counter() - started
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        scores = con.execute("select customer_id, score from ml.current_scores").df()
        [run] = con.execute(
            "select training_rows, roc_auc, top_decile_lift, calibration_error from ml.model_runs"
        ).fetchall()
    validation = dict(zip(("training_rows", "roc_auc", "lift", "ece"), run, strict=True))
    return scores.set_index("customer_id")["score"], validation, seconds


def bgnbd_scores(orders: pd.DataFrame, as_of: datetime, horizon: int) -> pd.Series:
    """BG/NBD expected purchases in the next H days, fitted on orders up to ``as_of``."""
    from lifetimes import BetaGeoFitter
    from lifetimes.utils import summary_data_from_transaction_data

    summary = summary_data_from_transaction_data(
        orders[orders["ordered_at"] <= as_of], "customer_id", "ordered_at",
        observation_period_end=as_of, freq="D",
    )  # fmt: skip
    fitter = BetaGeoFitter(penalizer_coef=0.0).fit(
        summary["frequency"], summary["recency"], summary["T"]
    )
    expected = fitter.conditional_expected_number_of_purchases_up_to_time(
        horizon, summary["frequency"], summary["recency"], summary["T"]
    )
    return pd.Series(expected.to_numpy(), index=summary.index.astype(str))


def compare(orders: pd.DataFrame, as_of: datetime, horizon: int, home: Path) -> dict:
    """ROC AUC / PR AUC / top-decile lift of both models on the unseen next H days."""
    ours, validation, seconds = platform_scores(orders, as_of, horizon, home)
    theirs = bgnbd_scores(orders, as_of, horizon)
    window = orders[(orders["ordered_at"] > as_of)
                    & (orders["ordered_at"] <= as_of + timedelta(days=horizon))]  # fmt: skip
    buyers = set(window["customer_id"])
    customers = ours.index.intersection(theirs.index)
    labels = np.array([c in buyers for c in customers], dtype=int)
    result = {"as_of": f"{as_of:%Y-%m-%d}", "horizon_days": horizon, "customers": len(customers),
              "buyers": int(labels.sum()), "platform_seconds": round(seconds, 1),
              "platform_validation": validation}  # fmt: skip
    for name, scores in (("lightgbm", ours), ("bgnbd", theirs)):
        metrics = evaluate(labels, scores.loc[customers].to_numpy())
        result[name] = {k: round(metrics[k], 4) for k in ("roc_auc", "pr_auc", "top_decile_lift")}
    lightgbm = evaluate(labels, ours.loc[customers].to_numpy())
    result["lightgbm"]["calibration_error"] = round(lightgbm["calibration_error"], 4)
    return result


def markdown_row(result: dict) -> str:
    """One results-table row."""
    ours, theirs = result["lightgbm"], result["bgnbd"]
    return (
        f"| {result['as_of']} | {result['horizon_days']} | {result['customers']:,} | "
        f"{result['buyers']:,} | {ours['roc_auc']:.3f} | {theirs['roc_auc']:.3f} | "
        f"{ours['pr_auc']:.3f} | {theirs['pr_auc']:.3f} | {ours['top_decile_lift']:.3f} | "
        f"{theirs['top_decile_lift']:.3f} | {ours['calibration_error']:.3f} | "
        f"{result['platform_seconds']:.0f} |"
    )


HEADER = (
    "| as of | H days | customers | buyers in next H | ROC AUC LightGBM | ROC AUC BG/NBD | "
    "PR AUC LightGBM | PR AUC BG/NBD | top-decile lift LightGBM | lift BG/NBD | "
    "calibration error LightGBM | platform s |\n" + "|---" * 12 + "|"
)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the comparison per horizon, print a Markdown table and JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.propensity_vs_bgnbd",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("orders", type=Path, nargs="?", help="orders file: one row per order")
    parser.add_argument(
        "--simulate", type=int, metavar="N", help="no file: N customers of a simulated BG/NBD world"
    )
    parser.add_argument("--as-of", required=True, type=datetime.fromisoformat)
    parser.add_argument("--horizon", type=int, nargs="+", default=[30], help="days (several ok)")
    parser.add_argument("--customer-col", default="customer_id")
    parser.add_argument("--date-col", default="date")
    parser.add_argument("--amount-col", default="amount")
    parser.add_argument("--date-format", help="strptime format, e.g. %%Y%%m%%d (default: ISO)")
    parser.add_argument("--sep", default=",", help="field separator, or 'whitespace'")
    args = parser.parse_args(argv)
    if (args.orders is None) == (args.simulate is None):
        parser.error("give either an orders file or --simulate N")
    if args.simulate is not None:
        end = args.as_of + timedelta(days=max(args.horizon))
        orders = simulate_bgnbd_orders(args.simulate, end)
    else:
        try:
            orders = read_orders(args.orders, args.customer_col, args.date_col, args.amount_col,
                                 args.date_format, args.sep)  # fmt: skip
        except (OSError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    results = []
    for horizon in args.horizon:
        with tempfile.TemporaryDirectory(prefix="cdp-bgnbd-") as home:
            results.append(compare(orders, args.as_of, horizon, Path(home)))
    print(HEADER)
    for result in results:
        print(markdown_row(result))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
