"""Stable customer ids: same input → same ids; new data changes ids only by recorded merges,
and the profile mart follows."""

from __future__ import annotations

from datetime import datetime

from cdp.settings import load_settings
from cdp.transform import dbt_build
from cdp.warehouse import connect
from identity import resolve_identities
from tests.identity.conftest import RawWriter, clusters, crm

PEOPLE = [("C1", "Ann", "a@x.com"), ("C2", "Ann", "A@x.com"), ("C3", "Cy", "c@x.com"),
          ("C4", "Di", None)]  # fmt: skip


def _resolve_fresh(home, people) -> dict[str, str]:
    settings = load_settings({"CDP_HOME": str(home)})
    with connect(settings) as con:
        raw = RawWriter(con)
        for crm_id, name, email in people:
            raw.customer(crm_id, first_name=name, last_name="Kim", email=email)
        resolve_identities(con, "run")
        return clusters(con)


def test_same_input_gives_the_same_ids_in_any_order(tmp_path):
    first = _resolve_fresh(tmp_path / "a", PEOPLE)
    assert _resolve_fresh(tmp_path / "b", list(reversed(PEOPLE))) == first
    assert first[crm("C1")] == first[crm("C2")] != first[crm("C3")]


def _first_run(con) -> tuple[RawWriter, dict[str, str]]:
    """Ann and Bob in the CRM, an anonymous device and one that gave a phone, resolved."""
    raw = RawWriter(con)
    raw.customer("C1", first_name="Ann", last_name="Lee", email="ann@example.com")
    raw.customer("C2", first_name="Bob", last_name="Ortiz", email="bob@example.com")
    raw.event("page", anonymous_id="dev-1")
    raw.event("identify", anonymous_id="dev-2", traits={"phone": "+1 415 555 2671"})
    resolve_identities(con, "run-1")
    return raw, clusters(con)


def test_added_batch_keeps_ids_and_a_merge_is_recorded_and_followed_by_profiles(settings):
    with connect(settings) as con:
        raw, before = _first_run(con)
        assert resolve_identities(con, "run-2", full=True).id_changes == 0
        assert clusters(con) == before  # a full rebuild on the same input keeps every id

        raw.next_batch()  # Ann adds her phone in the CRM; a new customer arrives
        raw.customer("C1", first_name="Ann", last_name="Lee", email="ann@example.com",
                     phone="(415) 555-2671")  # fmt: skip
        raw.customer("C3", first_name="Cleo", last_name="Ng", email="cleo@example.com")
        result = resolve_identities(con, "run-3")
        after = clusters(con)
        history = con.execute(
            "select run_id, old_customer_id, new_customer_id, reason from identity.id_history"
        ).fetchall()

    assert result.mode == "incremental"
    assert after[crm("C1")] == before[crm("C1")] == after["anonymous_id:dev-2"]
    assert after[crm("C2")] == before[crm("C2")]
    assert after["anonymous_id:dev-1"] == before["anonymous_id:dev-1"]
    assert history == [("run-3", before["anonymous_id:dev-2"], before[crm("C1")], "merge")]

    dbt_build(settings, datetime(2026, 11, 2))
    with connect(settings, read_only=True) as con:
        profiles = {row[0] for row in con.execute(
            "select customer_id from marts.customer_profiles").fetchall()}  # fmt: skip
    assert set(after.values()) == profiles
    assert before["anonymous_id:dev-2"] not in profiles


def test_a_full_rebuild_rewrites_every_record_and_drops_those_gone_from_raw(settings):
    with connect(settings) as con:
        _, before = _first_run(con)
        con.execute("delete from raw.crm_customers where crm_customer_id = 'C2'")
        resolve_identities(con, "run-2", full=True)
        rows = con.execute(
            "select id_type || ':' || source_record_id, customer_id, run_id"
            " from identity.clusters order by 1"
        ).fetchall()

    assert rows == [
        ("anonymous_id:dev-1", before["anonymous_id:dev-1"], "run-2"),
        ("anonymous_id:dev-2", before["anonymous_id:dev-2"], "run-2"),
        (crm("C1"), before[crm("C1")], "run-2"),
    ]
