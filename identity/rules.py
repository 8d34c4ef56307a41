"""Deterministic identity rules: each one names the evidence that two source records are one person.

A rule is a small named object with a SQL query over ``raw.*`` returning ``(left_key, right_key)``
record pairs, or ``(record_key, identifier)`` pairs for rules on a shared normalized identifier.
Record keys look like ``crm_customer_id:C0000001``, ``anonymous_id:…`` or ``user_id:…``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from identity.normalize import normalize_email


@dataclass(frozen=True)
class LinkRule:
    """Two records are linked when the query returns them as a pair."""

    name: str
    sql: str


@dataclass(frozen=True)
class SharedIdentifierRule:
    """Records are linked when they share a normalized identifier (e.g. an email)."""

    name: str
    identifier_type: str
    sql: str  # returns (record_key, raw identifier value)
    normalize: Callable[[str | None], str | None]


#: Every source record that can belong to a customer.
RECORDS_SQL = """
select distinct 'crm' as source, 'crm_customer_id' as id_type, crm_customer_id as record_id
from raw.crm_customers
union
select distinct 'analytics', 'anonymous_id', anonymous_id
from raw.analytics_events where anonymous_id is not null
union
select distinct 'analytics', 'user_id', user_id
from raw.analytics_events where user_id is not null
"""

#: Rules in priority order.
RULES: tuple[LinkRule | SharedIdentifierRule, ...] = (
    LinkRule(
        name="crm_customer_id",
        sql="""
        select distinct 'user_id:' || e.user_id, 'crm_customer_id:' || c.crm_customer_id
        from raw.analytics_events as e
        join raw.crm_customers as c on c.crm_customer_id = e.user_id
        """,
    ),
    SharedIdentifierRule(
        name="email",
        identifier_type="email",
        sql="""
        select distinct 'crm_customer_id:' || crm_customer_id, email
        from raw.crm_customers where email is not null
        union
        select distinct
            case when user_id is not null then 'user_id:' || user_id
                 else 'anonymous_id:' || anonymous_id end,
            json_extract_string(traits, '$.email')
        from raw.analytics_events
        where type = 'identify' and json_extract_string(traits, '$.email') is not null
        """,
        normalize=normalize_email,
    ),
    LinkRule(
        name="login",
        sql="""
        select distinct 'anonymous_id:' || anonymous_id, 'user_id:' || user_id
        from raw.analytics_events
        where anonymous_id is not null and user_id is not null
        """,
    ),
)
