"""The whole platform on a small generated data set: landing → raw → identity → dbt → segments.

Runs both DAGs in-process with ``dag.test()`` and checks the results against the generator's
ground truth and the source files themselves.
"""

from __future__ import annotations

import csv
import json
import os
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pytest

from cdp.generate import GenerateConfig, generate
from cdp.runner import run_dags
from cdp.settings import load_settings
from cdp.warehouse import connect

AS_OF = datetime(2026, 11, 1)


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    home = tmp_path_factory.mktemp("e2e")
    settings = load_settings({"CDP_HOME": str(home), "AIRFLOW_HOME": os.environ["AIRFLOW_HOME"]})
    truth_dir = home / "truth"
    summary = generate(
        GenerateConfig(
            landing_dir=settings.landing_dir,
            truth_dir=truth_dir,
            customers=400,
            events=8000,
            seed=7,
            end_date=date(2026, 10, 31),
            days=60,
        )
    )
    reports = run_dags(settings, as_of=AS_OF)
    return settings, summary, truth_dir, reports


def _truth(truth_dir: Path, name: str) -> list[dict]:
    with open(truth_dir / name, newline="") as handle:
        return list(csv.DictReader(handle))


def _query(settings, sql: str) -> list[tuple]:
    with connect(settings, read_only=True) as con:
        return con.execute(sql).fetchall()


def test_every_pipeline_dag_succeeds_with_every_task(platform):
    _, _, _, reports = platform
    assert [r.dag_id for r in reports] == [
        "cdp_ingest", "cdp_build", "cdp_retrain_weekly", "cdp_publish_scores"
    ]  # fmt: skip
    for report in reports:
        assert report.state == "success"
        assert set(report.task_states.values()) <= {"success", "skipped"}
        assert set(report.task_states.values()) == {"success"}, report.task_states


def _pairs(groups: dict[str, list[str]]) -> set[tuple[str, str]]:
    return {(a, b) for members in groups.values() for a in members for b in members if a < b}


def test_profiles_match_the_persons_of_the_ground_truth(platform):
    settings, summary, truth_dir, _ = platform
    identities = _truth(truth_dir, "identities.csv")
    assert len({row["person_id"] for row in identities}) == summary["persons"]
    by_person: dict[str, list[str]] = {}
    for row in identities:
        by_person.setdefault(row["person_id"], []).append(
            f"{row['id_type']}:{row['source_record_id']}"
        )
    by_customer: dict[str, list[str]] = {}
    for id_type, record_id, customer_id in _query(
        settings, "select id_type, source_record_id, customer_id from identity.clusters"
    ):
        by_customer.setdefault(customer_id, []).append(f"{id_type}:{record_id}")
    # Duplicate CRM records (typos, moves, missing email) are linked by email, phone or the
    # probabilistic model; "same customer" pairs are judged against the generator's truth.
    true_pairs, found_pairs = _pairs(by_person), _pairs(by_customer)
    precision = len(true_pairs & found_pairs) / len(found_pairs)
    recall = len(true_pairs & found_pairs) / len(true_pairs)
    assert precision >= 0.99 and recall >= 0.97, (precision, recall)

    [(profiles, distinct_ids)] = _query(
        settings, "select count(*), count(distinct customer_id) from marts.customer_profiles"
    )
    assert profiles == distinct_ids == len(by_customer)


def test_every_source_identity_belongs_to_a_profile(platform):
    settings, _, truth_dir, _ = platform
    truth = _truth(truth_dir, "identities.csv")
    truth_keys = {(r["id_type"], r["source_record_id"]) for r in truth}
    rows = _query(
        settings,
        """
        select c.id_type, c.source_record_id, p.customer_id
        from identity.clusters as c
        left join marts.customer_profiles as p using (customer_id)
        """,
    )
    assert {(t, r) for t, r, _ in rows} == truth_keys
    assert all(customer_id is not None for _, _, customer_id in rows)


def _valid_order_amounts(landing: Path) -> list[Decimal]:
    amounts = []
    for path in sorted((landing / "crm" / "orders").glob("*.csv")):
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                try:
                    amount = Decimal(row["total_amount"])
                    datetime.fromisoformat(row["ordered_at"])
                except (InvalidOperation, ValueError):
                    continue
                if row["order_id"] and row["crm_customer_id"]:
                    amounts.append(amount)
    return amounts


def test_order_totals_in_the_marts_equal_the_source_files(platform):
    settings, summary, _, _ = platform
    source_total = sum(_valid_order_amounts(settings.landing_dir))
    assert source_total == Decimal(summary["valid_order_total"]) > 0
    [(fct_total, profile_total)] = _query(
        settings,
        "select (select sum(total_amount) from marts.fct_orders),"
        " (select sum(total_order_amount) from marts.customer_profiles)",
    )
    assert Decimal(str(fct_total)) == source_total
    assert Decimal(str(profile_total)) == source_total


def test_every_malformed_line_is_quarantined_in_its_file(platform):
    settings, summary, _, _ = platform
    quarantined = dict(
        _query(settings, "select _source_file, count(*) from quarantine.rows group by 1")
    )
    expected = {path: n for path, n in summary["malformed"].items() if n}
    assert quarantined == expected
    [(read, loaded, dupes, bad)] = _query(
        settings,
        "select sum(rows_read), sum(rows_loaded), sum(rows_duplicate), sum(rows_quarantined)"
        " from audit.load_batches",
    )
    assert read == loaded + dupes + bad
    assert dupes >= summary["duplicate_event_lines"]


def test_dbt_tests_ran_inside_the_dag_and_passed(platform):
    from cdp.dbt_tasks import run_results_path

    settings, _, _, _ = platform
    test_task = run_results_path(settings.dbt_target_dir, "dbt_build.dbt_project_test")
    results = json.loads(test_task.read_text())["results"]
    tests = [r for r in results if r["unique_id"].startswith(("test.", "unit_test."))]
    assert len(tests) >= 10
    assert {r["status"] for r in tests} == {"pass"}
    assert any("relationships" in r["unique_id"] for r in tests)


def test_segments_are_evaluated(platform):
    settings, _, _, _ = platform
    sizes = _query(settings, "select segment, members from segments.sizes order by segment")
    assert len(sizes) >= 3
    assert any(members > 0 for _, members in sizes)


def test_scores_reach_model_segments_and_the_published_snapshot(platform):
    settings, _, _, _ = platform
    from cdp.publish import snapshot_path

    [(customers,)] = _query(settings, "select count(*) from marts.customer_profiles")
    [(scored, top_decile)] = _query(
        settings,
        "select count(*), count(*) filter (where decile >= 9) from ml.current_scores "
        "where model_name = 'purchase_propensity'",
    )
    assert scored == customers
    # likely_buyers (propensity_decile >= 9) was refreshed by cdp_publish_scores after scoring;
    # its consent purpose may exclude some of the top deciles, never add anyone.
    [(likely_buyers,)] = _query(
        settings, "select count(*) from segments.membership where segment = 'likely_buyers'"
    )
    assert 0 < likely_buyers <= top_decile
    import duckdb

    con = duckdb.connect(str(snapshot_path(settings)), read_only=True)
    try:
        assert con.execute("select count(*) from ml.current_scores").fetchone() == (scored,)
    finally:
        con.close()


def test_a_second_run_on_the_same_landing_changes_nothing(platform, monkeypatch):
    settings, _, _, _ = platform
    monkeypatch.setenv("CDP_DBT_TASKS", "single")  # same SQL, ~45 s faster (bench/RESULTS.md)
    before = _query(settings, "select customer_id from marts.customer_profiles order by 1")
    raw_before = _query(settings, "select count(*) from raw.analytics_events")
    [ingest, build] = run_dags(settings, as_of=AS_OF, only=["ingest", "build"])
    assert set(ingest.task_states.values()) == {"skipped"}  # nothing new: no Asset event
    assert build.state == "success"
    assert _query(settings, "select customer_id from marts.customer_profiles order by 1") == before
    assert _query(settings, "select count(*) from raw.analytics_events") == raw_before


def test_late_arriving_events_flow_into_the_marts(platform, monkeypatch):
    settings, _, _, _ = platform
    monkeypatch.setenv("CDP_DBT_TASKS", "single")  # same SQL, ~45 s faster (bench/RESULTS.md)
    [(customer_id, anonymous_id, events_30d)] = _query(
        settings,
        """
        select p.customer_id, c.source_record_id, p.events_30d
        from identity.clusters as c join marts.customer_profiles as p using (customer_id)
        where c.id_type = 'anonymous_id' and p.is_known
        order by c.source_record_id limit 1
        """,
    )
    late = [
        {
            "messageId": f"late-{n}",
            "type": "track",
            "event": "product_viewed",
            "anonymousId": anonymous_id,
            "timestamp": f"2026-10-2{n}T12:00:00Z",  # weeks before the file arrives
            "properties": {"category": "books"},
        }
        for n in range(3)
    ]
    path = settings.landing_dir / "analytics" / "events" / "late-delivery.jsonl"
    path.write_text("\n".join(json.dumps(event) for event in late) + "\n")

    run_dags(settings, as_of=AS_OF, only=["ingest", "build"])

    rows = _query(
        settings,
        "select message_id, customer_id from marts.fct_events where message_id like 'late-%'",
    )
    assert sorted(rows) == [(f"late-{n}", customer_id) for n in range(3)]
    [(after,)] = _query(
        settings,
        f"select events_30d from marts.customer_profiles where customer_id = '{customer_id}'",
    )
    assert after == events_30d + 3


def test_segments_can_be_inspected_from_the_command_line(platform, monkeypatch, capsys):
    from cdp.cli import main

    settings, _, _, _ = platform
    monkeypatch.setenv("CDP_HOME", str(settings.home))
    [(vip_size,)] = _query(settings, "select count(*) from segments.membership where segment='vip'")

    assert main(["segments", "list"]) == 0
    listed = {
        line.split()[0]: int(line.split()[1]) for line in capsys.readouterr().out.splitlines()
    }
    assert listed["vip"] == vip_size and len(listed) >= 3
    assert main(["segments", "members", "vip", "--limit", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == min(2, vip_size)
    assert main(["segments", "show", "vip"]) == 0
    assert 'p."lifetime_value" >= $p0' in capsys.readouterr().out
    assert main(["segments", "show", "vipp"]) == 1
    assert "unknown segment 'vipp'; did you mean: vip?" in capsys.readouterr().err


def test_the_build_publishes_a_pseudonymized_snapshot_after_both_gates(platform):
    settings, _, _, _ = platform
    from cdp.publish import snapshot_path

    [(profiles,)] = _query(settings, "select count(*) from marts.customer_profiles")
    [(an_email,)] = _query(settings, "select min(email) from marts.customer_profiles")
    gates = _query(settings, "select distinct gate from audit.quality_results where success")
    assert sorted(gates) == [("marts",), ("raw",)]
    assert (settings.quality_dir / "gx/uncommitted/data_docs/local_site/index.html").exists()
    snapshot = snapshot_path(settings)
    assert snapshot.exists() and an_email.encode() not in snapshot.read_bytes()
    import duckdb

    con = duckdb.connect(str(snapshot), read_only=True)
    try:
        assert con.execute("select count(*) from marts.customer_profiles").fetchone() == (profiles,)
        assert con.execute("select count(*) from segments.membership").fetchone()[0] > 0
    finally:
        con.close()


def test_a_failed_quality_gate_fails_the_run_and_keeps_the_previous_snapshot(platform):
    """Runs last: the bad row stays unchecked, so every later build would stop at the gate."""
    settings, _, _, _ = platform
    from cdp.publish import snapshot_path
    from cdp.runner import PipelineFailed

    published = snapshot_path(settings).read_bytes()
    (settings.landing_dir / "analytics" / "events" / "from-the-future.jsonl").write_text(
        json.dumps({"messageId": "future-1", "type": "page", "anonymousId": "a-time-traveller",
                    "timestamp": "2099-01-01T00:00:00Z"}) + "\n"
    )  # fmt: skip
    with pytest.raises(PipelineFailed, match="check_raw_quality") as failure:
        run_dags(settings, as_of=AS_OF, only=["ingest", "build"])
    assert "publish_snapshot" in str(failure.value)  # never ran
    assert snapshot_path(settings).read_bytes() == published
    [(detail,)] = _query(
        settings,
        "select detail from audit.quality_results where not success and column_name = 'timestamp'",
    )
    assert "from-the-future.jsonl" in detail
