"""The micro-batch: an event file lands → ingest → identity → fresh segment membership."""

from __future__ import annotations

from datetime import UTC, timedelta

import duckdb
from segment_data import MICRO_T as T
from segment_data import burst, land_events

from cdp import airflow_env
from cdp.assets import WRITER_POOL
from cdp.runner import load_dags
from cdp.segments.microbatch import run_microbatch
from cdp.settings import Settings
from cdp.warehouse import connect


def members(con: duckdb.DuckDBPyConnection, segment: str) -> set[str]:
    rows = con.execute(
        """
        select c.source_record_id
        from segments.membership m
        join identity.clusters c on c.customer_id = m.customer_id and c.id_type = 'anonymous_id'
        where m.segment = ?
        """,
        [segment],
    ).fetchall()
    return {anonymous_id for (anonymous_id,) in rows}


def test_microbatch_dag_makes_new_visitors_members_within_one_run(settings: Settings) -> None:
    land_events(
        settings,
        "first",
        [*burst("anon-fast"), ("anon-cart", "product_added_to_cart", T - timedelta(minutes=20))],
    )
    airflow_env.configure(settings)
    airflow_env.migrate_metadata_db()
    dag = load_dags(settings)["cdp_segments_microbatch"]

    run = dag.test(logical_date=T.replace(tzinfo=UTC))
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "success", states
    with connect(settings, read_only=True) as con:
        assert members(con, "rapid_browsers") == {"anon-fast"}
        assert members(con, "cart_abandoners") == {"anon-cart"}
        evaluated = {
            s for (s,) in con.execute("select distinct segment from segments.sizes").fetchall()
        }
        history = con.execute("select count(*) from segments.membership_history").fetchone()
    assert evaluated == {
        "rapid_browsers",
        "cart_abandoners",
        "browse_abandoners",
        "high_purchase_intent",
    }

    # nothing new lands: identity is skipped, segments re-evaluated, no membership change
    later = dag.test(logical_date=(T + timedelta(minutes=5)).replace(tzinfo=UTC))
    states = {ti.task_id: str(ti.state) for ti in later.get_task_instances()}
    assert states["resolve_identity"] == "skipped"
    assert states["refresh_dynamic_segments"] == "success"
    with connect(settings, read_only=True) as con:
        assert con.execute("select count(*) from segments.membership_history").fetchone() == history


def test_run_microbatch_in_process(settings: Settings) -> None:
    land_events(settings, "first", burst("anon-1"))
    first = run_microbatch(settings, "mb-1", T)
    assert (first.ingest.files, first.ingest.rows_loaded) == (1, 4)
    assert first.segments["rapid_browsers"] == 1

    land_events(settings, "second", burst("anon-2"))
    second = run_microbatch(settings, "mb-2", T + timedelta(minutes=1))
    assert second.identity_records is not None and second.segments["rapid_browsers"] == 2
    # a 10-minute window holding a burst ends by T-3 at the latest: 30 minutes later it is out
    assert (
        run_microbatch(settings, "mb-3", T + timedelta(minutes=27)).segments["rapid_browsers"] == 2
    )
    third = run_microbatch(settings, "mb-4", T + timedelta(minutes=28))
    assert third.identity_records is None and third.segments["rapid_browsers"] == 0
    with connect(settings, read_only=True) as con:
        assert members(con, "rapid_browsers") == set()
        exits = con.execute(
            "select count(*) from segments.membership_history where exited_run_id = 'mb-4'"
        ).fetchone()
    assert exits == (2,)
    assert set(first.seconds) == {"ingest", "identity", "segments"}


def test_microbatch_dag_chains_its_writers_in_the_writer_pool(settings: Settings) -> None:
    airflow_env.configure(settings)
    dag = load_dags(settings)["cdp_segments_microbatch"]
    assert dag.get_task("ingest_new_events").downstream_task_ids == {"resolve_identity"}
    assert dag.get_task("resolve_identity").downstream_task_ids == {"refresh_dynamic_segments"}
    assert dag.get_task("refresh_dynamic_segments").trigger_rule == "none_failed"
    assert all(task.pool == WRITER_POOL for task in dag.tasks)
    assert dag.max_active_runs == 1
