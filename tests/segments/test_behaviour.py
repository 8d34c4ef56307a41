"""Behavioural rules over hand-built raw events: exact members at T, boundaries included."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from segment_data import AS_OF, CART_ABANDONERS, INJECTION, RAPID_BROWSERS, EventLog

from cdp.segments import RuleError, bind_sources, compile_segment_query, parse_rule

T = AS_OF
MIN = timedelta(minutes=1)


def members(events: EventLog, rule: Any, at: datetime = T) -> set[str]:
    """Customers a rule selects at ``at``."""
    columns = bind_sources(events.con)
    query = compile_segment_query(parse_rule(rule, columns), columns)
    return {row[0] for row in events.con.execute(query.sql, query.bind(at)).fetchall()}


def views(events: EventLog, anonymous_id: str, *minutes_before_t: float) -> None:
    events.customer(anonymous_id.upper(), anonymous_id)
    for minutes in minutes_before_t:
        events.track(anonymous_id, "product_viewed", T - minutes * MIN)


def test_rapid_browsers_window_and_count_boundaries(events: EventLog) -> None:
    views(events, "exactly3", 20, 15, 11)  # 3 views is not > 3
    views(events, "four", 20, 17, 14, 10)  # 4 views spanning exactly 10:00
    views(events, "spread", 21, 17, 14, 10)  # 4 views over 11 minutes: at most 3 in a window
    views(events, "edge", 40, 38, 35, 31)  # window [T-40, T-30] ends exactly 30 min before T
    views(events, "tooold", 41, 38, 35, 31)  # needs a window ending before T-30
    views(events, "future", -1, -2, -3, -4)  # after T: not yet happened
    views(events, "mixed", 5, 4, 3)
    events.track("mixed", "product_added_to_cart", T - 2 * MIN)
    assert members(events, RAPID_BROWSERS) == {"FOUR", "EDGE"}


def test_counting_ties_in_one_window(events: EventLog) -> None:
    views(events, "ties", 5, 5, 5, 5)
    assert members(events, RAPID_BROWSERS) == {"TIES"}


@pytest.mark.parametrize(
    ("order_after_cart", "abandoned"),
    [(timedelta(minutes=15), False), (timedelta(minutes=15, seconds=1), True)],
)
def test_cart_abandoners_order_at_15_00_vs_15_01(
    events: EventLog, order_after_cart: timedelta, abandoned: bool
) -> None:
    events.customer("C", "c")
    events.track("c", "product_added_to_cart", T - 60 * MIN)
    events.track("c", "order_completed", T - 60 * MIN + order_after_cart)
    assert members(events, CART_ABANDONERS) == ({"C"} if abandoned else set())


def test_cart_abandoners_pending_age_and_identity(events: EventLog) -> None:
    cases = {
        "pending": [("product_added_to_cart", 14)],  # younger than 15 min: still pending
        "just": [("product_added_to_cart", 15)],  # exactly 15 min: the window is complete
        "old": [("product_added_to_cart", 24 * 60 + 1)],
        "day": [("product_added_to_cart", 24 * 60)],  # exactly 24 h before T
        "before": [("order_completed", 70), ("product_added_to_cart", 60)],
        "future": [("product_added_to_cart", 60), ("order_completed", -1)],
    }
    for anonymous_id, tracked in cases.items():
        events.customer(anonymous_id.upper(), anonymous_id)
        for event, minutes in tracked:
            events.track(anonymous_id, event, T - minutes * MIN)
    # one person on two devices: the cart on one, the order on the other
    events.customer("TWO", "phone", "laptop")
    events.track("phone", "product_added_to_cart", T - 60 * MIN)
    events.track("laptop", "order_completed", T - 50 * MIN)
    assert members(events, CART_ABANDONERS) == {"JUST", "DAY", "BEFORE", "FUTURE"}
    # two minutes earlier: "just" was pending, "old" was in the 24 hours, "future"'s order unknown
    assert members(events, CART_ABANDONERS, at=T - 2 * MIN) == {"OLD", "DAY", "BEFORE", "FUTURE"}


def test_count_in_days_is_inclusive_at_both_ends(events: EventLog) -> None:
    rule = {"count": "order_completed", "op": ">=", "value": 3, "within": "30 days"}
    for anonymous_id, oldest in (
        ("three", T - timedelta(days=30)),
        ("two", T - timedelta(days=30, seconds=1)),
    ):
        events.customer(anonymous_id.upper(), anonymous_id)
        for at in (oldest, T - timedelta(days=1), T):
            events.track(anonymous_id, "order_completed", at)
    assert members(events, rule) == {"THREE"}
    fewer = {**rule, "op": "<", "value": 3}
    events.customer("NONE", "none")  # no orders at all: a count of 0
    assert members(events, fewer) == {"TWO", "NONE"}


def test_property_filters_and_a_positive_sequence(events: EventLog) -> None:
    events.customer("GEEK", "geek")
    events.customer("CHEAP", "cheap")
    events.customer("BOOKS", "books")
    for anonymous_id, category, price in (
        ("geek", "electronics", 499.0),
        ("geek", "electronics", 201.0),
        ("cheap", "electronics", 200.0),
        ("cheap", "electronics", 999.0),
        ("books", "books", 900.0),
        ("books", "books", 900.0),
    ):
        events.track(anonymous_id, "product_viewed", T - 60 * MIN, category, price)
    pricey = {
        "count": "product_viewed",
        "op": ">=",
        "value": 2,
        "within": "1 day",
        "where": [
            {"field": "category", "op": "=", "value": "electronics"},
            {"field": "price", "op": ">", "value": 200},
        ],
    }
    assert members(events, pricey) == {"GEEK"}
    events.track("cheap", "product_added_to_cart", T - 55 * MIN)
    events.track("books", "product_added_to_cart", T - 40 * MIN)
    viewed_then_added = {
        "sequence": "product_viewed",
        "then": "product_added_to_cart",
        "within": "5 minutes",
        "since": "1 hour",
    }
    assert members(events, viewed_then_added) == {"CHEAP"}


def test_injection_in_an_event_filter_is_data(events: EventLog) -> None:
    events.customer("ODD", "odd")
    events.track("odd", "product_viewed", T - MIN, category=INJECTION)
    rule = {
        "count": "product_viewed",
        "op": ">=",
        "value": 1,
        "within": "1 hour",
        "where": [{"field": "category", "op": "=", "value": INJECTION}],
    }
    columns = bind_sources(events.con)
    assert INJECTION not in compile_segment_query(parse_rule(rule, columns), columns).sql
    assert members(events, rule) == {"ODD"}
    assert events.con.execute("select count(*) from raw.analytics_events").fetchone() == (1,)


def test_model_fields_match_nobody_until_the_ml_tables_exist(events: EventLog) -> None:
    events.customer("HOT", "hot")
    events.customer("COLD", "cold")
    hot = {"field": "propensity_decile", "op": ">=", "value": 9}
    bargain = {"field": "cluster", "op": "=", "value": "bargain_hunters"}
    assert members(events, hot) == set()
    assert members(events, bargain) == set()
    events.con.execute("create schema ml")
    events.con.execute(
        """
        create table ml.scores as
        select * from (values
            ('HOT', 'purchase_propensity', 'v1', 0.97, 10),
            ('COLD', 'purchase_propensity', 'v1', 0.10, 1),
            ('COLD', 'churn', 'v1', 0.99, 10)
        ) t(customer_id, model_name, model_version, score, decile)
        """
    )
    events.con.execute("create view ml.current_scores as select * from ml.scores")
    events.con.execute(
        "create view ml.current_clusters as "
        "select 'COLD' as customer_id, 'bargain_hunters' as cluster_name"
    )
    assert members(events, hot) == {"HOT"}
    assert members(events, bargain) == {"COLD"}


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({**RAPID_BROWSERS, "count": "product_viewd"}, "unknown event 'product_viewd'"),
        ({**RAPID_BROWSERS, "within": "10 parsecs"}, "bad window '10 parsecs'"),
        ({**RAPID_BROWSERS, "within": "0 minutes"}, "must be longer than 0"),
        ({**RAPID_BROWSERS, "value": -1}, "whole number >= 0"),
        ({**RAPID_BROWSERS, "op": "in"}, "unknown op 'in'"),
        ({**CART_ABANDONERS, "then": "order_completed"}, "exactly one of 'then' or 'then_no'"),
        (
            {k: v for k, v in CART_ABANDONERS.items() if k != "since"},
            "missing required key 'since'",
        ),
        (
            {**RAPID_BROWSERS, "where": [{"field": "colour", "op": "=", "value": "red"}]},
            "unknown field 'colour' (not one of the event columns)",
        ),
        ({"field": "propensity_decile", "op": ">=", "value": "9"}, "expected a number"),
    ],
)
def test_behavioural_validation_errors(events: EventLog, rule: dict, message: str) -> None:
    with pytest.raises(RuleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_rule(rule, bind_sources(events.con))


def _rapid_by_definition(times: list[datetime], at: datetime) -> bool:
    """Some window [e - 10 min, e] with e in [T - 30 min, T] holds more than 3 views up to T."""
    seen = [t for t in times if t <= at]
    ends = [at - 30 * MIN, *(t for t in seen if t >= at - 30 * MIN)]
    return any(sum(e - 10 * MIN <= t <= e for t in seen) > 3 for e in ends)


def _abandoned_by_definition(carts: list[datetime], orders: list[datetime], at: datetime) -> bool:
    """A cart in [T - 24 h, T - 15 min] with no order in [cart, cart + 15 min]."""
    return any(
        at - timedelta(hours=24) <= c <= at - 15 * MIN
        and not any(c <= o <= c + 15 * MIN for o in orders)
        for c in carts
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_histories_agree_with_the_written_definitions(events: EventLog, seed: int) -> None:
    rng = random.Random(seed)
    history: dict[str, dict[str, list[datetime]]] = {}
    for n in range(40):
        anonymous_id = f"v{n}"
        events.customer(anonymous_id.upper(), anonymous_id)
        kinds = history[anonymous_id.upper()] = {e: [] for e in ("view", "cart", "order")}
        for _ in range(rng.randrange(12)):
            kind = rng.choice(("view", "view", "view", "cart", "order"))
            at = T - timedelta(seconds=30 * rng.randrange(-10, 110))  # 30 s grid hits boundaries
            kinds[kind].append(at)
            event = {"view": "product_viewed", "cart": "product_added_to_cart"}.get(
                kind, "order_completed"
            )
            events.track(anonymous_id, event, at)
    positives = [0, 0]
    for at in (T, T - 7 * MIN, T + 20 * MIN):
        rapid = {c for c, h in history.items() if _rapid_by_definition(h["view"], at)}
        abandoned = {
            c for c, h in history.items() if _abandoned_by_definition(h["cart"], h["order"], at)
        }
        assert members(events, RAPID_BROWSERS, at) == rapid
        assert members(events, CART_ABANDONERS, at) == abandoned
        positives = [positives[0] + len(rapid), positives[1] + len(abandoned)]
    assert min(positives) > 0  # the histories exercise both segments, not just empty sets
