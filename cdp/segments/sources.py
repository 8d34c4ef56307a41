"""The relations segment rules read, bound per connection as temporary views.

Rules never name warehouse tables directly; they read five views that ``bind_sources`` creates:

- ``seg_customers`` — every ``customer_id`` identity has assigned (anonymous visitors included),
  plus any only the profiles know;
- ``seg_profiles`` — ``marts.customer_profiles`` (attributes and consent, as of the last build);
- ``seg_events`` — ``raw.analytics_events`` tracked events with the ``customer_id`` of their
  ``userId`` (else ``anonymousId``) cluster: fresh as soon as ingest and identity ran, without
  waiting for dbt;
- ``seg_scores`` / ``seg_clusters`` — the ML contract's ``ml.current_scores`` (purchase
  propensity) and ``ml.current_clusters``.

A missing source (no dbt build yet, no model yet) is bound as an empty relation of the same shape,
so its fields hold no value for anyone and nothing matches on them; it is not an error.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb

from cdp.segments.columns import PROFILES_TABLE, profile_columns_or_contract

CUSTOMERS_VIEW = "seg_customers"
PROFILES_VIEW = "seg_profiles"
EVENTS_VIEW = "seg_events"
SCORES_VIEW = "seg_scores"
CLUSTERS_VIEW = "seg_clusters"

#: Track events the site sends (the tracking plan); ``count``/``sequence`` rules name one of these.
TRACKED_EVENTS = (
    "product_searched",
    "product_viewed",
    "product_added_to_cart",
    "checkout_started",
    "order_completed",
)

#: Event columns a rule's ``where`` may filter on (promoted from the event's properties at ingest).
EVENT_COLUMNS: dict[str, str] = {
    "product_id": "VARCHAR",
    "category": "VARCHAR",
    "price": "DOUBLE",
    "order_id": "VARCHAR",
    "revenue": "DOUBLE",
    "page_url": "VARCHAR",
}

#: Model fields (the ML contract, docs in notes/ml_contract.md) and their types.
MODEL_FIELDS: dict[str, str] = {
    "propensity_score": "DOUBLE",
    "propensity_decile": "INTEGER",
    "cluster": "VARCHAR",
}
PROPENSITY_MODEL = "purchase_propensity"

_EVENTS_SQL = f"""
select
    coalesce(by_user.customer_id, by_anonymous.customer_id) as customer_id,
    e.event,
    e."timestamp" as ts,
    {", ".join(f"e.{column}" for column in EVENT_COLUMNS)}
from raw.analytics_events e
left join identity.clusters by_user
    on by_user.id_type = 'user_id' and by_user.source_record_id = e.user_id
left join identity.clusters by_anonymous
    on by_anonymous.id_type = 'anonymous_id' and by_anonymous.source_record_id = e.anonymous_id
where e.type = 'track'
"""

_SCORES_SQL = f"""
select customer_id, score as propensity_score, decile as propensity_decile
from ml.current_scores
where model_name = '{PROPENSITY_MODEL}'
"""

_CLUSTERS_SQL = "select customer_id, cluster_name as cluster from ml.current_clusters"


def _exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    row = con.execute(
        """
        select count(*) from information_schema.tables
        where table_catalog = current_database() and table_schema = ? and table_name = ?
        """,
        [schema, name],
    ).fetchone()
    return bool(row and row[0])


def _empty(columns: Mapping[str, str]) -> str:
    """A query returning no rows with the given columns and types."""
    select = ", ".join(f'cast(null as {kind}) as "{name}"' for name, kind in columns.items())
    return f"select {select} where false"


def _view(con: duckdb.DuckDBPyConnection, name: str, query: str) -> None:
    con.execute(f"create or replace temp view {name} as {query}")


def bind_sources(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Create the rule source views on ``con``; return the profile columns rules may use."""
    has_profiles = _exists(con, "marts", "customer_profiles")
    columns = profile_columns_or_contract(con)
    _view(
        con, PROFILES_VIEW, f"select * from {PROFILES_TABLE}" if has_profiles else _empty(columns)
    )
    has_events = _exists(con, "raw", "analytics_events") and _exists(con, "identity", "clusters")
    event_columns = {
        "customer_id": "VARCHAR",
        "event": "VARCHAR",
        "ts": "TIMESTAMP",
        **EVENT_COLUMNS,
    }
    _view(con, EVENTS_VIEW, _EVENTS_SQL if has_events else _empty(event_columns))
    known = [f"select customer_id from {PROFILES_VIEW}"]
    if _exists(con, "identity", "clusters"):
        known.append("select customer_id from identity.clusters")
    _view(con, CUSTOMERS_VIEW, " union ".join(known))
    scores = {
        "customer_id": "VARCHAR",
        "propensity_score": "DOUBLE",
        "propensity_decile": "INTEGER",
    }
    _view(con, SCORES_VIEW, _SCORES_SQL if _exists(con, "ml", "current_scores") else _empty(scores))
    clusters = {"customer_id": "VARCHAR", "cluster": "VARCHAR"}
    has_clusters = _exists(con, "ml", "current_clusters")
    _view(con, CLUSTERS_VIEW, _CLUSTERS_SQL if has_clusters else _empty(clusters))
    return columns
