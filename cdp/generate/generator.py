"""Run the generator: plan, generate chunks (in parallel, consumed in order), write, summarize."""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from cdp.generate.chunk import OUTPUTS, ChunkResult, run_chunk
from cdp.generate.clock import Window
from cdp.generate.config import GenerateConfig
from cdp.generate.plan import ChunkTask, make_plan
from cdp.generate.writers import LANDING_CSVS, OutputFiles, event_file

SUMMARY_FILE = "summary.json"


def _results(tasks: list[ChunkTask], workers: int) -> Iterator[ChunkResult]:
    """Chunk results in task order; at most ``2 * workers`` chunks in flight (bounded memory)."""
    if workers <= 1 or len(tasks) == 1:
        yield from map(run_chunk, tasks)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: list[Future[ChunkResult]] = []
        it = iter(tasks)
        for task in it:
            pending.append(pool.submit(run_chunk, task))
            if len(pending) >= 2 * workers:
                break
        while pending:
            result = pending.pop(0).result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(run_chunk, nxt))
            yield result


def generate(config: GenerateConfig) -> dict:
    """Write synthetic landing files and ground truth for ``config``; return the summary dict."""
    config.validate()
    window = Window.of(config.end_date, config.days)
    plan = make_plan(config.customers, config.events, config.seed, (window.start, window.end))
    workers = config.workers or min(8, os.cpu_count() or 1)
    if multiprocessing.current_process().daemon:  # e.g. inside a worker: no child processes
        workers = 1
    landing, truth = Path(config.landing_dir), Path(config.truth_dir)
    totals: dict[str, int] = {}
    malformed: dict[str, int] = {}
    cents = 0
    with OutputFiles(landing, truth) as files:
        for result in _results(plan.tasks, workers):
            for name in OUTPUTS:
                files.write_text(name, result.text[name])
            for monday in sorted(result.weeks):
                files.write_week(monday, result.weeks[monday])
            for key, n in result.counts.items():
                totals[key] = totals.get(key, 0) + n
            for key, n in result.malformed.items():
                malformed[key] = malformed.get(key, 0) + n
            cents += result.order_cents
        event_files = sorted(files.weeks)
    bad_files = {}
    for key, n in sorted(malformed.items()):
        if key.startswith("events:"):
            bad_files[event_file(int(key.split(":")[1]))] = n
        else:
            bad_files[LANDING_CSVS[key][0]] = n
    bad_events = totals["malformed_event_lines"]
    summary = {
        "seed": config.seed,
        "customers": config.customers,
        "anonymous_visitors": plan.anonymous,
        "persons": config.customers + plan.anonymous,
        "crm_records": config.customers + totals["duplicates"],
        "crm_duplicates": totals["duplicates"],
        "crm_history_rows": totals["history"],
        "crm_rows": totals["crm_rows"],
        "order_rows": totals["order_rows"],
        "valid_order_total": f"{cents // 100}.{cents % 100:02d}",
        "web_orders": totals["web_orders"],
        "events_requested": config.events,
        "events_written": totals["event_lines"] - totals["duplicate_event_lines"] - bad_events,
        "event_lines": totals["event_lines"],
        "duplicate_event_lines": totals["duplicate_event_lines"],
        "malformed_event_lines": bad_events,
        "late_event_lines": totals["late_event_lines"],
        "event_files": [event_file(m) for m in event_files],
        "late_login_visitors": totals["journeys"],
        "anonymous_signups": totals["signups"],
        "unknown_intent_rows": totals["unknown_intent"],
        "malformed": bad_files,
        "end_date": config.end_date.isoformat(),
        "days": config.days,
    }
    truth.mkdir(parents=True, exist_ok=True)
    (truth / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
