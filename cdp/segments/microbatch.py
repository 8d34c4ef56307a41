"""The minutes-fresh path: new event files → ingest → identity → segments with ``refresh: minutes``.

Each step is a function the micro-batch DAG runs as its own task (one DuckDB writer at a time);
``run_microbatch`` runs them in order in-process (``cdp segments microbatch``, the benchmark).
Behavioural rules read ``raw.analytics_events`` through ``identity.clusters``, so no dbt run is
needed for a new event to change a membership.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from cdp.segments.definitions import Refresh, load_definitions
from cdp.segments.evaluate import evaluate_segments
from cdp.settings import Settings
from cdp.warehouse import connect

#: The landing source the micro-batch loads.
EVENTS_SOURCE = "analytics/events"

T = TypeVar("T")


@dataclass(frozen=True)
class IngestSummary:
    """What the micro-batch's ingest step loaded."""

    files: int
    rows_loaded: int


@dataclass
class MicroBatchReport:
    """One micro-batch: what each step did and how long it took."""

    run_id: str
    as_of: datetime
    ingest: IngestSummary | None = None
    identity_records: int | None = None  # None: no new rows, identity was not re-run
    segments: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def ingest_new_events(settings: Settings) -> IngestSummary:
    """Load every new analytics event file from landing (files loaded before are skipped)."""
    from ingestion import ingest_entity

    results = [r for r in ingest_entity(settings, EVENTS_SOURCE) if not r.skipped]
    return IngestSummary(len(results), sum(r.rows_loaded for r in results))


def resolve_new_identifiers(settings: Settings, run_id: str) -> int:
    """Give new anonymous/user ids a ``customer_id`` (``identity.resolve_identities``)."""
    from identity import resolve_identities

    with connect(settings) as con:
        return resolve_identities(con, run_id).records


def refresh_dynamic_segments(settings: Settings, run_id: str, as_of: datetime) -> dict[str, int]:
    """Re-evaluate the ``refresh: minutes`` segments at ``as_of``; return their sizes."""
    with connect(settings) as con:
        definitions = load_definitions(settings.segments_dir, con=con)
        results = evaluate_segments(con, definitions, run_id, as_of, refresh=Refresh.MINUTES)
    return {result.segment: result.members for result in results}


def run_microbatch(settings: Settings, run_id: str, as_of: datetime) -> MicroBatchReport:
    """Ingest new events, resolve identity if anything loaded, refresh minutes-fresh segments."""
    report = MicroBatchReport(run_id, as_of)

    def timed(step: str, work: Callable[[], T]) -> T:
        started = time.perf_counter()
        value = work()
        report.seconds[step] = time.perf_counter() - started
        return value

    report.ingest = timed("ingest", lambda: ingest_new_events(settings))
    if report.ingest.rows_loaded:
        report.identity_records = timed(
            "identity", lambda: resolve_new_identifiers(settings, run_id)
        )
    report.segments = timed("segments", lambda: refresh_dynamic_segments(settings, run_id, as_of))
    return report
