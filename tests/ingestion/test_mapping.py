"""Column mappings: real exports (HubSpot CSV, Segment-style JSONL) load onto the contract."""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import shutil
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cdp.contracts import CONTRACTS
from cdp.settings import REPO_ROOT, Settings
from cdp.warehouse import connect
from ingestion.batch import BatchResult, load_batch
from ingestion.files import file_batch, landing_files
from ingestion.mapping import (
    MappingError,
    export_columns,
    load_mapping,
    mapping_for,
    source_path,
)
from ingestion.validation import SourceMapping

EXAMPLES = REPO_ROOT / "examples" / "mappings"
CUSTOMERS = CONTRACTS["crm/customers"]
EVENTS = CONTRACTS["analytics/events"]


def _land(settings: Settings, example: str, source_entity: str) -> Path:
    folder = settings.landing_dir / source_entity
    shutil.copytree(EXAMPLES / example, folder)
    return folder


def _load_folder(settings: Settings, source_entity: str) -> list[BatchResult]:
    """What ``ingest_entity`` does, with the folder's mapping."""
    contract = CONTRACTS[source_entity]
    files = landing_files(settings.landing_dir, contract)
    mapping = mapping_for(settings.landing_dir, source_entity, files)
    with connect(settings) as con:
        return [
            load_batch(con, contract, file_batch(path, settings), settings, mapping=mapping)
            for path in files
        ]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_hubspot_export_loads_through_its_mapping(settings):
    _land(settings, "hubspot_contacts", "crm/customers")
    assert [p.name for p in landing_files(settings.landing_dir, CUSTOMERS)] == [
        "contacts-export.csv"
    ]  # the mapping file itself is not data

    [result] = _load_folder(settings, "crm/customers")  # default 5 % quarantine limit

    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (20, 19, 1)
    with connect(settings, read_only=True) as con:
        first = con.execute(
            "select * exclude (_batch_id, _loaded_at, _row_hash, _extra) from raw.crm_customers"
            " where crm_customer_id = '51301'"
        ).fetchone()
        rows = con.execute(
            "select crm_customer_id, email, created_at::varchar, updated_at::varchar, _line_no"
            " from raw.crm_customers order by crm_customer_id"
        ).fetchall()
        quarantined = con.execute(
            "select _line_no, field, reason, payload from quarantine.rows"
        ).fetchall()
    assert first == (
        "51301", "Maria", "Gonzalez", "maria.gonzalez@example.com", "+1 415-555-0132", None,
        "742 Market St, Apt 5", None, "San Francisco", "94103", "CA", "United States",
        datetime(2024, 3, 5, 14, 22),
        datetime(2024, 6, 11, 9, 3),
        "crm/customers", "crm/customers/contacts-export.csv", 2,
    )  # fmt: skip
    assert rows == [
        ("51301", "maria.gonzalez@example.com", "2024-03-05 14:22:00", "2024-06-11 09:03:00", 2),
        ("51302", "james.oconnor@example.net", "2024-03-05 15:47:00", "2024-03-05 15:47:00", 3),
        ("51303", "aiko.tanaka@example.jp", "2024-03-07 02:15:00", "2024-05-20 11:40:00", 4),
        ("51304", "lukas.mueller@example.de", "2024-03-09 08:30:00", "2024-04-02 16:12:00", 5),
        ("51305", "PRIYA.SHARMA@EXAMPLE.COM", "2024-03-12 19:05:00", "2024-03-14 10:00:00", 6),
        ("51307", "chloe.martin@example.fr", "2024-03-15 13:48:00", "2024-07-01 08:20:00", 8),
        ("51308", "tom@becker-consulting.example", "2024-03-18 11:11:00", "2024-03-18 11:11:00", 9),
        ("51309", "newsletter.reader@example.org", "2024-03-20 07:59:00", "2024-03-20 07:59:00",
         10),
        ("51310", "olivia.smith@example.co.uk", "2024-03-22 16:40:00", "2024-08-05 12:25:00", 11),
        ("51311", "noah.w@example.com", "2024-03-25 09:14:00", "2024-03-26 09:14:00", 12),
        ("51312", "sofia.rossi@example.it", "2024-03-28 12:00:00", "2024-05-30 17:45:00", 13),
        ("51313", "ethan.brown@example.com", "2024-04-02 10:30:00", "2024-04-19 14:05:00", 14),
        ("51314", "fatima.alsayed@example.ae", "2024-04-04 06:55:00", "2024-04-04 06:55:00", 15),
        ("51315", "lucas.silva@example.com.br", "2024-04-08 21:18:00", "2024-06-02 13:33:00", 16),
        ("51316", "emma.johansson@example.se", "2024-04-11 09:02:00", "2024-04-12 08:47:00", 17),
        ("51317", "daniel.kim@example.com", "2024-04-15 17:26:00", "2024-09-03 10:10:00", 18),
        ("51318", "grace.lee@example.com", "2024-04-16 12:00:00", "2024-04-16 12:00:00", 19),
        ("51319", "mateo.garcia@example.es", "2024-04-20 08:45:00", "2024-05-01 19:30:00", 20),
        ("51320", "hannah.schmidt@example.at", "2024-04-23 14:14:00", "2024-04-23 14:14:00", 21),
    ]  # fmt: skip
    assert quarantined == [
        (
            7,
            "crm_customer_id",
            "missing required field 'crm_customer_id'",
            ",Ghost,Import,ghost.import@example.com,,,,,,,2024-03-13 10:10,2024-03-13 10:10,"
            "Other,,Non-marketing contact",
        )
    ]


def test_unmapped_export_columns_land_in_extra(settings):
    _land(settings, "hubspot_contacts", "crm/customers")
    _load_folder(settings, "crm/customers")
    with connect(settings, read_only=True) as con:
        extras = dict(
            con.execute("select crm_customer_id, _extra from raw.crm_customers").fetchall()
        )
    assert json.loads(extras["51301"]) == {
        "Lifecycle Stage": "Customer",
        "Contact owner": "Dana Whitfield",
        "Marketing contact status": "Marketing contact",
    }
    assert json.loads(extras["51304"]) == {  # empty cells are absent, not ""
        "Lifecycle Stage": "Subscriber",
        "Marketing contact status": "Marketing contact",
    }
    keys = set().union(*(json.loads(extra) for extra in extras.values()))
    assert keys == {"Lifecycle Stage", "Contact owner", "Marketing contact status"}


def test_segment_style_export_with_nested_ids_loads(settings):
    _land(settings, "segment_events", "analytics/events")

    [result] = _load_folder(settings, "analytics/events")

    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (4, 4, 0)
    with connect(settings, read_only=True) as con:
        rows = con.execute(
            "select message_id, type, event, anonymous_id, user_id, timestamp::varchar,"
            " traits->>'email', properties->>'path', context->'library'->>'name',"
            " _extra->>'received_at'"
            " from raw.analytics_events order by _line_no"
        ).fetchall()
    assert rows == [
        ("ajs-next-1f9c0a", "page", None, "a1b2c3d4", None, "2024-03-05 14:20:03.12", None,
         "/pricing", "analytics.js", "2024-03-05T14:20:03.410Z"),
        ("ajs-next-1f9c0b", "track", "Product Viewed", "a1b2c3d4", None,
         "2024-03-05 14:21:40.002", None, None, None, "2024-03-05T14:21:40.300Z"),
        ("ajs-next-1f9c0c", "identify", None, "a1b2c3d4", "51301", "2024-03-05 13:22:10",
         "maria.gonzalez@example.com", None, None, "2024-03-05T13:22:10.500Z"),
        ("ajs-next-1f9c0d", "track", "Order Completed", "a1b2c3d4", "51301",
         "2024-03-05 14:25:00", None, None, None, "2024-03-05T14:25:00.800Z"),
    ]  # fmt: skip


def test_unmapped_keys_next_to_a_nested_path_land_in_extra(settings):
    folder = settings.landing_dir / "analytics" / "events"
    _write(folder / "_mapping.yml", "fields:\n  anonymousId: [user, anonymous_id]\n")
    line = {
        "messageId": "m-1",
        "type": "page",
        "timestamp": "2026-11-01T10:00:00Z",
        "user": {"anonymous_id": "a-1", "locale": "de-DE"},
    }
    _write(folder / "events.jsonl", json.dumps(line) + "\n")
    _load_folder(settings, "analytics/events")
    with connect(settings, read_only=True) as con:
        extra = con.execute("select _extra from raw.analytics_events").fetchone()[0]
    assert extra is not None and json.loads(extra) == {"user": {"locale": "de-DE"}}


def _load_odd_columns(settings: Settings, odd: dict[str, str]) -> tuple:
    fields = "".join(f"  {name}: {json.dumps(column)}\n" for name, column in odd.items())
    folder = settings.landing_dir / "crm" / "customers"
    _write(folder / "_mapping.yml", "fields:\n" + fields)
    record = {column: f"value of {name}" for name, column in odd.items()}
    record |= {"id": "not me", "v2": "nor me", "email": "not this one"}
    _write(folder / "c.jsonl", json.dumps(record) + "\n")
    _load_folder(settings, "crm/customers")
    with connect(settings, read_only=True) as con:
        return con.execute(f"select {', '.join(odd)}, _extra from raw.crm_customers").fetchone()


def test_column_names_with_dots_slashes_and_spaces(settings):
    odd = {"crm_customer_id": "id.v2", "email": "E-mail Address", "city": "City/Town"}
    row = _load_odd_columns(settings, odd)
    assert row[:3] == ("value of crm_customer_id", "value of email", "value of city")
    assert json.loads(row[3]) == {"id": "not me", "v2": "nor me", "email": "not this one"}


def test_column_names_with_quotes_and_backslashes(settings):
    row = _load_odd_columns(settings, {"crm_customer_id": 'say "id"', "state": "st\\ate"})
    assert row[:2] == ("value of crm_customer_id", "value of state")


def test_source_path_forms():
    assert source_path("Record ID") == '$."Record ID"'
    assert source_path("a.b") == '$."a.b"'
    assert source_path(["context", "traits", "email"]) == '$."context"."traits"."email"'
    assert source_path(["items", 0, "id"]) == '$."items"[0]."id"'


def test_unmapped_fields_are_read_by_their_own_name(settings):
    folder = settings.landing_dir / "crm" / "customers"
    _write(folder / "_mapping.yml", 'fields:\n  email: "E-mail"\n')
    _write(folder / "c.csv", "crm_customer_id,E-mail,city\nC1,a@x.com,Bonn\n")
    _load_folder(settings, "crm/customers")
    with connect(settings, read_only=True) as con:
        row = con.execute("select crm_customer_id, email, city, _extra from raw.crm_customers")
        assert row.fetchone() == ("C1", "a@x.com", "Bonn", None)


def test_a_folder_without_mapping_has_none(settings):
    assert mapping_for(settings.landing_dir, "crm/customers") is None


def test_mapping_for_an_unknown_source_is_a_clear_error(settings):
    with pytest.raises(ValueError, match="unknown source 'crm/contacts'; known sources: "):
        mapping_for(settings.landing_dir, "crm/contacts")


def test_formats_only_mapping(tmp_path):
    path = _write(tmp_path / "_mapping.yml", "formats:\n  created_at: '%d/%m/%Y %H:%M'\n")
    assert load_mapping(path, CUSTOMERS) == SourceMapping(
        timestamp_formats={"created_at": "%d/%m/%Y %H:%M"}
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "fields:\n  crm_customr_id: Record ID\n",
            "fields.crm_customr_id: 'crm_customr_id' is not a field of crm/customers; "
            "did you mean 'crm_customer_id'?",
        ),
        (
            "fields:\n  Email: E-mail\n",
            "fields.Email: 'Email' is not a field of crm/customers; did you mean 'email'?",
        ),
        (
            "feilds:\n  email: Email\n",
            "feilds: unknown key; did you mean 'fields'?",
        ),
        (
            "fields:\n  email: Email\ncolumns: {}\n",
            "columns: unknown key; allowed keys: description, source, fields, formats",
        ),
        (
            "fields:\n  email: Email\nformats:\n  email: '%Y'\n",
            "formats.email: formats apply to timestamp fields only (created_at, updated_at); "
            "'email' is a string field",
        ),
        (
            "formats:\n  date_of_birth: '%d.%m.%Y'\n",
            "formats.date_of_birth: formats apply to timestamp fields only (created_at, "
            "updated_at); 'date_of_birth' is a date field",
        ),
        (
            "formats:\n  created_at: '%Y-%m-%d %Q'\n",
            "formats.created_at: bad strptime format '%Y-%m-%d %Q': "
            "Unrecognized format for strftime/strptime: %Q",
        ),
        (
            "formats:\n  created_at: 'YYYY-MM-DD'\n",
            "formats.created_at: expected a strptime format such as '%Y-%m-%d %H:%M', "
            "found str 'YYYY-MM-DD'",
        ),
        (
            "formats:\n  created: '%Y'\n",
            "formats.created: 'created' is not a field of crm/customers; "
            "did you mean 'created_at'?",
        ),
        (
            "fields:\n  email: Email\n  phone: Email\n",
            "fields.phone: 'Email' is already mapped to 'email'; "
            "each export column feeds one field",
        ),
        (
            "fields:\n  email: Email\n  email: E-mail\n",
            "invalid YAML (line 3, column 3): duplicate key 'email'",
        ),
        ("fields:\n  email: [Email\n", "invalid YAML (line 3, column 1): expected ',' or ']'"),
        (
            "fields:\n  phone: 12345\n",
            "fields.phone: expected a column name or a list of keys for a nested value, found "
            "int 12345 (quote names YAML would read as numbers, booleans or null)",
        ),
        (
            "fields:\n  phone:\n",
            "fields.phone: expected a column name or a list of keys for a nested value, found null",
        ),
        ("fields:\n  phone: []\n", "fields.phone: expected a list of keys, found an empty list"),
        (
            "fields:\n  phone: [0, number]\n",
            "fields.phone: a nested path must start with a key name, found int 0",
        ),
        (
            "fields:\n  phone: [contact, true]\n",
            "fields.phone: path parts are key names or list indexes, found bool True",
        ),
        ("fields:\n  phone: [phones, -1]\n", "fields.phone: list indexes start at 0, found -1"),
        ("fields: Email\n", "fields: expected 'contract field: export column' pairs, found str"),
        ("description: HubSpot\n", "nothing to map: give 'fields' and/or 'formats'"),
        ("", "expected a mapping with keys description, source, fields, formats, found an empty"),
        (
            "source: crm/orders\nfields:\n  email: Email\n",
            "source: this mapping is for 'crm/orders' but is used for 'crm/customers'",
        ),
    ],
)
def test_bad_mapping_is_a_clear_error(tmp_path, text, message):
    path = _write(tmp_path / "_mapping.yml", text)
    with pytest.raises(MappingError) as caught:
        load_mapping(path, CUSTOMERS)
    assert str(caught.value).startswith(f"{path}: {message}")


def test_promoted_columns_cannot_be_mapped(tmp_path):
    path = _write(tmp_path / "_mapping.yml", "fields:\n  price: amount\n")
    with pytest.raises(MappingError, match=r"fields.price: 'price' is copied from "
                       r"\$.properties.price and cannot be mapped; map 'properties'"):  # fmt: skip
        load_mapping(path, EVENTS)


def test_promoted_columns_follow_a_mapped_object(settings):
    _land(settings, "segment_events", "analytics/events")
    _load_folder(settings, "analytics/events")
    with connect(settings, read_only=True) as con:
        emails = con.execute(
            "select trait_email from raw.analytics_events order by _line_no"
        ).fetchall()
    assert emails == [(None,), (None,), ("maria.gonzalez@example.com",), (None,)]


def test_warehouse_column_names_point_to_the_contract_name(tmp_path):
    path = _write(tmp_path / "_mapping.yml", "fields:\n  message_id: id\n")
    with pytest.raises(MappingError, match="'message_id' is not a field of analytics/events; use"
                       " the contract field name 'messageId'"):  # fmt: skip
        load_mapping(path, EVENTS)


def test_every_problem_is_reported_at_once(tmp_path):
    path = _write(tmp_path / "_mapping.yml", "fields:\n  mail: Email\nformats:\n  email: '%Y'\n")
    with pytest.raises(MappingError) as caught:
        load_mapping(path, CUSTOMERS)
    assert str(caught.value) == "\n".join(
        [
            "2 problems in column mapping:",
            f"  - {path}: fields.mail: 'mail' is not a field of crm/customers; "
            "did you mean 'email'?",
            f"  - {path}: formats.email: formats apply to timestamp fields only "
            "(created_at, updated_at); 'email' is a string field",
        ]
    )


def test_required_field_the_header_cannot_fill_is_an_error(tmp_path):
    path = _write(tmp_path / "_mapping.yml", "fields:\n  email: Email\n")
    with pytest.raises(MappingError, match=(
        r"fields: required field 'crm_customer_id' is not mapped and the export has no column"
        r" of that name; add e.g. crm_customer_id: 'Customer ID'"
    )):  # fmt: skip
        load_mapping(path, CUSTOMERS, columns=["Customer ID", "Email"])
    assert load_mapping(path, CUSTOMERS, columns=["crm_customer_id", "Email"]).paths == {
        "email": '$."Email"'
    }


def test_mapping_for_checks_every_csv_header_of_the_folder(settings):
    folder = _land(settings, "hubspot_contacts", "crm/customers")
    _write(folder / "2024" / "old-export.csv", "Record Id,Email\n1,a@x.com\n")
    files = landing_files(settings.landing_dir, CUSTOMERS)
    with pytest.raises(MappingError, match=(
        r"_mapping.yml: fields.crm_customer_id: 2024/old-export.csv has no column 'Record ID';"
        r" did you mean 'Record Id'\?"
    )):  # fmt: skip
        mapping_for(settings.landing_dir, "crm/customers", files)


def test_two_mapping_files_in_one_folder_are_an_error(settings):
    folder = _land(settings, "hubspot_contacts", "crm/customers")
    shutil.copy(folder / "_mapping.yml", folder / "_mapping.yaml")
    with pytest.raises(MappingError, match="_mapping.yaml is there too; keep one of them"):
        mapping_for(settings.landing_dir, "crm/customers")


def test_export_columns_of_csv_gz_parquet_and_jsonl(tmp_path):
    with gzip.open(tmp_path / "a.csv.gz", "wt", encoding="utf-8") as handle:
        handle.write('"Record ID","City/Town"\n1,Bonn\n')
    pq.write_table(pa.table({"Record ID": ["1"], "Email": ["a@x.com"]}), tmp_path / "b.parquet")
    _write(tmp_path / "c.jsonl", '{"Record ID": "1"}\n')
    assert export_columns(tmp_path / "a.csv.gz") == ["Record ID", "City/Town"]
    assert export_columns(tmp_path / "b.parquet") == ["Record ID", "Email"]
    assert export_columns(tmp_path / "c.jsonl") is None  # keys vary by record


def test_a_missing_optional_column_is_a_warning(tmp_path, caplog):
    path = _write(tmp_path / "_mapping.yml", "fields:\n  phone: Phone Number\n")
    with caplog.at_level(logging.WARNING, logger="ingestion.mapping"):
        load_mapping(path, CUSTOMERS, columns=["crm_customer_id", "Phone number"])
    assert caplog.messages == [
        "the export has no column 'Phone Number' for 'phone'; did you mean 'Phone number'?"
    ]


def test_mapped_columns_that_differ_only_in_case_load_apart(settings):
    folder = settings.landing_dir / "crm" / "customers"
    _write(
        folder / "_mapping.yml",
        'source: crm/customers\nfields:\n  crm_customer_id: "ID"\n  first_name: "Name"\n'
        '  last_name: "NAME"\n',
    )
    _write(folder / "export.csv", "ID,Name,NAME,name\nC1,Ann,Lee,x\n")

    [result] = _load_folder(settings, "crm/customers")

    assert result.rows_loaded == 1
    with connect(settings, read_only=True) as con:
        row = con.execute(
            "select crm_customer_id, first_name, last_name, _extra from raw.crm_customers"
        ).fetchone()
    assert row == ("C1", "Ann", "Lee", '{"name":"x"}')


def test_a_mapping_of_array_positions_only_still_checks_every_record(settings):
    """No path reads a top-level key: records are still parsed, and told apart as before."""
    contract = CONTRACTS["privacy/erasure_requests"]
    mapping = SourceMapping({f.name: f"$[{n}]" for n, f in enumerate(contract.fields)})
    path = _write(
        settings.landing_dir / contract.source_entity / "a.jsonl",
        '{"request_id": "R1"}\n[1, 2]\n{bad\n',
    )
    with connect(settings) as con:
        lenient = dataclasses.replace(settings, quarantine_max_share=1.0)
        result = load_batch(con, contract, file_batch(path, settings), lenient, mapping=mapping)
        reasons = con.execute("select _line_no, reason from quarantine.rows order by 1").fetchall()

    assert (result.rows_read, result.rows_quarantined) == (3, 3)
    assert reasons == [
        (1, "missing required field 'request_id'"),
        (2, "expected a JSON object, found array"),
        (3, "bad JSON: Expecting property name enclosed in double quotes (column 2)"),
    ]
