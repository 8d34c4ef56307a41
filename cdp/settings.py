"""All paths and knobs in one place, read from the environment.

Every setting has an embedded default so that `make demo` works on a fresh machine; each can be
overridden with an environment variable (named in the field's comment).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

#: Root of the repository (holds dags/, dbt_project/, ...).
REPO_ROOT = Path(__file__).resolve().parent.parent

#: Used when CDP_PSEUDONYMIZATION_KEY is unset: fine for the demo, never for real data.
DEV_PSEUDONYMIZATION_KEY = "microcdp-dev-key-NOT-FOR-PRODUCTION"


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
    #: CDP_PROPENSITY_HORIZON_DAYS, default 30: propensity = P(purchase within the next H days).
    propensity_horizon_days: int = 30
    # CDP_PSEUDONYMIZATION_KEY: key of the keyed hash (HMAC-SHA256) over PII in the published
    # snapshot; defaults to DEV_PSEUDONYMIZATION_KEY (flagged in logs and audit.publishes).
    pseudonymization_key: str = field(default=DEV_PSEUDONYMIZATION_KEY, repr=False)
    publish_keep: int = 3  # CDP_PUBLISH_KEEP: previous snapshots kept for rollback
    quality_max_row_change: float = 0.5  # CDP_QUALITY_MAX_ROW_CHANGE: profiles vs last publish
    quality_max_staleness_hours: float = 72.0  # CDP_QUALITY_MAX_STALENESS_HOURS: newest activity

    @property
    def uses_dev_pseudonymization_key(self) -> bool:
        """True when no real pseudonymization key is configured."""
        return self.pseudonymization_key == DEV_PSEUDONYMIZATION_KEY

    @property
    def quality_dir(self) -> Path:
        """Quality-gate results (JSON) and the Great Expectations project with its Data Docs."""
        return self.home / "quality"

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


def _number(env: dict[str, str], name: str, default: str, low: float, high: float) -> float:
    value = env.get(name, default)
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not low <= number <= high:
        raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {number:g}")
    return number


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
        propensity_horizon_days=int(_number(env, "CDP_PROPENSITY_HORIZON_DAYS", "30", 1, 3650)),
        pseudonymization_key=env.get("CDP_PSEUDONYMIZATION_KEY") or DEV_PSEUDONYMIZATION_KEY,
        publish_keep=int(_number(env, "CDP_PUBLISH_KEEP", "3", 0, 1000)),
        quality_max_row_change=_number(env, "CDP_QUALITY_MAX_ROW_CHANGE", "0.5", 0, 1000),
        quality_max_staleness_hours=_number(
            env, "CDP_QUALITY_MAX_STALENESS_HOURS", "72", 0, 1_000_000
        ),
    )
