"""customer_features is point-in-time correct: the ML package compiles it for a past as_of and
runs it against marts built later, and must get exactly what a build at that as_of produced.

Both warehouses hold test_dbt_build's hand-written data plus events on the days the past
as_of and its 30-day window edge cut (one either side of each cut), so the exact-window logic
(whole days from the daily summary, edge days event by event) is exercised at a mid-day as_of.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
from test_dbt_build import (
    AS_OF,
    _dbt_args,
    _event,
    _insert_raw,
    _load_fixture_data,
    _promote_event_columns,
)

LATER = "2024-07-15 18:00:00"

# fmt: off
EDGE_EVENTS = [
    # the 30-day window of AS_OF (2024-06-30 12:00) starts 2024-05-31 12:00
    _event("p1", "track", "2024-05-31 11:59", event="Product Viewed", user_id="C1"),
    _event("p2", "track", "2024-05-31 12:01", event="Product Added", user_id="C1"),
    # AS_OF's own day: one event before it, one after it
    _event("p3", "page", "2024-06-30 11:00", anonymous_id="anon-b1"),
    _event("p4", "track", "2024-06-30 13:00", event="Product Viewed", anonymous_id="anon-b1"),
]
# fmt: on


def _built_warehouse(home: Path, as_of: str) -> Path:
    """A warehouse with the fixture and edge events, after `dbt run` of customer_features."""
    from dbt.adapters.duckdb import DuckDBConnectionManager
    from dbt.cli.main import dbtRunner

    warehouse = home / "warehouse.duckdb"
    _load_fixture_data(warehouse)
    con = duckdb.connect(str(warehouse))
    try:
        _insert_raw(con, "analytics/events", EDGE_EVENTS)
        _promote_event_columns(con)
    finally:
        con.close()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CDP_WAREHOUSE", str(warehouse))
        mp.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        args = _dbt_args("run", home, as_of=as_of) + ["--select", "+customer_features"]
        result = dbtRunner().invoke(args)
    DuckDBConnectionManager.close_all_connections()
    assert result.success, result.exception
    return warehouse


def _features(warehouse: Path, sql: str, params: dict | None = None) -> pd.DataFrame:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        frame = con.execute(sql, params or {}).df()
    finally:
        con.close()
    return frame.sort_values("customer_id").reset_index(drop=True)


def test_features_compiled_for_a_past_as_of_equal_a_build_at_that_as_of(tmp_path: Path) -> None:
    from cdp.settings import load_settings
    from models.features import compile_feature_query

    (tmp_path / "past").mkdir(), (tmp_path / "later").mkdir()
    past = _built_warehouse(tmp_path / "past", AS_OF)
    later = _built_warehouse(tmp_path / "later", LATER)
    query = compile_feature_query(load_settings({"CDP_HOME": str(tmp_path / "later")}))

    built_then = _features(past, "select * from marts.customer_features")
    replayed = _features(later, query, {"as_of": pd.Timestamp(AS_OF).to_pydatetime()})
    pd.testing.assert_frame_equal(replayed, built_then)

    alice = built_then.set_index("customer_id").loc["cust_alice"]
    # e1-e4 (06-29), e5 (06-01) and p2 (05-31 12:01) are inside (05-31 12:00, 06-30 12:00];
    # p1 is a minute too early; e6 (04-15) only counts for 90 days; e7 (07-02) is after as_of
    assert (alice["events_30d"], alice["events_90d"]) == (6, 8)
    assert (alice["product_views_30d"], alice["cart_adds_30d"]) == (2, 2)
    assert alice["days_since_last_event"] == 1
    bob = built_then.set_index("customer_id").loc["cust_bob"]
    assert (bob["events_30d"], bob["days_since_last_event"]) == (2, 0)  # e8 and p3, not p4

    # the later marts do hold what must not leak: as_of's whole day (p3 and p4) in the summary
    [(bobs_day,)] = (
        _features(
            later,
            "select customer_id, event_count from intermediate.int_events_summarized_daily"
            " where activity_on = date '2024-06-30'",
        )
        .query("customer_id == 'cust_bob'")[["event_count"]]
        .itertuples(index=False)
    )
    assert bobs_day == 2
