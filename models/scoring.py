"""Batch scoring: probabilities, deciles and reasons for every customer into ``ml.scores``."""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from models.propensity import PropensityModel


def deciles(scores: np.ndarray) -> np.ndarray:
    """Decile of each score, 1..10 with 10 the highest (ties broken by position)."""
    if len(scores) == 0:
        return np.array([], dtype=int)
    ranks = np.empty(len(scores), dtype=int)
    ranks[np.argsort(scores, kind="stable")] = np.arange(1, len(scores) + 1)
    return np.clip(np.ceil(ranks * 10 / len(scores)).astype(int), 1, 10)


def score_frame(model: PropensityModel, frame: pd.DataFrame) -> pd.DataFrame:
    """customer_id, score, decile and top_reasons (JSON) for each row of a feature frame."""
    scores = model.predict(frame)
    return pd.DataFrame(
        {
            "customer_id": frame["customer_id"].to_numpy(),
            "score": scores,
            "decile": deciles(scores),
            "top_reasons": model.top_reasons(frame),
        }
    )


def write_scores(
    con: duckdb.DuckDBPyConnection,
    scored: pd.DataFrame,
    model_name: str,
    model_version: str,
    scored_at: datetime,
    run_id: str,
) -> int:
    """Replace this model's scores for ``scored_at`` (idempotent per logical date)."""
    con.execute(
        "delete from ml.scores where model_name = ? and scored_at = ?", [model_name, scored_at]
    )
    rows = scored.assign(  # noqa: F841  (read by DuckDB)
        model_name=model_name, model_version=model_version, scored_at=scored_at, run_id=run_id
    )
    con.execute("insert into ml.scores by name select * from rows")
    return len(scored)
