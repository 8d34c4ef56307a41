"""Ingestion: landing files → ``raw.*`` (typed, append-only) and ``quarantine.rows``."""

from ingestion.files import BatchResult, QuarantineThresholdExceeded, ingest_entity, load_file

__all__ = ["BatchResult", "QuarantineThresholdExceeded", "ingest_entity", "load_file"]
