"""Run the dbt project (staging → intermediate → marts, with its tests) in-process."""

from __future__ import annotations

import json
import os
from datetime import datetime

from cdp.settings import Settings


class DbtBuildFailed(RuntimeError):
    """A dbt model or test failed; the message names every failing node."""


def dbt_args(settings: Settings, command: str, as_of: datetime | None = None) -> list[str]:
    """Command-line arguments for a dbt command against MicroCDP's project and warehouse."""
    args = [
        command,
        "--project-dir", str(settings.dbt_project_dir),
        "--profiles-dir", str(settings.dbt_project_dir),
        "--target-path", str(settings.dbt_target_dir),
        "--log-path", str(settings.dbt_log_dir),
    ]  # fmt: skip
    if as_of is not None:
        args += ["--vars", json.dumps({"as_of": as_of.strftime("%Y-%m-%d %H:%M:%S")})]
    return args


def dbt_build(settings: Settings, as_of: datetime) -> dict[str, int]:
    """``dbt build`` (models + tests) as of a logical date; raises ``DbtBuildFailed`` on failure."""
    from dbt.adapters.duckdb import DuckDBConnectionManager
    from dbt.cli.main import dbtRunner  # heavy imports: only when a build actually runs

    os.environ["CDP_WAREHOUSE"] = str(settings.warehouse_path)  # read by profiles.yml
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")  # no network here
    try:
        result = dbtRunner().invoke(dbt_args(settings, "build", as_of))
    finally:
        # dbt-duckdb keeps the file open (and locked) after invoke (dbt-duckdb#616).
        DuckDBConnectionManager.close_all_connections()
    if result.exception is not None:
        raise DbtBuildFailed(f"dbt could not run: {result.exception}") from result.exception
    counts: dict[str, int] = {}
    failures = []
    for node_result in result.result or []:
        status = str(node_result.status)
        counts[status] = counts.get(status, 0) + 1
        if status in ("error", "fail"):
            failures.append(f"{node_result.node.unique_id}: {node_result.message}")
    if not result.success or failures:
        raise DbtBuildFailed("dbt build failed:\n  " + "\n  ".join(failures or ["see dbt log"]))
    return counts
