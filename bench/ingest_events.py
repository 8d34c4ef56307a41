"""Ingestion speed against its ceiling: DuckDB's own ``read_json`` of the same files.

``python -m bench.ingest_events --base 10000000 --increment 1000000`` generates a base set and an
increment of Segment events (JSONL.gz, the generator's weekly files), then times, each in its own
process:

- ceiling, full:      ``create table ... as select * from read_json(base files)``
- ingestion, full:    ``ingest_entity`` of the base files into an empty warehouse
- ceiling, increment: ``insert into`` that plain table ``select * from read_json(increment)``
- ingestion, increment: ``ingest_entity`` of the increment into the warehouse holding the base
  (validation, quarantine, de-duplication on messageId against every event already loaded)

and prints a Markdown table with seconds, rows/s, the ratio to the ceiling and peak RSS, plus
each step's CPU seconds (user + system, all threads). On a shared machine both move with other
load (the same code's CPU seconds varied by 20 % from run to run), so ``--repeat N`` runs the
whole sequence N times, alternating ceiling and ingestion, and reports each side's fastest run
(the least disturbed) next to every run's ratio.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from cdp.generate import GenerateConfig, generate

EVENTS = "analytics/events"


def _generate(landing: Path, events: int, seed: int) -> int:
    summary = generate(
        GenerateConfig(
            landing_dir=landing,
            truth_dir=landing.parent / "truth",
            customers=max(1000, events // 40),
            events=events,
            seed=seed,
            end_date=date(2026, 10, 31),
            days=90,
        )
    )
    return summary["event_lines"]


def _step(kind: str, warehouse: Path, landing: Path) -> dict:
    """Run one measured step in this process (called in a child process); imports not timed."""
    import duckdb

    from cdp.settings import load_settings
    from ingestion import ingest_entity

    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    started = time.perf_counter()
    if kind.startswith("ceiling"):
        files = sorted(str(p) for p in (landing / EVENTS).glob("*.jsonl.gz"))
        con = duckdb.connect(str(warehouse))
        source = f"read_json({files!r}, format='newline_delimited', ignore_errors=true)"
        if kind == "ceiling-full":
            con.execute(f"create table plain as select * from {source}")
        else:
            con.execute(f"insert into plain by name select * from {source}")
        rows = con.execute("select count(*) from plain").fetchone()[0]
        con.close()
    else:
        settings = load_settings(
            {
                "CDP_HOME": str(warehouse.parent),
                "CDP_WAREHOUSE": str(warehouse),
                "CDP_LANDING": str(landing),
                "CDP_QUARANTINE_MAX_SHARE": "0.05",
            }
        )
        results = ingest_entity(settings, EVENTS)
        rows = sum(r.rows_read for r in results)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = usage.ru_utime + usage.ru_stime - cpu_before
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "rows": rows,
            "peak_mb": usage.ru_maxrss / 1024}  # fmt: skip


def _load_average() -> str:
    """1, 5 and 15 minute load averages: how busy the shared machine was."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _measure(kind: str, warehouse: Path, landing: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.ingest_events", "--step", kind,
         "--warehouse", str(warehouse), "--landing", str(landing)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    """Generate, measure every step, print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_events", description=__doc__)
    parser.add_argument("--base", type=int, default=10_000_000)
    parser.add_argument("--increment", type=int, default=1_000_000)
    parser.add_argument("--workdir", help="where data goes (default: a new temporary folder)")
    parser.add_argument("--repeat", type=int, default=1, help="measure the sequence N times")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--warehouse", help=argparse.SUPPRESS)
    parser.add_argument("--landing", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(_step(args.step, Path(args.warehouse), Path(args.landing))))
        return

    work = Path(args.workdir or tempfile.mkdtemp(prefix="cdp-bench-ingest-"))
    base, increment = work / "base" / "landing", work / "increment" / "landing"
    for folder, size, seed in ((base, args.base, 1), (increment, args.increment, 2)):
        if not (folder / EVENTS).is_dir():
            started = time.perf_counter()
            lines = _generate(folder, size, seed)
            print(f"generated {lines:,} event lines in {time.perf_counter() - started:.0f} s")
        for other in ("crm", "thirdparty", "consent", "privacy"):
            shutil.rmtree(folder / other, ignore_errors=True)
    ceiling, ours = work / "ceiling" / "plain.duckdb", work / "ours" / "warehouse.duckdb"
    steps = [
        ("full load", "ceiling-full", "ours-full", base),
        ("increment into the full table", "ceiling-increment", "ours-increment", increment),
    ]
    print(f"\nload average before: {_load_average()}")
    runs: dict[str, list[tuple[dict, dict]]] = {name: [] for name, *_ in steps}
    for _ in range(args.repeat):
        for path in (ceiling, ours):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
        for name, ceiling_step, our_step, landing in steps:
            plain = _measure(ceiling_step, ceiling, landing)
            runs[name].append((plain, _measure(our_step, ours, landing)))
    print(
        "\n| step | ceiling s | ingestion s | ratio | CPU s ceiling / ingestion | CPU ratio"
        " | ingestion rows/s | peak RSS MB | ratio of each run |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, measured in runs.items():
        plain = min((p for p, _ in measured), key=lambda m: m["seconds"])
        mine = min((m for _, m in measured), key=lambda m: m["seconds"])
        each = ", ".join(f"{m['seconds'] / p['seconds']:.2f}×" for p, m in measured)
        print(
            f"| {name} ({mine['rows']:,} rows) | {plain['seconds']:.1f} | {mine['seconds']:.1f}"
            f" | {mine['seconds'] / plain['seconds']:.2f}×"
            f" | {plain['cpu_seconds']:.1f} / {mine['cpu_seconds']:.1f}"
            f" | {mine['cpu_seconds'] / plain['cpu_seconds']:.2f}×"
            f" | {mine['rows'] / mine['seconds']:,.0f}"
            f" | {max(m['peak_mb'] for _, m in measured):,.0f}"
            f" (ceiling {max(p['peak_mb'] for p, _ in measured):,.0f}) | {each} |"
        )
    print(f"\nload average after: {_load_average()}")


if __name__ == "__main__":
    main()
