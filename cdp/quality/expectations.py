"""The expectation suites of the two gates, as data: which frame, which GX expectations.

Raw suites are derived from the landing contracts (``cdp/contracts.py``), so a new contract
field is checked without touching this module. Mart suites check the published marts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import great_expectations as gx

from cdp.contracts import CONTRACTS, Contract
from cdp.warehouse import RAW_METADATA_COLUMNS, SQL_TYPES, raw_table_name

#: Earliest timestamp any source may carry: catches epoch-zero (1970-01-01) and 1900-style
#: placeholder dates while admitting real histories from the 1980s on (e.g. CDNOW's 1997 orders).
EARLIEST_TIMESTAMP = datetime(1980, 1, 1)
#: A plausible email: something@domain.tld (regex checks run on pandas, see PITFALLS).
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"
#: A plausible phone as typed: 7-20 characters of digits, spaces, +, -, dots and parentheses.
PHONE_PATTERN = r"^\+?[0-9 ().\-]{7,20}$"
#: Share of non-null emails / phones that must look valid.
MIN_VALID_CONTACT_SHARE = 0.9
#: Identifying columns shown next to an offending value in a failure message.
RAW_ROW_LOCATOR = ["_source_file", "_line_no"]
#: The frame of every raw column as ``table.column:TYPE`` (see ``frames.raw_schema_frame``).
RAW_SCHEMA_FRAME = "raw.schema"


@dataclass(frozen=True)
class Suite:
    """One GX suite over one DataFrame: frame name, row-locator columns, expectations."""

    name: str
    frame: str
    locator: list[str]
    expectations: list

    @property
    def columns(self) -> list[str]:
        """The frame columns the suite reads: its locator and every expectation's column."""
        used = [e.column for e in self.expectations if getattr(e, "column", None)]
        return list(dict.fromkeys([*self.locator, *used]))


def _column_type(name: str, sql_type: str) -> str:
    return f"{name}:{sql_type.replace(' ', '').upper()}"


def _expected_raw_schema() -> list[str]:
    """``raw.<table>.<column>:<TYPE>`` of every column the warehouse DDL gives raw tables."""
    metadata = [line.split()[:2] for line in RAW_METADATA_COLUMNS.strip().splitlines()]
    expected = []
    for contract in CONTRACTS.values():
        table = raw_table_name(contract.source_entity)
        columns = [(f.column, SQL_TYPES[f.kind]) for f in contract.fields] + metadata
        expected += [_column_type(f"{table}.{name}", kind) for name, kind in columns]
    return sorted(expected)


def _raw_schema_suite() -> Suite:
    """Exactly the contract's columns and types in every raw table (nothing missing or extra)."""
    expectation = gx.expectations.ExpectColumnDistinctValuesToEqualSet(
        column="column", value_set=_expected_raw_schema()
    )
    return Suite("raw__schema", RAW_SCHEMA_FRAME, ["column"], [expectation])


def _raw_suite(contract: Contract, now: datetime) -> Suite:
    table = raw_table_name(contract.source_entity)
    ex = gx.expectations
    expectations: list = []
    latest = now + timedelta(days=1)
    for field in contract.fields:
        column = field.column
        if field.required:
            expectations.append(ex.ExpectColumnValuesToNotBeNull(column=column))
        if field.choices:
            expectations.append(
                ex.ExpectColumnValuesToBeInSet(column=column, value_set=list(field.choices))
            )
        if field.kind == "timestamp":
            expectations.append(
                ex.ExpectColumnValuesToBeBetween(
                    column=column, min_value=EARLIEST_TIMESTAMP, max_value=latest
                )
            )
        if column in ("email", "trait_email"):
            expectations.append(
                ex.ExpectColumnValuesToMatchRegex(
                    column=column, regex=EMAIL_PATTERN, mostly=MIN_VALID_CONTACT_SHARE
                )
            )
        if column == "phone":
            expectations.append(
                ex.ExpectColumnValuesToMatchRegex(
                    column=column, regex=PHONE_PATTERN, mostly=MIN_VALID_CONTACT_SHARE
                )
            )
    if contract.dedup_column:
        expectations.append(ex.ExpectColumnValuesToBeUnique(column=contract.dedup_column))
    return Suite(
        f"raw__{table.split('.')[1]}",
        table,
        [*RAW_ROW_LOCATOR, *contract.columns[:1]],
        expectations,
    )


def raw_suites(now: datetime) -> list[Suite]:
    """One suite per raw table: schema, required fields, enums, timestamps, contact validity."""
    return [_raw_schema_suite(), *(_raw_suite(contract, now) for contract in CONTRACTS.values())]


def mart_suites(max_row_change: float, max_staleness_hours: float, has_scores: bool) -> list[Suite]:
    """Suites over the marts (frames built by ``cdp.quality.frames.mart_frames``)."""
    ex = gx.expectations
    money = ("lifetime_value", "total_order_amount", "monetary")
    suites = [
        Suite(
            "marts__customer_profiles",
            "marts.customer_profiles",
            ["customer_id"],
            [
                ex.ExpectColumnValuesToNotBeNull(column="customer_id"),
                ex.ExpectColumnValuesToBeUnique(column="customer_id"),
                *(ex.ExpectColumnValuesToBeBetween(column=c, min_value=0) for c in money),
            ],
        ),
        Suite(
            "marts__fct_orders",
            "marts.fct_orders",
            ["order_id"],
            [
                ex.ExpectColumnValuesToBeUnique(column="order_id"),
                ex.ExpectColumnValuesToBeBetween(column="total_amount", min_value=0),
            ],
        ),
        Suite(
            "marts__health",
            "marts.health",
            [],
            [
                ex.ExpectColumnValuesToBeBetween(
                    column="profiles_row_change", max_value=max_row_change
                ),
                ex.ExpectColumnValuesToBeBetween(
                    column="newest_activity_age_hours", max_value=max_staleness_hours
                ),
                ex.ExpectColumnValuesToNotBeNull(column="newest_activity_age_hours"),
            ],
        ),
    ]
    if has_scores:
        suites.append(
            Suite(
                "ml__current_scores",
                "ml.current_scores",
                ["customer_id", "model_name"],
                [ex.ExpectColumnValuesToBeBetween(column="score", min_value=0, max_value=1)],
            )
        )
    return suites
