"""The two quality gates of the build: raw inputs before identity, marts before publish.

A gate validates every suite, stores the results (``audit.quality_results``, a GX result JSON,
the Data Docs site) and raises ``QualityGateFailed`` naming each failed or errored expectation
and sample offending rows. Nothing is published after a failed gate, so the previous snapshot
stays in place.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from cdp.quality.expectations import Suite, mart_suites, raw_suites
from cdp.quality.findings import Finding, QualityGateFailed
from cdp.quality.frames import mart_frames, raw_frames
from cdp.quality.store import advance_watermarks, record_findings, write_result_json
from cdp.quality.validate import build_data_docs, data_docs_index, gx_context, run_suite
from cdp.settings import Settings
from cdp.warehouse import connect


def _validate(
    settings: Settings, gate: str, run_id: str, suites: list[Suite], frames: dict[str, pd.DataFrame]
) -> tuple[list[Finding], dict]:
    context = gx_context(settings.quality_dir)
    findings: list[Finding] = []
    results = []
    for suite in suites:
        outcome = run_suite(context, suite, frames[suite.frame])
        findings += outcome.findings
        results.append(outcome.result_json)
    build_data_docs(context)
    path = write_result_json(settings.quality_dir / "results", gate, run_id, results)
    summary = {
        "suites": len(suites),
        "expectations": len(findings),
        "failed": sum(not f.success for f in findings),
        "results": str(path),
        "data_docs": str(data_docs_index(settings.quality_dir)),
    }
    return findings, summary


def _raise_if_failed(gate: str, findings: list[Finding], summary: dict) -> None:
    failed = [f for f in findings if not f.success]
    if failed:
        lines = "\n  ".join(f.describe() for f in failed)
        raise QualityGateFailed(
            f"quality gate '{gate}' failed {len(failed)} of {len(findings)} expectations "
            f"(nothing is published; the previous snapshot stays in place):\n  {lines}\n"
            f"results: {summary['results']}\ndata docs: {summary['data_docs']}"
        )


def run_raw_gate(settings: Settings, run_id: str) -> dict:
    """Check raw rows loaded since the last passed raw gate; raise ``QualityGateFailed``."""
    checked_at = datetime.now(UTC).replace(tzinfo=None)
    suites = raw_suites(checked_at)
    with connect(settings) as con:
        frames, high_water = raw_frames(con, suites)
    findings, summary = _validate(settings, "raw", run_id, suites, frames)
    passed = all(f.success for f in findings)
    with connect(settings) as con:
        record_findings(con, "raw", run_id, checked_at, findings)
        if passed:
            advance_watermarks(con, high_water, run_id)
    _raise_if_failed("raw", findings, summary)
    return {**summary, "rows_checked": sum(len(frames[table]) for table in high_water)}


def run_mart_gate(settings: Settings, run_id: str, as_of: datetime) -> dict:
    """Check the marts before publish; raise ``QualityGateFailed`` on failure."""
    checked_at = datetime.now(UTC).replace(tzinfo=None)
    with connect(settings) as con:
        frames = mart_frames(con, as_of)
    suites = mart_suites(
        settings.quality_max_row_change,
        settings.quality_max_staleness_hours,
        has_scores="ml.current_scores" in frames,
    )
    findings, summary = _validate(settings, "marts", run_id, suites, frames)
    with connect(settings) as con:
        record_findings(con, "marts", run_id, checked_at, findings)
    _raise_if_failed("marts", findings, summary)
    return summary
