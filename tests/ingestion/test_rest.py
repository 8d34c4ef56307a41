"""The REST connector against a real local HTTP server: paging, checkpoints, retries, config."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fake_crm_api import FakeCrmApi, Fault

from cdp.settings import Settings
from cdp.warehouse import connect
from ingestion import rest
from ingestion.rest import ConnectorError, RestSourceConfig, ingest_rest, load_rest_config

TOKEN = "s3cret"
ENV = {"ACME_TOKEN": TOKEN}


def _customer(n: int, day: int, **changes: object) -> dict:
    record = {
        "crm_customer_id": f"c-{n}",
        "email": f"person{n}@example.com",
        "first_name": f"Person{n}",
        "updated_at": f"2026-01-{day:02d}T10:00:00Z",
    }
    return {**record, **changes}


@pytest.fixture
def api() -> Iterator[FakeCrmApi]:
    """Five customers, two per page, behind a bearer token."""
    server = FakeCrmApi([_customer(n, n) for n in range(1, 6)], page_size=2, token=TOKEN)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _config(tmp_path: Path, api: FakeCrmApi, **changes: object) -> RestSourceConfig:
    """Write a connector YAML file for ``api`` (with ``changes``) and load it."""
    document = {
        "name": "acme_crm_customers",
        "source": "crm/customers",
        "url": f"{api.base_url}/customers",
        "pagination": {"type": "cursor", "cursor_param": "cursor", "next_field": "next_cursor"},
        "records_field": "data",
        "incremental": {"cursor_field": "updated_at", "param": "updated_since"},
        "headers": {"Authorization": "Bearer ${ACME_TOKEN}"},
        "timeout_seconds": 5,
        "max_retries": 5,
        **changes,
    }
    path = tmp_path / "acme_crm_customers.yml"
    path.write_text(yaml.safe_dump(document))
    return load_rest_config(path)


def _run(settings: Settings, config: RestSourceConfig, sleeps: list[float] | None = None):
    return ingest_rest(
        settings, config, sleep=(sleeps if sleeps is not None else []).append, env=ENV
    )


def _query(settings: Settings, sql: str) -> list[tuple]:
    with connect(settings, read_only=True) as con:
        return con.execute(sql).fetchall()


def _checkpoint(settings: Settings) -> str | None:
    rows = _query(settings, "select cursor_value from audit.connector_checkpoints")
    return rows[0][0] if rows else None


def _lenient(settings: Settings) -> Settings:
    return dataclasses.replace(settings, quarantine_max_share=1.0)


# --- loading ---------------------------------------------------------------------------------


def test_full_load_lands_every_record_one_batch_per_page(settings, api, tmp_path):
    results = _run(settings, _config(tmp_path, api))

    assert [(r.rows_read, r.rows_loaded, r.skipped) for r in results] == [
        (2, 2, False),
        (2, 2, False),
        (1, 1, False),
    ]
    assert _query(settings, "select count(*) from raw.crm_customers") == [(5,)]
    batches = _query(
        settings,
        "select source_file, rows_read, rows_loaded, rows_duplicate, rows_quarantined "
        "from audit.load_batches order by source_file",
    )
    assert batches == [
        ("api:acme_crm_customers/full/page=1", 2, 2, 0, 0),
        ("api:acme_crm_customers/full/page=2", 2, 2, 0, 0),
        ("api:acme_crm_customers/full/page=3", 1, 1, 0, 0),
    ]
    assert api.query_values("updated_since") == [None, None, None]
    assert api.query_values("cursor") == [None, "c2", "c4"]
    assert {r.headers["Authorization"] for r in api.requests} == {f"Bearer {TOKEN}"}
    assert _checkpoint(settings) == "2026-01-05T10:00:00Z"


def test_second_run_without_changes_adds_nothing(settings, api, tmp_path):
    config = _config(tmp_path, api)
    _run(settings, config)
    api.requests.clear()

    second = _run(settings, config)
    third = _run(settings, config)

    assert api.query_values("updated_since") == ["2026-01-05T10:00:00Z"] * 2
    # the API's filter is inclusive: the newest record comes back, as a duplicate, then not at all
    assert [(r.rows_loaded, r.rows_duplicate, r.skipped) for r in second] == [(0, 1, False)]
    assert [r.skipped for r in third] == [True]
    assert _query(settings, "select count(*) from raw.crm_customers") == [(5,)]
    assert _checkpoint(settings) == "2026-01-05T10:00:00Z"


def test_an_updated_customer_loads_as_a_new_version(settings, api, tmp_path):
    config = _config(tmp_path, api)
    _run(settings, config)
    api.upsert(_customer(2, 20, email="new2@example.com"))

    results = _run(settings, config)

    assert sum(r.rows_loaded for r in results) == 1
    assert api.requests[-1].query["updated_since"] == "2026-01-05T10:00:00Z"
    versions = _query(
        settings,
        "select email, updated_at::varchar from raw.crm_customers "
        "where crm_customer_id = 'c-2' order by updated_at",
    )
    assert versions == [
        ("person2@example.com", "2026-01-02 10:00:00"),
        ("new2@example.com", "2026-01-20 10:00:00"),
    ]
    assert _checkpoint(settings) == "2026-01-20T10:00:00Z"


def test_a_bad_record_is_quarantined_with_the_reason(settings, api, tmp_path):
    api.upsert({"email": "nobody@example.com", "updated_at": "2026-01-06T10:00:00Z"})

    results = _run(_lenient(settings), _config(tmp_path, api))

    assert sum(r.rows_quarantined for r in results) == 1
    assert all(
        r.rows_read == r.rows_loaded + r.rows_duplicate + r.rows_quarantined for r in results
    )
    rows = _query(settings, "select _source_file, _line_no, field, reason from quarantine.rows")
    assert rows == [
        (
            "api:acme_crm_customers/full/page=3",
            2,
            "crm_customer_id",
            "missing required field 'crm_customer_id'",
        )
    ]
    assert _query(settings, "select count(*) from raw.crm_customers") == [(5,)]
    assert _checkpoint(settings) == "2026-01-06T10:00:00Z"  # quarantined records count as seen


def test_page_number_pagination(settings, api, tmp_path):
    config = _config(
        tmp_path,
        api,
        url=f"{api.base_url}/customers/pages",
        records_field="results",
        pagination={"type": "page", "page_param": "page", "size_param": "per_page", "size": 2},
    )

    results = _run(settings, config)

    assert [r.rows_loaded for r in results] == [2, 2, 1]
    assert api.query_values("page") == ["1", "2", "3"]  # the short third page is the last
    assert set(api.query_values("per_page")) == {"2"}
    api.upsert(_customer(6, 6))
    api.requests.clear()
    _run(settings, config)
    # c-5 (inclusive filter) and c-6 fill page 1, so an empty page 2 ends the run
    assert api.query_values("updated_since") == ["2026-01-05T10:00:00Z"] * 2
    assert _query(settings, "select count(*) from raw.crm_customers") == [(6,)]


def test_page_pagination_stops_at_an_empty_page(settings, api, tmp_path):
    api.upsert(_customer(6, 6))
    config = _config(
        tmp_path,
        api,
        url=f"{api.base_url}/customers/pages",
        records_field="results",
        pagination={"type": "page", "page_param": "page", "size_param": "per_page", "size": 3},
    )

    results = _run(settings, config)

    assert [r.rows_loaded for r in results] == [3, 3]  # the empty page 3 is not a batch
    assert api.query_values("page") == ["1", "2", "3"]


# --- checkpoints and crashes -----------------------------------------------------------------


def test_a_failed_run_resumes_after_the_last_committed_page(settings, api, tmp_path):
    config = _config(tmp_path, api)
    api.fail_on_page[3] = Fault(400, body='{"error": "boom"}')

    with pytest.raises(ConnectorError, match="400"):
        _run(settings, config)
    assert _query(settings, "select count(*) from raw.crm_customers") == [(4,)]
    assert _checkpoint(settings) == "2026-01-04T10:00:00Z"

    api.requests.clear()
    results = _run(settings, config)

    assert api.query_values("updated_since") == ["2026-01-04T10:00:00Z"]
    assert [(r.rows_loaded, r.rows_duplicate) for r in results] == [(1, 1)]
    assert _query(
        settings, "select count(*), count(distinct crm_customer_id) from raw.crm_customers"
    ) == [(5, 5)]


def test_rows_and_checkpoint_commit_together(settings, api, tmp_path, monkeypatch):
    config = _config(tmp_path, api)
    real_save = rest.save_checkpoint
    calls = []

    def crash_on_second_page(con, connector, value):
        calls.append(value)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed between the page's rows and its checkpoint")
        real_save(con, connector, value)

    monkeypatch.setattr(rest, "save_checkpoint", crash_on_second_page)
    with pytest.raises(KeyboardInterrupt):
        _run(settings, config)
    assert _query(settings, "select count(*) from raw.crm_customers") == [(2,)]
    assert _query(settings, "select count(*) from audit.load_batches") == [(1,)]
    assert _checkpoint(settings) == "2026-01-02T10:00:00Z"

    monkeypatch.setattr(rest, "save_checkpoint", real_save)
    _run(settings, config)
    assert _query(settings, "select count(*) from raw.crm_customers") == [(5,)]
    assert _checkpoint(settings) == "2026-01-05T10:00:00Z"


def test_unordered_pages_load_fully_but_warn(settings, api, tmp_path, caplog):
    api.customers.reverse()
    api.ordered = False

    results = _run(settings, _config(tmp_path, api))

    assert sum(r.rows_loaded for r in results) == 5
    assert _checkpoint(settings) == "2026-01-05T10:00:00Z"
    assert "does not return records in ascending updated_at order" in caplog.text


# --- retries ---------------------------------------------------------------------------------


def test_429_500_and_dropped_connections_are_retried(settings, api, tmp_path):
    api.fail_next(429, times=2, retry_after="7")
    api.fail_next(500)
    api.fail_next(None)  # connection closed without a response
    sleeps: list[float] = []

    results = _run(settings, _config(tmp_path, api), sleeps)

    assert sum(r.rows_loaded for r in results) == 5
    assert len(api.requests) == 4 + 3
    assert sleeps[:2] == [7.0, 7.0]  # Retry-After honoured as given
    assert 4 <= sleeps[2] <= 8  # third retry: 2**2 s backoff plus up to 100 % jitter
    assert 8 <= sleeps[3] <= 16


def test_too_many_failures_name_the_url_and_last_status(settings, api, tmp_path):
    api.fail_next(503, times=3)
    sleeps: list[float] = []

    with pytest.raises(ConnectorError) as failure:
        _run(settings, _config(tmp_path, api, max_retries=2), sleeps)

    message = str(failure.value)
    assert f"{api.base_url}/customers" in message
    assert "after 3 attempts; last status 503" in message
    assert len(api.requests) == 3 and len(sleeps) == 2
    assert _query(settings, "select count(*) from raw.crm_customers") == [(0,)]


def test_other_4xx_fail_at_once_with_the_body(settings, api, tmp_path):
    config = _config(tmp_path, api, headers={"Authorization": "Bearer wrong"})
    sleeps: list[float] = []

    with pytest.raises(ConnectorError, match=r"status 401: .*invalid token"):
        _run(settings, config, sleeps)
    assert len(api.requests) == 1 and sleeps == []


def test_retry_after_accepts_an_http_date():
    assert rest.retry_after_seconds("3") == 3.0
    assert rest.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert rest.retry_after_seconds("soon") is None
    assert rest.retry_after_seconds(None) is None


# --- configuration ---------------------------------------------------------------------------


def test_the_documented_example_config_loads(tmp_path):
    path = tmp_path / "acme.yml"
    path.write_text(
        """
name: acme_crm_customers
source: crm/customers
url: http://127.0.0.1:8000/customers
pagination: {type: cursor, cursor_param: cursor, next_field: next_cursor}
records_field: data
incremental: {cursor_field: updated_at, param: updated_since}
headers: {Authorization: "Bearer ${ACME_TOKEN}"}
timeout_seconds: 30
max_retries: 5
"""
    )
    config = load_rest_config(path)
    assert config.pagination.type == "cursor"
    assert config.incremental.cursor_field == "updated_at"
    assert config.headers == {"Authorization": "Bearer ${ACME_TOKEN}"}  # expanded at run time
    assert config.path == path


def test_a_missing_environment_variable_is_a_clear_error(settings, api, tmp_path):
    config = _config(tmp_path, api)
    with pytest.raises(ConnectorError, match=r"acme_crm_customers\.yml: 'headers.Authorization'"):
        ingest_rest(settings, config, sleep=lambda _: None, env={})
    assert api.requests == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"colour": "blue"}, "unknown key 'colour'"),
        ({"source": "crm/leads"}, "unknown contract 'source: crm/leads'"),
        ({"pagination": {"type": "offset"}}, "'pagination.type' must be 'cursor' or 'page'"),
        ({"pagination": {"type": "cursor", "page": 1}}, "unknown key 'pagination.page'"),
        ({"pagination": {"type": "page", "page_param": "p"}}, "needs 'pagination.size'"),
        (
            {"incremental": {"cursor_field": "updated_at"}},
            "missing required key 'incremental.param'",
        ),
        ({"url": "ftp://example.com/x"}, "'url' must start with http"),
        ({"url": None}, "'url' must be a non-empty string"),
        ({"name": "Acme CRM"}, "'name' must be lowercase"),
        ({"max_retries": -1}, "'max_retries' must be an integer >= 0"),
        ({"timeout_seconds": "soon"}, "'timeout_seconds' must be a number"),
        ({"headers": ["Authorization"]}, "'headers' must be a mapping"),
    ],
)
def test_config_errors_name_the_file_and_key(tmp_path, api, changes, message):
    with pytest.raises(ConnectorError, match="acme_crm_customers.yml") as failure:
        _config(tmp_path, api, **changes)
    assert message in str(failure.value)


def test_config_file_problems(tmp_path):
    with pytest.raises(ConnectorError, match="missing.yml: cannot read"):
        load_rest_config(tmp_path / "missing.yml")
    (tmp_path / "bad.yml").write_text("name: [unclosed\n")
    with pytest.raises(ConnectorError, match="bad.yml: not valid YAML"):
        load_rest_config(tmp_path / "bad.yml")
    (tmp_path / "list.yml").write_text("- name: x\n")
    with pytest.raises(ConnectorError, match="list.yml: expected a mapping"):
        load_rest_config(tmp_path / "list.yml")
    (tmp_path / "short.yml").write_text("name: x\nsource: crm/customers\n")
    with pytest.raises(ConnectorError, match="short.yml: missing required key 'url'"):
        load_rest_config(tmp_path / "short.yml")


def test_a_duplicated_key_in_a_connector_file_is_an_error(tmp_path):
    path = tmp_path / "dup.yml"
    path.write_text("name: a\nsource: crm/customers\nname: b\nurl: http://127.0.0.1:1/x\n")
    with pytest.raises(ConnectorError, match=r"dup\.yml.*duplicate key 'name'"):
        load_rest_config(path)
