"""A REST connector file becomes a task of the ingest DAG, and that task loads the API."""

from __future__ import annotations

from datetime import datetime

import yaml
from fake_crm_api import FakeCrmApi

from cdp.runner import run_dags
from cdp.warehouse import connect


def test_connector_file_runs_as_its_own_ingest_task(settings):
    customers = [
        {"crm_customer_id": f"c-{n}", "email": f"p{n}@example.com",
         "updated_at": f"2026-01-0{n}T10:00:00Z"}
        for n in range(1, 6)
    ]  # fmt: skip
    api = FakeCrmApi(customers, page_size=2, token=None).start()
    try:
        settings.connectors_dir.mkdir(parents=True)
        connector = {
            "name": "acme_customers",
            "source": "crm/customers",
            "url": f"{api.base_url}/customers",
            "pagination": {"type": "cursor", "cursor_param": "cursor", "next_field": "next_cursor"},
            "records_field": "data",
            "incremental": {"cursor_field": "updated_at", "param": "updated_since"},
        }
        (settings.connectors_dir / "acme_customers.yml").write_text(yaml.safe_dump(connector))

        [ingest] = run_dags(settings, as_of=datetime(2026, 2, 1), only=["ingest"])
    finally:
        api.stop()

    assert ingest.task_states["pull_acme_customers"] == "success"
    assert ingest.task_states["announce_new_raw_data"] == "success"
    with connect(settings, read_only=True) as con:
        loaded = con.execute("select crm_customer_id from raw.crm_customers order by 1").fetchall()
        pages = con.execute(
            "select count(*) from audit.load_batches where source_file like 'api:acme_customers/%'"
        ).fetchone()
    assert loaded == [(f"c-{n}",) for n in range(1, 6)]
    assert pages == (3,)
