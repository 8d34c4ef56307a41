"""Identity resolution at scale: ``python -m bench.identity_scale [--records N] [--home DIR]``.

Writes N CRM person records (~30 % of them duplicates of another record: typos, moves, missing
email/phone/birth date, the generator's own dirt) as ``cdp generate`` lays them out (landing +
truth), ingests them with the real ingestion, then runs ``resolve_identities`` (full run) in a
fresh process and prints its seconds, CPU seconds, the load average, peak RSS and cluster
precision/recall/F1 as JSON. A last step adds 100 new records and times the incremental run.

The ingested warehouse is kept as ``raw-only-<N>.duckdb`` in the home folder: a later run with
the same ``--home`` and ``--records`` starts from a copy of it and skips generation and ingestion.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from cdp.generate.clock import DAY
from cdp.generate.crm import CUSTOMER_HEADER, crm_id, customer_rows
from cdp.generate.people import make_person

#: Chance that a person also has a duplicate record: 0.43 / 1.43 ≈ 30 % of records are copies.
DUPLICATE_CHANCE = 0.43
#: DuckDB's memory limit for the identity run (the target is a peak RSS of at most 4 GB).
MEMORY_LIMIT = "2500MB"
#: The warehouse right after ingestion, kept in the home folder for later runs.
RAW_ONLY = "raw-only-{records}.duckdb"
WINDOW_START = int(datetime(2026, 8, 1).timestamp())
WINDOW = (WINDOW_START, WINDOW_START + 90 * DAY)


def write_people(landing: Path, truth: Path, records: int, seed: int, first: int = 1) -> int:
    """Write about ``records`` CRM rows (one CSV) and their truth; return the rows written."""
    rng = random.Random(seed)
    customers = landing / "crm" / "customers"
    customers.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    written, person_n, next_id = 0, first, first * 2
    with (
        open(customers / f"customers-{seed}.csv", "w", newline="") as out,
        open(truth / f"identities-{seed}.csv", "w", newline="") as truth_out,
    ):
        rows_out, truth_rows = csv.writer(out), csv.writer(truth_out)
        rows_out.writerow(CUSTOMER_HEADER)
        truth_rows.writerow(["source", "id_type", "source_record_id", "person_id"])
        while written < records:
            person = make_person(person_n, rng, WINDOW_START)
            primary, next_id = crm_id(next_id), next_id + 1
            duplicate = None
            if rng.random() < DUPLICATE_CHANCE:
                duplicate, next_id = crm_id(next_id), next_id + 1
            rows, _, _ = customer_rows(person, primary, duplicate, False, WINDOW, rng)
            rows_out.writerows(rows)
            for record in {row[0] for row in rows}:
                truth_rows.writerow(["crm", "crm_customer_id", record, person.person_id])
            written += len(rows)
            person_n += 1
    return written


def _combine_truth(truth: Path) -> None:
    parts = sorted(truth.glob("identities-*.csv"))
    with open(truth / "identities.csv", "w", newline="") as out:
        out.write("source,id_type,source_record_id,person_id\n")
        for part in parts:
            out.writelines(part.read_text().splitlines(keepends=True)[1:])


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    """CPU seconds (user + system, all threads) this process used so far: on a shared machine a
    steadier measure of the work done than the seconds on the clock."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _resolve(home: Path, run_id: str) -> dict:
    """One identity run in this process, scored against the truth (CRM records)."""
    import duckdb

    from cdp.settings import load_settings
    from cdp.warehouse import connect
    from identity import resolve_identities
    from identity.datasets import truth_sql
    from identity.evaluate import cluster_metrics

    settings = load_settings({"CDP_HOME": str(home)})
    with connect(settings) as con:
        con.execute(f"set memory_limit = '{MEMORY_LIMIT}'")  # DuckDB spills beyond it
        started, cpu_started = time.perf_counter(), _cpu_seconds()
        result = resolve_identities(con, run_id)
        seconds, cpu_seconds = time.perf_counter() - started, _cpu_seconds() - cpu_started
        con.execute(f"create temp table truth as {truth_sql(settings.landing_dir)}")
        con.execute(
            "create temp table found as select id_type || ':' || source_record_id as record_key,"
            " customer_id as cluster_id from identity.clusters"
        )
        metrics = cluster_metrics(con, "found", "truth")
    del duckdb
    return {"run": run_id, "mode": result.mode, "records": result.records,
            "records_touched": result.records_touched, "candidate_pairs": result.candidate_pairs,
            "customers": result.customers, "guard_events": result.guard_events,
            "seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 1),
            "load_average": round(os.getloadavg()[0], 2), "peak_rss_mb": round(_peak_rss_mb()),
            "clusters": metrics}  # fmt: skip


def _in_fresh_process(home: Path, run_id: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.identity_scale", "--home", str(home), "--resolve", run_id],
        check=True, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _write_default_model(home: Path) -> None:
    """The model small warehouses use (``identity.matching.default_model``)."""
    import duckdb

    from identity.matching import DEFAULT_MODEL
    from identity.model import FellegiSunterModel

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        (text,) = con.execute("select model_json from identity.model").fetchone()
    finally:
        con.close()
    DEFAULT_MODEL.write_text(FellegiSunterModel.from_json(text).to_json() + "\n")
    print(f"wrote {DEFAULT_MODEL}")


def _ingest(home: Path) -> float:
    from cdp.settings import load_settings
    from ingestion import ingest_entity

    settings = load_settings({"CDP_HOME": str(home)})
    settings.ensure_dirs()
    started = time.perf_counter()
    ingest_entity(settings, "crm/customers")
    return time.perf_counter() - started


def main() -> None:
    """Generate, ingest, resolve (full, then incremental) and print the measurements."""
    parser = argparse.ArgumentParser(prog="python -m bench.identity_scale", description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--home", help="CDP_HOME (default: a new temporary folder)")
    parser.add_argument(
        "--write-default-model",
        action="store_true",
        help="save the model the full run fitted as identity/default_model.json",
    )
    parser.add_argument("--resolve", help=argparse.SUPPRESS)  # internal: one run, print JSON
    args = parser.parse_args()
    home = Path(args.home or tempfile.mkdtemp(prefix="cdp-identity-bench-"))
    if args.resolve:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
        print(json.dumps(_resolve(home, args.resolve)))
        return
    landing, truth = home / "landing", home / "truth"
    warehouse, raw_only = home / "warehouse.duckdb", home / RAW_ONLY.format(records=args.records)
    if raw_only.is_file():
        shutil.copyfile(raw_only, warehouse)
        print(f"reusing the ingested warehouse {raw_only}")
    else:
        started = time.perf_counter()
        rows = write_people(landing, truth, args.records, seed=1)
        _combine_truth(truth)
        print(f"generated {rows:,} CRM rows in {time.perf_counter() - started:.1f} s ({home})")
        print(f"ingested in {_ingest(home):.1f} s")
        shutil.copyfile(warehouse, raw_only)
    print(json.dumps(_in_fresh_process(home, "full")))
    if args.write_default_model:
        _write_default_model(home)
    write_people(landing, truth, 100, seed=2, first=10 * args.records)
    _combine_truth(truth)
    print(f"ingested 100 more rows in {_ingest(home):.1f} s")
    print(json.dumps(_in_fresh_process(home, "incremental")))


if __name__ == "__main__":
    main()
