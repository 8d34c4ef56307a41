"""Landing files → batches: find new files per source and load each as one atomic batch."""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cdp.contracts import CONTRACTS, Contract
from cdp.settings import Settings
from cdp.warehouse import connect
from ingestion.batch import Batch, BatchResult, load_batch, load_batches
from ingestion.mapping import mapping_for
from ingestion.readers import read_chunks
from ingestion.validation import SourceMapping

log = logging.getLogger(__name__)

#: DuckDB settings while one folder loads (reset afterwards; the run checkpoints at its end).
#: DuckDB's own checkpoint threshold (16 MB of write-ahead log) is kept: a commit bigger than
#: that (a file of ~77k events) is checkpointed straight into the database file instead of being
#: written to the log uncompressed and compressed again by a checkpoint later (a 1M-event
#: increment in 13 such files into 10M: 10.3 -> 8.3 s against a 4 GB threshold; the 10M full
#: load, whose inserts are written straight to the file either way, the same within noise).
RUN_SETTINGS = {
    # Each file's rows end in a partly filled row group; the checkpoint's vacuum merged those
    # and so rewrote every row group after them (~3 µs per loaded row). Checkpoints of later
    # steps (e.g. after an erasure deletes rows) still vacuum.
    "max_vacuum_tasks": "0",
}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def landing_files(landing_dir: Path, contract: Contract) -> list[Path]:
    """Files waiting under ``landing/<source>/<entity>/``, in name order."""
    folder = landing_dir / contract.source_entity
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and not p.name.startswith((".", "_"))
        and p.name.lower().endswith(contract.file_suffixes)
    )


def file_batch(path: Path, settings: Settings) -> Batch:
    """A landing file as one batch named by its landing-relative path (read when loaded)."""
    try:
        source_file = str(path.resolve().relative_to(settings.landing_dir))
    except ValueError:
        source_file = str(path.resolve())
    return Batch(source_file, _sha256(path), path.stat().st_size, lambda: read_chunks(path))


def load_file(
    con, contract: Contract, path: Path, settings: Settings, mapping: SourceMapping | None = None
) -> BatchResult:
    """Load one landing file (unless this exact content was loaded before)."""
    return load_batch(con, contract, file_batch(path, settings), settings, mapping=mapping)


def ingest_entity(settings: Settings, source_entity: str) -> list[BatchResult]:
    """Load every new landing file of one ``<source>/<entity>`` into the warehouse."""
    if source_entity not in CONTRACTS:
        known = ", ".join(sorted(CONTRACTS))
        raise ValueError(f"unknown source {source_entity!r}; known sources: {known}")
    contract = CONTRACTS[source_entity]
    paths = landing_files(settings.landing_dir, contract)
    # A bad _mapping.yml stops the whole folder before anything is written.
    mapping = mapping_for(settings.landing_dir, source_entity, paths)
    results = []
    with connect(settings) as con:
        for name, value in RUN_SETTINGS.items():
            con.execute(f"set {name} = '{value}'")
        # Files are hashed (for their batch ids) in the background, in order, while the ones
        # before them load: hashing releases the GIL, and a cold file's hash waits for the
        # disk (a 4.6 GB backlog took 7 s before anything loaded).
        hashing = ThreadPoolExecutor(2, thread_name_prefix="ingestion-hash")
        try:
            batches = hashing.map(lambda path: file_batch(path, settings), paths)
            for result in load_batches(con, contract, batches, settings, mapping=mapping):
                log.info("%s", result)
                results.append(result)
            con.execute("checkpoint")
        finally:
            hashing.shutdown(cancel_futures=True)
            for name in RUN_SETTINGS:  # the database instance may be shared
                con.execute(f"reset {name}")
    return results
