"""Identity resolution on a real DuckDB warehouse: rules, model bands, incremental runs."""

from __future__ import annotations

import json

from identity import customer_id_for, resolve_identities
from tests.identity.conftest import clusters, crm


def test_email_login_and_crm_id_rules_make_one_customer(warehouse):
    con, raw = warehouse
    raw.customer("C1", email="Ann@Example.com")
    raw.customer("C2", email=" ann@example.com")  # duplicate CRM record, same mailbox
    raw.customer("C3", email="bob@example.com")
    raw.event("page", anonymous_id="dev-1")  # anonymous browsing …
    raw.event("track", anonymous_id="dev-1", user_id="C1")  # … then login
    raw.event("identify", anonymous_id="dev-2", traits={"email": "BOB@example.com"})
    raw.event("page", anonymous_id="dev-3")  # never identified
    result = resolve_identities(con, "run-1")
    ids = clusters(con)

    ann = {ids[k] for k in (crm("C1"), crm("C2"), "user_id:C1", "anonymous_id:dev-1")}
    bob = {ids[crm("C3")], ids["anonymous_id:dev-2"]}
    assert len(ann) == 1 and len(bob) == 1
    assert len(ann | bob | {ids["anonymous_id:dev-3"]}) == 3
    assert (result.mode, result.records, result.customers) == ("full", 7, 3)
    assert result.edges_by_rule["crm_customer_id"] == 1 and result.edges_by_rule["login"] == 1
    assert result.edges_by_rule["email"] == 2
    assert ids[crm("C1")] == customer_id_for(crm("C1"))


def test_phone_rule_links_formats_of_one_number(warehouse):
    con, raw = warehouse
    raw.customer("C1", first_name="Ann", last_name="Lee", phone="(415) 555-2671")
    raw.event("identify", anonymous_id="dev-1", traits={"phone": "+1 415.555.2671"})
    raw.customer("C2", first_name="Bo", last_name="Ek", phone="+44 20 7946 0958", country="GB")
    raw.event("identify", anonymous_id="dev-2", traits={"phone": "+442079460958"})
    resolve_identities(con, "run-1")
    ids = clusters(con)
    assert ids[crm("C1")] == ids["anonymous_id:dev-1"]
    assert ids[crm("C2")] == ids["anonymous_id:dev-2"]
    phones = con.execute(
        "select identifier_value from identity.identifiers where identifier_type = 'phone'"
        " and id_type = 'crm_customer_id' order by 1"
    ).fetchall()
    assert phones == [("+14155552671",), ("+442079460958",)]


def test_model_links_a_typo_duplicate_without_shared_keys(warehouse):
    con, raw = warehouse
    person = {"last_name": "Nakamura", "date_of_birth": "1984-03-09", "city": "Portland",
              "postcode": "97201", "address_line1": "412 Alder St"}  # fmt: skip
    raw.customer("C1", first_name="Hiroshi", **person)
    raw.customer("C2", first_name="Hiroshi", **{**person, "last_name": "Nakamuar"})
    raw.customer("C3", first_name="Grace", last_name="Okafor", date_of_birth="1990-07-01")
    result = resolve_identities(con, "run-1")
    ids = clusters(con)
    assert ids[crm("C1")] == ids[crm("C2")] != ids[crm("C3")]
    assert result.edges_by_rule == {"person_match": 1}


def test_grey_zone_pair_goes_to_review_with_its_evidence(warehouse):
    con, raw = warehouse
    # Same name and city, birth dates with day and month swapped: likely, not sure.
    raw.customer("C1", first_name="Maria", last_name="Lopez", date_of_birth="1980-01-02",
                 city="Austin")  # fmt: skip
    raw.customer("C2", first_name="María", last_name="Lopez", date_of_birth="1980-02-01",
                 city="Austin")  # fmt: skip
    resolve_identities(con, "run-1")
    ids = clusters(con)
    [(left, right, probability, evidence)] = con.execute(
        "select left_key, right_key, match_probability, evidence from identity.review_queue"
    ).fetchall()
    assert (left, right) == (crm("C1"), crm("C2"))
    assert 0.5 <= probability < 0.99
    evidence = json.loads(evidence)
    assert evidence["first_name"]["level"] == 3 and evidence["date_of_birth"]["level"] == 2
    assert evidence["postcode"]["level"] == -1  # missing on both sides: no evidence
    assert ids[crm("C1")] != ids[crm("C2")]  # the review band never merges by itself


def test_incremental_run_compares_only_new_records(warehouse):
    con, raw = warehouse
    for i in range(30):
        raw.customer(f"C{i:02d}", first_name=f"Name{chr(97 + i % 26)}", last_name="Smith",
                     email=f"p{i}@example.com", postcode="10001")  # fmt: skip
    first = resolve_identities(con, "run-1")
    unchanged = resolve_identities(con, "run-2")
    raw.next_batch()
    raw.customer("C99", first_name="Late", last_name="Comer", email="p3@example.com")
    third = resolve_identities(con, "run-3")
    assert (first.mode, unchanged.mode, third.mode) == ("full", "unchanged", "incremental")
    assert unchanged.records_touched == 0 and third.records_touched == 1
    assert third.candidate_pairs < first.candidate_pairs
    assert clusters(con)[crm("C99")] != clusters(con)[crm("C03")]  # contradicting names


def test_working_tables_of_an_older_layout_are_rebuilt_by_a_full_run(warehouse):
    con, raw = warehouse
    raw.customer("C1", first_name="Ann", last_name="Lee", email="ann@example.com")
    raw.customer("C2", first_name="Ann", last_name="Lee", email="ann@example.com")
    resolve_identities(con, "run-1")
    before = clusters(con)
    # person_records as an earlier release wrote it: no record numbers, no blocking keys
    con.execute("drop table identity.person_records")
    con.execute(
        "create table identity.person_records (record_key VARCHAR NOT NULL, "
        "source VARCHAR NOT NULL, first_name VARCHAR)"
    )
    result = resolve_identities(con, "run-2")
    columns = {
        name
        for (name,) in con.execute(
            "select column_name from duckdb_columns() where schema_name = 'identity' "
            "and table_name = 'person_records'"
        ).fetchall()
    }
    assert result.mode == "full" and result.records_touched == 2
    assert {"rid", "last_name_phonetic"} <= columns
    assert con.execute("select count(*) from identity.person_records").fetchone() == (2,)
    assert clusters(con) == before
