"""Run MicroCDP's DAGs in-process through Airflow (``dag.test()``) on the embedded defaults."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from cdp import airflow_env
from cdp.dbt_manifest import ensure_manifest
from cdp.settings import Settings

#: Steps in data-flow order (``cdp run --only`` takes these names) and the DAGs each runs; the
#: scheduler triggers ``cdp_build`` and ``cdp_publish_scores`` from Assets, here they run in turn.
PIPELINE = {
    "ingest": ("cdp_ingest",),
    "build": ("cdp_build",),
    "ml": ("cdp_retrain_weekly", "cdp_publish_scores"),
}


#: Task states that count as done (a skipped load had nothing new to load).
_DONE = ("success", "skipped")


class PipelineFailed(RuntimeError):
    """A DAG run did not succeed; the message names the failed tasks."""


@dataclass(frozen=True)
class DagRunReport:
    """Outcome of one in-process DAG run."""

    dag_id: str
    run_id: str
    state: str
    seconds: float
    task_states: dict[str, str]


def load_dags(settings: Settings) -> dict:
    """Parse the DAG folder; fail with every import error if any DAG file is broken."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(settings.dags_dir))
    if bag.import_errors:
        details = "\n".join(f"{path}: {error}" for path, error in bag.import_errors.items())
        raise PipelineFailed(f"DAG files failed to import:\n{details}")
    return bag.dags


def run_dags(
    settings: Settings,
    as_of: datetime | None = None,
    only: list[str] | None = None,
    verbose: bool = False,
) -> list[DagRunReport]:
    """Run the pipeline's DAGs in order with ``dag.test()``; raise if any run fails."""
    steps = only or list(PIPELINE)
    unknown = [s for s in steps if s not in PIPELINE]
    if unknown:
        raise ValueError(f"unknown step(s) {unknown}; choose from {list(PIPELINE)}")
    as_of = as_of or datetime.now(UTC).replace(tzinfo=None)
    settings.ensure_dirs()
    airflow_env.configure(settings, verbose=verbose)
    airflow_env.migrate_metadata_db()
    airflow_env.check_configured(settings)
    ensure_manifest(settings)  # an edited dbt project is re-parsed here, never at DAG parse
    dags = load_dags(settings)
    logical_date = as_of.replace(tzinfo=UTC)
    reports = []
    for dag_id in (dag_id for step in steps for dag_id in PIPELINE[step]):
        dag = dags[dag_id]
        started = time.perf_counter()
        dag_run = dag.test(logical_date=logical_date)
        states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
        report = DagRunReport(
            dag.dag_id, dag_run.run_id, str(dag_run.state), time.perf_counter() - started, states
        )
        reports.append(report)
        if not states:
            raise PipelineFailed(
                f"{dag.dag_id} run {dag_run.run_id} ran no task: is {logical_date:%Y-%m-%d} "
                f"before the DAG's start_date ({dag.start_date:%Y-%m-%d})?"
            )
        if report.state != "success":
            failed = [task for task, state in states.items() if state not in _DONE]
            raise PipelineFailed(
                f"{dag.dag_id} run {dag_run.run_id} ended {report.state}; "
                f"tasks not successful: {failed}. Task logs: {settings.airflow_home / 'logs'}"
            )
    return reports
