"""The bundled starter library validates and evaluates as its descriptions say."""

from __future__ import annotations

from datetime import datetime

import duckdb

from cdp.segments import evaluate_segments, load_definitions, segment_members
from cdp.settings import load_settings

STARTER = {"vip", "new_visitors", "lapsing_customers", "engaged_browsers", "email_reachable_buyers"}


def test_starter_library_validates_against_the_profile_contract() -> None:
    definitions = load_definitions(load_settings({}).segments_dir)
    assert {d.name for d in definitions} == STARTER
    assert all(d.description and d.owner for d in definitions)


def test_starter_library_validates_against_the_fixture_columns(
    con: duckdb.DuckDBPyConnection, as_of: datetime
) -> None:
    definitions = load_definitions(load_settings({}).segments_dir, con=con)
    assert {d.name for d in definitions} == STARTER
    results = evaluate_segments(con, definitions, "starter", as_of)
    members = {r.segment: {m.customer_id for m in segment_members(con, r.segment)} for r in results}
    assert members == {
        "vip": {"c1"},
        "new_visitors": {"c3"},
        "lapsing_customers": {"c2"},
        "engaged_browsers": {"c1", "c3", "c5"},
        "email_reachable_buyers": {"c1", "c4", "c5"},
    }
