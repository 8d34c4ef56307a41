"""The ML steps the DAGs run: features → train → evaluate → promote or keep → score → drift →
clusters → publish. Each step is idempotent for its as_of and hands on files or table rows,
never in-memory state, so a retried or backfilled task redoes exactly its own part.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from cdp.settings import Settings
from cdp.warehouse import connect
from models.bgnbd import add_bgnbd_features
from models.clusters import fit_clusters
from models.config import MLConfig
from models.drift import drift_table, reference_bins
from models.features import (
    FeatureStore,
    SnapshotPlan,
    compile_feature_query,
    data_cutoff,
    feature_columns,
    frame_hash,
)
from models.metrics import evaluate
from models.propensity import MODEL_NAME, PropensityModel, TrainingParams, fit_propensity
from models.registry import (
    artifact_dir,
    champion_at,
    champion_before,
    read_metadata,
    record_run,
    write_metadata,
)
from models.schema import ensure_ml_schema
from models.scoring import score_frame, write_scores

log = logging.getLogger(__name__)

CLUSTER_MODEL = "behaviour_clusters"


class NoChampion(RuntimeError):
    """No propensity model has been promoted for this as_of yet."""


@dataclass(frozen=True)
class FeatureFiles:
    """Where one as_of's feature frames are kept between tasks."""

    directory: Path

    @classmethod
    def for_as_of(cls, settings: Settings, as_of: datetime) -> FeatureFiles:
        """``$CDP_HOME/ml/features/<as_of>/``."""
        return cls(settings.home / "ml" / "features" / f"{as_of:%Y%m%dT%H%M%S}")

    def path(self, role: str) -> Path:
        """``train``, ``validation`` or ``current`` parquet file."""
        return self.directory / f"{role}.parquet"

    def read(self, role: str) -> pd.DataFrame:
        """A frame written by ``build_features``; a clear error when that step has not run."""
        path = self.path(role)
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run the build_features step first")
        return pd.read_parquet(path)


def _effective_as_of(cutoff: datetime, as_of: datetime) -> datetime:
    """The run's as_of, or the marts' cut-off when they were built earlier (never later data)."""
    if as_of > cutoff:
        log.warning(
            "marts hold data up to %s only; features as of %s use that cut-off", cutoff, as_of
        )
        return cutoff
    return as_of


def build_features(
    settings: Settings,
    as_of: datetime,
    run_id: str = "",
    with_training: bool = True,
    training_snapshots: int = 8,
    step_days: int = 28,
) -> dict:
    """Write the current features (and the labelled training/validation snapshots) for as_of.

    Every frame gets BG/NBD features fitted on that frame alone, i.e. on data up to its own date.
    """
    query = compile_feature_query(settings)
    horizon = settings.propensity_horizon_days
    files = FeatureFiles.for_as_of(settings, as_of)
    files.directory.mkdir(parents=True, exist_ok=True)
    with connect(settings, read_only=True) as con:
        cutoff = data_cutoff(con)
        effective = _effective_as_of(cutoff, as_of)
        store = FeatureStore(query, con, effective)
        current = add_bgnbd_features(store.features(effective), horizon)
        current.to_parquet(files.path("current"))
        summary = {"as_of": str(effective), "customers": len(current)}
        if with_training:
            plan = SnapshotPlan(effective, horizon, training_snapshots, step_days)
            validation = add_bgnbd_features(store.labelled(plan.validation_on, horizon), horizon)
            snapshots = [store.labelled(on, horizon) for on in plan.training_on]
            snapshots = [add_bgnbd_features(s, horizon) for s in snapshots if len(s)]
            if not snapshots:
                raise ValueError(
                    f"no customer was known at any training snapshot "
                    f"({plan.training_on[-1]:%Y-%m-%d} .. {plan.training_on[0]:%Y-%m-%d}): "
                    f"training as of {effective:%Y-%m-%d} "
                    f"needs more than {horizon + step_days} days of history"
                )
            train = pd.concat(snapshots, ignore_index=True)
            train.to_parquet(files.path("train"))
            validation.to_parquet(files.path("validation"))
            plan_file = {"as_of": str(effective), "horizon_days": horizon}
            (files.directory / "plan.json").write_text(json.dumps(plan_file))
            summary |= {"training_rows": len(train), "validation_rows": len(validation)}
    return summary


def split_validation(validation: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Halves of the validation window by a hash of customer_id: (tune, evaluate).

    The tune half drives early stopping and calibration; the other half is never fitted on, so
    the metrics and the champion comparison stay honest.
    """
    in_tune = pd.util.hash_pandas_object(validation["customer_id"], index=False) % 2 == 0
    return validation[in_tune.to_numpy()], validation[~in_tune.to_numpy()]


def train_challenger(
    settings: Settings, as_of: datetime, run_id: str = "", params: TrainingParams | None = None
) -> str:
    """Fit a propensity model on as_of's snapshots; write its artifact; return its version."""
    params = params or TrainingParams()
    files = FeatureFiles.for_as_of(settings, as_of)
    plan = json.loads((files.directory / "plan.json").read_text())
    train, validation = files.read("train"), files.read("validation")
    features = feature_columns(train)
    tune, holdout = split_validation(validation)
    started = time.perf_counter()
    model = fit_propensity(train, tune, features, params)
    seconds = time.perf_counter() - started
    data_hash = frame_hash(train)
    params_json = json.dumps(vars(params), sort_keys=True)
    digest = hashlib.sha256((data_hash + params_json).encode()).hexdigest()[:10]
    effective = datetime.fromisoformat(plan["as_of"])
    version = f"{effective:%Y%m%dT%H%M%S}-{digest}"
    directory = artifact_dir(settings, MODEL_NAME, version)
    model.save(directory)
    snapshots = pd.to_datetime(train["features_as_of"])
    horizon = timedelta(days=plan["horizon_days"])
    write_metadata(
        directory,
        {
            "model_name": MODEL_NAME,
            "model_version": version,
            "as_of": effective,
            "horizon_days": plan["horizon_days"],
            "train_window_start": snapshots.min(),
            "train_window_end": snapshots.max() + horizon,
            "validation_on": pd.to_datetime(validation["features_as_of"]).min(),
            "features": features,
            "params": vars(params),
            "bgnbd_tree_weight": model.tree_weight,
            "training_rows": len(train),
            "validation_rows": len(holdout),
            "training_data_hash": data_hash,
            "seconds": seconds,
            "metrics": evaluate(holdout["label"], model.predict(holdout)),
            "importance": model.importance(),
            "drift_reference": {
                **{f: reference_bins(train[f]) for f in features},
                "score": reference_bins(pd.Series(model.predict(train))),
            },
        },
    )
    return version


def evaluate_challenger(settings: Settings, as_of: datetime, run_id: str, version: str) -> dict:
    """Compare the challenger with the champion on the same held-out validation rows."""
    tolerance = MLConfig.from_env().promotion_tolerance
    metadata = read_metadata(artifact_dir(settings, MODEL_NAME, version))
    challenger_auc = metadata["metrics"]["roc_auc"]
    with connect(settings, read_only=False) as con:
        ensure_ml_schema(con)
        champion = champion_before(con, MODEL_NAME, datetime.fromisoformat(metadata["as_of"]))
    decision = {"model_version": version, "champion_version": None, "champion_roc_auc": None}
    if champion is None:
        return decision | {
            "promote": True,
            "reason": "no champion yet: the first model is promoted",
        }
    decision["champion_version"] = champion["model_version"]
    champion_model = PropensityModel.load(Path(champion["artifact_path"]))
    _, holdout = split_validation(FeatureFiles.for_as_of(settings, as_of).read("validation"))
    missing = sorted(set(champion_model.features) - set(holdout.columns))
    if missing:
        return decision | {
            "promote": True,
            "reason": f"champion {champion['model_version']} needs features gone now: {missing}",
        }
    champion_auc = evaluate(holdout["label"], champion_model.predict(holdout))["roc_auc"]
    decision["champion_roc_auc"] = champion_auc
    comparison = (
        f"challenger ROC AUC {challenger_auc:.4f} vs champion {champion['model_version']} "
        f"{champion_auc:.4f} on the same window (tolerance {tolerance})"
    )
    if challenger_auc >= champion_auc - tolerance:
        return decision | {"promote": True, "reason": "promoted: " + comparison}
    return decision | {"promote": False, "reason": "champion kept: " + comparison}


def record_decision(settings: Settings, as_of: datetime, run_id: str, decision: dict) -> dict:
    """Write the run to ``ml.model_runs`` (promoted or not, and why)."""
    directory = artifact_dir(settings, MODEL_NAME, decision["model_version"])
    metadata = read_metadata(directory)
    metrics = metadata["metrics"]
    row = {
        "model_name": MODEL_NAME,
        "model_version": decision["model_version"],
        "run_id": run_id,
        **{k: metadata[k] for k in ("as_of", "horizon_days", "train_window_start",
                                     "train_window_end", "validation_on", "training_rows",
                                     "validation_rows", "training_data_hash", "seconds")},
        **{k: metrics[k] for k in ("roc_auc", "pr_auc", "log_loss", "top_decile_lift",
                                    "calibration_error")},
        "validation_positive_rate": metrics["positive_rate"],
        "champion_version": decision["champion_version"],
        "champion_roc_auc": decision["champion_roc_auc"],
        "features": json.dumps(metadata["features"]),
        "params": json.dumps(metadata["params"]),
        "is_promoted": decision["promote"],
        "decision_reason": decision["reason"],
        "artifact_path": str(directory),
    }  # fmt: skip
    with connect(settings) as con:
        ensure_ml_schema(con)
        record_run(con, row)
    log.info("%s %s: %s", MODEL_NAME, decision["model_version"], decision["reason"])
    return {"promoted": decision["promote"], "reason": decision["reason"]}


def _require_champion(con, as_of: datetime) -> dict:
    """The model promoted most recently at or before as_of; ``NoChampion`` if there is none."""
    champion = champion_at(con, MODEL_NAME, as_of)
    if champion is None:
        raise NoChampion(f"no {MODEL_NAME} model promoted at or before {as_of}: retrain first")
    return champion


def score_customers(settings: Settings, as_of: datetime, run_id: str) -> dict:
    """Score every customer as of as_of with the champion into ``ml.scores``."""
    current = FeatureFiles.for_as_of(settings, as_of).read("current")
    with connect(settings) as con:
        ensure_ml_schema(con)
        champion = _require_champion(con, as_of)
        model = PropensityModel.load(Path(champion["artifact_path"]))
        scored = score_frame(model, current)
        rows = write_scores(con, scored, MODEL_NAME, champion["model_version"], as_of, run_id)
    return {"model_version": champion["model_version"], "scored": rows}


def check_drift(settings: Settings, as_of: datetime, run_id: str) -> dict:
    """PSI of every feature and of the scores vs the champion's training window → ``ml.drift``."""
    threshold = MLConfig.from_env().psi_threshold
    current = FeatureFiles.for_as_of(settings, as_of).read("current")
    with connect(settings) as con:
        ensure_ml_schema(con)
        champion = _require_champion(con, as_of)
        version = champion["model_version"]
        scores = con.execute(
            "select score from ml.scores where model_name = ? and scored_at = ?",
            [MODEL_NAME, as_of],
        ).df()["score"]
        references = read_metadata(Path(champion["artifact_path"]))["drift_reference"]
        series = {c: current[c] for c in current.columns} | {"score": scores}
        report = drift_table(references, series, threshold).assign(
            kind=lambda t: ["score" if n == "score" else "feature" for n in t["name"]],
            model_name=MODEL_NAME, model_version=version, as_of=as_of, run_id=run_id,
        )  # fmt: skip
        con.execute("delete from ml.drift where model_name = ? and as_of = ?", [MODEL_NAME, as_of])
        con.execute("insert into ml.drift by name select * from report")
    alerts = report.loc[report["is_alert"], "name"].tolist()
    if alerts:
        log.warning("drift above PSI %.2f vs %s's training window: %s", threshold, version, alerts)
    return {"model_version": version, "checked": len(report), "alerts": alerts}


def _previous_centroids(con, as_of: datetime) -> pd.DataFrame | None:
    rows = con.execute(
        """
        select cluster_id, centroid from ml.cluster_centroids
        where model_version = (
            select model_version from ml.cluster_runs where as_of < ? order by as_of desc limit 1
        )
        """,
        [as_of],
    ).fetchall()
    if not rows:
        return None
    return pd.DataFrame([{"cluster_id": cid, **json.loads(c)} for cid, c in rows])


def assign_clusters(settings: Settings, as_of: datetime, run_id: str) -> dict:
    """Cluster every customer as of as_of (ids matched to the previous run) into ``ml.*``."""
    current = FeatureFiles.for_as_of(settings, as_of).read("current")
    version = f"{CLUSTER_MODEL}-{as_of:%Y%m%dT%H%M%S}"
    with connect(settings) as con:
        ensure_ml_schema(con)
        result = fit_clusters(current, _previous_centroids(con, as_of))
        run = pd.DataFrame(  # noqa: F841  (read by DuckDB)
            [
                {
                    "model_version": version, "as_of": as_of, "k": result.k,
                    "silhouette": result.silhouette, "davies_bouldin": result.davies_bouldin,
                    "candidates": json.dumps(result.candidates),
                    "features": json.dumps(result.features), "customers": len(current),
                    "outliers": int(result.assignments["is_outlier"].sum()),
                    "outlier_distance": result.outlier_distance, "run_id": run_id,
                }
            ]
        )  # fmt: skip
        centroids = pd.DataFrame(  # noqa: F841
            {
                "model_version": version,
                "cluster_id": result.centroids["cluster_id"],
                "cluster_name": result.centroids["cluster_name"],
                "size": result.centroids["size"],
                "centroid": [
                    json.dumps({f: float(row[f]) for f in result.features})
                    for _, row in result.centroids.iterrows()
                ],
            }
        )
        assignments = result.assignments.assign(  # noqa: F841
            model_version=version, assigned_at=as_of, run_id=run_id
        )
        for table in ("cluster_runs", "cluster_centroids", "cluster_assignments"):
            con.execute(f"delete from ml.{table} where model_version = ?", [version])
        con.execute("insert into ml.cluster_runs by name select * from run")
        con.execute("insert into ml.cluster_centroids by name select * from centroids")
        con.execute("insert into ml.cluster_assignments by name select * from assignments")
    return {
        "model_version": version,
        "k": result.k,
        "silhouette": round(result.silhouette, 4),
        "outliers": int(result.assignments["is_outlier"].sum()),
        "clusters": dict(
            zip(result.centroids["cluster_name"], map(int, result.centroids["size"]), strict=True)
        ),
    }


def check_published(settings: Settings, as_of: datetime, run_id: str, with_clusters: bool) -> dict:
    """Audit before announcing: every customer scored once, deciles 1..10, clusters present."""
    customers = len(FeatureFiles.for_as_of(settings, as_of).read("current"))
    checks = [("ml.scores", "scored_at", f"model_name = '{MODEL_NAME}'")]
    if with_clusters:
        checks.append(("ml.cluster_assignments", "assigned_at", "true"))
    counts = {}
    with connect(settings, read_only=True) as con:
        for table, at_column, condition in checks:
            rows, distinct = con.execute(
                f"select count(*), count(distinct customer_id) from {table} "
                f"where {at_column} = ? and {condition}",
                [as_of],
            ).fetchone()
            if rows != customers or distinct != customers:
                raise RuntimeError(
                    f"{table} as of {as_of} has {rows} rows for {distinct} customers; "
                    f"expected one row for each of {customers}"
                )
            counts[table] = rows
        [(bad,)] = con.execute(
            "select count(*) from ml.scores where scored_at = ? and decile not between 1 and 10",
            [as_of],
        ).fetchall()
    if bad:
        raise RuntimeError(f"ml.scores as of {as_of} has {bad} rows with a decile outside 1..10")
    return counts
