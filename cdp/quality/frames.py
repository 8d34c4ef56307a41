"""The DataFrames the gates validate, read from the working warehouse with DuckDB SQL.

GX's SQL route is broken on DuckDB (PITFALLS), so every check runs on pandas frames. The raw gate
reads only rows loaded since the last raw gate that passed (a watermark per table), so its cost
follows the size of the new data, not of the whole history.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from cdp.publish.audit import last_published_profiles
from cdp.quality.expectations import RAW_SCHEMA_FRAME, Suite
from cdp.quality.store import raw_watermark


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """True when ``schema.table`` is a table or view of the warehouse."""
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return row[0] > 0


def raw_schema_frame(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every column of every raw table as ``raw.<table>.<column>:<TYPE>``."""
    return con.execute(
        """
        select table_schema || '.' || table_name || '.' || column_name || ':'
            || replace(upper(data_type), ' ', '') as "column"
        from information_schema.columns
        where table_schema = 'raw'
        order by 1
        """
    ).df()


def raw_frames(
    con: duckdb.DuckDBPyConnection, suites: list[Suite]
) -> tuple[dict[str, pd.DataFrame], dict[str, datetime]]:
    """The raw schema, the new rows of every raw table (since its watermark; only the columns
    its suite reads) and the watermark each table would move to."""
    frames = {RAW_SCHEMA_FRAME: raw_schema_frame(con)}
    high_water: dict[str, datetime] = {}
    for suite in suites:
        if suite.frame == RAW_SCHEMA_FRAME:
            continue
        since = raw_watermark(con, suite.frame)
        columns = ", ".join(f'"{c}"' for c in dict.fromkeys([*suite.columns, "_loaded_at"]))
        frame = con.execute(
            f"select {columns} from {suite.frame}"
            " where _loaded_at > coalesce(?, timestamp '-infinity')",
            [since],
        ).df()
        frames[suite.frame] = frame
        if len(frame):
            high_water[suite.frame] = frame["_loaded_at"].max().to_pydatetime()
    return frames, high_water


def mart_frames(con: duckdb.DuckDBPyConnection, as_of: datetime) -> dict[str, pd.DataFrame]:
    """The marts the mart gate checks, plus ``marts.health``: one row of pipeline-level measures."""
    frames = {
        "marts.customer_profiles": con.execute(
            "select customer_id, lifetime_value, total_order_amount, monetary"
            " from marts.customer_profiles"
        ).df(),
        "marts.fct_orders": con.execute("select order_id, total_amount from marts.fct_orders").df(),
    }
    profiles = len(frames["marts.customer_profiles"])
    previous = last_published_profiles(con)
    # Freshness of what customers did (events or orders: an orders-only platform is fresh too),
    # up to the run's as-of (a backfill is judged by what was newest then).
    [(newest_activity_at,)] = con.execute(
        """
        select max(moment) from (
            select max(occurred_at) as moment from marts.fct_events where occurred_at <= $as_of
            union all
            select max(ordered_at) from marts.fct_orders where ordered_at <= $as_of
        )
        """,
        {"as_of": as_of},
    ).fetchall()
    frames["marts.health"] = pd.DataFrame(
        {
            "profiles_rows": [profiles],
            "previous_published_rows": [previous],
            # |change| relative to the previous publish; null (not checked) before the first
            "profiles_row_change": [
                abs(profiles - previous) / max(previous, 1) if previous is not None else None
            ],
            "newest_activity_age_hours": [
                None
                if newest_activity_at is None
                else (as_of - newest_activity_at).total_seconds() / 3600
            ],
        }
    )
    if table_exists(con, "ml", "current_scores"):
        frames["ml.current_scores"] = con.execute(
            "select customer_id, model_name, score from ml.current_scores"
        ).df()
    return frames
