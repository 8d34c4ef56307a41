"""Defaults shared by MicroCDP's DAGs."""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum

#: Every DAG starts here so a run for any historical logical date (``cdp run --as-of
#: 1997-09-30``, a backfill) has tasks; a logical date before a DAG's ``start_date`` gets a run
#: with no task instances. ``catchup=False`` keeps the scheduler from back-filling the gap.
START_DATE = pendulum.datetime(1970, 1, 1, tz="UTC")


def default_args(retries: int) -> dict:
    """Task defaults; ``CDP_TASK_RETRIES`` overrides retries (``cdp run`` sets 0 to fail fast)."""
    configured = os.environ.get("CDP_TASK_RETRIES")
    return {
        "retries": int(configured) if configured else retries,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
    }
