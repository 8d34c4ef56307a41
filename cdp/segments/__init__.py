"""Segment engine: YAML definitions → validated rules → parameterized SQL → membership tables."""

from cdp.segments.catalog import (
    SegmentInfo,
    SegmentMember,
    UnknownSegmentError,
    get_segment,
    list_segments,
    segment_members,
)
from cdp.segments.columns import (
    DEFAULT_PROFILE_COLUMNS,
    PROFILES_TABLE,
    ProfilesTableMissingError,
    profile_columns,
)
from cdp.segments.compiler import (
    CompiledQuery,
    CompiledSegment,
    compile_segment,
    compile_segment_query,
)
from cdp.segments.definitions import (
    ConsentPurpose,
    Refresh,
    SegmentDefinition,
    SegmentDefinitionError,
    SegmentKind,
    load_definition,
    load_definitions,
    parse_definition,
)
from cdp.segments.evaluate import (
    SegmentResult,
    compile_definitions,
    ensure_segments_schema,
    evaluate_segments,
)
from cdp.segments.explain import Explanation, UnknownCustomerError, explain_membership
from cdp.segments.rules import (
    AllOf,
    AnyOf,
    Condition,
    EventCount,
    EventSequence,
    InSegment,
    Not,
    Op,
    Rule,
    RuleError,
    parse_duration,
    parse_rule,
)
from cdp.segments.sources import bind_sources

__all__ = [
    "DEFAULT_PROFILE_COLUMNS",
    "PROFILES_TABLE",
    "AllOf",
    "AnyOf",
    "CompiledQuery",
    "CompiledSegment",
    "Condition",
    "ConsentPurpose",
    "EventCount",
    "EventSequence",
    "Explanation",
    "InSegment",
    "Not",
    "Op",
    "ProfilesTableMissingError",
    "Refresh",
    "Rule",
    "RuleError",
    "SegmentDefinition",
    "SegmentDefinitionError",
    "SegmentInfo",
    "SegmentKind",
    "SegmentMember",
    "SegmentResult",
    "UnknownCustomerError",
    "UnknownSegmentError",
    "bind_sources",
    "compile_definitions",
    "compile_segment",
    "compile_segment_query",
    "ensure_segments_schema",
    "evaluate_segments",
    "explain_membership",
    "get_segment",
    "list_segments",
    "load_definition",
    "load_definitions",
    "parse_definition",
    "parse_duration",
    "parse_rule",
    "profile_columns",
    "segment_members",
]
