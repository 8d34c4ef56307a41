"""Ingestion: files and API pages → ``raw.*`` (typed, append-only) and ``quarantine.rows``."""

from ingestion.batch import Batch, BatchResult, QuarantineThresholdExceeded, load_batch
from ingestion.files import ingest_entity, load_file

__all__ = [
    "Batch",
    "BatchResult",
    "QuarantineThresholdExceeded",
    "ingest_entity",
    "load_batch",
    "load_file",
]
