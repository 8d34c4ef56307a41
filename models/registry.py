"""Model artifacts on disk and their runs in ``ml.model_runs`` (who is champion, and why)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd

from cdp.settings import Settings


def artifact_dir(settings: Settings, model_name: str, version: str) -> Path:
    """``$CDP_HOME/models/<model_name>/<version>/``: model file plus ``metadata.json``."""
    return settings.home / "models" / model_name / version


def write_metadata(directory: Path, metadata: dict) -> None:
    """Write a model's metadata (training-data hash, params, metrics, window, features)."""
    (directory / "metadata.json").write_text(json.dumps(metadata, indent=2, default=str))


def read_metadata(directory: Path) -> dict:
    """Read a model's ``metadata.json``; a clear error when the artifact is gone."""
    path = directory / "metadata.json"
    if not path.exists():
        raise FileNotFoundError(f"model artifact {directory} has no metadata.json (deleted?)")
    return json.loads(path.read_text())


def champion_before(con: duckdb.DuckDBPyConnection, model_name: str, as_of) -> dict | None:
    """The model promoted most recently by a run before ``as_of`` (None when there is none)."""
    rows = con.execute(
        """
        select model_version, artifact_path from ml.model_runs
        where model_name = ? and is_promoted and as_of < ?
        order by as_of desc limit 1
        """,
        [model_name, as_of],
    ).fetchall()
    return {"model_version": rows[0][0], "artifact_path": rows[0][1]} if rows else None


def champion_at(con: duckdb.DuckDBPyConnection, model_name: str, as_of) -> dict | None:
    """The model that scores at ``as_of``: promoted most recently by a run at or before it."""
    rows = con.execute(
        """
        select model_version, artifact_path from ml.model_runs
        where model_name = ? and is_promoted and as_of <= ?
        order by as_of desc limit 1
        """,
        [model_name, as_of],
    ).fetchall()
    return {"model_version": rows[0][0], "artifact_path": rows[0][1]} if rows else None


def record_run(con: duckdb.DuckDBPyConnection, row: dict) -> None:
    """Store one training run (replacing an earlier run for the same as_of) and reset the
    champion flag: exactly the latest promoted model is ``is_champion``."""
    con.execute(
        "delete from ml.model_runs where model_name = ? and (as_of = ? or model_version = ?)",
        [row["model_name"], row["as_of"], row["model_version"]],
    )
    frame = pd.DataFrame([{**row, "is_champion": False}])  # noqa: F841  (read by DuckDB)
    con.execute("insert into ml.model_runs by name select * from frame")
    con.execute(
        """
        update ml.model_runs set is_champion = model_version = (
            select model_version from ml.model_runs
            where model_name = $name and is_promoted order by as_of desc limit 1
        )
        where model_name = $name
        """,
        {"name": row["model_name"]},
    )
