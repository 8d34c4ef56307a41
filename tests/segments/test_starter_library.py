"""The bundled starter library validates and evaluates as its descriptions say."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb

from cdp.segments import (
    EventCount,
    EventSequence,
    Op,
    Refresh,
    evaluate_segments,
    load_definitions,
    segment_members,
)
from cdp.settings import load_settings

STARTER = {
    "vip",
    "new_visitors",
    "lapsing_customers",
    "engaged_browsers",
    "email_reachable_buyers",
    "high_purchase_intent",
    "cart_abandoners",
    "browse_abandoners",
    "rapid_browsers",
    "tech_enthusiasts",
    "discount_seekers",
    "likely_buyers",
    "big_basket_cluster",
}
#: Segments whose rules read events or model outputs: the profile-only fixture has neither.
BEHAVIOURAL_OR_MODEL = STARTER - {
    "vip",
    "new_visitors",
    "lapsing_customers",
    "engaged_browsers",
    "email_reachable_buyers",
}


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
        **{name: set() for name in BEHAVIOURAL_OR_MODEL},
    }


def test_the_two_on_site_segments_have_the_issue_semantics_and_no_consent() -> None:
    by_name = {d.name: d for d in load_definitions(load_settings({}).segments_dir)}
    rapid, carts = by_name["rapid_browsers"], by_name["cart_abandoners"]
    assert rapid.rule == EventCount(
        "product_viewed", Op.GT, 3, timedelta(minutes=10), timedelta(minutes=30)
    )
    assert carts.rule == EventSequence(
        "product_added_to_cart",
        "order_completed",
        absent=True,
        within=timedelta(minutes=15),
        since=timedelta(hours=24),
    )
    assert rapid.consent_purpose is None and carts.consent_purpose is None
    assert {d.name for d in by_name.values() if d.refresh is Refresh.MINUTES} == {
        "rapid_browsers",
        "cart_abandoners",
        "browse_abandoners",
        "high_purchase_intent",
    }
