"""Two real processes: an analyst keeps a read-only connection open on the published snapshot
and keeps querying while the pipeline rewrites the working warehouse and publishes again."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime

from conftest import fill_warehouse

from cdp.publish import publish_snapshot, snapshot_path

ANALYST = """
import json, sys, time, pathlib
import duckdb
path, stop = sys.argv[1], pathlib.Path(sys.argv[2])
con = duckdb.connect(path, read_only=True)
print("ready", flush=True)
seen, queries, errors = set(), 0, []
while not stop.exists():
    try:
        publish_id, profiles = con.execute(
            "select (select publish_id from snapshot.info), count(*) from marts.customer_profiles"
        ).fetchone()
        seen.add((publish_id, profiles))
        queries += 1
    except Exception as exc:
        errors.append(repr(exc))
    time.sleep(0.01)
con.close()
con = duckdb.connect(path, read_only=True)
latest = con.execute("select publish_id from snapshot.info").fetchone()[0]
con.close()
print(json.dumps({"seen": sorted(seen), "queries": queries, "errors": errors, "latest": latest}))
"""


def test_analyst_reads_while_pipeline_writes_and_publishes(publish_settings, tmp_path):
    first = publish_snapshot(publish_settings, "run-1", datetime(2024, 6, 30))
    stop = tmp_path / "stop"
    analyst = subprocess.Popen(
        [sys.executable, "-c", ANALYST, str(snapshot_path(publish_settings)), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert analyst.stdout.readline().strip() == "ready"
        latest = first
        for run in range(2, 4):
            # the pipeline rewrites the working warehouse, then publishes: neither side waits
            fill_warehouse(
                publish_settings, [(f"c{i}", None, None, None, None, 1.0) for i in range(run * 10)]
            )
            latest = publish_snapshot(publish_settings, f"run-{run}", datetime(2024, 7, run))
            time.sleep(0.2)  # the analyst keeps querying in between
        stop.touch()
        out, err = analyst.communicate(timeout=60)
    finally:
        analyst.kill()
    assert analyst.returncode == 0, err
    report = json.loads(out)
    assert report["errors"] == []
    assert report["queries"] >= 10
    # the open connection kept seeing the complete snapshot it opened; a new one sees the latest
    assert report["seen"] == [[first.publish_id, 3]]
    assert report["latest"] == latest.publish_id
