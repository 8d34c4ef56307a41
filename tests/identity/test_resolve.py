"""Deterministic identity resolution on a real DuckDB warehouse."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pytest

from cdp.warehouse import connect
from identity import customer_id_for, normalize_email, resolve_identities

META = ("b1", "test", "f", 1, datetime(2026, 11, 1), "h", None)


def _add_customer(con: duckdb.DuckDBPyConnection, crm_id: str, email: str | None) -> None:
    con.execute(
        "insert into raw.crm_customers (crm_customer_id, email, _batch_id, _source, _source_file,"
        " _line_no, _loaded_at, _row_hash, _extra) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [crm_id, email, *META],
    )


def _add_event(con, message_id, event_type, anonymous_id=None, user_id=None, traits=None):
    con.execute(
        "insert into raw.analytics_events (message_id, type, event, anonymous_id, user_id,"
        ' "timestamp", traits, _batch_id, _source, _source_file, _line_no, _loaded_at,'
        " _row_hash, _extra) values (?, ?, 'x', ?, ?, '2026-11-01', ?, ?, ?, ?, ?, ?, ?, ?)",
        [message_id, event_type, anonymous_id, user_id, json.dumps(traits) if traits else None,
         *META],
    )  # fmt: skip


def _clusters(con) -> dict[str, str]:
    rows = con.execute("select id_type, source_record_id, customer_id from identity.clusters")
    return {f"{t}:{r}": c for t, r, c in rows.fetchall()}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  John.Smith@Example.COM ", "john.smith@example.com"),
        ("TEST@test.com", None),
        ("not-an-email", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_email(raw, expected):
    assert normalize_email(raw) == expected


def test_email_login_and_crm_id_rules_make_one_customer(settings):
    with connect(settings) as con:
        _add_customer(con, "C1", "Ann@Example.com")
        _add_customer(con, "C2", " ann@example.com")  # duplicate CRM record, same mailbox
        _add_customer(con, "C3", "bob@example.com")
        _add_event(con, "e1", "page", anonymous_id="dev-1")  # anonymous browsing …
        _add_event(con, "e2", "track", anonymous_id="dev-1", user_id="C1")  # … then login
        _add_event(con, "e3", "identify", anonymous_id="dev-2", traits={"email": "BOB@example.com"})
        _add_event(con, "e4", "page", anonymous_id="dev-3")  # never identified
        result = resolve_identities(con, "run-1")
        clusters = _clusters(con)

    ann = {clusters[k] for k in ("crm_customer_id:C1", "crm_customer_id:C2", "user_id:C1",
                                 "anonymous_id:dev-1")}  # fmt: skip
    bob = {clusters["crm_customer_id:C3"], clusters["anonymous_id:dev-2"]}
    assert len(ann) == 1 and len(bob) == 1
    assert len(ann | bob | {clusters["anonymous_id:dev-3"]}) == 3
    assert (result.records, result.customers) == (7, 3)
    assert result.edges_by_rule == {"crm_customer_id": 1, "email": 2, "login": 1}
    assert clusters["crm_customer_id:C1"] == customer_id_for("crm_customer_id:C1")


def test_placeholder_emails_never_link_people(settings):
    with connect(settings) as con:
        _add_customer(con, "C1", "test@test.com")
        _add_customer(con, "C2", "TEST@TEST.COM")
        result = resolve_identities(con, "run-1")
    assert result.customers == 2 and result.edges == 0


def test_customer_ids_are_stable_across_runs_and_insertion_order(settings, tmp_path):
    def build(order):
        with connect(settings) as con:
            for table in ("raw.crm_customers", "raw.analytics_events"):
                con.execute(f"delete from {table}")
            for crm_id, email in order:
                _add_customer(con, crm_id, email)
            resolve_identities(con, "run")
            return _clusters(con)

    people = [("C1", "a@x.com"), ("C2", "A@x.com"), ("C3", "c@x.com"), ("C4", None)]
    first = build(people)
    assert build(list(reversed(people))) == first
    assert build(people) == first
