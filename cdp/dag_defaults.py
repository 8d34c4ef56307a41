"""Defaults shared by MicroCDP's DAGs."""

from __future__ import annotations

import os
from datetime import timedelta


def default_args(retries: int) -> dict:
    """Task defaults; ``CDP_TASK_RETRIES`` overrides retries (``cdp run`` sets 0 to fail fast)."""
    configured = os.environ.get("CDP_TASK_RETRIES")
    return {
        "retries": int(configured) if configured else retries,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
    }
