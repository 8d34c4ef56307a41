"""Point-in-time feature snapshots and purchase labels from ``marts.customer_features``.

The dbt model is the one definition of every feature. Compiled for an ``as_of`` it filters each
input on its own timestamp, so running the compiled query against marts built later yields the
features exactly as they were at that date. Labels come from the same model: a customer bought
within (s, s + H] when their ``purchase_count`` as of s + H exceeds the one as of s.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from cdp.settings import Settings

FEATURE_MODEL = "customer_features"
#: Columns of the feature table that are keys, not features.
KEY_COLUMNS = ("customer_id", "features_as_of")


class LeakageError(ValueError):
    """A feature or label would need data observed after the data cut-off."""


class FeaturesMissing(RuntimeError):
    """``marts.customer_features`` has not been built yet."""


#: The as_of the model is compiled with; its quoted literal becomes the query parameter.
_AS_OF_PLACEHOLDER = datetime(1111, 11, 11, 11, 11, 11)


def compile_feature_query(settings: Settings) -> str:
    """The ``customer_features`` model compiled by dbt as a query with an ``$as_of`` parameter.

    The result depends only on the dbt project and the warehouse's database name (its file
    stem), so it is compiled once per process for each such pair (dbt start-up costs seconds).
    """
    key = (str(settings.dbt_project_dir), settings.warehouse_path.stem)
    if key not in _COMPILED:
        _COMPILED[key] = _compile(settings)
    return _COMPILED[key]


_COMPILED: dict[tuple[str, str], str] = {}


def _compile(settings: Settings) -> str:
    from dbt.adapters.duckdb import DuckDBConnectionManager
    from dbt.cli.main import dbtRunner

    from cdp.transform import DbtBuildFailed, dbt_args

    os.environ["CDP_WAREHOUSE"] = str(settings.warehouse_path)  # read by profiles.yml
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    # dbt prints the compiled code of a single selected node unless logging is off.
    args = ["--log-level", "none", *dbt_args(settings, "compile", _AS_OF_PLACEHOLDER)]
    args += ["--select", FEATURE_MODEL, "--indirect-selection", "empty"]
    try:
        result = dbtRunner().invoke(args)
    finally:
        DuckDBConnectionManager.close_all_connections()  # dbt-duckdb keeps the file open
    if not result.success or result.result is None:
        raise DbtBuildFailed(f"dbt could not compile {FEATURE_MODEL}: {result.exception}")
    [node_result] = result.result.results
    literal = f"'{_AS_OF_PLACEHOLDER:%Y-%m-%d %H:%M:%S}'"
    if literal not in node_result.node.compiled_code:
        raise DbtBuildFailed(f"{FEATURE_MODEL} does not use as_of_timestamp(): cannot bind as_of")
    return node_result.node.compiled_code.replace(literal, "$as_of")


def data_cutoff(con: duckdb.DuckDBPyConnection) -> datetime:
    """The as_of the marts were last built for: no feature or label may look past it."""
    try:
        [(cutoff,)] = con.execute(
            "select max(features_as_of) from marts.customer_features"
        ).fetchall()
    except duckdb.CatalogException:
        raise FeaturesMissing(
            "marts.customer_features does not exist: run the build (cdp run --only build) first"
        ) from None
    if cutoff is None:
        raise FeaturesMissing("marts.customer_features is empty: no customer known yet")
    return cutoff


@dataclass(frozen=True)
class SnapshotPlan:
    """The temporal protocol for one as_of: training snapshots, then the validation snapshot.

    Every label window (s, s + H] ends on or before ``as_of``; the validation snapshot is the
    latest complete window (as_of - H); training snapshots step back from it.
    """

    as_of: datetime
    horizon_days: int
    training_snapshots: int = 8
    step_days: int = 28

    @property
    def validation_on(self) -> datetime:
        """Start of the latest label window that is complete at as_of."""
        return self.as_of - timedelta(days=self.horizon_days)

    @property
    def training_on(self) -> list[datetime]:
        """Training snapshot dates, newest first."""
        return [
            self.validation_on - timedelta(days=self.step_days * k)
            for k in range(1, self.training_snapshots + 1)
        ]


@dataclass
class FeatureStore:
    """Runs the compiled feature model for any date up to the cut-off, caching each frame."""

    query: str  # from compile_feature_query
    con: duckdb.DuckDBPyConnection
    cutoff: datetime
    _frames: dict[datetime, pd.DataFrame] = field(default_factory=dict)

    def features(self, as_of: datetime) -> pd.DataFrame:
        """Features as of a date; ``LeakageError`` when the date lies after the data cut-off."""
        if as_of > self.cutoff:
            raise LeakageError(
                f"features as of {as_of:%Y-%m-%d %H:%M} would need data after the cut-off "
                f"{self.cutoff:%Y-%m-%d %H:%M} the marts were built for"
            )
        if as_of not in self._frames:
            query = f"select * from ({self.query}) order by customer_id"
            self._frames[as_of] = self.con.execute(query, {"as_of": as_of}).df()
        return self._frames[as_of]

    def labelled(self, snapshot_on: datetime, horizon_days: int) -> pd.DataFrame:
        """Features as of ``snapshot_on`` plus ``label`` = bought within the next H days."""
        window_end = snapshot_on + timedelta(days=horizon_days)
        if window_end > self.cutoff:
            raise LeakageError(
                f"the label window ({snapshot_on:%Y-%m-%d}, {window_end:%Y-%m-%d}] ends after "
                f"the data cut-off {self.cutoff:%Y-%m-%d}"
            )
        frame = self.features(snapshot_on)
        later = self.features(window_end).set_index("customer_id")["purchase_count"]
        after = frame["customer_id"].map(later).fillna(0).to_numpy()
        return frame.assign(label=(after > frame["purchase_count"].to_numpy()).astype(int))


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The model inputs of a feature frame (everything but keys and the label)."""
    return [c for c in frame.columns if c not in (*KEY_COLUMNS, "label")]


def frame_hash(frame: pd.DataFrame) -> str:
    """A content hash of a data frame (identifies the exact training data of a model)."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
