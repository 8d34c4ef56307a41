"""The DAG folder parses cleanly and wires the pipeline the way the design says."""

from __future__ import annotations

import os
import warnings

import pytest

from cdp.assets import PROFILES_ASSET, RAW_LANDED, WRITER_POOL, table_asset
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
    assert set(dagbag.dags) == {
        "cdp_ingest",
        "cdp_build",
        "cdp_segments_microbatch",
        "cdp_retrain_weekly",
        "cdp_score_daily",
        "cdp_publish_scores",
    }


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
    identity, announce = dag.get_task("resolve_identity"), dag.get_task("profiles_built")
    dbt_tasks = {t.task_id for t in dag.tasks if t.task_id.startswith("dbt_build.")}
    assert identity.downstream_task_ids and identity.downstream_task_ids <= dbt_tasks
    assert dag.get_task("dbt_build.dbt_project_test").downstream_task_ids == {"profiles_built"}
    assert announce.downstream_task_ids == {"refresh_segments"}
    assert announce.outlets == [PROFILES_ASSET]
    assert all(t.pool == WRITER_POOL for t in dag.tasks)
    assert dag.doc_md and "dbt" in dag.doc_md


def test_build_gates_raw_data_before_identity_and_marts_before_publish(dagbag):
    dag = dagbag.dags["cdp_build"]
    assert dag.get_task("check_raw_quality").downstream_task_ids == {"resolve_identity"}
    assert dag.get_task("refresh_segments").downstream_task_ids == {"check_mart_quality"}
    assert dag.get_task("check_mart_quality").downstream_task_ids == {"publish_snapshot"}
    assert dag.get_task("publish_snapshot").downstream_task_ids == set()


def test_retrain_chains_features_train_evaluate_promote_score_drift_publish(dagbag):
    dag = dagbag.dags["cdp_retrain_weekly"]
    chain = ["build_features", "train", "evaluate", "promote_or_keep", "score", "check_drift",
             "publish"]  # fmt: skip
    for upstream, downstream in zip(chain, chain[1:], strict=False):
        assert downstream in dag.get_task(upstream).downstream_task_ids
    assert dag.get_task("assign_clusters").upstream_task_ids == {"build_features"}
    assert dag.get_task("publish").upstream_task_ids == {"check_drift", "assign_clusters"}
    assert all(t.pool == WRITER_POOL for t in dag.tasks if t.task_id != "train")
    assert {o.name for o in dag.get_task("publish").outlets} == {
        "ml.scores", "ml.cluster_assignments"
    }  # fmt: skip
    daily = dagbag.dags["cdp_score_daily"]
    assert [t.task_id for t in daily.topological_sort()] == chain[:1] + chain[4:]
    assert all(t.pool == WRITER_POOL for t in daily.tasks)


def test_every_scoring_run_is_followed_by_model_segments_a_gate_and_a_publish(dagbag):
    dag = dagbag.dags["cdp_publish_scores"]
    assert list(dag.timetable.asset_condition.objects) == [table_asset("ml.scores")]
    assert [t.task_id for t in dag.topological_sort()] == [
        "refresh_model_segments", "check_mart_quality", "publish_snapshot"
    ]  # fmt: skip
    assert all(t.pool == WRITER_POOL for t in dag.tasks)


def test_in_process_runs_can_turn_retries_off(monkeypatch):
    from cdp.dag_defaults import default_args

    monkeypatch.setenv("CDP_TASK_RETRIES", "0")
    assert default_args(retries=2)["retries"] == 0
    monkeypatch.delenv("CDP_TASK_RETRIES")
    assert default_args(retries=2)["retries"] == 2
