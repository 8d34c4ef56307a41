"""Segment definitions: load one YAML file per segment and validate it before anything runs."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import duckdb
import yaml

from cdp.segments.columns import DEFAULT_PROFILE_COLUMNS, profile_columns_or_contract
from cdp.segments.rules import (
    AllOf,
    InSegment,
    Not,
    Rule,
    RuleError,
    parse_rule,
    referenced_segments,
)
from cdp.yaml_strict import StrictLoader, load_strict

#: File extensions read from a definitions folder.
DEFINITION_SUFFIXES = (".yml", ".yaml")

_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_NAME_MAX = 63


class SegmentKind(StrEnum):
    """How a segment's membership is computed."""

    STATIC = "static"  # profile attributes; evaluated by each build
    DYNAMIC = "dynamic"  # behavioural windows and sequences; also every micro-batch
    MODEL = "model"  # model outputs (ml.*); evaluated by each build


class Refresh(StrEnum):
    """How often a segment is meant to be recomputed (the scheduler decides what runs when)."""

    MINUTES = "minutes"  # every micro-batch (kind: dynamic)
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"


class ConsentPurpose(StrEnum):
    """Purposes a segment may be used for; members must have consented to it."""

    EMAIL_MARKETING = "email_marketing"
    PERSONALIZATION = "personalization"
    ADVERTISING = "advertising"


REQUIRED_KEYS = ("name", "description", "owner", "kind", "refresh", "rule")
OPTIONAL_KEYS = ("consent_purpose", "priority", "exclusions")


@dataclass(frozen=True)
class SegmentDefinition:
    """One validated segment definition."""

    name: str
    description: str
    owner: str
    kind: SegmentKind
    refresh: Refresh
    rule: Rule
    consent_purpose: ConsentPurpose | None = None
    path: Path | None = None
    priority: int = 0  # higher first where audiences compete (e.g. one message per customer)
    exclusions: tuple[str, ...] = ()  # members of these segments are never members of this one

    @property
    def effective_rule(self) -> Rule:
        """The rule with the exclusions applied (``rule and not in_segment X`` for each)."""
        if not self.exclusions:
            return self.rule
        return AllOf((self.rule, *(Not(InSegment(name)) for name in self.exclusions)))


class SegmentDefinitionError(ValueError):
    """One or more definition files are invalid; ``problems`` holds ``(file, message)`` pairs."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        lines = [f"{file}: {message}" for file, message in self.problems]
        count = len(lines)
        header = f"{count} problem{'s' if count != 1 else ''} in segment definitions:"
        super().__init__("\n".join([header, *(f"  - {line}" for line in lines)]))


class _Loader(StrictLoader):
    """Strict YAML loader that also reads ``op: =`` as text."""


# PyYAML resolves a bare "=" to the YAML 1.1 'value' tag, which safe_load cannot construct.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:value"]
    for first, resolvers in StrictLoader.yaml_implicit_resolvers.items()
}


def _enum_value(enum: type[StrEnum], raw: Any, key: str, problems: list[str]) -> Any:
    values = [member.value for member in enum]  # type: ignore[attr-defined]
    if raw not in values:
        problems.append(f"'{key}' must be one of {', '.join(values)}; got {raw!r}")
        return None
    return enum(raw)


def parse_definition(
    data: Any, columns: Mapping[str, str], path: Path | None = None
) -> SegmentDefinition:
    """Validate parsed YAML data for one segment; raise ``SegmentDefinitionError`` on problems."""
    file = str(path) if path is not None else "<definition>"
    problems: list[str] = []
    if not isinstance(data, Mapping):
        kind = "empty" if data is None else type(data).__name__
        raise SegmentDefinitionError([(file, f"expected a mapping of segment fields, got {kind}")])
    for key in REQUIRED_KEYS:
        if key not in data:
            problems.append(f"missing required key {key!r}")
    unknown = sorted(str(k) for k in data if k not in REQUIRED_KEYS + OPTIONAL_KEYS)
    if unknown:
        allowed = ", ".join(REQUIRED_KEYS + OPTIONAL_KEYS)
        problems.append(f"unknown key(s) {', '.join(unknown)}; allowed keys: {allowed}")

    name = data.get("name")
    if "name" in data:
        if not isinstance(name, str) or not _NAME.match(name) or len(name) > _NAME_MAX:
            problems.append(
                f"bad name {name!r}: use snake_case (lowercase letters, digits, single "
                f"underscores; starts with a letter; at most {_NAME_MAX} characters)"
            )
        elif path is not None and name != path.stem:
            problems.append(f"name {name!r} must equal the file name stem {path.stem!r}")
    for key in ("description", "owner"):
        if key in data and (not isinstance(data[key], str) or not data[key].strip()):
            problems.append(f"{key!r} must be non-empty text")

    kind = _enum_value(SegmentKind, data.get("kind"), "kind", problems) if "kind" in data else None
    priority = data.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        problems.append(f"'priority' must be a whole number, got {priority!r}")
    exclusions = data.get("exclusions", [])
    if not isinstance(exclusions, list) or not all(isinstance(e, str) for e in exclusions):
        problems.append(f"'exclusions' must be a list of segment names, got {exclusions!r}")
    refresh = (
        _enum_value(Refresh, data["refresh"], "refresh", problems) if "refresh" in data else None
    )
    if refresh is Refresh.MINUTES and kind is not None and kind is not SegmentKind.DYNAMIC:
        problems.append(
            f"refresh 'minutes' needs kind 'dynamic' (a {kind.value} segment reads data that only "
            "changes with each build)"
        )
    consent = data.get("consent_purpose")
    if consent is not None:
        consent = _enum_value(ConsentPurpose, consent, "consent_purpose", problems)

    rule = None
    if "rule" in data:
        try:
            rule = parse_rule(data["rule"], columns)
        except RuleError as exc:
            problems.extend(exc.problems)
    if consent is not None and f"has_consent_{consent.value}" not in columns:
        problems.append(
            f"consent_purpose {consent.value!r} needs column 'has_consent_{consent.value}' in the "
            "profiles"
        )
    if problems:
        raise SegmentDefinitionError([(file, p) for p in problems])
    return SegmentDefinition(
        name=name,
        description=data["description"].strip(),
        owner=data["owner"].strip(),
        kind=kind,
        refresh=refresh,
        rule=rule,  # type: ignore[arg-type]
        consent_purpose=consent,
        path=path,
        priority=priority,
        exclusions=tuple(exclusions),
    )


def load_definition(path: Path, columns: Mapping[str, str] | None = None) -> SegmentDefinition:
    """Load and validate one segment YAML file."""
    columns = DEFAULT_PROFILE_COLUMNS if columns is None else columns
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SegmentDefinitionError([(str(path), f"cannot read file: {exc.strerror}")]) from exc
    try:
        data = load_strict(text, _Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SegmentDefinitionError([(str(path), f"invalid YAML{where}: {problem}")]) from exc
    return parse_definition(data, columns, Path(path))


def load_definitions(
    directory: Path | str | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    columns: Mapping[str, str] | None = None,
) -> list[SegmentDefinition]:
    """Load and validate every ``*.yml``/``*.yaml`` in a folder, reporting all problems at once.

    Fields are checked against ``columns`` if given, else the live ``marts.customer_profiles``
    columns when ``con`` is given (and the table exists), else the built-in profile contract.
    ``directory`` defaults to ``settings.segments_dir``.
    """
    if directory is None:
        from cdp.settings import load_settings

        directory = load_settings().segments_dir
    directory = Path(directory)
    if not directory.is_dir():
        raise SegmentDefinitionError([(str(directory), "segments folder does not exist")])
    if columns is None:
        columns = profile_columns_or_contract(con) if con is not None else DEFAULT_PROFILE_COLUMNS
    paths = sorted(
        p for p in directory.iterdir() if p.suffix in DEFINITION_SUFFIXES and p.is_file()
    )
    problems: list[tuple[str, str]] = []
    definitions: list[SegmentDefinition] = []
    seen: dict[str, Path] = {}
    for path in paths:
        try:
            definition = load_definition(path, columns)
        except SegmentDefinitionError as exc:
            problems.extend(exc.problems)
            continue
        if definition.name in seen:
            problems.append(
                (
                    str(path),
                    f"duplicate segment name {definition.name!r} (also in {seen[definition.name]})",
                )
            )
            continue
        seen[definition.name] = path
        definitions.append(definition)
    problems.extend(reference_problems(definitions))
    if problems:
        raise SegmentDefinitionError(problems)
    return definitions


def reference_problems(definitions: Sequence[SegmentDefinition]) -> list[tuple[str, str]]:
    """``in_segment``/``exclusions`` naming unknown segments, and cycles between segments."""
    by_name = {d.name: d for d in definitions}
    problems: list[tuple[str, str]] = []
    edges: dict[str, list[str]] = {}
    for d in definitions:
        file = str(d.path) if d.path else d.name
        refs = sorted(referenced_segments(d.effective_rule))
        for ref in refs:
            if ref not in by_name:
                close = difflib.get_close_matches(ref, list(by_name), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append((file, f"refers to unknown segment {ref!r}{hint}"))
        edges[d.name] = [ref for ref in refs if ref in by_name]
    for cycle in _cycles(edges):
        file = by_name[cycle[0]].path or cycle[0]
        problems.append((str(file), f"cycle between segments: {' -> '.join(cycle)}"))
    return problems


def _cycles(edges: Mapping[str, list[str]]) -> list[list[str]]:
    """Cycles in the segment reference graph, each as a closed path and reported once."""
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycles.append([*path[path.index(node) :], node])
            return
        if node in done:
            return
        for target in edges.get(node, []):
            visit(target, [*path, node])
        done.add(node)

    for start in sorted(edges):
        visit(start, [])
    return cycles
