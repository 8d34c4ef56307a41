"""The columns segment rules may use: the live ``marts.customer_profiles`` or the contract."""

from __future__ import annotations

import re
from enum import StrEnum

import duckdb

#: The table segment rules select from (one row per ``customer_id``).
PROFILES_SCHEMA = "marts"
PROFILES_TABLE_NAME = "customer_profiles"
PROFILES_TABLE = f"{PROFILES_SCHEMA}.{PROFILES_TABLE_NAME}"

#: The profile contract (column → DuckDB type), used to validate definitions without a warehouse.
DEFAULT_PROFILE_COLUMNS: dict[str, str] = {
    "customer_id": "VARCHAR",
    "is_known": "BOOLEAN",
    "crm_customer_ids": "VARCHAR[]",
    "emails": "VARCHAR[]",
    "first_name": "VARCHAR",
    "last_name": "VARCHAR",
    "email": "VARCHAR",
    "phone": "VARCHAR",
    "date_of_birth": "DATE",
    "city": "VARCHAR",
    "postcode": "VARCHAR",
    "state": "VARCHAR",
    "country": "VARCHAR",
    "has_consent_email_marketing": "BOOLEAN",
    "has_consent_personalization": "BOOLEAN",
    "has_consent_advertising": "BOOLEAN",
    "order_count": "BIGINT",
    "total_order_amount": "DECIMAL(18,2)",
    "lifetime_value": "DECIMAL(18,2)",
    "first_order_at": "TIMESTAMP",
    "last_order_at": "TIMESTAMP",
    "recency_days": "INTEGER",
    "frequency": "BIGINT",
    "monetary": "DECIMAL(18,2)",
    "first_seen_at": "TIMESTAMP",
    "last_seen_at": "TIMESTAMP",
    "events_7d": "BIGINT",
    "events_30d": "BIGINT",
    "events_90d": "BIGINT",
    "sessions_30d": "BIGINT",
    "avg_session_seconds_30d": "DOUBLE",
    "product_views_30d": "BIGINT",
    "cart_adds_30d": "BIGINT",
    "top_category": "VARCHAR",
    "top_intent_topic": "VARCHAR",
    "top_intent_score": "DOUBLE",
}


class ColumnKind(StrEnum):
    """What a column holds, as far as rule operators care."""

    NUMBER = "number"
    TEXT = "text"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"
    LIST = "list"
    OTHER = "other"


_NUMBER = re.compile(
    r"^(TINYINT|SMALLINT|INTEGER|INT|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT"
    r"|FLOAT|REAL|DOUBLE|DECIMAL|NUMERIC)\b"
)
_TEXT = re.compile(r"^(VARCHAR|TEXT|STRING|CHAR|BPCHAR|UUID)\b")
_TIMESTAMP = re.compile(r"^(TIMESTAMP|DATETIME)")


def column_kind(data_type: str) -> ColumnKind:
    """Classify a DuckDB type name (as in ``information_schema.columns.data_type``)."""
    t = data_type.strip().upper()
    if t.endswith("]") or t.startswith(("LIST", "ARRAY")):
        return ColumnKind.LIST
    if _NUMBER.match(t):
        return ColumnKind.NUMBER
    if _TEXT.match(t):
        return ColumnKind.TEXT
    if t in ("BOOLEAN", "BOOL"):
        return ColumnKind.BOOLEAN
    if t == "DATE":
        return ColumnKind.DATE
    if _TIMESTAMP.match(t):
        return ColumnKind.TIMESTAMP
    return ColumnKind.OTHER


class ProfilesTableMissingError(LookupError):
    """``marts.customer_profiles`` does not exist in the warehouse."""


def profile_columns(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Columns (name → DuckDB type) of ``marts.customer_profiles`` as the warehouse has them now."""
    rows = con.execute(
        """
        select column_name, data_type
        from information_schema.columns
        where table_catalog = current_database() and table_schema = ? and table_name = ?
        order by ordinal_position
        """,
        [PROFILES_SCHEMA, PROFILES_TABLE_NAME],
    ).fetchall()
    if not rows:
        raise ProfilesTableMissingError(
            f"{PROFILES_TABLE} does not exist in the warehouse; build the marts (dbt) before "
            "validating or evaluating segments"
        )
    return {name: data_type for name, data_type in rows}


def profile_columns_or_contract(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The live profile columns, or the contract's before the first build made the table."""
    try:
        return profile_columns(con)
    except ProfilesTableMissingError:
        return dict(DEFAULT_PROFILE_COLUMNS)
