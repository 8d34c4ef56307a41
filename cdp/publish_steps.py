"""Task bodies every publishing DAG shares: the mart gate, then the analyst snapshot.

``cdp_build`` publishes after segments; the ML DAGs publish again after scoring, so fresh
scores and the model segments built on them reach analysts without waiting for the next build.
"""

from __future__ import annotations

from typing import Any

from cdp.logical_time import run_as_of, run_identifier
from cdp.settings import load_settings


def check_mart_quality(context: Any) -> dict:
    """Quality gate on the marts before anything is published; raises naming what failed."""
    from cdp.quality.gate import run_mart_gate

    return run_mart_gate(load_settings(), run_identifier(context), run_as_of(context))


def publish_snapshot(context: Any) -> dict:
    """Atomically publish the pseudonymized analyst snapshot (write → audit → publish)."""
    from cdp.publish import publish_snapshot as publish

    result = publish(load_settings(), run_identifier(context), run_as_of(context))
    return {"publish_id": result.publish_id, "path": str(result.snapshot_path)}


def refresh_model_segments(context: Any) -> dict[str, int]:
    """Re-evaluate the segments built on model outputs (``kind: model``) after scoring."""
    from cdp.segments.definitions import SegmentKind
    from cdp.segments.refresh import refresh_segments

    settings = load_settings()
    return refresh_segments(
        settings, run_identifier(context), run_as_of(context), kind=SegmentKind.MODEL
    )


def republish_tasks():
    """The tasks an ML DAG ends with: model segments → mart gate → snapshot; returns the first.

    Called inside a ``@dag`` function; every task writes DuckDB, so each takes the writer pool.
    """
    from airflow.sdk import get_current_context, task

    from cdp.assets import SEGMENTS_ASSET, WRITER_POOL

    @task(task_id="refresh_model_segments", pool=WRITER_POOL, outlets=[SEGMENTS_ASSET])
    def refresh_task() -> dict:
        """Model segments (``kind: model``) follow the fresh scores and clusters."""
        return refresh_model_segments(get_current_context())

    @task(task_id="check_mart_quality", pool=WRITER_POOL)
    def gate_task() -> dict:
        """Quality gate (scores in [0, 1] included) before the snapshot is replaced."""
        return check_mart_quality(get_current_context())

    @task(task_id="publish_snapshot", pool=WRITER_POOL)
    def publish_task() -> dict:
        """Atomically publish the analyst snapshot with the new scores and segments."""
        return publish_snapshot(get_current_context())

    first = refresh_task()
    first >> gate_task() >> publish_task()
    return first
