"""Write → audit → publish: the read-only, pseudonymized analyst snapshot and its rollback."""

from cdp.publish.publish import (
    PublishError,
    PublishResult,
    history_snapshots,
    publish_snapshot,
    rollback_snapshot,
    snapshot_path,
)

__all__ = [
    "PublishError",
    "PublishResult",
    "history_snapshots",
    "publish_snapshot",
    "rollback_snapshot",
    "snapshot_path",
]
