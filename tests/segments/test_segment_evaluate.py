"""Evaluating segments into the warehouse: membership, history, sizes, idempotency."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

import cdp.segments.evaluate as evaluate_module
from cdp.segments import (
    SegmentDefinitionError,
    SegmentResult,
    evaluate_segments,
    load_definitions,
)

WriteSegment = Callable[..., Path]
T1 = datetime(2025, 6, 30, 12, 0, 0)
T2 = T1 + timedelta(days=1)
T3 = T2 + timedelta(days=1)

BIG_SPENDERS = {"field": "lifetime_value", "op": ">=", "value": 500}
EVERYONE = {"field": "order_count", "op": ">=", "value": 0}


def _members(con: duckdb.DuckDBPyConnection, segment: str) -> set[str]:
    rows = con.execute(
        "select customer_id from segments.membership where segment = ?", [segment]
    ).fetchall()
    return {customer_id for (customer_id,) in rows}


def _history(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        """
        select segment, customer_id, entered_at, exited_at, entered_run_id, exited_run_id
        from segments.membership_history
        order by segment, customer_id, entered_at
        """
    ).fetchall()


def _sizes(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        """
        select run_id, segment, as_of, members, entered, exited
        from segments.sizes
        order by as_of, run_id, segment
        """
    ).fetchall()


def _run(
    con: duckdb.DuckDBPyConnection, folder: Path, run_id: str, as_of: datetime
) -> dict[str, SegmentResult]:
    results = evaluate_segments(con, load_definitions(folder, con=con), run_id, as_of)
    return {r.segment: r for r in results}


def _assert_membership_matches_open_history(con: duckdb.DuckDBPyConnection) -> None:
    current = con.execute(
        "select segment, customer_id, entered_at, run_id from segments.membership order by all"
    ).fetchall()
    open_rows = con.execute(
        """
        select segment, customer_id, entered_at, entered_run_id
        from segments.membership_history
        where exited_at is null
        order by all
        """
    ).fetchall()
    assert current == open_rows
    assert len(current) == len({(s, c) for s, c, _, _ in current})


def test_first_run_writes_every_table(
    con: duckdb.DuckDBPyConnection, segments_dir: Path, write_segment: WriteSegment
) -> None:
    write_segment(segments_dir, "big_spenders", BIG_SPENDERS)
    results = _run(con, segments_dir, "r1", T1)

    assert results["big_spenders"] == SegmentResult("big_spenders", "r1", T1, 2, 2, 0)
    assert _members(con, "big_spenders") == {"c1", "c4"}
    assert _history(con) == [
        ("big_spenders", "c1", T1, None, "r1", None),
        ("big_spenders", "c4", T1, None, "r1", None),
    ]
    assert _sizes(con) == [("r1", "big_spenders", T1, 2, 2, 0)]
    name, kind, refresh, consent, rule_json, sql = con.execute(
        """
        select name, kind, refresh, consent_purpose, cast(rule_json as varchar), compiled_sql
        from segments.definitions
        """
    ).fetchone()
    assert (name, kind, refresh, consent) == ("big_spenders", "static", "daily", None)
    assert '"field": "lifetime_value"' in rule_json
    assert 'p."lifetime_value" >= $p0' in sql
    _assert_membership_matches_open_history(con)


def test_incremental_history_across_runs(
    con: duckdb.DuckDBPyConnection, segments_dir: Path, write_segment: WriteSegment
) -> None:
    write_segment(segments_dir, "big_spenders", BIG_SPENDERS)
    _run(con, segments_dir, "r1", T1)

    # c1 drops out, c2 comes in
    con.execute("update marts.customer_profiles set lifetime_value = 100 where customer_id = 'c1'")
    con.execute("update marts.customer_profiles set lifetime_value = 900 where customer_id = 'c2'")
    results = _run(con, segments_dir, "r2", T2)
    assert results["big_spenders"] == SegmentResult("big_spenders", "r2", T2, 2, 1, 1)
    assert _members(con, "big_spenders") == {"c2", "c4"}
    assert _history(con) == [
        ("big_spenders", "c1", T1, T2, "r1", "r2"),
        ("big_spenders", "c2", T2, None, "r2", None),
        ("big_spenders", "c4", T1, None, "r1", None),
    ]
    history_after_r2 = _history(con)
    membership_after_r2 = con.execute("select * from segments.membership order by all").fetchall()

    # nothing changed: no new history, same membership, one more sizes row
    results = _run(con, segments_dir, "r3", T3)
    assert results["big_spenders"] == SegmentResult("big_spenders", "r3", T3, 2, 0, 0)
    assert _history(con) == history_after_r2
    assert con.execute("select * from segments.membership order by all").fetchall() == (
        membership_after_r2
    )
    assert _sizes(con) == [
        ("r1", "big_spenders", T1, 2, 2, 0),
        ("r2", "big_spenders", T2, 2, 1, 1),
        ("r3", "big_spenders", T3, 2, 0, 0),
    ]
    _assert_membership_matches_open_history(con)


def test_reentry_opens_a_new_history_row(
    con: duckdb.DuckDBPyConnection, segments_dir: Path, write_segment: WriteSegment
) -> None:
    write_segment(segments_dir, "big_spenders", BIG_SPENDERS)
    _run(con, segments_dir, "r1", T1)
    con.execute("update marts.customer_profiles set lifetime_value = 1 where customer_id = 'c4'")
    _run(con, segments_dir, "r2", T2)
    con.execute("update marts.customer_profiles set lifetime_value = 700 where customer_id = 'c4'")
    _run(con, segments_dir, "r3", T3)
    c4 = [row for row in _history(con) if row[1] == "c4"]
    assert c4 == [
        ("big_spenders", "c4", T1, T2, "r1", "r2"),
        ("big_spenders", "c4", T3, None, "r3", None),
    ]
    _assert_membership_matches_open_history(con)


def test_consent_is_enforced_in_membership(
    con: duckdb.DuckDBPyConnection, segments_dir: Path, write_segment: WriteSegment
) -> None:
    write_segment(segments_dir, "emailable", EVERYONE, consent_purpose="email_marketing")
    _run(con, segments_dir, "r1", T1)
    assert _members(con, "emailable") == {"c1", "c4", "c5"}

    con.execute(
        "update marts.customer_profiles set has_consent_email_marketing = false "
        "where customer_id = 'c1'"
    )
    con.execute(
        "update marts.customer_profiles set has_consent_email_marketing = null "
        "where customer_id = 'c4'"
    )
    results = _run(con, segments_dir, "r2", T2)
    assert _members(con, "emailable") == {"c5"}
    assert results["emailable"].exited == 2
    no_consent = con.execute(
        """
        select count(*)
        from segments.membership m
        join marts.customer_profiles p using (customer_id)
        where m.segment = 'emailable' and p.has_consent_email_marketing is not true
        """
    ).fetchone()
    assert no_consent == (0,)


def test_rerunning_a_run_id_is_idempotent(
    con: duckdb.DuckDBPyConnection, segments_dir: Path, write_segment: WriteSegment
) -> None:
    write_segment(segments_dir, "big_spenders", BIG_SPENDERS)
    _run(con, segments_dir, "r1", T1)
    con.execute("update marts.customer_profiles set lifetime_value = 100 where customer_id = 'c1'")
    con.execute("update marts.customer_profiles set lifetime_value = 900 where customer_id = 'c2'")
    first = _run(con, segments_dir, "r2", T2)
    snapshot = (_history(con), _sizes(con), _members(con, "big_spenders"))

    again = _run(con, segments_dir, "r2", T2)
    assert again == first
    assert (_history(con), _sizes(con), _members(con, "big_spenders")) == snapshot
    assert con.execute("select count(*) from segments.sizes where run_id = 'r2'").fetchone() == (1,)


def test_retrying_the_latest_run_on_new_data_replaces_it(
    con: duckdb.DuckDBPyConnection, segments_dir: Path, write_segment: WriteSegment
) -> None:
    write_segment(segments_dir, "big_spenders", BIG_SPENDERS)
    _run(con, segments_dir, "r1", T1)
    con.execute("update marts.customer_profiles set lifetime_value = 900 where customer_id = 'c2'")
    _run(con, segments_dir, "r2", T2)
    # the profiles are rebuilt before the retry: c2 no longer qualifies, c1 now leaves
    con.execute("update marts.customer_profiles set lifetime_value = 100 where customer_id = 'c2'")
    con.execute("update marts.customer_profiles set lifetime_value = 100 where customer_id = 'c1'")
    results = _run(con, segments_dir, "r2", T2)
    assert results["big_spenders"] == SegmentResult("big_spenders", "r2", T2, 1, 0, 1)
    assert _history(con) == [
        ("big_spenders", "c1", T1, T2, "r1", "r2"),
        ("big_spenders", "c4", T1, None, "r1", None),
    ]
    _assert_membership_matches_open_history(con)


def test_runs_before_the_latest_are_replays_that_write_nothing(
    con: duckdb.DuckDBPyConnection, segments_dir: Path, write_segment: WriteSegment
) -> None:
    write_segment(segments_dir, "big_spenders", BIG_SPENDERS)
    _run(con, segments_dir, "r1", T1)
    con.execute("update marts.customer_profiles set lifetime_value = 900 where customer_id = 'c2'")
    _run(con, segments_dir, "r2", T2)
    snapshot = (_history(con), _sizes(con), _members(con, "big_spenders"))
    backfill = _run(con, segments_dir, "r0", T1 - timedelta(days=1))["big_spenders"]
    assert backfill.replay and (backfill.entered, backfill.exited) == (0, 0)
    # nobody was a member a day before the first run; today's profiles select 3
    assert (backfill.members, backfill.history_mismatch) == (3, 3)
    stale_retry = _run(con, segments_dir, "r1", T2)["big_spenders"]
    assert stale_retry.replay and stale_retry.history_mismatch == 0
    assert (_history(con), _sizes(con), _members(con, "big_spenders")) == snapshot


def test_removed_segment_is_closed_and_dropped(
    con: duckdb.DuckDBPyConnection, segments_dir: Path, write_segment: WriteSegment
) -> None:
    path = write_segment(segments_dir, "big_spenders", BIG_SPENDERS)
    write_segment(segments_dir, "everyone", EVERYONE)
    _run(con, segments_dir, "r1", T1)
    path.unlink()

    results = _run(con, segments_dir, "r2", T2)
    assert results["big_spenders"] == SegmentResult("big_spenders", "r2", T2, 0, 0, 2, removed=True)
    assert _members(con, "big_spenders") == set()
    assert con.execute("select name from segments.definitions").fetchall() == [("everyone",)]
    closed = [row for row in _history(con) if row[0] == "big_spenders"]
    assert all(row[3] == T2 and row[5] == "r2" for row in closed)
    assert len(closed) == 2

    results = _run(con, segments_dir, "r3", T3)
    assert set(results) == {"everyone"}
    _assert_membership_matches_open_history(con)


def test_definition_changes_move_updated_at(
    con: duckdb.DuckDBPyConnection, segments_dir: Path, write_segment: WriteSegment
) -> None:
    write_segment(segments_dir, "big_spenders", BIG_SPENDERS)
    _run(con, segments_dir, "r1", T1)
    query = "select updated_at, compiled_sql from segments.definitions"
    first = con.execute(query).fetchone()
    _run(con, segments_dir, "r2", T2)
    assert con.execute(query).fetchone() == first

    write_segment(segments_dir, "big_spenders", {**BIG_SPENDERS, "value": 1000})
    results = _run(con, segments_dir, "r3", T3)
    updated_at, _ = con.execute(query).fetchone()
    assert updated_at > first[0]
    assert results["big_spenders"] == SegmentResult("big_spenders", "r3", T3, 1, 0, 1)


def test_validation_against_the_warehouse_happens_before_any_write(
    con: duckdb.DuckDBPyConnection, segments_dir: Path, write_segment: WriteSegment
) -> None:
    write_segment(segments_dir, "big_spenders", BIG_SPENDERS)
    path = write_segment(segments_dir, "by_category", {"field": "top_category", "op": "is_null"})
    # valid against the built-in contract, but this warehouse has no top_category column
    definitions = load_definitions(segments_dir)
    with pytest.raises(SegmentDefinitionError) as info:
        evaluate_segments(con, definitions, "r1", T1)
    assert str(path) in str(info.value)
    assert "unknown field 'top_category'" in str(info.value)
    schemas = con.execute(
        "select count(*) from information_schema.schemata where schema_name = 'segments'"
    ).fetchone()
    assert schemas == (0,)


def test_a_failing_run_leaves_nothing_behind(
    con: duckdb.DuckDBPyConnection,
    segments_dir: Path,
    write_segment: WriteSegment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_segment(segments_dir, "big_spenders", BIG_SPENDERS)
    write_segment(segments_dir, "everyone", EVERYONE)
    _run(con, segments_dir, "r1", T1)
    con.execute("update marts.customer_profiles set lifetime_value = 1 where customer_id = 'c1'")
    snapshot = (_history(con), _sizes(con), _members(con, "big_spenders"))

    original = evaluate_module._refresh_membership

    def explode_on_everyone(con, segment, *args):  # type: ignore[no-untyped-def]
        if segment == "everyone":
            raise RuntimeError("disk full")
        return original(con, segment, *args)

    monkeypatch.setattr(evaluate_module, "_refresh_membership", explode_on_everyone)
    with pytest.raises(RuntimeError, match="disk full"):
        _run(con, segments_dir, "r2", T2)
    assert (_history(con), _sizes(con), _members(con, "big_spenders")) == snapshot


def test_timezone_aware_as_of_is_stored_as_utc(
    con: duckdb.DuckDBPyConnection, segments_dir: Path, write_segment: WriteSegment
) -> None:
    write_segment(segments_dir, "big_spenders", BIG_SPENDERS)
    as_of = datetime(2025, 6, 30, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    results = _run(con, segments_dir, "r1", as_of)
    assert results["big_spenders"].as_of == T1
    assert _sizes(con)[0][2] == as_of.astimezone(UTC).replace(tzinfo=None)


def test_bad_run_id(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ValueError, match="run_id"):
        evaluate_segments(con, [], " ", T1)


def test_more_rows_than_a_row_group(
    con: duckdb.DuckDBPyConnection, segments_dir: Path, write_segment: WriteSegment
) -> None:
    # exercises multi-row-group inserts; the DuckDB 2.0 row loss (see _rewind_run) needed ~300k
    con.execute(
        """
        insert into marts.customer_profiles (customer_id, lifetime_value, order_count)
        select 'bulk' || i, i % 1000, 1 from range(130000) t(i)
        """
    )
    write_segment(segments_dir, "big_spenders", BIG_SPENDERS)
    write_segment(segments_dir, "everyone", EVERYONE)
    results = _run(con, segments_dir, "r1", T1)
    assert results["everyone"].members == 130005
    scanned = con.execute("select segment, count(*) from segments.membership group by 1 order by 1")
    assert scanned.fetchall() == [
        ("big_spenders", results["big_spenders"].members),
        ("everyone", 130005),
    ]
    _assert_membership_matches_open_history(con)
