"""The DAG folder parses cleanly and wires the pipeline the way the design says."""

from __future__ import annotations

import os
import warnings

import pytest

from cdp.assets import RAW_LANDED, WRITER_POOL
from cdp.contracts import CONTRACTS
from cdp.settings import REPO_ROOT


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    """The DAGs as a scheduler parses them (production retry defaults, no REST connectors)."""
    from airflow.dag_processing.dagbag import DagBag

    saved = {
        name: os.environ.pop(name, None) for name in ("CDP_TASK_RETRIES", "CDP_CONNECTORS_DIR")
    }
    os.environ["CDP_CONNECTORS_DIR"] = str(tmp_path_factory.mktemp("no-connectors"))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value
    bag.parse_warnings = [w for w in caught if "dags" in str(w.filename)]
    return bag


def test_every_dag_imports_without_errors_or_warnings(dagbag):
    assert dagbag.import_errors == {}
    assert dagbag.captured_warnings == {}
    assert dagbag.parse_warnings == []
    assert set(dagbag.dags) == {"cdp_ingest", "cdp_build"}


def test_ingest_has_one_writer_task_per_source_each_updating_its_asset(dagbag):
    dag = dagbag.dags["cdp_ingest"]
    loads = {"load_" + source.replace("/", "_") for source in CONTRACTS}
    assert {t.task_id for t in dag.tasks} == loads | {"announce_new_raw_data"}
    for task_id in loads:
        task = dag.get_task(task_id)
        assert task.pool == WRITER_POOL
        assert task.retries >= 1
        [outlet] = task.outlets
        assert outlet.name == "raw." + task_id.removeprefix("load_")


def test_ingest_announces_new_raw_data_once_and_only_if_something_loaded(dagbag):
    announce = dagbag.dags["cdp_ingest"].get_task("announce_new_raw_data")
    assert announce.trigger_rule == "none_failed_min_one_success"
    assert announce.upstream_task_ids == {t for t in dagbag.dags["cdp_ingest"].task_ids
                                          if t.startswith("load_")}  # fmt: skip
    assert announce.outlets == [RAW_LANDED]


def test_build_runs_once_per_ingest_that_loaded_and_chains_identity_dbt_segments(dagbag):
    dag = dagbag.dags["cdp_build"]
    assert list(dag.timetable.asset_condition.objects) == [RAW_LANDED]
    identity, dbt, segments = (dag.get_task(t) for t in ("resolve_identity", "dbt_build",
                                                          "refresh_segments"))  # fmt: skip
    assert identity.downstream_task_ids == {"dbt_build"}
    assert dbt.downstream_task_ids == {"refresh_segments"}
    assert all(t.pool == WRITER_POOL for t in (identity, dbt, segments))
    assert dag.doc_md and "dbt" in dag.doc_md


def test_in_process_runs_can_turn_retries_off(monkeypatch):
    from cdp.dag_defaults import default_args

    monkeypatch.setenv("CDP_TASK_RETRIES", "0")
    assert default_args(retries=2)["retries"] == 0
    monkeypatch.delenv("CDP_TASK_RETRIES")
    assert default_args(retries=2)["retries"] == 2
