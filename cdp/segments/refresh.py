"""Segment refresh steps: every segment (the build), or only model segments (after scoring)."""

from __future__ import annotations

from datetime import datetime

from cdp.segments.definitions import SegmentKind, load_definitions
from cdp.segments.evaluate import evaluate_segments
from cdp.settings import Settings
from cdp.warehouse import connect


def refresh_segments(
    settings: Settings, run_id: str, as_of: datetime, kind: SegmentKind | None = None
) -> dict[str, int]:
    """Validate every definition in ``settings.segments_dir``, evaluate them, return sizes.

    With ``kind`` only segments of that kind are evaluated (``SegmentKind.MODEL`` after a
    scoring run, so model segments follow fresh scores without waiting for the next build).
    Replayed segments (``as_of`` before their latest run) are computed but not written; they
    are reported with their recomputed size.
    """
    with connect(settings) as con:
        definitions = load_definitions(settings.segments_dir, con=con)
        results = evaluate_segments(con, definitions, run_id, as_of, kind=kind)
    return {result.segment: result.members for result in results if not result.removed}
