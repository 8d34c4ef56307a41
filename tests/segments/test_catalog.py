"""Reading segments back: list, show and members."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from cdp.segments import (
    UnknownSegmentError,
    evaluate_segments,
    get_segment,
    list_segments,
    load_definitions,
    segment_members,
)

T1 = datetime(2025, 6, 30, 12, 0, 0)


@pytest.fixture
def evaluated(
    con: duckdb.DuckDBPyConnection, segments_dir: Path, write_segment: Callable[..., Path]
) -> duckdb.DuckDBPyConnection:
    """The fixture warehouse with two segments evaluated once."""
    write_segment(
        segments_dir, "big_spenders", {"field": "lifetime_value", "op": ">=", "value": 500}
    )
    write_segment(
        segments_dir,
        "emailable",
        {"field": "email", "op": "is_not_null"},
        consent_purpose="email_marketing",
    )
    evaluate_segments(con, load_definitions(segments_dir, con=con), "r1", T1)
    return con


def test_list_segments(evaluated: duckdb.DuckDBPyConnection) -> None:
    segments = list_segments(evaluated)
    assert [s.name for s in segments] == ["big_spenders", "emailable"]
    big, emailable = segments
    assert (big.members, big.last_run_id, big.last_as_of) == (2, "r1", T1)
    assert emailable.consent_purpose == "email_marketing"
    assert emailable.members == 3
    assert '"has_consent_email_marketing"' in emailable.compiled_sql


def test_list_segments_before_any_run(con: duckdb.DuckDBPyConnection) -> None:
    assert list_segments(con) == []


def test_get_segment_and_unknown_names(evaluated: duckdb.DuckDBPyConnection) -> None:
    assert get_segment(evaluated, "big_spenders").members == 2
    with pytest.raises(UnknownSegmentError, match="did you mean: big_spenders"):
        get_segment(evaluated, "big_spender")
    with pytest.raises(UnknownSegmentError, match="known segments: big_spenders, emailable"):
        segment_members(evaluated, "zzz")


def test_get_segment_before_any_run(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(UnknownSegmentError, match="no segments have been evaluated yet"):
        get_segment(con, "vip")


def test_segment_members(evaluated: duckdb.DuckDBPyConnection) -> None:
    members = segment_members(evaluated, "emailable")
    assert [m.customer_id for m in members] == ["c1", "c4", "c5"]
    assert {(m.entered_at, m.run_id) for m in members} == {(T1, "r1")}
    assert [m.customer_id for m in segment_members(evaluated, "emailable", limit=2)] == ["c1", "c4"]
    assert len(segment_members(evaluated, "emailable", limit=None)) == 3
    with pytest.raises(ValueError, match="limit"):
        segment_members(evaluated, "emailable", limit=-1)
