"""Loading and validating segment definition files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from cdp.segments import (
    ConsentPurpose,
    Refresh,
    SegmentDefinitionError,
    SegmentKind,
    load_definitions,
)
from cdp.segments.rules import AllOf, Condition, Not, Op

GOOD_RULE = {"field": "lifetime_value", "op": ">=", "value": 500}


def _error(folder: Path, con: duckdb.DuckDBPyConnection | None = None) -> str:
    with pytest.raises(SegmentDefinitionError) as info:
        load_definitions(folder, con=con)
    return str(info.value)


def test_loads_a_valid_definition(
    segments_dir: Path, write_segment: Callable[..., Path], con: duckdb.DuckDBPyConnection
) -> None:
    path = write_segment(
        segments_dir,
        "big_spenders",
        {"all": [GOOD_RULE, {"not": {"field": "country", "op": "in", "value": ["US", "CA"]}}]},
        consent_purpose="personalization",
    )
    [definition] = load_definitions(segments_dir, con=con)
    assert definition.name == "big_spenders"
    assert definition.kind is SegmentKind.STATIC
    assert definition.refresh is Refresh.DAILY
    assert definition.consent_purpose is ConsentPurpose.PERSONALIZATION
    assert definition.path == path
    assert definition.rule == AllOf(
        (
            Condition("lifetime_value", Op.GE, 500),
            Not(Condition("country", Op.IN, ("US", "CA"))),
        )
    )


def test_bare_equals_sign_in_yaml_is_an_operator(segments_dir: Path) -> None:
    (segments_dir / "known.yml").write_text(
        "name: known\ndescription: d\nowner: o\nkind: static\nrefresh: daily\n"
        "rule: {field: is_known, op: =, value: true}\n"
    )
    [definition] = load_definitions(segments_dir)
    assert definition.rule == Condition("is_known", Op.EQ, True)


def test_unknown_field_lists_close_matches(
    segments_dir: Path, write_segment: Callable[..., Path], con: duckdb.DuckDBPyConnection
) -> None:
    path = write_segment(segments_dir, "typo", {"field": "lifetime_valeu", "op": ">", "value": 1})
    message = _error(segments_dir, con)
    assert str(path) in message
    assert "unknown field 'lifetime_valeu'" in message
    assert "did you mean: lifetime_value" in message


def test_fields_come_from_the_warehouse_when_connected(
    segments_dir: Path, write_segment: Callable[..., Path], con: duckdb.DuckDBPyConnection
) -> None:
    write_segment(segments_dir, "loyal", {"field": "loyalty_tier", "op": "=", "value": "gold"})
    assert "unknown field 'loyalty_tier'" in _error(segments_dir, con)
    con.execute("alter table marts.customer_profiles add column loyalty_tier VARCHAR")
    [definition] = load_definitions(segments_dir, con=con)
    assert definition.rule == Condition("loyalty_tier", Op.EQ, "gold")


def test_unknown_op(segments_dir: Path, write_segment: Callable[..., Path]) -> None:
    path = write_segment(segments_dir, "bad_op", {"field": "country", "op": "==", "value": "US"})
    message = _error(segments_dir)
    assert str(path) in message
    assert "unknown op '=='" in message
    assert "did you mean '='" in message


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"field": "lifetime_value", "op": ">=", "value": "500"}, "expected a number, got str"),
        ({"field": "lifetime_value", "op": ">=", "value": True}, "expected a number, got boolean"),
        ({"field": "country", "op": "=", "value": 12}, "expected text, got int"),
        ({"field": "country", "op": "in", "value": ["US", False]}, "value[1] False"),
        ({"field": "country", "op": "in", "value": "US"}, "needs a non-empty list value"),
        ({"field": "country", "op": "in", "value": []}, "needs a non-empty list value"),
        ({"field": "is_known", "op": "=", "value": "yes"}, "expected true or false"),
        ({"field": "first_seen_at", "op": "within_days", "value": -1}, "whole number of days"),
        ({"field": "first_seen_at", "op": "within_days", "value": 1.5}, "whole number of days"),
        ({"field": "first_seen_at", "op": "<", "value": "last week"}, "expected a date"),
        ({"field": "country", "op": "within_days", "value": 3}, "does not apply to field"),
        ({"field": "is_known", "op": ">", "value": True}, "does not apply to field"),
        ({"field": "emails", "op": "=", "value": "a@x.io"}, "does not apply to field"),
        ({"field": "email", "op": "is_null", "value": "x"}, "takes no value"),
        ({"field": "country", "op": "="}, "needs a 'value'"),
        ({"field": "country", "op": "=", "value": None}, "use op: is_null"),
    ],
)
def test_wrong_value_type_for_op(
    segments_dir: Path, write_segment: Callable[..., Path], rule: dict, expected: str
) -> None:
    path = write_segment(segments_dir, "wrong_value", rule)
    message = _error(segments_dir)
    assert str(path) in message
    assert expected in message
    assert rule["field"] in message


def test_yaml_boolean_gotcha_gets_a_hint(segments_dir: Path) -> None:
    (segments_dir / "norway.yml").write_text(
        "name: norway\ndescription: d\nowner: o\nkind: static\nrefresh: daily\n"
        "rule: {field: country, op: in, value: [SE, NO]}\n"
    )
    message = _error(segments_dir)
    assert "norway.yml" in message
    assert "quote the value" in message


@pytest.mark.parametrize(
    ("name", "stem", "expected"),
    [
        ("BigSpenders", "BigSpenders", "bad name 'BigSpenders'"),
        ("big-spenders", "big-spenders", "bad name 'big-spenders'"),
        ("1st_buyers", "1st_buyers", "bad name '1st_buyers'"),
        ("big__spenders", "big__spenders", "bad name 'big__spenders'"),
        ("big_spenders", "other_name", "must equal the file name stem 'other_name'"),
    ],
)
def test_bad_name(
    segments_dir: Path, write_segment: Callable[..., Path], name: str, stem: str, expected: str
) -> None:
    path = write_segment(segments_dir, name, GOOD_RULE, stem=stem)
    message = _error(segments_dir)
    assert str(path) in message
    assert expected in message


def test_duplicate_name(segments_dir: Path, write_segment: Callable[..., Path]) -> None:
    first = write_segment(segments_dir, "twins", GOOD_RULE)
    second = segments_dir / "twins.yaml"
    second.write_text(first.read_text())
    message = _error(segments_dir)
    assert str(second) in message
    assert "duplicate segment name 'twins'" in message
    assert str(first) in message


@pytest.mark.parametrize("key", ["name", "description", "owner", "kind", "refresh", "rule"])
def test_missing_required_key(
    segments_dir: Path, write_segment: Callable[..., Path], key: str
) -> None:
    fields = {key: ...}
    path = write_segment(segments_dir, "incomplete", GOOD_RULE, **fields)
    message = _error(segments_dir)
    assert str(path) in message
    assert f"missing required key '{key}'" in message


def test_missing_condition_key(segments_dir: Path, write_segment: Callable[..., Path]) -> None:
    path = write_segment(segments_dir, "no_op", {"all": [{"field": "country", "value": "US"}]})
    message = _error(segments_dir)
    assert str(path) in message
    assert "rule.all[0]: missing required key(s) op" in message


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"kind": "behavioural"}, "'kind' must be one of static, dynamic, model"),
        ({"priority": "high"}, "'priority' must be a whole number"),
        ({"refresh": "minutes"}, "refresh 'minutes' needs kind 'dynamic'"),
        ({"exclusions": "vip"}, "'exclusions' must be a list of segment names"),
        ({"refresh": "sometimes"}, "'refresh' must be one of"),
        ({"consent_purpose": "spam"}, "'consent_purpose' must be one of email_marketing"),
        ({"owner": ""}, "'owner' must be non-empty text"),
        ({"colour": "blue"}, "unknown key(s) colour"),
    ],
)
def test_bad_top_level_fields(
    segments_dir: Path, write_segment: Callable[..., Path], fields: dict, expected: str
) -> None:
    path = write_segment(segments_dir, "odd", GOOD_RULE, **fields)
    message = _error(segments_dir)
    assert str(path) in message
    assert expected in message


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("everyone", "rule: expected a mapping"),
        ({"all": []}, "rule.all: expected a non-empty list"),
        ({"all": [GOOD_RULE], "any": [GOOD_RULE]}, "mixes 'all', 'any'"),
        ({"not": GOOD_RULE, "field": "country"}, "mixes 'not', 'field'"),
        ({"field": "country", "op": "=", "valeu": "US"}, "unknown key(s) valeu"),
        ({"any": [GOOD_RULE, {"not": {"field": "nope", "op": "is_null"}}]}, "rule.any[1].not"),
    ],
)
def test_bad_rule_structure(
    segments_dir: Path, write_segment: Callable[..., Path], rule: object, expected: str
) -> None:
    path = write_segment(segments_dir, "odd_rule", rule)
    message = _error(segments_dir)
    assert str(path) in message
    assert expected in message


def test_invalid_yaml_names_file_and_line(segments_dir: Path) -> None:
    path = segments_dir / "broken.yml"
    path.write_text("name: broken\nrule: {field: country, op: =\n")
    message = _error(segments_dir)
    assert str(path) in message
    assert "invalid YAML (line" in message


def test_duplicate_yaml_key_is_rejected(segments_dir: Path) -> None:
    path = segments_dir / "dupkey.yml"
    path.write_text("name: dupkey\nname: other\n")
    message = _error(segments_dir)
    assert str(path) in message
    assert "duplicate key 'name'" in message


def test_reports_problems_from_every_file_at_once(
    segments_dir: Path, write_segment: Callable[..., Path]
) -> None:
    a = write_segment(segments_dir, "first_bad", {"field": "nope", "op": "is_null"})
    b = write_segment(segments_dir, "second_bad", {"field": "country", "op": "like", "value": "U%"})
    with pytest.raises(SegmentDefinitionError) as info:
        load_definitions(segments_dir)
    files = {file for file, _ in info.value.problems}
    assert files == {str(a), str(b)}
    assert "2 problems" in str(info.value)


def test_missing_folder(tmp_path: Path) -> None:
    message = _error(tmp_path / "nowhere")
    assert "nowhere" in message
    assert "does not exist" in message


def test_empty_folder_has_no_segments(segments_dir: Path) -> None:
    assert load_definitions(segments_dir) == []


def test_before_the_first_build_fields_come_from_the_contract(
    segments_dir: Path, write_segment: Callable[..., Path]
) -> None:
    write_segment(segments_dir, "vip", GOOD_RULE)
    con = duckdb.connect()  # no marts.customer_profiles yet
    assert [d.name for d in load_definitions(segments_dir, con=con)] == ["vip"]
    write_segment(segments_dir, "odd", {"field": "loyalty_tier", "op": "is_null"})
    assert "unknown field 'loyalty_tier'" in _error(segments_dir, con)


def test_unknown_segment_references_and_cycles(
    segments_dir: Path, write_segment: Callable[..., Path]
) -> None:
    write_segment(segments_dir, "a", {"all": [GOOD_RULE, {"in_segment": "b"}]})
    write_segment(segments_dir, "b", {"not": {"in_segment": "c"}})
    write_segment(segments_dir, "c", GOOD_RULE, exclusions=["a"])
    write_segment(segments_dir, "d", {"in_segment": "vipp"})
    write_segment(segments_dir, "vip", GOOD_RULE)
    write_segment(segments_dir, "selfish", {"in_segment": "selfish"})
    message = _error(segments_dir)
    assert "cycle between segments: a -> b -> c -> a" in message
    assert "cycle between segments: selfish -> selfish" in message
    assert "refers to unknown segment 'vipp' (did you mean 'vip'?)" in message
    assert message.count("cycle") == 2
