"""The point in time a DAG run is about (never the wall clock)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def run_as_of(context: dict[str, Any]) -> datetime:
    """The run's logical date, or when it was due to run for asset-triggered runs (naive UTC)."""
    moment = context.get("logical_date") or context["dag_run"].run_after
    return moment.astimezone(UTC).replace(tzinfo=None)


def run_identifier(context: dict[str, Any]) -> str:
    """The Airflow run id, used to tag everything the run writes."""
    return context["dag_run"].run_id
