"""The dbt models are Airflow tasks: visible one by one, drawn from a fresh manifest, and a
broken model fails exactly its own task in a real ``dag.test()`` run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest

from cdp.assets import WRITER_POOL
from cdp.dbt_manifest import StaleDbtManifest, fresh_manifest_path, write_manifest
from cdp.dbt_tasks import AS_OF_TEMPLATE, run_results_path
from cdp.logical_time import run_as_of
from cdp.settings import REPO_ROOT, load_settings
from cdp.transform import AS_OF_FORMAT, dbt_vars

PROJECT = REPO_ROOT / "dbt_project"
MODELS = sorted(p.stem for p in (PROJECT / "models").rglob("*.sql"))
AS_OF = datetime(2026, 11, 1)


@pytest.fixture
def restored_environ():
    """``cdp.airflow_env.configure`` exports settings into ``os.environ``: undo it afterwards."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def _build_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "cdp_build.py"))
    assert bag.import_errors == {}
    return bag.dags["cdp_build"]


def test_every_dbt_model_is_its_own_writer_task_before_the_tests(restored_environ):
    os.environ.pop("CDP_DBT_TASKS", None)
    dag = _build_dag()
    model_tasks = {f"dbt_build.{model}_run" for model in MODELS}
    assert model_tasks <= set(dag.task_ids)
    test_task = dag.get_task("dbt_build.dbt_project_test")
    assert test_task.upstream_task_ids <= model_tasks
    assert test_task.downstream_task_ids == {"profiles_built"}
    for task_id in model_tasks | {test_task.task_id}:
        task = dag.get_task(task_id)
        assert task.pool == WRITER_POOL
        assert task.vars == {"as_of": AS_OF_TEMPLATE % AS_OF_FORMAT}
    profiles = dag.get_task("dbt_build.customer_profiles_run")
    assert "dbt_build.int_customer_orders_summarized_run" in profiles.upstream_task_ids


def test_single_mode_runs_the_project_as_one_task(restored_environ):
    os.environ["CDP_DBT_TASKS"] = "single"
    dag = _build_dag()
    assert not [t for t in dag.task_ids if t.startswith("dbt_build.")]
    assert dag.get_task("dbt_build").downstream_task_ids == {"refresh_segments"}


@pytest.mark.parametrize(
    "context",
    [
        {"logical_date": datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC), "dag_run": None},
        {"logical_date": None,
         "dag_run": SimpleNamespace(run_after=datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC))},
    ],
)  # fmt: skip
def test_the_as_of_var_template_renders_the_runs_as_of(context):
    rendered = jinja2.Template(AS_OF_TEMPLATE % AS_OF_FORMAT).render(**context)
    assert {"as_of": rendered} == dbt_vars(run_as_of(context)) == {"as_of": "2026-03-04 05:06:07"}


def test_a_missing_or_outdated_manifest_fails_loudly(tmp_path):
    project = tmp_path / "dbt_project"
    shutil.copytree(PROJECT, project)
    manifest = fresh_manifest_path(project)  # the copied one matches the copied files
    (project / "models" / "marts" / "fct_orders.sql").write_text("select 1 as order_id\n")
    with pytest.raises(StaleDbtManifest, match="older than the files"):
        fresh_manifest_path(project)
    manifest.unlink()
    with pytest.raises(StaleDbtManifest, match="no dbt manifest"):
        fresh_manifest_path(project)


def test_regenerating_the_manifest_leaves_cdp_home_untouched(tmp_path):
    """`make install` parses the project before `cdp demo`, which refuses a home it did not
    create: the parse must write next to the project only."""
    project = tmp_path / "dbt_project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("target"))
    home = tmp_path / "home"
    write_manifest(load_settings({"CDP_HOME": str(home), "CDP_DBT_PROJECT_DIR": str(project)}))
    assert fresh_manifest_path(project).is_file()
    assert not home.exists()


def _warehouse_opens_in_another_process(path: Path) -> bool:
    probe = "import duckdb, sys; duckdb.connect(sys.argv[1], read_only=True).close()"
    return subprocess.run([sys.executable, "-c", probe, str(path)]).returncode == 0


def test_a_broken_model_fails_exactly_its_task_and_nothing_downstream_runs(
    tmp_path, restored_environ
):
    from cdp.generate import GenerateConfig, generate
    from cdp.runner import load_dags, run_dags

    project = tmp_path / "dbt_project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("target"))
    (project / "models" / "intermediate" / "int_customer_orders_summarized.sql").write_text(
        "select no_such_column from {{ ref('int_orders_identified') }}\n"
    )
    env = {"CDP_HOME": str(tmp_path / "home"), "CDP_DBT_PROJECT_DIR": str(project),
           "AIRFLOW_HOME": os.environ["AIRFLOW_HOME"]}  # fmt: skip
    os.environ.pop("CDP_DBT_TASKS", None)
    settings = load_settings(env)
    write_manifest(settings)
    generate(GenerateConfig(landing_dir=settings.landing_dir, truth_dir=tmp_path / "truth",
                            customers=60, events=600, seed=3, end_date=date(2026, 10, 31),
                            days=30))  # fmt: skip
    run_dags(settings, as_of=AS_OF, only=["ingest"])

    dag_run = load_dags(settings)["cdp_build"].test(logical_date=AS_OF.replace(tzinfo=UTC))

    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    assert str(dag_run.state) == "failed"
    failed = {task for task, state in states.items() if state == "failed"}
    assert failed == {"dbt_build.int_customer_orders_summarized_run"}
    assert states["dbt_build.int_orders_identified_run"] == "success"  # upstream
    assert states["dbt_build.fct_events_run"] == "success"  # independent branch
    for downstream in ("dbt_build.customer_profiles_run", "dbt_build.dbt_project_test",
                       "profiles_built", "refresh_segments", "publish_snapshot"):  # fmt: skip
        assert states[downstream] == "upstream_failed", downstream
    assert _warehouse_opens_in_another_process(settings.warehouse_path)
    kept = run_results_path(settings.dbt_target_dir, "dbt_build.int_customer_orders_summarized_run")
    [result] = json.loads(kept.read_text())["results"]
    assert result["status"] == "error" and "no_such_column" in result["message"]
