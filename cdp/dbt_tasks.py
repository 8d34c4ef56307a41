"""The dbt project as Airflow tasks: one task per model (astronomer-cosmos), tests at the end.

The task graph is read from the project's manifest (``cdp.dbt_manifest``), so parsing the DAG
never runs dbt. Each task runs ``dbt run --select <model>`` in the worker process through
``dbtRunner`` (no 4–6 s CLI start-up per task), in the DuckDB writer pool, with the ``as_of``
var taken from the run's logical date, and releases the warehouse file lock when it ends.

Tests run once after all models (``TestBehavior.AFTER_ALL``): one ``dbt test`` task instead of
one per model halves the task count (each task costs a dbt parse), and several tests
(relationships, the lifetime-value reconciliation) span more than one model anyway. A failing
model is its own red task; a failing test makes the test task red; nothing downstream runs.

``CDP_DBT_TASKS=single`` collapses the project into one ``dbt build`` task: an opt-out where the
per-task cost matters (~2 s a task, see ``bench/RESULTS.md``); only end-to-end tests that
re-run the build to check data use it. ``make demo`` and ``make airflow`` use ``models``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from airflow.sdk import get_current_context, task

from cdp.assets import PROFILES_ASSET, WRITER_POOL
from cdp.settings import Settings, load_settings

#: ``CDP_DBT_TASKS`` values: one Airflow task per dbt model, or one task for the whole project.
TASK_MODES = ("models", "single")

#: The dbt project's name (``dbt_project.yml``), and its profile and target (``profiles.yml``).
PROJECT_NAME = "microcdp"
PROFILE_NAME = "microcdp"
TARGET_NAME = "dev"

#: The run's logical date, or when it was due for asset-triggered runs, as the ``as_of`` var
#: (Airflow hands both out in UTC): the template twin of ``cdp.logical_time.run_as_of`` and
#: ``cdp.transform.dbt_vars``, rendered when the task runs.
AS_OF_TEMPLATE = "{{ (logical_date or dag_run.run_after).strftime('%s') }}"


def dbt_task_mode() -> str:
    """``CDP_DBT_TASKS`` (default ``models``); raises ``ValueError`` for anything else."""
    mode = os.environ.get("CDP_DBT_TASKS", "models")
    if mode not in TASK_MODES:
        raise ValueError(f"CDP_DBT_TASKS={mode!r}: choose one of {', '.join(TASK_MODES)}")
    return mode


def run_results_path(target_dir: Path, task_id: str) -> Path:
    """Where a dbt task's ``run_results.json`` of its latest run is kept."""
    return target_dir / "run_results" / f"{task_id}.json"


def keep_dbt_artifacts(project_dir: str, target_dir: str, context: Any, **_: Any) -> None:
    """Copy a task's ``run_results.json`` out of cosmos' temporary project (else deleted)."""
    results = Path(project_dir) / "target" / "run_results.json"
    if results.is_file():
        kept = run_results_path(Path(target_dir), context["ti"].task_id)
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(results, kept)


def dbt_model_tasks(settings: Settings, group_id: str = "dbt_build"):
    """A cosmos ``DbtTaskGroup`` with one task per model of the manifest and a final test task."""
    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

    from cdp.dbt_manifest import fresh_manifest_path
    from cdp.transform import AS_OF_FORMAT, dbt_env, release_warehouse

    project_dir = settings.dbt_project_dir
    return DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(
            dbt_project_path=project_dir,
            manifest_path=fresh_manifest_path(project_dir),
            project_name=PROJECT_NAME,
            install_dbt_deps=False,
            env_vars={**dbt_env(settings), "DBT_LOG_PATH": str(settings.dbt_log_dir)},
        ),
        profile_config=ProfileConfig(
            profile_name=PROFILE_NAME,
            target_name=TARGET_NAME,
            profiles_yml_filepath=project_dir / "profiles.yml",
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL, invocation_mode=InvocationMode.DBT_RUNNER
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.AFTER_ALL,
            emit_datasets=False,
        ),
        operator_args={
            "pool": WRITER_POOL,
            "vars": {"as_of": AS_OF_TEMPLATE % AS_OF_FORMAT},
            # Called after dbt, before a dbt failure is raised: unlock, then keep the artifacts.
            "callback": [release_warehouse, keep_dbt_artifacts],
            "callback_args": {"target_dir": str(settings.dbt_target_dir)},
        },
    )


@task(pool=WRITER_POOL, outlets=[PROFILES_ASSET])
def dbt_build() -> dict:
    """Build and test every dbt model as of the run's logical date, in one task."""
    from cdp.logical_time import run_as_of
    from cdp.transform import dbt_build as build

    return build(load_settings(), run_as_of(get_current_context()))


@task(pool=WRITER_POOL, outlets=[PROFILES_ASSET])
def profiles_built() -> dict:
    """Announce the rebuilt profiles once every dbt model and test task has succeeded."""
    from cdp.warehouse import connect

    with connect(load_settings(), read_only=True) as con:
        [(customers,)] = con.execute("select count(*) from marts.customer_profiles").fetchall()
    return {"customers": customers}


def dbt_build_tasks(settings: Settings) -> tuple:
    """The build DAG's dbt part as ``(first, last)`` to chain between identity and segments."""
    if dbt_task_mode() == "single":
        only = dbt_build()
        return only, only
    models = dbt_model_tasks(settings)
    announce = profiles_built()
    models >> announce
    return models, announce
