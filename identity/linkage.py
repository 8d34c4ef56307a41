"""Probabilistic linkage in DuckDB: blocking passes, comparison levels, model scores, bands.

Works on a *person records* table with one row per record: ``record_key``, ``source``,
``is_new`` and the normalized columns of ``PERSON_COLUMNS`` (missing ones are NULL). Only pairs
with at least one new record are compared, so an incremental run compares new-vs-all.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from identity.comparisons import gamma_select
from identity.config import ModelSettings
from identity.model import FellegiSunterModel, estimate_model, estimate_u

PERSON_COLUMNS = (
    "first_name", "last_name", "date_of_birth", "address_line", "address_extra", "city",
    "postcode", "state", "national_id", "email", "phone",
)  # fmt: skip
#: Blocking keys derived from the person columns, and the column each derives from.
DERIVED_KEYS = {
    "first_initial": ("left(first_name, 1)", "first_name"),
    "last_name_phonetic": ("cdp_phonetic(last_name)", "last_name"),
    "birth_year": ("left(date_of_birth, 4)", "date_of_birth"),
}


#: Columns whose exact agreement is weighed by how common the value is (term frequency):
#: two "Smith"s agreeing is weaker evidence than two "Nakamura"s.
TF_COLUMNS = ("first_name", "last_name", "city", "postcode")
#: Value shares of a column with fewer values than this are noise: its global u is used.
TF_MIN_VALUES = 1000


@dataclass(frozen=True)
class LinkageResult:
    """Scored candidate pairs live in the temp table ``scored``; counts for the run report."""

    candidates: int
    model: FellegiSunterModel


def prepare_records(con: duckdb.DuckDBPyConnection, source_sql: str, table: str) -> None:
    """Create temp ``table`` from ``source_sql`` plus the derived blocking keys."""
    derived = ", ".join(f"{sql} as {name}" for name, (sql, _) in DERIVED_KEYS.items())
    tf = ", ".join(
        f"case when {c} is not null and count({c}) over () >= {TF_MIN_VALUES} then "
        f"count(*) over (partition by {c}) / count({c}) over () end as tf_{c}"
        for c in TF_COLUMNS
    )
    con.execute(
        f"create or replace temp table {table} as select *, {derived}, {tf} from ({source_sql})"
    )


def _candidate_pairs_sql(records: str, settings: ModelSettings, link: bool) -> str:
    """Pairs with a new record that agree on every key of some blocking pass; a key value held
    by more than ``max_block_size`` records (a city's only postcode) blocks nothing."""
    selects = []
    for index, keys in enumerate(settings.blocking):
        key_list = ", ".join(keys)
        block = f"""(select record_key, source, is_new, {key_list} from {records}
            semi join (select distinct {key_list} from {records} where is_new) using ({key_list})
            qualify count(*) over (partition by {key_list}) <= {settings.max_block_size})"""
        on = " and ".join(f"n.{k} = a.{k}" for k in keys)
        cross = " and n.source <> a.source" if link else ""
        selects.append(
            f"""select least(n.record_key, a.record_key) as left_key,
                       greatest(n.record_key, a.record_key) as right_key, {1 << index} as pass
                from {block} as n join {block} as a on {on}
                where n.is_new and n.record_key <> a.record_key{cross}
                  and (not a.is_new or n.record_key < a.record_key)"""
        )
    union = "\nunion all\n".join(selects)
    return f"select left_key, right_key, bit_or(pass) as passes from ({union}) group by all"


def _training_sessions(settings: ModelSettings) -> list[tuple[str, frozenset[str]]]:
    """One EM session per blocking pass: its pairs, and the columns it blocks on (with the
    columns correlated with them)."""
    sessions = []
    for index, keys in enumerate(settings.blocking):
        blocked = {DERIVED_KEYS.get(k, (None, k))[1] for k in keys}
        for group in settings.correlated:
            if blocked & group:
                blocked |= group
        sessions.append((f"passes & {1 << index} <> 0", frozenset(blocked)))
    return sessions


def score_candidates(
    con: duckdb.DuckDBPyConnection,
    records: str,
    settings: ModelSettings,
    model: FellegiSunterModel | None = None,
    link_sources: tuple[str, str] | None = None,
) -> LinkageResult:
    """Block, compare and score; estimate the model first unless one is given.

    Leaves temp table ``scored(left_key, right_key, g_<column>…, match_probability,
    is_corroborated)``."""
    comparisons = settings.comparisons
    con.execute(
        f"""create or replace temp table candidates as
        with pairs as ({_candidate_pairs_sql(records, settings, bool(link_sources))})
        select p.left_key, p.right_key, p.passes, {gamma_select(comparisons)},
            {", ".join(f"greatest(l.tf_{c}, r.tf_{c}) as tf_{c}" for c in TF_COLUMNS)}
        from pairs as p
        join {records} as l on l.record_key = p.left_key
        join {records} as r on r.record_key = p.right_key"""
    )
    if model is None:
        u = estimate_u(con, records, comparisons, settings.random_pairs, link_sources)
        sessions = _training_sessions(settings)
        model = estimate_model(con, "candidates", comparisons, u, settings.em_iterations, sessions)
    con.execute(
        f"""create or replace temp table scored as
        select *, {model.probability_sql(TF_COLUMNS)} as match_probability,
            {model.agreement_sql(settings.auto_merge_needs)} as is_corroborated
        from candidates"""
    )
    (count,) = con.execute("select count(*) from candidates").fetchone()
    return LinkageResult(count, model)


def one_to_one(pairs: list[tuple[str, str, float]]) -> list[tuple[str, str, float]]:
    """Keep each record in at most one pair, best probability first (ties by keys)."""
    used: set[str] = set()
    kept = []
    for left, right, probability in sorted(pairs, key=lambda p: (-p[2], p[0], p[1])):
        if left not in used and right not in used:
            used.update((left, right))
            kept.append((left, right, probability))
    return kept
