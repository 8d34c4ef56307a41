"""Point Airflow at MicroCDP's embedded defaults (SQLite metadata under ``$CDP_HOME/airflow``).

Airflow reads its configuration when it is first imported, so ``configure`` must run before
any ``airflow`` import in the process.
"""

from __future__ import annotations

import os
import warnings

from cdp.settings import Settings


def export_settings(settings: Settings) -> None:
    """Put the resolved settings in the environment, so every task sees the same paths."""
    os.environ.update(
        {
            "CDP_HOME": str(settings.home),
            "CDP_WAREHOUSE": str(settings.warehouse_path),
            "CDP_LANDING": str(settings.landing_dir),
            "CDP_PUBLISH": str(settings.publish_dir),
            "CDP_DAGS_DIR": str(settings.dags_dir),
            "CDP_DBT_PROJECT_DIR": str(settings.dbt_project_dir),
            "CDP_SEGMENTS_DIR": str(settings.segments_dir),
            "CDP_CONNECTORS_DIR": str(settings.connectors_dir),
            "CDP_QUARANTINE_MAX_SHARE": str(settings.quarantine_max_share),
        }
    )


def configure(settings: Settings, verbose: bool = False) -> None:
    """Set Airflow's environment for an in-process run on the embedded SQLite metadata DB."""
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    export_settings(settings)
    os.environ["AIRFLOW_HOME"] = str(settings.airflow_home)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(settings.dags_dir)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
    os.environ.setdefault("CDP_TASK_RETRIES", "0")  # in-process runs fail fast
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO" if verbose else "WARNING")
    if not verbose:
        os.environ.setdefault("DBT_QUIET", "true")  # dbt still writes its full log file
        # Airflow 3.3 imports starlette's test client, which warns on every start.
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")


def migrate_metadata_db() -> None:
    """Create or upgrade Airflow's metadata database (idempotent)."""
    from airflow.utils import db

    db.upgradedb()


def check_configured(settings: Settings) -> None:
    """Fail if Airflow was imported before ``configure`` and so points at other folders."""
    from pathlib import Path

    from airflow.configuration import conf

    dags_folder = Path(conf.get("core", "dags_folder")).resolve()
    if dags_folder != settings.dags_dir.resolve():
        raise RuntimeError(
            f"Airflow in this process uses dags_folder={dags_folder}, not {settings.dags_dir}: "
            "call cdp.airflow_env.configure() before anything imports airflow"
        )
