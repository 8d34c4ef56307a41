"""Write → audit → publish: swap in a new analyst snapshot atomically, keep N for rollback.

Layout under ``settings.publish_dir``::

    warehouse.duckdb                   the current snapshot (what analysts open, read-only)
    history/warehouse-<publish_id>.duckdb   the current and the previous N snapshots

A snapshot is built in a temporary file next to ``warehouse.duckdb`` and moved over it with
``os.replace``: an analyst who has the old file open keeps reading the old file, a new
connection sees the new one, nobody sees a half-written file. Snapshots are made read-only
(mode 0444) so an accidental read-write open fails instead of changing history.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from cdp.publish.audit import record_publish
from cdp.publish.snapshot import SnapshotInfo, build_snapshot
from cdp.settings import Settings
from cdp.warehouse import connect

log = logging.getLogger(__name__)

SNAPSHOT_NAME = "warehouse.duckdb"
HISTORY_DIR = "history"


class PublishError(RuntimeError):
    """The snapshot could not be published or rolled back; the current one is unchanged."""


@dataclass(frozen=True)
class PublishResult:
    """One publish or rollback: its id, the file analysts open, and rows per table."""

    publish_id: str
    snapshot_path: Path
    row_counts: dict[str, int]
    uses_dev_key: bool


def snapshot_path(settings: Settings) -> Path:
    """The file analysts open: ``$CDP_PUBLISH/warehouse.duckdb``."""
    return settings.publish_dir / SNAPSHOT_NAME


def history_snapshots(settings: Settings) -> list[Path]:
    """Snapshots kept for rollback, oldest first (the newest is the current one)."""
    history = settings.publish_dir / HISTORY_DIR
    return sorted(history.glob("warehouse-*.duckdb")) if history.is_dir() else []


def _new_publish_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%S.%f}Z-{secrets.token_hex(3)}"


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # a filesystem without hard links
        shutil.copyfile(source, target)


def _swap_in(settings: Settings, staged: Path) -> None:
    """Make ``staged`` the current snapshot in one rename."""
    staged.chmod(0o444)
    os.replace(staged, snapshot_path(settings))
    directory = os.open(settings.publish_dir, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)


def _prune_history(settings: Settings) -> None:
    """Keep the current snapshot plus ``publish_keep`` previous ones."""
    for old in history_snapshots(settings)[: -(settings.publish_keep + 1)]:
        old.unlink()


def publish_snapshot(settings: Settings, run_id: str, as_of: datetime) -> PublishResult:
    """Build a pseudonymized snapshot of the analyst-facing tables and publish it atomically.

    Call only after the quality gate passed. Records the publish in ``audit.publishes``.
    """
    if not settings.warehouse_path.exists():
        raise PublishError(f"no warehouse at {settings.warehouse_path}: nothing to publish")
    if settings.uses_dev_pseudonymization_key:
        log.warning(
            "publishing with the built-in DEV pseudonymization key: set "
            "CDP_PSEUDONYMIZATION_KEY before publishing real customer data"
        )
    now = datetime.now(UTC).replace(tzinfo=None)
    publish_id = _new_publish_id(now)
    history = settings.publish_dir / HISTORY_DIR
    history.mkdir(parents=True, exist_ok=True)
    staged = settings.publish_dir / f".{SNAPSHOT_NAME}.{publish_id}.tmp"
    try:
        info = build_snapshot(
            settings.warehouse_path,
            staged,
            settings.pseudonymization_key,
            publish_id,
            run_id,
            as_of,
        )
        _link_or_copy(staged, history / f"warehouse-{publish_id}.duckdb")
        _swap_in(settings, staged)
    finally:
        staged.unlink(missing_ok=True)
        Path(f"{staged}.wal").unlink(missing_ok=True)
    _prune_history(settings)
    log.info("published snapshot %s: %s", publish_id, info.row_counts)
    return _audit(settings, "publish", info, run_id, as_of, now)


def _audit(
    settings: Settings,
    action: str,
    info: SnapshotInfo,
    run_id: str,
    as_of: datetime | None,
    published_at: datetime,
) -> PublishResult:
    """Record a publish or rollback in ``audit.publishes`` and describe it."""
    with connect(settings) as con:
        record_publish(
            con,
            publish_id=info.publish_id,
            action=action,
            run_id=run_id,
            as_of=as_of,
            published_at=published_at,
            snapshot_path=str(snapshot_path(settings)),
            row_counts=info.row_counts,
            protected_columns=info.protected_columns,
            uses_dev_key=settings.uses_dev_pseudonymization_key,
        )
    return PublishResult(
        info.publish_id,
        snapshot_path(settings),
        info.row_counts,
        settings.uses_dev_pseudonymization_key,
    )


def _snapshot_info(path: Path) -> tuple[SnapshotInfo, datetime | None]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        publish_id, as_of, counts, columns = con.execute(
            "select publish_id, as_of, row_counts, pseudonymized_columns from snapshot.info"
        ).fetchone()
    finally:
        con.close()
    return SnapshotInfo(publish_id, json.loads(counts), list(columns)), as_of


def rollback_snapshot(settings: Settings, run_id: str = "manual") -> PublishResult:
    """Make the snapshot published before the current one current again (atomically)."""
    kept = history_snapshots(settings)
    if len(kept) < 2:
        raise PublishError(
            f"nothing to roll back to: {len(kept)} snapshot(s) in "
            f"{settings.publish_dir / HISTORY_DIR} (CDP_PUBLISH_KEEP={settings.publish_keep})"
        )
    current, previous = kept[-1], kept[-2]
    info, as_of = _snapshot_info(previous)
    staged = settings.publish_dir / f".{SNAPSHOT_NAME}.rollback.tmp"
    staged.unlink(missing_ok=True)
    try:
        _link_or_copy(previous, staged)
        _swap_in(settings, staged)
    finally:
        staged.unlink(missing_ok=True)
    current.unlink()  # the rolled-back snapshot leaves history: the previous one is newest again
    return _audit(settings, "rollback", info, run_id, as_of, datetime.now(UTC).replace(tzinfo=None))
