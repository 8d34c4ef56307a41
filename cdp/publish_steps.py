"""Task bodies every publishing DAG shares: the mart gate, then the analyst snapshot.

``cdp_build`` publishes after segments; ``cdp_publish_scores`` publishes again after every
scoring run, so fresh scores and the model segments built on them reach analysts without
waiting for the next build.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cdp.logical_time import run_as_of, run_identifier
from cdp.settings import load_settings


def check_mart_quality(context: Any, as_of: datetime | None = None) -> dict:
    """Quality gate on the marts before anything is published; raises naming what failed."""
    from cdp.quality.gate import run_mart_gate

    as_of = as_of or run_as_of(context)
    return run_mart_gate(load_settings(), run_identifier(context), as_of)


def publish_snapshot(context: Any, as_of: datetime | None = None) -> dict:
    """Atomically publish the pseudonymized analyst snapshot (write → audit → publish)."""
    from cdp.publish import publish_snapshot as publish

    as_of = as_of or run_as_of(context)
    result = publish(load_settings(), run_identifier(context), as_of)
    return {"publish_id": result.publish_id, "path": str(result.snapshot_path)}


def scores_as_of(context: Any) -> datetime:
    """What a publish-after-scoring run is about: its logical date, or for an asset-triggered
    run (no logical date) the time the newest scores are as of — not the wall clock, so a
    backfilled scoring run publishes segments and gates as of the date it scored."""
    if context.get("logical_date"):
        return run_as_of(context)
    from cdp.warehouse import connect

    with connect(load_settings(), read_only=True) as con:
        [(scored_at,)] = con.execute("select max(scored_at) from ml.scores").fetchall()
    return scored_at or run_as_of(context)


def refresh_model_segments(context: Any) -> dict[str, int]:
    """Re-evaluate the segments built on model outputs (``kind: model``) after scoring."""
    from cdp.segments.definitions import SegmentKind
    from cdp.segments.refresh import refresh_segments

    settings = load_settings()
    return refresh_segments(
        settings, run_identifier(context), scores_as_of(context), kind=SegmentKind.MODEL
    )
