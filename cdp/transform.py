"""Run the dbt project (staging → intermediate → marts, with its tests) in-process."""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cdp.settings import Settings

if TYPE_CHECKING:
    from dbt.cli.main import dbtRunnerResult

#: How the ``as_of`` dbt var spells the run's logical date (naive UTC).
AS_OF_FORMAT = "%Y-%m-%d %H:%M:%S"


class DbtBuildFailed(RuntimeError):
    """A dbt model or test failed; the message names every failing node."""


def dbt_vars(as_of: datetime) -> dict[str, str]:
    """The dbt vars for a build as of a logical date."""
    return {"as_of": as_of.strftime(AS_OF_FORMAT)}


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
        args += ["--vars", json.dumps(dbt_vars(as_of))]
    return args


def dbt_env(settings: Settings) -> dict[str, str]:
    """Environment dbt needs: the warehouse ``profiles.yml`` reads, no usage stats (offline)."""
    return {
        "CDP_WAREHOUSE": str(settings.warehouse_path),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def release_warehouse(*_args: Any, **_kwargs: Any) -> None:
    """Close dbt-duckdb's cached connections, which keep the warehouse locked (dbt-duckdb#616).

    Accepts and ignores any arguments so it can also serve as a cosmos/Airflow callback.
    """
    from dbt.adapters.duckdb import DuckDBConnectionManager

    DuckDBConnectionManager.close_all_connections()


def run_dbt(settings: Settings, args: list[str]) -> dbtRunnerResult:
    """Invoke dbt in this process and release the warehouse afterwards, whatever happened."""
    from dbt.cli.main import dbtRunner  # heavy import: only when dbt actually runs

    os.environ.update(dbt_env(settings))
    try:
        return dbtRunner().invoke(args)
    finally:
        release_warehouse()


def dbt_build(settings: Settings, as_of: datetime) -> dict[str, int]:
    """``dbt build`` (models + tests) as of a logical date; raises ``DbtBuildFailed`` on failure."""
    result = run_dbt(settings, dbt_args(settings, "build", as_of))
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
