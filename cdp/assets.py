"""Airflow Assets: the warehouse tables one DAG updates and another is scheduled on."""

from __future__ import annotations

from airflow.sdk import Asset

from cdp.contracts import CONTRACTS

#: Name of the Airflow pool that serializes DuckDB writers (one slot).
WRITER_POOL = "duckdb_writer"


def table_asset(table: str) -> Asset:
    """The Asset for a warehouse table such as ``raw.crm_customers``."""
    schema, name = table.split(".", 1)
    return Asset(name=table, uri=f"cdp://warehouse/{schema}/{name}", group="warehouse")


RAW_ASSETS = {source: table_asset("raw." + source.replace("/", "_")) for source in CONTRACTS}
#: Updated once per ingest run that loaded anything: what the build DAG is scheduled on
#: (one build per ingest run, not one per raw table).
RAW_LANDED = Asset(name="raw", uri="cdp://warehouse/raw", group="warehouse")
PROFILES_ASSET = table_asset("marts.customer_profiles")
SEGMENTS_ASSET = table_asset("segments.membership")
