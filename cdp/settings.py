"""All paths and knobs in one place, read from the environment.

Every setting has an embedded default so that `make demo` works on a fresh machine; each can be
overridden with an environment variable (named in the field's comment).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Root of the repository (holds dags/, dbt_project/, ...).
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Resolved locations of everything MicroCDP reads and writes."""

    home: Path  # CDP_HOME, default ./var
    warehouse_path: Path  # CDP_WAREHOUSE, default $CDP_HOME/warehouse.duckdb
    landing_dir: Path  # CDP_LANDING, default $CDP_HOME/landing
    publish_dir: Path  # CDP_PUBLISH, default $CDP_HOME/publish
    airflow_home: Path  # AIRFLOW_HOME, default $CDP_HOME/airflow
    dags_dir: Path  # CDP_DAGS_DIR, default <repo>/dags
    dbt_project_dir: Path  # CDP_DBT_PROJECT_DIR, default <repo>/dbt_project
    segments_dir: Path  # CDP_SEGMENTS_DIR, default the bundled starter library
    connectors_dir: Path  # CDP_CONNECTORS_DIR, default $CDP_HOME/connectors (REST source YAMLs)
    quarantine_max_share: float  # CDP_QUARANTINE_MAX_SHARE, default 0.05 (5 % of a file's rows)

    @property
    def dbt_target_dir(self) -> Path:
        """Where dbt writes its manifest, run results and docs (outside the source tree)."""
        return self.home / "dbt" / "target"

    @property
    def dbt_log_dir(self) -> Path:
        """Where dbt writes its logs."""
        return self.home / "dbt" / "logs"

    def ensure_dirs(self) -> None:
        """Create the directories MicroCDP writes to."""
        for path in (self.home, self.landing_dir, self.publish_dir, self.airflow_home):
            path.mkdir(parents=True, exist_ok=True)


def _path(env: dict[str, str], name: str, default: Path) -> Path:
    value = env.get(name)
    return Path(value).expanduser().resolve() if value else default


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build settings from environment variables (``os.environ`` unless ``env`` is given)."""
    env = dict(os.environ if env is None else env)
    home = _path(env, "CDP_HOME", Path.cwd() / "var")
    share = env.get("CDP_QUARANTINE_MAX_SHARE", "0.05")
    try:
        quarantine_max_share = float(share)
    except ValueError:
        raise ValueError(f"CDP_QUARANTINE_MAX_SHARE must be a number, got {share!r}") from None
    if not 0.0 <= quarantine_max_share <= 1.0:
        raise ValueError(f"CDP_QUARANTINE_MAX_SHARE must be in [0, 1], got {quarantine_max_share}")
    return Settings(
        home=home,
        warehouse_path=_path(env, "CDP_WAREHOUSE", home / "warehouse.duckdb"),
        landing_dir=_path(env, "CDP_LANDING", home / "landing"),
        publish_dir=_path(env, "CDP_PUBLISH", home / "publish"),
        airflow_home=_path(env, "AIRFLOW_HOME", home / "airflow"),
        dags_dir=_path(env, "CDP_DAGS_DIR", REPO_ROOT / "dags"),
        dbt_project_dir=_path(env, "CDP_DBT_PROJECT_DIR", REPO_ROOT / "dbt_project"),
        segments_dir=_path(env, "CDP_SEGMENTS_DIR", REPO_ROOT / "cdp" / "segments" / "definitions"),
        connectors_dir=_path(env, "CDP_CONNECTORS_DIR", home / "connectors"),
        quarantine_max_share=quarantine_max_share,
    )
