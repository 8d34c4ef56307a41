"""Crash safety: kill a real loader process mid-load, run it again, get the tables of a clean run.

One landing folder is generated once per module and loaded cleanly into a reference warehouse.
Each case starts a loader subprocess on a fresh warehouse over the same landing files, kills it
with SIGKILL at one point of the load, checks that no partial batch is visible, runs the ingestion
again (in-process, the ordinary ``ingest_entity``) and compares every table with the reference.

DuckDB lets one process at a time open the file, so the parent cannot look into the warehouse
while the loader runs; the loader says on stdout where it is instead (one line per file started,
per transaction reached and per batch committed), and the parent kills it on the right line.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from cdp.contracts import CONTRACTS
from cdp.generate import GenerateConfig, generate
from cdp.settings import Settings, load_settings
from cdp.warehouse import connect, raw_table_name
from ingestion import ingest_entity
from ingestion.files import landing_files

#: Root of the code under test (the subprocess imports ``cdp`` and ``ingestion`` from here).
CODE_ROOT = Path(__file__).resolve().parents[2]

#: Big enough that the events take seconds to load: 14 weekly files of ~14k events each.
CUSTOMERS = 3_000
EVENTS = 150_000

#: Columns that legitimately differ between two loads of the same content (load time).
VOLATILE = {
    "quarantine.rows": ("_quarantined_at",),
    "audit.load_batches": ("started_at", "finished_at"),
}
RAW_TABLES = [raw_table_name(source) for source in CONTRACTS]
DEDUP_KEYS = {raw_table_name(s): c.dedup_column or "_row_hash" for s, c in CONTRACTS.items()}

#: The loader: every file of every source, in the order ``ingest_entity`` uses, one connection
#: per source like ``ingest_entity``. ``argv[1]`` is the number of the file whose transaction
#: stops (after its rows and its audit row are written, before the commit) so that it can be
#: killed there; -1 loads through ``load_file``, the ordinary path, without stopping.
LOADER = r"""
import sys, time
from cdp.contracts import CONTRACTS
from cdp.settings import load_settings
from cdp.warehouse import connect
from ingestion.batch import load_batch
from ingestion.files import file_batch, landing_files, load_file

def say(*words):
    print(*words, flush=True)

hang_at = int(sys.argv[1])
settings = load_settings()
n = 0
for source, contract in CONTRACTS.items():
    with connect(settings) as con:
        for path in landing_files(settings.landing_dir, contract):
            say("start", n, source, path.stat().st_size)
            if n == hang_at:
                batch = file_batch(path, settings)
                def stop(con, batch_id=batch.batch_id):
                    say("in_transaction", n, batch_id)
                    time.sleep(600)
                result = load_batch(con, contract, batch, settings, in_transaction=stop)
            else:
                result = load_file(con, contract, path, settings)
            say("committed", n, result.batch_id, result.rows_loaded, result.skipped)
            n += 1
say("done", n)
"""


@dataclass(frozen=True)
class Landing:
    """The generated landing folder and a warehouse that loaded all of it in one clean run."""

    landing_dir: Path
    reference: Settings
    files: int  # landing files over all sources (= batches of a clean run)


def _settings(home: Path, landing_dir: Path) -> Settings:
    return load_settings({"CDP_HOME": str(home), "CDP_LANDING": str(landing_dir)})


def _ingest_all(settings: Settings) -> list:
    return [result for source in CONTRACTS for result in ingest_entity(settings, source)]


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Landing:
    root = tmp_path_factory.mktemp("crash")
    landing_dir = root / "landing"
    generate(
        GenerateConfig(
            landing_dir=landing_dir, truth_dir=root / "truth", customers=CUSTOMERS, events=EVENTS
        )
    )
    reference = _settings(root / "reference", landing_dir)
    results = _ingest_all(reference)
    assert results and not any(r.skipped for r in results)
    assert sum(r.rows_duplicate for r in results) > 0  # cross-batch de-duplication is exercised
    assert sum(r.rows_quarantined for r in results) > 0  # so is the quarantine
    return Landing(landing_dir, reference, len(results))


class _Loader:
    """The loader subprocess, with its stdout lines arriving on a queue."""

    def __init__(self, settings: Settings, hang_at: int, log_dir: Path) -> None:
        env = {
            **os.environ,
            "CDP_HOME": str(settings.home),
            "CDP_LANDING": str(settings.landing_dir),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(CODE_ROOT), os.environ.get("PYTHONPATH")])
            ),
        }
        env.pop("CDP_WAREHOUSE", None)
        self.stderr_path = log_dir / "loader.stderr"
        self._stderr = open(self.stderr_path, "w")  # noqa: SIM115 - closed in finish()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LOADER, str(hang_at)],
            cwd=CODE_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.lines: list[list[str]] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, kind: str, n: int | None = None, timeout: float = 60) -> list[str]:
        """Read lines until one ``<kind> <n> ...`` arrives; fail if the loader ends or stalls."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"loader said no {kind!r} {n} within {timeout} s: {self.lines[-3:]}")
            if line is None:
                self.proc.wait()
                pytest.fail(
                    f"loader ended (exit {self.proc.returncode}) before {kind!r} {n}: "
                    f"{self.lines[-3:]}\n{self.stderr_path.read_text()[-3000:]}"
                )
            words = line.split()
            self.lines.append(words)
            if words[0] == kind and (n is None or int(words[1]) == n):
                return words

    def kill(self) -> None:
        """SIGKILL the loader, then read every line it wrote before it died."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._stderr.close()
        assert self.proc.returncode == -signal.SIGKILL, (
            f"the loader was not killed mid-load (exit {self.proc.returncode}): "
            f"{self.stderr_path.read_text()[-3000:]}"
        )
        self._drain()

    def _drain(self, timeout: float = 30) -> None:
        """Append the lines still queued (written before the loader ended) up to end of output."""
        while (line := self._queue.get(timeout=timeout)) is not None:
            self.lines.append(line.split())

    def close(self) -> None:
        self._stderr.close()

    @property
    def committed(self) -> list[str]:
        """Batch ids the loader reported committed before it was killed."""
        return [words[2] for words in self.lines if words[0] == "committed"]


def _file_numbers(landing_dir: Path) -> dict[str, list[int]]:
    """Loader file numbers of each source."""
    numbers, n = {}, 0
    for source, contract in CONTRACTS.items():
        count = len(landing_files(landing_dir, contract))
        numbers[source] = list(range(n, n + count))
        n += count
    return numbers


def _assert_no_partial_batch(settings: Settings) -> list[tuple]:
    """Every batch visible anywhere is complete and audited; returns the audit rows."""
    with connect(settings, read_only=True) as con:
        audit = con.execute(
            "select batch_id, source, rows_read, rows_loaded, rows_duplicate, rows_quarantined "
            "from audit.load_batches order by batch_id"
        ).fetchall()
        for batch_id, _, read, loaded, duplicate, quarantined in audit:
            assert read == loaded + duplicate + quarantined, batch_id
        audited = {row[0]: row for row in audit}
        for source in CONTRACTS:
            table = raw_table_name(source)
            visible = dict(
                con.execute(f"select _batch_id, count(*) from {table} group by 1").fetchall()
            )
            unaudited = set(visible) - set(audited)
            assert not unaudited, f"{table} shows rows of batches missing from audit: {unaudited}"
            for batch_id, (_, batch_source, _, loaded, _, _) in audited.items():
                if batch_source == source:
                    assert visible.get(batch_id, 0) == loaded, (
                        f"{table}: batch {batch_id} audited with {loaded} rows, "
                        f"{visible.get(batch_id, 0)} visible"
                    )
            key = DEDUP_KEYS[table]
            duplicated = con.execute(
                f'select count(*) - count(distinct "{key}") from {table}'
            ).fetchone()[0]
            assert duplicated == 0, f"{table}: {duplicated} duplicate {key} values"
        quarantined = dict(
            con.execute("select _batch_id, count(*) from quarantine.rows group by 1").fetchall()
        )
        assert not set(quarantined) - set(audited), "quarantine rows of unaudited batches"
        for batch_id, row in audited.items():
            assert quarantined.get(batch_id, 0) == row[5], f"quarantine of {batch_id} incomplete"
    return audit


def _differences(reference: Settings, crash: Settings) -> dict[str, dict]:
    """Per table: rows only in the reference, rows only in the crash run (counts, examples)."""
    tables = [*RAW_TABLES, "quarantine.rows", "audit.load_batches"]
    con = duckdb.connect()
    try:
        con.execute(f"attach '{reference.warehouse_path}' as ref (read_only)")
        con.execute(f"attach '{crash.warehouse_path}' as crash (read_only)")
        found = {}
        for table in tables:
            volatile = VOLATILE.get(table, ("_loaded_at",))
            columns = f"* exclude ({', '.join(volatile)})"
            sides = {}
            for name, left, right in (("missing", "ref", "crash"), ("extra", "crash", "ref")):
                con.execute(
                    f"create or replace temp table _diff as select {columns} from {left}.{table} "
                    f"except all select {columns} from {right}.{table}"
                )
                count = con.execute("select count(*) from _diff").fetchone()[0]
                examples = con.execute("select * from _diff limit 2").fetchall()
                sides[name] = (count, examples)
            rows = con.execute(f"select count(*) from crash.{table}").fetchone()[0]
            found[table] = {**sides, "rows": rows}
        return found
    finally:
        con.close()


def _kill_mid_transaction(loader: _Loader, numbers: dict[str, list[int]]) -> str:
    """Stop inside the transaction of the 4th events file: its rows and audit row are written."""
    words = loader.wait_for("in_transaction", numbers["analytics/events"][3])
    loader.kill()
    return words[2]


def _kill_after_commit(loader: _Loader, numbers: dict[str, list[int]]) -> None:
    """Kill the moment the 7th events file is committed, while the loader starts the next."""
    loader.wait_for("committed", numbers["analytics/events"][6])
    loader.kill()


def _kill_after_random_delay(loader: _Loader, numbers: dict[str, list[int]]) -> None:
    """Kill a random moment (reading, inserting or committing) of the 9th events file.

    The delay is drawn within the time the 8th file took, so the kill lands in the 9th or 10th
    file however fast this machine loads.
    """
    loader.wait_for("start", numbers["analytics/events"][7])
    eighth_started = time.monotonic()
    loader.wait_for("start", numbers["analytics/events"][8])
    delay = random.uniform(0.0, time.monotonic() - eighth_started)
    print(f"killing {delay:.3f} s after events file 9 started")  # shown by pytest on failure
    time.sleep(delay)
    loader.kill()


@pytest.mark.parametrize("kill_point", ["mid_transaction", "after_commit", "random_delay"])
def test_killed_load_rerun_equals_clean_run(
    landing: Landing, tmp_path: Path, kill_point: str
) -> None:
    crash = _settings(tmp_path / "crash_home", landing.landing_dir)
    numbers = _file_numbers(landing.landing_dir)
    assert len(numbers["analytics/events"]) >= 10, "not enough events files for the kill points"
    hang_at = numbers["analytics/events"][3] if kill_point == "mid_transaction" else -1
    loader = _Loader(crash, hang_at, tmp_path)
    try:
        if kill_point == "mid_transaction":
            in_flight = _kill_mid_transaction(loader, numbers)
        elif kill_point == "after_commit":
            _kill_after_commit(loader, numbers)
        else:
            _kill_after_random_delay(loader, numbers)
    finally:
        if loader.proc.poll() is None:
            loader.proc.kill()
            loader.proc.wait()
        loader.close()

    # After the kill: only whole batches, each exactly as a clean run loads it.
    audit = _assert_no_partial_batch(crash)
    committed = {row[0] for row in audit}
    assert set(loader.committed) <= committed
    assert len(committed) <= len(loader.committed) + 1  # at most the batch in flight committed
    assert len(committed) < landing.files, "the loader was killed after the load had finished"
    with connect(landing.reference, read_only=True) as con:
        reference_audit = set(
            con.execute(
                "select batch_id, source, rows_read, rows_loaded, rows_duplicate, "
                "rows_quarantined from audit.load_batches"
            ).fetchall()
        )
    assert set(audit) <= reference_audit, "a committed batch differs from the clean run's"
    if kill_point == "mid_transaction":
        assert committed == set(loader.committed)
        assert in_flight not in committed, "the batch killed mid-transaction was committed"

    # Run again to completion: the committed batches are skipped, the rest is loaded.
    results = _ingest_all(crash)
    assert {r.batch_id for r in results if r.skipped} == committed
    assert len(results) == landing.files

    _assert_no_partial_batch(crash)
    differences = _differences(landing.reference, crash)
    for table, found in differences.items():
        (missing, missing_rows), (extra, extra_rows) = found["missing"], found["extra"]
        assert (missing, extra) == (0, 0), (
            f"{table} after kill ({kill_point}) and re-run differs from a clean run: "
            f"{missing} rows missing, {extra} rows extra (of {found['rows']}); "
            f"missing e.g. {missing_rows}; extra e.g. {extra_rows}"
        )
    assert differences["raw.analytics_events"]["rows"] > 100_000
