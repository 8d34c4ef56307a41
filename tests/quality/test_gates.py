"""Quality gates run real Great Expectations validations on a real DuckDB warehouse."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from cdp.publish import publish_snapshot, snapshot_path
from cdp.quality.expectations import Suite
from cdp.quality.findings import QualityGateFailed
from cdp.quality.gate import run_mart_gate, run_raw_gate
from cdp.quality.validate import gx_context, run_suite
from cdp.settings import Settings, load_settings
from cdp.warehouse import connect

AS_OF = datetime(2024, 6, 30)


def _event(message_id: str, timestamp: str, line: int) -> tuple:
    return (message_id, "track", "product_viewed", "anon-1", None, timestamp, line)


def _load_events(settings: Settings, events: list[tuple], batch: str) -> None:
    with connect(settings) as con:
        con.executemany(
            """
            insert into raw.analytics_events
                (message_id, type, event, anonymous_id, user_id, "timestamp", _line_no,
                 _batch_id, _source, _source_file, _loaded_at, _row_hash)
            values (?, ?, ?, ?, ?, ?, ?, ?, 'analytics/events', ?, now(), 'h')
            """,
            [(*event, batch, f"{batch}.jsonl") for event in events],
        )


def _build_marts(settings: Settings, profiles: list[tuple]) -> None:
    with connect(settings) as con:
        con.execute("create schema if not exists marts")
        con.execute(
            "create or replace table marts.customer_profiles (customer_id varchar,"
            " lifetime_value decimal(18,2), total_order_amount decimal(18,2), monetary double)"
        )
        con.executemany("insert into marts.customer_profiles values (?, ?, ?, ?)", profiles)
        con.execute(
            "create or replace table marts.fct_orders as "
            "select 'O1' as order_id, 'c1' as customer_id, 10.0 as total_amount,"
            " timestamp '2024-06-28 09:00' as ordered_at"
        )
        con.execute(
            "create or replace table marts.fct_events as "
            "select 'm1' as message_id, timestamp '2024-06-29 10:00' as occurred_at"
        )


@pytest.fixture
def gate_settings(tmp_path) -> Settings:
    settings = load_settings(
        {
            "CDP_HOME": str(tmp_path / "home"),
            "CDP_PSEUDONYMIZATION_KEY": "k",
            "CDP_PUBLISH_KEEP": "1",
        }  # noqa: E501
    )
    settings.ensure_dirs()
    return settings


def test_raw_gate_passes_stores_results_and_only_rechecks_new_rows(gate_settings):
    _load_events(
        gate_settings,
        [_event("m1", "2024-06-01 10:00", 1), _event("m2", "2024-06-02 10:00", 2)],
        "b1",
    )  # noqa: E501
    summary = run_raw_gate(gate_settings, "run-1")
    assert summary["failed"] == 0 and summary["rows_checked"] == 2
    result = json.loads(Path(summary["results"]).read_text())
    assert {r["suite_name"] for r in result} >= {"raw__analytics_events", "raw__crm_customers"}
    assert (gate_settings.quality_dir / "gx/uncommitted/data_docs/local_site/index.html").exists()
    with connect(gate_settings) as con:
        [(rows, failed)] = con.execute(
            "select count(*), count(*) filter (not success) from audit.quality_results"
        ).fetchall()
    assert rows == summary["expectations"] and failed == 0
    assert run_raw_gate(gate_settings, "run-2")["rows_checked"] == 0  # watermark moved


def test_raw_gate_failure_names_expectations_and_offending_rows(gate_settings):
    _load_events(
        gate_settings,
        [
            _event("m1", "2024-06-01 10:00", 1),
            _event("m1", "2024-06-01 10:00", 2),  # duplicate event id
            _event("m3", "2099-01-01 00:00", 3),  # from the future
        ],
        "bad",
    )
    with connect(gate_settings) as con:
        con.execute("alter table raw.crm_orders add column surprise varchar")
    with pytest.raises(QualityGateFailed) as failure:
        run_raw_gate(gate_settings, "run-1")
    message = str(failure.value)
    assert (
        "expect_column_distinct_values_to_equal_set on raw.schema.column FAILED: 1 unexpected;"
        " sample rows: "
        '{"missing": [], "unexpected": ["raw.crm_orders.surprise:VARCHAR"]}'
    ) in message
    assert "expect_column_values_to_be_unique on raw.analytics_events.message_id FAILED" in message
    assert "expect_column_values_to_be_between on raw.analytics_events.timestamp FAILED" in message
    assert '"_source_file":"bad.jsonl","_line_no":3' in message
    assert "previous snapshot stays in place" in message
    with connect(gate_settings) as con:
        # the watermark did not move: the same rows are checked again next run
        assert con.execute("select count(*) from audit.quality_watermarks").fetchone() == (0,)


def test_an_erroring_expectation_counts_as_a_failure(gate_settings):
    import great_expectations as gx

    suite = Suite(
        "broken",
        "some.frame",
        ["id"],
        [gx.expectations.ExpectColumnValuesToNotBeNull(column="missing")],
    )  # noqa: E501
    outcome = run_suite(gx_context(gate_settings.quality_dir), suite, pd.DataFrame({"id": [1, 2]}))
    [finding] = outcome.findings
    assert (finding.success, finding.errored) == (False, True)
    assert 'The column "missing" in BatchData does not exist' in finding.describe()
    assert "ERRORED (counts as failed)" in finding.describe()


def test_mart_gate_failure_blocks_publish_and_the_old_snapshot_stays_readable(gate_settings):
    _build_marts(gate_settings, [("c1", 100, 120, 50.0), ("c2", 0, 0, None)])
    run_mart_gate(gate_settings, "run-1", AS_OF)
    first = publish_snapshot(gate_settings, "run-1", AS_OF)

    _build_marts(gate_settings, [("c1", 100, 120, 50.0), ("c1", -5, 0, None), ("c3", 0, 0, None)])
    with pytest.raises(QualityGateFailed) as failure:
        run_mart_gate(gate_settings, "run-2", AS_OF)
    message = str(failure.value)
    assert "expect_column_values_to_be_unique on marts.customer_profiles.customer_id" in message
    assert "expect_column_values_to_be_between on marts.customer_profiles.lifetime_value" in message
    assert '"customer_id":"c1","lifetime_value":-5.0' in message

    con = duckdb.connect(str(snapshot_path(gate_settings)), read_only=True)
    try:
        assert con.execute("select publish_id from snapshot.info").fetchone() == (first.publish_id,)
        assert con.execute("select count(*) from marts.customer_profiles").fetchone() == (2,)
    finally:
        con.close()


def test_mart_gate_checks_row_change_vs_last_publish_freshness_and_scores(gate_settings):
    _build_marts(gate_settings, [("c1", 1, 1, 1.0), ("c2", 1, 1, 1.0)])
    publish_snapshot(gate_settings, "run-1", AS_OF)
    _build_marts(gate_settings, [(f"c{i}", 1, 1, 1.0) for i in range(5)])  # +150 % > 50 %
    with connect(gate_settings) as con:
        con.execute("create schema ml")
        con.execute(
            "create table ml.current_scores as select 'c1' as customer_id,"
            " 'purchase_propensity' as model_name, 1.5 as score"
        )
    with pytest.raises(QualityGateFailed) as failure:
        run_mart_gate(gate_settings, "run-2", datetime(2024, 7, 30))  # a month after the last event
    message = str(failure.value)
    assert "marts.health.profiles_row_change FAILED" in message
    assert "marts.health.newest_activity_age_hours FAILED" in message
    assert "ml.current_scores.score FAILED" in message
    assert '"model_name":"purchase_propensity"' in message


def test_cdp_publish_command_gates_publishes_and_rolls_back(gate_settings, monkeypatch, capsys):
    from cdp.cli import main

    monkeypatch.setenv("CDP_HOME", str(gate_settings.home))
    monkeypatch.setenv("CDP_WAREHOUSE", str(gate_settings.warehouse_path))
    monkeypatch.setenv("CDP_PUBLISH", str(gate_settings.publish_dir))
    monkeypatch.setenv("CDP_PSEUDONYMIZATION_KEY", "k")
    assert main(["publish"]) == 2
    assert "no warehouse at" in capsys.readouterr().err

    _build_marts(gate_settings, [("c1", 1, 1, 1.0)])
    assert main(["publish", "--as-of", "2024-06-30"]) == 0
    out = capsys.readouterr().out
    assert "quality gate passed" in out and "published snapshot" in out
    assert "marts.customer_profiles" in out

    _build_marts(gate_settings, [("c1", -1, 1, 1.0)])
    assert main(["publish", "--as-of", "2024-06-30"]) == 1
    err = capsys.readouterr().err
    assert "quality gate 'marts' failed" in err and "lifetime_value" in err

    assert main(["publish", "--rollback"]) == 1
    assert "nothing to roll back to" in capsys.readouterr().err


def test_freshness_counts_orders_so_an_orders_only_platform_passes(gate_settings):
    _build_marts(gate_settings, [("c1", 1, 1, 1.0)])
    with connect(gate_settings) as con:
        con.execute("delete from marts.fct_events")  # CRM orders only, no web analytics
    summary = run_mart_gate(gate_settings, "run-orders", datetime(2024, 6, 30))  # 39 h after
    assert summary["failed"] == 0 and summary["expectations"] > 0
    with pytest.raises(QualityGateFailed, match="newest_activity_age_hours FAILED"):
        run_mart_gate(gate_settings, "run-late", datetime(2024, 7, 30))
