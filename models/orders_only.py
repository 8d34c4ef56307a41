"""Stand-in marts for a data set that is only an orders table (customer, date, amount).

They hold exactly the columns ``marts.customer_features`` reads, so the platform's own feature
model, training and scoring run unchanged on, for example, a public purchase history.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

#: Columns an orders frame must have.
ORDER_COLUMNS = ("customer_id", "ordered_at", "total_amount")


def load_orders_as_marts(con: duckdb.DuckDBPyConnection, orders: pd.DataFrame) -> None:
    """Create ``marts.fct_orders`` / ``customer_profiles`` from orders alone, and empty event
    tables (``marts.fct_events``, ``intermediate.int_events_summarized_daily``)."""
    missing = [c for c in ORDER_COLUMNS if c not in orders.columns]
    if missing:
        raise ValueError(f"orders need columns {list(ORDER_COLUMNS)}; missing {missing}")
    frame = orders[list(ORDER_COLUMNS)]  # noqa: F841  (read by DuckDB)
    con.execute("create schema if not exists marts")
    con.execute(
        """
        create or replace table marts.fct_orders as
        select
            cast(customer_id as varchar) as customer_id,
            cast(ordered_at as timestamp) as ordered_at,
            cast(total_amount as double) as total_amount,
            cast(null as varchar) as category,
            true as is_completed,
            cast(null as varchar) as status
        from frame
        """
    )
    con.execute(
        """
        create or replace table marts.customer_profiles as
        select customer_id, min(ordered_at) as first_seen_at
        from marts.fct_orders group by customer_id
        """
    )
    con.execute(
        """
        create or replace table marts.fct_events (
            customer_id VARCHAR, occurred_at TIMESTAMP, event_type VARCHAR, event_name VARCHAR
        )
        """
    )
    con.execute("create schema if not exists intermediate")
    con.execute(
        """
        create or replace table intermediate.int_events_summarized_daily (
            customer_id VARCHAR, activity_on DATE, event_count BIGINT, page_count BIGINT,
            track_count BIGINT, identify_count BIGINT, product_view_count BIGINT,
            cart_add_count BIGINT, first_occurred_at TIMESTAMP, last_occurred_at TIMESTAMP
        )
        """
    )


def build_feature_table(con: duckdb.DuckDBPyConnection, query: str, as_of: datetime) -> None:
    """Materialize ``marts.customer_features`` as of a date, as ``dbt build`` would."""
    con.execute(f"create or replace table marts.customer_features as {query}", {"as_of": as_of})
