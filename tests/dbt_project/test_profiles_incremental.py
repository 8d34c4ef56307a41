"""The incremental customer_profiles equals a full refresh of it after every kind of change,
and re-computes only the customers the change can reach.

One warehouse (test_dbt_build's hand-written data plus Carol, a CRM-only buyer, and an event of
Bob's on the 7-day window edge) goes through a sequence of changes, each followed by an
incremental `dbt run`. After each run a copy of the warehouse gets `--full-refresh` of
customer_profiles alone (same upstream tables), and both must hold the same profiles.

Which profiles a run re-computed is visible in their watermark columns: before every run an
intent row for an unknown email is loaded (it reaches no customer), so exactly the rows this run
wrote carry the newest intent_loaded_at.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from test_dbt_build import (
    AS_OF,
    MART_QUERIES,
    _dbt_args,
    _event,
    _insert_raw,
    _load_fixture_data,
    _promote_event_columns,
)

T = datetime.fromisoformat
PROFILES = MART_QUERIES["customer_profiles"]

# fmt: off
CAROL_ORDER = dict(order_id="O8", crm_customer_id="C4", ordered_at=T("2024-01-10 10:00"),
                   total_amount=Decimal("40.00"), status="completed",
                   _loaded_at=T("2024-01-11 00:00"))
CAROL = dict(crm_customer_id="C4", first_name="Carol", email="carol@example.com",
             created_at=T("2023-06-01 00:00"), updated_at=T("2023-06-01 00:00"),
             _loaded_at=T("2023-06-02 00:00"))
# inside the 7-day window of AS_OF (it starts 2024-06-23 12:00), outside the one a day later
BOB_EDGE_EVENT = _event("edge1", "page", "2024-06-24 00:00", anonymous_id="anon-b1")
# fmt: on


class Warehouse:
    """The test warehouse: raw changes, incremental runs and their full-refresh twin."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / "warehouse.duckdb"
        self.runs = 0

    def execute(self, *statements: str) -> None:
        con = duckdb.connect(str(self.path))
        try:
            for statement in statements:
                con.execute(statement)
        finally:
            con.close()

    def insert(self, source_entity: str, rows: list[dict]) -> None:
        con = duckdb.connect(str(self.path))
        try:
            _insert_raw(con, source_entity, rows)
            if source_entity == "analytics/events":
                _promote_event_columns(con)
        finally:
            con.close()

    def read(self, sql: str, path: Path | None = None) -> list[tuple]:
        con = duckdb.connect(str(path or self.path), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def dbt(self, as_of: str, *extra: str, path: Path | None = None) -> None:
        from dbt.adapters.duckdb import DuckDBConnectionManager
        from dbt.cli.main import dbtRunner

        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("CDP_WAREHOUSE", str(path or self.path))
            mp.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
            result = dbtRunner().invoke(_dbt_args("run", self.home, as_of=as_of) + list(extra))
        DuckDBConnectionManager.close_all_connections()
        assert result.success, result.exception

    def incremental_run(self, as_of: str) -> set[str]:
        """Run the project incrementally; the customer_ids whose profile it re-computed."""
        self.runs += 1
        self.insert("thirdparty/intent", [dict(
            email="nobody@example.net", topic="golf", intent_score=1.0,
            observed_at=T("2024-01-01 00:00"), _loaded_at=T(f"2024-08-{self.runs:02d} 00:00"),
        )])  # fmt: skip
        self.dbt(as_of, "--select", "+customer_profiles")
        return {
            customer_id
            for (customer_id,) in self.read(
                "select customer_id from marts.customer_profiles"
                " where intent_loaded_at = (select max(_loaded_at) from raw.thirdparty_intent)"
            )
        }

    def assert_equals_full_refresh(self, as_of: str) -> None:
        twin = self.home / "full_refresh.duckdb"
        shutil.copyfile(self.path, twin)
        self.dbt(as_of, "--full-refresh", "--select", "customer_profiles", path=twin)
        assert self.read(PROFILES) == self.read(PROFILES, twin)

    def profile(self, customer_id: str, columns: str) -> tuple:
        [row] = self.read(
            f"select {columns} from marts.customer_profiles where customer_id = '{customer_id}'"
        )
        return row


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """The fixture data plus Carol and Bob's edge event, after a first (full) build."""
    built = Warehouse(tmp_path_factory.mktemp("profiles_incremental"))
    _load_fixture_data(built.path)
    built.insert("crm/customers", [CAROL])
    built.insert("crm/orders", [CAROL_ORDER])
    built.insert("analytics/events", [BOB_EDGE_EVENT])
    built.execute(
        "insert into identity.clusters values"
        " ('crm', 'crm_customer_id', 'C4', 'cust_carol', 'run-1', timestamp '2024-07-10')"
    )
    built.dbt(AS_OF, "--select", "+customer_profiles")
    return built


def _merge_visitor_into_bob(warehouse: Warehouse) -> None:
    warehouse.execute(
        "update identity.clusters set customer_id = 'cust_bob', run_id = 'run-2',"
        " resolved_at = '2024-07-20' where customer_id = 'cust_visitor'"
    )


def _change_bobs_city_and_alices_consent(warehouse: Warehouse) -> None:
    warehouse.insert("crm/customers", [dict(
        crm_customer_id="C3", first_name="Bob", last_name="Jones", email="bob@example.com",
        city="Paris", country="FR", created_at=T("2024-02-01 00:00"),
        updated_at=T("2024-07-01 00:00"), _loaded_at=T("2024-07-21 00:00"),
    )])  # fmt: skip
    warehouse.insert("consent/events", [dict(
        crm_customer_id="C1", purpose="advertising", status="granted",
        recorded_at=T("2024-06-15 00:00"), _loaded_at=T("2024-07-22 00:00"),
    )])  # fmt: skip


#: (what changes, as_of of the run, the change, the customers it must re-compute,
#:  {customer_id: (columns, their exact values after the run)})
STEPS: list[tuple[str, str, Callable[[Warehouse], None], set[str], dict[str, tuple]]] = [
    # as_of moves a day: Bob's edge1 leaves the 7-day window; Alice's 2024-06-01 event sits on
    # the day the 30-day edge moved across and her consent of 2024-07-01 now counts; Carol and
    # the visitor are not re-computed, but Carol's recency moves with as_of (172 -> 173 days)
    ("as_of moves a day", "2024-07-01 12:00:00", lambda w: None,
     {"cust_alice", "cust_bob"},
     {"cust_bob": ("events_7d, page_events_7d, events_30d", (0, 0, 2)),
      "cust_carol": ("recency_days, profile_as_of::varchar", (173, "2024-07-01 12:00:00")),
      "cust_alice": ("has_consent_email_marketing", (True,))}),
    ("new events", "2024-07-01 12:00:00",
     lambda w: w.insert("analytics/events", [_event("v2", "page", "2024-07-01 08:00",
                                                    anonymous_id="anon-x",
                                                    loaded_at="2024-07-15 00:00")]),
     {"cust_visitor"},
     {"cust_visitor": ("events_7d, last_seen_at::varchar", (3, "2024-07-01 08:00:00"))}),
    ("a merge: cust_visitor vanishes into cust_bob", "2024-07-01 12:00:00",
     _merge_visitor_into_bob,
     {"cust_bob"},
     {"cust_bob": ("anonymous_ids, events_7d", (["anon-b1", "anon-x"], 3))}),
    ("a CRM attribute change and a consent change", "2024-07-01 12:00:00",
     _change_bobs_city_and_alices_consent,
     {"cust_alice", "cust_bob"},
     {"cust_bob": ("city, country", ("Paris", "FR")),
      "cust_alice": ("has_consent_advertising", (True,))}),
    # Bob's new order; as_of moves to midnight (Alice: the 30-day edge day again); Carol's
    # recency moves on without a re-computation
    ("an order", "2024-07-02 00:00:00",
     lambda w: w.insert("crm/orders", [dict(
         order_id="O9", crm_customer_id="C3", ordered_at=T("2024-07-01 20:00"),
         total_amount=Decimal("25.00"), status="completed", _loaded_at=T("2024-07-23 00:00"))]),
     {"cust_alice", "cust_bob"},
     {"cust_bob": ("order_count, lifetime_value, recency_days", (2, Decimal("25.00"), 1)),
      "cust_carol": ("recency_days", (174,))}),
    ("a score and a segment membership", "2024-07-02 00:00:00",
     lambda w: w.execute(
         "create schema ml",
         "create table ml.current_scores as select * from (values"
         " ('cust_alice', 'purchase_propensity', 0.8::double, 9))"
         " as t(customer_id, model_name, score, decile)",
         "create schema segments",
         "create table segments.membership as select * from (values ('vip', 'cust_carol'))"
         " as t(segment, customer_id)"),
     {"cust_alice", "cust_carol"},
     {"cust_alice": ("propensity_score, propensity_decile", (0.8, 9)),
      "cust_carol": ("segments", (["vip"],))}),
    # as_of moves backwards: every profile is re-computed (Carol's recency back to 172 days)
    ("as_of moves backwards", AS_OF, lambda w: None,
     {"cust_alice", "cust_bob", "cust_carol"},
     {"cust_carol": ("recency_days", (172,))}),
]  # fmt: skip


def test_first_build_holds_the_extra_customers(warehouse: Warehouse) -> None:
    assert warehouse.profile("cust_carol", "recency_days, lifetime_value, events_90d") == (
        172, Decimal("40.00"), 0,
    )  # fmt: skip
    assert warehouse.profile("cust_bob", "events_7d, profile_as_of::varchar") == (
        1, "2024-06-30 12:00:00",
    )  # fmt: skip


@pytest.mark.parametrize("step", STEPS, ids=[step[0] for step in STEPS])
def test_incremental_profiles_equal_a_full_refresh_after(
    warehouse: Warehouse, step: tuple[Any, ...]
) -> None:
    """The steps run in order on the module's warehouse (each builds on the one before)."""
    _, as_of, change, recomputed, expected = step
    change(warehouse)
    assert warehouse.incremental_run(as_of) == recomputed
    for customer_id, (columns, values) in expected.items():
        assert warehouse.profile(customer_id, columns) == values, customer_id
    warehouse.assert_equals_full_refresh(as_of)
