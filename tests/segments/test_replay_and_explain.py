"""Behavioural segments in the warehouse: replays, no-op runs, consent, references, explain."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from segment_data import AS_OF, CART_ABANDONERS, RAPID_BROWSERS, EventLog

from cdp.segments import (
    UnknownCustomerError,
    evaluate_segments,
    explain_membership,
    load_definitions,
)

T = AS_OF
MIN = timedelta(minutes=1)
WriteSegment = Callable[..., Path]


def _state(events: EventLog) -> tuple[list, list]:
    con = events.con
    history = con.execute("select * from segments.membership_history order by all").fetchall()
    current = con.execute("select * from segments.membership order by all").fetchall()
    return history, current


def _members(events: EventLog, segment: str) -> set[str]:
    rows = events.con.execute(
        "select customer_id from segments.membership where segment = ?", [segment]
    ).fetchall()
    return {customer_id for (customer_id,) in rows}


@pytest.fixture
def folder(segments_dir: Path, write_segment: WriteSegment) -> Path:
    write_segment(
        segments_dir, "cart_abandoners", CART_ABANDONERS, kind="dynamic", refresh="minutes"
    )
    write_segment(segments_dir, "rapid_browsers", RAPID_BROWSERS, kind="dynamic", refresh="minutes")
    return segments_dir


def _run(events: EventLog, folder: Path, run_id: str, at) -> dict:
    definitions = load_definitions(folder, con=events.con)
    return {r.segment: r for r in evaluate_segments(events.con, definitions, run_id, at)}


def test_replay_of_a_decided_time_recomputes_identically_and_writes_nothing(
    events: EventLog, folder: Path
) -> None:
    events.customer("A", "a")
    events.customer("B", "b")
    events.track("a", "product_added_to_cart", T - 60 * MIN)
    _run(events, folder, "r1", T)
    assert _members(events, "cart_abandoners") == {"A"}
    # an hour later: a's cart is still in the 24 hours, b abandons one too
    events.track("b", "product_added_to_cart", T + 10 * MIN)
    _run(events, folder, "r2", T + 60 * MIN)
    assert _members(events, "cart_abandoners") == {"A", "B"}
    state = _state(events)

    replay = _run(events, folder, "r1-replay", T)["cart_abandoners"]
    assert (replay.replay, replay.members, replay.history_mismatch) == (True, 1, 0)
    assert _state(events) == state

    # a late event (timestamped before T, loaded after the run) shows as a mismatch, still no write
    events.customer("LATE", "late")
    events.track("late", "product_added_to_cart", T - 30 * MIN)
    late = _run(events, folder, "r1-replay", T)["cart_abandoners"]
    assert (late.members, late.history_mismatch) == (2, 1)
    assert _state(events) == state


def test_a_run_that_changes_nothing_writes_no_membership_rows(
    events: EventLog, folder: Path
) -> None:
    events.customer("A", "a")
    events.track("a", "product_added_to_cart", T - 60 * MIN)
    _run(events, folder, "r1", T)
    state = _state(events)
    results = _run(events, folder, "r2", T + MIN)
    assert all((r.entered, r.exited) == (0, 0) for r in results.values())
    assert _state(events) == state
    sizes = events.con.execute("select count(*) from segments.sizes where run_id = 'r2'").fetchone()
    assert sizes == (2,)  # the size time series records every run (documented decision)


def test_consent_purpose_excludes_customers_without_consent(
    events: EventLog, segments_dir: Path, write_segment: WriteSegment
) -> None:
    write_segment(
        segments_dir,
        "cart_email",
        CART_ABANDONERS,
        kind="dynamic",
        consent_purpose="email_marketing",
    )
    for customer in ("YES", "NO", "NOPROFILE"):
        events.customer(customer, customer.lower())
        events.track(customer.lower(), "product_added_to_cart", T - 60 * MIN)
    events.con.execute("create schema marts")
    events.con.execute(
        "create table marts.customer_profiles as select * from (values "
        "('YES', true), ('NO', false)) t(customer_id, has_consent_email_marketing)"
    )
    _run(events, segments_dir, "r1", T)
    assert _members(events, "cart_email") == {"YES"}


def test_segment_references_and_exclusions(
    events: EventLog, folder: Path, write_segment: WriteSegment
) -> None:
    write_segment(
        folder,
        "fast_abandoners",
        {"all": [{"in_segment": "cart_abandoners"}, {"in_segment": "rapid_browsers"}]},
    )
    write_segment(
        folder, "slow_abandoners", {"in_segment": "cart_abandoners"}, exclusions=["rapid_browsers"]
    )
    for customer in ("fast", "slow"):
        events.customer(customer.upper(), customer)
        events.track(customer, "product_added_to_cart", T - 60 * MIN)
    for minutes in (4, 3, 2, 1):
        events.track("fast", "product_viewed", T - minutes * MIN)
    _run(events, folder, "r1", T)
    assert _members(events, "fast_abandoners") == {"FAST"}
    assert _members(events, "slow_abandoners") == {"SLOW"}


def test_explain_shows_each_condition_value(
    events: EventLog, segments_dir: Path, write_segment: WriteSegment
) -> None:
    rule = {
        "all": [
            RAPID_BROWSERS,
            {"not": CART_ABANDONERS},
        ]
    }
    write_segment(segments_dir, "browsing_now", rule, kind="dynamic")
    events.customer("C", "c")
    for minutes in (9, 8, 7):
        events.track("c", "product_viewed", T - minutes * MIN)
    definitions = load_definitions(segments_dir, con=events.con)

    three = explain_membership(events.con, definitions, "browsing_now", "C", T)
    assert not three.is_member
    assert [(line.depth, line.matched, line.value) for line in three.lines] == [
        (0, False, None),
        (1, False, 3),
        (1, True, None),
        (2, False, 0),
    ]
    text = three.render()
    assert "C is NOT in browsing_now" in text
    assert (
        "count(product_viewed) > 3 within 10 minutes, window ending in the last 30 minutes" in text
    )
    assert "(value: 3)" in text

    events.track("c", "product_viewed", T - 6 * MIN)
    assert explain_membership(events.con, definitions, "browsing_now", "C", T).is_member
    with pytest.raises(UnknownCustomerError, match="unknown customer 'nobody'"):
        explain_membership(events.con, definitions, "browsing_now", "nobody", T)
