"""Loading landing files: exact quarantine reasons, idempotency, changed files, thresholds."""

from __future__ import annotations

import dataclasses
import gzip
import json
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xxhash

from cdp.settings import Settings
from cdp.warehouse import connect
from ingestion import QuarantineThresholdExceeded, ingest_entity

EVENTS = "analytics/events"
GOOD_EVENT = {
    "messageId": "m-1",
    "type": "track",
    "event": "product_viewed",
    "anonymousId": "anon-1",
    "timestamp": "2026-11-01T10:00:00Z",
    "properties": {"category": "books", "price": 12.5},
}


def _write_jsonl_gz(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def _event(**changes: object) -> str:
    event = {**GOOD_EVENT, **changes}
    return json.dumps({k: v for k, v in event.items() if v is not None})


def _lenient(settings: Settings) -> Settings:
    return dataclasses.replace(settings, quarantine_max_share=1.0)


def _count_statements(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one with every validation statement run from now on."""
    from ingestion import batch

    statements: list[int] = []
    validate = batch._Validator.__call__
    monkeypatch.setattr(
        batch._Validator, "__call__", lambda self, s: statements.append(1) or validate(self, s)
    )
    return statements


def _quarantine(settings: Settings) -> list[tuple]:
    with connect(settings, read_only=True) as con:
        return con.execute(
            "select _line_no, field, reason from quarantine.rows order by _source_file, _line_no"
        ).fetchall()


@pytest.mark.parametrize(
    ("line", "field", "reason"),
    [
        ('{"messageId": "m-9", "type": ', None, "bad JSON: Expecting value (column 30)"),
        ("[1, 2]", None, "expected a JSON object, found array"),
        (_event(messageId=None), "messageId", "missing required field 'messageId'"),
        (_event(messageId=""), "messageId", "missing required field 'messageId'"),
        (_event(messageId=" \t "), "messageId", "missing required field 'messageId'"),
        (_event(timestamp="\n"), "timestamp", "missing required field 'timestamp'"),
        (
            _event(timestamp="not-a-timestamp"),
            "timestamp",
            "field 'timestamp': 'not-a-timestamp' is not an ISO 8601 timestamp",
        ),
        (_event(anonymousId=None), None, "anonymousId or userId is required"),
        (
            _event(type="screen"),
            "type",
            "field 'type': 'screen' is not one of: track, identify, page",
        ),
        (_event(event=None), None, "track events need an event name"),
        (
            _event(properties=["a"]),
            "properties",
            "field 'properties': expected a JSON object, found array",
        ),
        (_event(userId={"id": 1}), "userId", "field 'userId': expected text, found object"),
    ],
)
def test_bad_event_is_quarantined_with_its_line_and_reason(settings, line, field, reason):
    path = settings.landing_dir / EVENTS / "events.jsonl.gz"
    _write_jsonl_gz(path, [_event(messageId="ok-1"), line, _event(messageId="ok-2")])

    [result] = ingest_entity(_lenient(settings), EVENTS)

    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (3, 2, 1)
    assert _quarantine(settings) == [(2, field, reason)]
    with connect(settings, read_only=True) as con:
        payload = con.execute("select payload from quarantine.rows").fetchone()[0]
    assert payload == line


def test_csv_problems_name_the_line_field_and_expectation(settings):
    path = settings.landing_dir / "crm" / "orders" / "orders.csv"
    path.parent.mkdir(parents=True)
    path.write_text(
        "order_id,crm_customer_id,ordered_at,total_amount,item_count,notes\n"
        "O1,C1,2026-10-01T10:00:00Z,10.50,1,ok\n"
        'O2,C1,2026-10-02T10:00:00Z,abc,1,"multi\nline note"\n'
        "O3,C1,yesterday,3.00,1,x\n"
        ",C1,2026-10-02T10:00:00Z,3.00,1,x\n"
        "O5,C1,2026-10-02T10:00:00Z,3.00,two,x\n"
        "O6,C1,2026-10-02\n"
        "O7,C2,2026-10-03 08:00:00+02:00,7.25,,\n"
    )

    [result] = ingest_entity(_lenient(settings), "crm/orders")

    assert _quarantine(settings) == [
        (3, "total_amount", "field 'total_amount': 'abc' is not a number"),
        (5, "ordered_at", "field 'ordered_at': 'yesterday' is not an ISO 8601 timestamp"),
        (6, "order_id", "missing required field 'order_id'"),
        (7, "item_count", "field 'item_count': 'two' is not an integer"),
        (8, None, "expected 6 CSV columns (header), found 3"),
    ]
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (7, 2, 5)
    with connect(settings, read_only=True) as con:
        rows = con.execute(
            "select order_id, ordered_at::varchar, total_amount::varchar, _extra->>'notes',"
            " _line_no from raw.crm_orders order by order_id"
        ).fetchall()
    assert rows == [
        ("O1", "2026-10-01 10:00:00", "10.50", "ok", 2),
        ("O7", "2026-10-03 06:00:00", "7.25", None, 9),
    ]


def test_reloading_the_same_file_adds_nothing(settings):
    _write_jsonl_gz(
        settings.landing_dir / EVENTS / "a.jsonl.gz",
        [_event(messageId="m-1"), _event(messageId="m-2"), _event(messageId="m-1")],
    )
    [first] = ingest_entity(settings, EVENTS)
    [again] = ingest_entity(settings, EVENTS)

    assert (first.rows_loaded, first.rows_duplicate, first.skipped) == (2, 1, False)
    assert again.skipped and again.batch_id == first.batch_id
    with connect(settings, read_only=True) as con:
        assert con.execute("select count(*) from raw.analytics_events").fetchone() == (2,)
        assert con.execute("select count(*) from audit.load_batches").fetchone() == (1,)


def test_replayed_events_are_deduplicated_on_message_id_across_files(settings):
    _write_jsonl_gz(settings.landing_dir / EVENTS / "a.jsonl.gz", [_event(messageId="m-1")])
    replay = _event(messageId="m-1", properties={"category": "resent"})  # same timestamp
    later = _event(messageId="m-2", timestamp="2026-11-09T00:00:00Z")
    _write_jsonl_gz(settings.landing_dir / EVENTS / "b.jsonl.gz", [later, replay])
    a, b = ingest_entity(settings, EVENTS)
    assert (a.rows_loaded, b.rows_loaded, b.rows_duplicate) == (1, 1, 1)
    with connect(settings, read_only=True) as con:
        kept = con.execute("select properties->>'category' from raw.analytics_events "
                           "where message_id = 'm-1'").fetchall()  # fmt: skip
    assert kept == [("books",)]  # the first arrival wins


def test_a_reused_message_id_outside_the_batch_time_range_is_not_a_replay(settings):
    """Earlier copies are looked for among events in the batch's timestamp range only."""
    _write_jsonl_gz(settings.landing_dir / EVENTS / "a.jsonl.gz", [_event(messageId="m-1")])
    reused = _event(messageId="m-1", timestamp="2026-12-24T00:00:00Z")
    _write_jsonl_gz(settings.landing_dir / EVENTS / "b.jsonl.gz", [reused])
    _, b = ingest_entity(settings, EVENTS)
    assert (b.rows_loaded, b.rows_duplicate) == (1, 0)


def test_a_changed_file_is_a_new_batch_that_loads_only_new_rows(settings):
    path = settings.landing_dir / "crm" / "customers" / "customers.csv"
    path.parent.mkdir(parents=True)
    path.write_text("crm_customer_id,email\nC1,a@x.com\nC2,b@x.com\n")
    [first] = ingest_entity(settings, "crm/customers")
    path.write_text("crm_customer_id,email\nC1,a@x.com\nC2,b-new@x.com\nC3,c@x.com\n")
    [second] = ingest_entity(settings, "crm/customers")

    assert second.batch_id != first.batch_id
    assert (second.rows_read, second.rows_loaded, second.rows_duplicate) == (3, 2, 1)
    with connect(settings, read_only=True) as con:
        assert con.execute(
            "select supersedes_batch_id from audit.load_batches where batch_id = ?",
            [second.batch_id],
        ).fetchone() == (first.batch_id,)
        history = con.execute(
            "select crm_customer_id, email from raw.crm_customers order by all"
        ).fetchall()
    assert history == [
        ("C1", "a@x.com"),
        ("C2", "b-new@x.com"),
        ("C2", "b@x.com"),
        ("C3", "c@x.com"),
    ]


def test_the_row_hash_is_xxh3_128_of_the_record_as_it_arrived(settings):
    """The algorithm is pinned: a stored hash must not change (CRM rows are de-duplicated on
    it), so one value is spelled out, not only recomputed."""
    pinned = (
        '{"messageId": "m-\u00e9", "type": "page", "anonymousId": "a",'
        ' "timestamp": "2026-11-01T10:00:00Z"}'
    )
    other = _event(messageId="m-2")
    path = settings.landing_dir / EVENTS / "a.jsonl.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(f"{pinned}\r\n{other}".encode()))  # CRLF, no last LF
    ingest_entity(settings, EVENTS)
    with connect(settings, read_only=True) as con:
        hashes = con.execute("select _row_hash from raw.analytics_events order by _line_no")
        assert hashes.fetchall() == [
            ("86262c3574513ea8d6298a67832457da",),
            (xxhash.xxh3_128_hexdigest(other.encode()),),
        ]


def test_rows_read_equals_loaded_plus_duplicates_plus_quarantined(settings):
    lines = [_event(messageId=f"m-{i % 7}") for i in range(20)] + ["oops", _event(type="x")]
    _write_jsonl_gz(settings.landing_dir / EVENTS / "a.jsonl.gz", lines)
    ingest_entity(_lenient(settings), EVENTS)
    with connect(settings, read_only=True) as con:
        batch = con.execute(
            "select rows_read, rows_loaded, rows_duplicate, rows_quarantined"
            " from audit.load_batches"
        ).fetchone()
        in_raw = con.execute("select count(*) from raw.analytics_events").fetchone()[0]
        in_quarantine = con.execute("select count(*) from quarantine.rows").fetchone()[0]
    assert batch == (22, 7, 13, 2)
    assert (in_raw, in_quarantine) == (7, 2)


def test_too_many_bad_rows_fail_the_load_and_write_nothing(settings):
    _write_jsonl_gz(
        settings.landing_dir / EVENTS / "a.jsonl.gz",
        [_event(messageId="m-1"), "bad", "worse", _event(messageId="m-2")],
    )
    limited = dataclasses.replace(settings, quarantine_max_share=0.25)
    with pytest.raises(QuarantineThresholdExceeded, match=r"a.jsonl.gz: 2 of 4 rows \(50.0%\)"):
        ingest_entity(limited, EVENTS)
    with connect(settings, read_only=True) as con:
        for table in ("raw.analytics_events", "quarantine.rows", "audit.load_batches"):
            assert con.execute(f"select count(*) from {table}").fetchone() == (0,), table


def test_parquet_files_load_with_types(settings):
    path = settings.landing_dir / "thirdparty" / "intent" / "intent.parquet"
    path.parent.mkdir(parents=True)
    table = pa.table(
        {
            "email": ["a@x.com", None],
            "topic": ["laptops", "espresso"],
            "intent_score": [71.5, 12.0],
            "observed_at": ["2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"],
        }
    )
    pq.write_table(table, path)
    [result] = ingest_entity(_lenient(settings), "thirdparty/intent")
    assert (result.rows_loaded, result.rows_quarantined) == (1, 1)
    assert _quarantine(settings) == [(2, None, "email or company_domain is required")]


def test_unknown_source_is_a_clear_error(settings):
    with pytest.raises(ValueError, match="unknown source 'crm/contacts'; known sources: "):
        ingest_entity(settings, "crm/contacts")


def test_segment_fields_are_promoted_to_columns_leniently(settings):
    event = _event(
        properties={"category": "books", "price": "n/a", "order_id": "O-9", "revenue": 30},
        context={"page": {"url": "https://shop.example/p/1"}},
        traits={"email": "Ann@Example.com"},
    )
    _write_jsonl_gz(settings.landing_dir / EVENTS / "a.jsonl.gz", [event])
    [result] = ingest_entity(settings, EVENTS)
    assert (result.rows_loaded, result.rows_quarantined) == (1, 0)  # a bad price rejects nothing
    with connect(settings, read_only=True) as con:
        row = con.execute(
            "select page_url, category, price, order_id, revenue, trait_email,"
            " properties->>'price' from raw.analytics_events"
        ).fetchone()
    assert row == ("https://shop.example/p/1", "books", None, "O-9", 30.0, "Ann@Example.com", "n/a")


@pytest.mark.parametrize(
    ("flush_rows", "read_whole"),
    [(None, False), (7, False), (7, True)],
    ids=["one-insert", "many-inserts", "many-inserts-read-whole"],
)
def test_a_file_loaded_in_many_chunks_equals_one_loaded_at_once(
    settings, tmp_path, monkeypatch, flush_rows, read_whole
):
    from cdp.settings import load_settings
    from ingestion import batch, readers

    lines = [_event(messageId=f"m-{n % 9}", anonymousId=f"a-{n}") for n in range(30)]
    lines[7] = _event(messageId="long", properties={"note": "x" * 2000})  # longer than a chunk
    lines[21] = "{not json"
    lines.insert(12, "")  # a blank line keeps the numbering honest
    path = settings.landing_dir / EVENTS / "a.jsonl.gz"
    _write_jsonl_gz(path, lines)
    whole = load_settings(
        {"CDP_HOME": str(tmp_path / "whole"), "CDP_LANDING": str(settings.landing_dir)}
    )
    whole.ensure_dirs()
    [reference] = ingest_entity(_lenient(whole), EVENTS)

    monkeypatch.setattr(readers, "CHUNK_BYTES", 300)
    if not read_whole:  # read as it is validated
        monkeypatch.setattr(batch, "SMALL_BATCH_BYTES", 0)
    if flush_rows:  # duplicates span inserts
        monkeypatch.setattr(batch, "FLUSH_ROWS", flush_rows)
    assert len(list(readers.read_chunks(path))) > 10
    statements = _count_statements(monkeypatch)
    [chunked] = ingest_entity(_lenient(settings), EVENTS)
    assert (len(statements) > 1) == bool(flush_rows)  # one statement per 7 rows or more

    counts = ("rows_read", "rows_loaded", "rows_duplicate", "rows_quarantined")
    assert [getattr(chunked, c) for c in counts] == [getattr(reference, c) for c in counts]
    assert (chunked.rows_read, chunked.rows_quarantined) == (30, 1)
    query = (
        "select message_id, anonymous_id, _line_no, _row_hash from raw.analytics_events"
        " order by _line_no"
    )
    with connect(settings, read_only=True) as con, connect(whole, read_only=True) as ref:
        assert con.execute(query).fetchall() == ref.execute(query).fetchall()
        assert _quarantine(settings) == [
            (23, None, "bad JSON: Expecting property name enclosed in double quotes (column 2)")
        ]


def test_small_files_validated_together_load_as_their_own_batches(settings, tmp_path, monkeypatch):
    """Small files in a row share one validation statement; each stays its own batch."""
    from cdp.settings import load_settings
    from ingestion import batch

    for n, name in enumerate("abcd"):
        lines = [_event(messageId=f"{name}-{k}") for k in range(3)] + ["{bad"]
        lines.append(_event(messageId="a-0"))  # a replay of the first file's event
        _write_jsonl_gz(settings.landing_dir / EVENTS / f"{name}.jsonl.gz", lines[n == 0 :])
    statements = _count_statements(monkeypatch)
    together = ingest_entity(_lenient(settings), EVENTS)
    assert len(statements) == 1

    separate_home = load_settings(
        {"CDP_HOME": str(tmp_path / "separate"), "CDP_LANDING": str(settings.landing_dir)}
    )
    separate_home.ensure_dirs()
    monkeypatch.setattr(batch, "SMALL_BATCH_BYTES", 0)
    separately = ingest_entity(_lenient(separate_home), EVENTS)
    assert len(statements) == 1 + 4

    assert [dataclasses.astuple(r)[2:] for r in together] == [
        dataclasses.astuple(r)[2:] for r in separately
    ]
    assert [(r.rows_read, r.rows_loaded, r.rows_duplicate) for r in together] == [
        (4, 3, 0), (5, 3, 1), (5, 3, 1), (5, 3, 1)
    ]  # fmt: skip
    rows = "select _source_file, _line_no, message_id, _row_hash from raw.analytics_events"
    bad = "select _source_file, _line_no, reason from quarantine.rows"
    with connect(settings, read_only=True) as con, connect(separate_home, read_only=True) as ref:
        for query in (rows, bad):
            assert sorted(con.execute(query).fetchall()) == sorted(ref.execute(query).fetchall())


def test_escaped_padded_and_numeric_values_convert_like_their_json_values(settings):
    line = (
        '{"messageId": "m-\\u00e9\\"1", "type": "track", "event": "tab\\tbed",'
        ' "userId": 42, "timestamp": "  2026-11-01T10:00:00+01:00 ",'
        ' "properties": {"category": "b\\u00fccher", "price": 1e1}, "traits": {}}'
    )
    indented = "  " + _event(messageId="m-2", trackingPlan="v2")  # an object after blanks
    _write_jsonl_gz(settings.landing_dir / EVENTS / "a.jsonl.gz", [line, indented])

    [result] = ingest_entity(settings, EVENTS)

    assert (result.rows_loaded, result.rows_quarantined) == (2, 0)
    with connect(settings, read_only=True) as con:
        rows = con.execute(
            "select message_id, event, user_id, timestamp::varchar, category, price, traits,"
            " _extra from raw.analytics_events order by _line_no"
        ).fetchall()
    assert rows == [
        ('m-é"1', "tab\tbed", "42", "2026-11-01 09:00:00", "bücher", 10.0, "{}", None),
        ("m-2", "product_viewed", None, "2026-11-01 10:00:00", "books", 12.5, None,
         '{"trackingPlan":"v2"}'),
    ]  # fmt: skip


def _write_truncated_jsonl_gz(path: Path) -> None:
    """A gzip file cut short, as if still being copied."""
    _write_jsonl_gz(path, [_event(messageId=f"{path.name}-{n}") for n in range(2000)])
    path.write_bytes(path.read_bytes()[:-20])


def test_a_truncated_file_fails_its_load_and_writes_nothing(settings):
    _write_truncated_jsonl_gz(settings.landing_dir / EVENTS / "a.jsonl.gz")

    with pytest.raises(ValueError, match=r"a\.jsonl\.gz: cannot be decompressed"):
        ingest_entity(settings, EVENTS)

    with connect(settings, read_only=True) as con:
        counts = con.execute(
            "select (select count(*) from raw.analytics_events),"
            " (select count(*) from quarantine.rows), (select count(*) from audit.load_batches)"
        ).fetchone()
    assert counts == (0, 0, 0)


def test_a_record_with_a_repeated_unknown_key_keeps_it_in_extra(settings):
    line = _event(messageId="m-1")[:-1] + ', "note": 1, "note": 2}'
    _write_jsonl_gz(settings.landing_dir / EVENTS / "a.jsonl.gz", [line])

    [result] = ingest_entity(settings, EVENTS)

    assert result.rows_loaded == 1
    with connect(settings, read_only=True) as con:
        extra = con.execute("select _extra from raw.analytics_events").fetchone()[0]
    assert extra == '{"note":1,"note":2}'


@pytest.mark.parametrize(
    ("unknown", "extra"),
    [
        ('"name": "Home", "sentAt": null', '{"name":"Home","sentAt":null}'),  # plain keys
        ('"a b": [1, {"c": "\\u00e9"}], "name": 2', '{"a b":[1,{"c":"\u00e9"}],"name":2}'),
        ('"": 1, "*": {}', '{"":1,"*":{}}'),  # keys a JSON path cannot name plainly
        ('"k\\"q": true', '{"k\\"q":true}'),
    ],
    ids=["plain", "space-and-nested", "empty-and-star", "escaped"],
)
def test_unknown_keys_land_in_extra_exactly(settings, unknown, extra):
    line = _event(messageId="m-1")[:-1] + ", " + unknown + "}"
    _write_jsonl_gz(settings.landing_dir / EVENTS / "a.jsonl.gz", [line])

    [result] = ingest_entity(settings, EVENTS)

    assert result.rows_loaded == 1
    with connect(settings, read_only=True) as con:
        assert con.execute("select _extra from raw.analytics_events").fetchone()[0] == extra


def test_a_damaged_file_after_good_ones_fails_alone(settings):
    """The next file is read and validated while one loads; its failure stays its own."""
    folder = settings.landing_dir / EVENTS
    for name in ("a", "b"):
        _write_jsonl_gz(
            folder / f"{name}.jsonl.gz", [_event(messageId=f"{name}-{n}") for n in range(3)]
        )
    _write_truncated_jsonl_gz(folder / "c.jsonl.gz")

    with pytest.raises(ValueError, match=r"c\.jsonl\.gz: cannot be decompressed"):
        ingest_entity(settings, EVENTS)

    with connect(settings, read_only=True) as con:
        loaded = con.execute(
            "select _source_file, count(*) from raw.analytics_events group by 1 order by 1"
        ).fetchall()
        batches = con.execute("select source_file from audit.load_batches order by 1").fetchall()
    assert loaded == [(f"{EVENTS}/a.jsonl.gz", 3), (f"{EVENTS}/b.jsonl.gz", 3)]
    assert batches == [(f"{EVENTS}/a.jsonl.gz",), (f"{EVENTS}/b.jsonl.gz",)]


def test_a_backlog_starts_loading_before_every_file_is_hashed(settings, monkeypatch):
    """Files are hashed (for their batch ids) in the background while the first ones load."""
    from ingestion import batch, files

    monkeypatch.setattr(batch, "SMALL_BATCH_BYTES", 0)  # each file its own statement
    folder = settings.landing_dir / EVENTS
    for n in range(4):
        _write_jsonl_gz(folder / f"{n}.jsonl.gz", [_event(messageId=f"m-{n}")])
    first_loaded = threading.Event()
    load, sha256 = batch._load_validated, files._sha256

    def load_and_tell(*args, **kwargs):
        result = load(*args, **kwargs)
        first_loaded.set()
        return result

    def hash_the_last_after_a_load(path: Path) -> str:
        if path.name == "3.jsonl.gz":
            assert first_loaded.wait(timeout=30), "nothing loaded before every file was hashed"
        return sha256(path)

    monkeypatch.setattr(batch, "_load_validated", load_and_tell)
    monkeypatch.setattr(files, "_sha256", hash_the_last_after_a_load)
    results = ingest_entity(settings, EVENTS)
    assert [(r.source_file, r.rows_loaded) for r in results] == [
        (f"{EVENTS}/{n}.jsonl.gz", 1) for n in range(4)
    ]
