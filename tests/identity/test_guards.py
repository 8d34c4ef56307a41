"""Guards against over-merging: each one holds and is recorded when it fires."""

from __future__ import annotations

from identity import resolve_identities
from tests.identity.conftest import clusters, crm


def _guard_events(con, guard: str) -> list[tuple]:
    return con.execute(
        "select identifier_type, rule, left_key, right_key, detail from identity.guard_events"
        " where guard = ? order by all",
        [guard],
    ).fetchall()


def test_placeholder_email_shared_by_500_records_links_nobody(warehouse):
    con, raw = warehouse
    for i in range(500):  # a shop's own address, typed in by clerks for walk-in customers
        raw.customer(f"C{i:03d}", first_name=f"P{i}", email="Orders@MyShop.example")
    raw.customer("C900", email="test@test.com")
    raw.customer("C901", email="TEST@test.com")
    result = resolve_identities(con, "run-1")
    assert result.customers == 502
    assert "email" not in result.edges_by_rule
    blocked = con.execute(
        "select identifier_value, records, reason from identity.blocked_values order by 1"
    ).fetchall()
    assert blocked == [("orders@myshop.example", 500, "max_records_per_value"),
                       ("test@test.com", 2, "placeholder")]  # fmt: skip
    recorded = {(t, d.split(" held")[0]) for t, _, _, _, d in _guard_events(con, "placeholder")}
    assert recorded == {("email", "value test@test.com")}
    assert len(_guard_events(con, "max_records_per_value")) == 1


def test_shared_device_never_merges_two_known_customers(warehouse):
    con, raw = warehouse
    raw.customer("C1", first_name="Ann", last_name="Lee", email="ann@example.com")
    raw.customer("C2", first_name="Raj", last_name="Patel", email="raj@example.com")
    raw.event("track", anonymous_id="family-ipad", user_id="C1")
    raw.event("track", anonymous_id="family-ipad", user_id="C2")
    resolve_identities(con, "run-1")
    ids = clusters(con)
    assert ids[crm("C1")] != ids[crm("C2")]
    assert ids["anonymous_id:family-ipad"] in {ids[crm("C1")], ids[crm("C2")]}
    [(id_type, rule, left, right, _)] = _guard_events(con, "max_distinct_per_cluster")
    assert (rule, left) == ("login", "anonymous_id:family-ipad")
    assert id_type in {"crm_customer_id", "user_id"}  # either limit stops it
    assert right in {"user_id:C1", "user_id:C2"}


def test_two_crm_ids_on_one_email_merge_only_when_they_agree(warehouse):
    con, raw = warehouse
    # A couple sharing a mailbox: different first names and birth dates.
    raw.customer("C1", first_name="John", last_name="Smith", date_of_birth="1971-04-02",
                 email="smiths@example.com")  # fmt: skip
    raw.customer("C2", first_name="Mary", last_name="Smith", date_of_birth="1974-09-30",
                 email="Smiths@Example.com")  # fmt: skip
    # One person keyed in twice (a typo, no birth date on the copy).
    raw.customer("C3", first_name="Peter", last_name="Novak", date_of_birth="1980-01-15",
                 email="pnovak@example.com")  # fmt: skip
    raw.customer("C4", first_name="Petr", last_name="Novak", email="PNovak@example.com")
    resolve_identities(con, "run-1")
    ids = clusters(con)
    assert ids[crm("C1")] != ids[crm("C2")]
    assert ids[crm("C3")] == ids[crm("C4")]
    events = _guard_events(con, "max_distinct_per_cluster")
    assert events and all(e[0] == "crm_customer_id" for e in events)
    assert {(e[2], e[3]) for e in events} == {(crm("C1"), crm("C2"))}
