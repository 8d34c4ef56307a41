"""A small working warehouse with the analyst-facing tables, written by hand (no dbt needed)."""

from __future__ import annotations

import pytest

from cdp.settings import Settings, load_settings
from cdp.warehouse import connect

PROFILES = [
    # customer_id, email, emails, first_name, date_of_birth, lifetime_value
    (
        "cust-a",
        "alice@example.com",
        ["alice@example.com", "a@work.example"],
        "Alice",
        "1990-05-17",
        150.5,
    ),
    ("cust-b", "bob@example.com", ["bob@example.com"], "Bob", None, 0.0),
    ("cust-c", None, None, None, None, 0.0),
]


def fill_warehouse(settings: Settings, profiles: list[tuple] = PROFILES) -> None:
    """(Re)write marts, segments and identity.clusters with ``profiles``."""
    with connect(settings) as con:
        con.execute("create schema if not exists marts")
        con.execute("create schema if not exists segments")
        con.execute(
            "create or replace table marts.customer_profiles (customer_id varchar, email varchar,"
            " emails varchar[], first_name varchar, date_of_birth date, lifetime_value double)"
        )
        con.executemany("insert into marts.customer_profiles values (?, ?, ?, ?, ?, ?)", profiles)
        con.execute(
            "create or replace table marts.fct_orders as select 'O1' as order_id, "
            "'cust-a' as customer_id, 'CRM-1' as crm_customer_id, 100.0 as total_amount"
        )
        con.execute(
            "create or replace view marts.vip as "
            "select customer_id from marts.customer_profiles where lifetime_value > 100"
        )
        con.execute(
            "create or replace table segments.membership as "
            "select 'vip' as segment, 'cust-a' as customer_id"
        )
        con.execute("delete from identity.clusters")
        con.execute(
            "insert into identity.clusters values ('crm', 'email', 'alice@example.com', 'cust-a',"
            " 'r1', '2024-01-01'), ('analytics', 'anonymous_id', 'anon-9', 'cust-c', 'r1',"
            " '2024-01-01')"
        )
        con.execute("create or replace table raw.secret_stuff as select 1 as x")


@pytest.fixture
def publish_settings(tmp_path) -> Settings:
    """Settings with a real pseudonymization key, 2 snapshots kept, and a filled warehouse."""
    env = {
        "CDP_HOME": str(tmp_path / "home"),
        "CDP_PSEUDONYMIZATION_KEY": "test-key-123",
        "CDP_PUBLISH_KEEP": "2",
    }
    settings = load_settings(env)
    settings.ensure_dirs()
    fill_warehouse(settings)
    return settings
