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
from identity.timing import StepTimer

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


def derived_keys_joins(table: str) -> str:
    """Joins that add the derived blocking keys to the rows of ``table``, each key computed once
    per distinct value of its column (there are far fewer names than records)."""
    return "\n".join(
        f"""left join (select {column}, {sql} as {name}
            from (select distinct {column} from {table})) using ({column})"""
        for name, (sql, column) in DERIVED_KEYS.items()
    )


def prepare_records(
    con: duckdb.DuckDBPyConnection, source_sql: str, table: str, derive_keys: bool = True
) -> None:
    """Create temp ``table`` from ``source_sql`` plus the term frequencies. With ``derive_keys``
    it also numbers the records (``rid``, in key order) and adds the derived blocking keys; else
    ``source_sql`` has both already (``identity.person_records`` stores them)."""
    numbered = (
        "(row_number() over (order by record_key))::integer as rid, *" if derive_keys else "*"
    )
    derived = derived_keys_joins("_prepared") if derive_keys else ""
    shares = [
        f"""left join (select {c}, count(*) / sum(count(*)) over () as tf_{c}
            from _prepared where {c} is not null group by {c}
            qualify sum(count(*)) over () >= {TF_MIN_VALUES}) using ({c})"""
        for c in TF_COLUMNS
    ]
    joins = "\n".join(shares)
    # One statement: the records are materialized once, as a CTE, not as a temp table first.
    con.execute(
        f"""create or replace temp table {table} as
        with _prepared as materialized (select {numbered} from ({source_sql}))
        select * from _prepared {derived} {joins}"""
    )


def _block_keys_sql(records: str, settings: ModelSettings, link: bool) -> str:
    """One row per record and blocking pass whose keys it holds: the pass and a hash of its key
    values (a collision only adds a candidate pair, which the comparisons then judge)."""
    source = ", source" if link else ""
    selects = [
        f"""select {index}::tinyint as pass, hash({index}, {", ".join(keys)}) as block, rid,
            is_new{source} from {records} where {" and ".join(f"{k} is not null" for k in keys)}"""
        for index, keys in enumerate(settings.blocking)
    ]
    return "\nunion all\n".join(selects)


def _stage_candidate_pairs(
    con: duckdb.DuckDBPyConnection, records: str, settings: ModelSettings, link: bool
) -> None:
    """Temp table ``pairs(left_rid, right_rid, passes)``: pairs with a new record that agree on
    every key of some blocking pass; a key value held by more than ``max_block_size`` records
    (a city's only postcode) blocks nothing. Blocks of one record (most of them: addresses,
    emails) are left out before the self-join."""
    keys = _block_keys_sql(records, settings, link)
    (has_old,) = con.execute(f"select count(*) > 0 from {records} where not is_new").fetchone()
    if has_old:  # an incremental run: only the blocks of the new records matter
        new_records = f"(select * from {records} where is_new)"
        new_blocks = _block_keys_sql(new_records, settings, link)
        keys = f"select * from ({keys}) semi join (select block from ({new_blocks})) using (block)"
    con.execute(f"create or replace temp table _block_keys as {keys}")
    con.execute(
        f"""create or replace temp table _blocks as select * from _block_keys
        semi join (
            select block from _block_keys group by block
            having count(*) between 2 and {settings.max_block_size} and bool_or(is_new)
        ) using (block)"""
    )
    cross = " and n.source <> a.source" if link else ""
    con.execute(
        f"""create or replace temp table pairs as
        select least(n.rid, a.rid) as left_rid, greatest(n.rid, a.rid) as right_rid,
            bit_or(1::bigint << n.pass) as passes
        from _blocks as n join _blocks as a on n.block = a.block
        where n.is_new and n.rid <> a.rid{cross} and (not a.is_new or n.rid < a.rid)
        group by all"""
    )
    for table in ("_block_keys", "_blocks"):
        con.execute(f"drop table {table}")


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


def _score(
    con: duckdb.DuckDBPyConnection, model: FellegiSunterModel, settings: ModelSettings
) -> None:
    """Temp table ``scored``: the candidates with their match probability and corroboration.

    The level part of the log2 odds is computed once per comparison pattern (a few thousand)
    and joined to the pairs (millions); only the term-frequency part is computed per pair."""
    gammas = ", ".join(f"g_{c}" for c in settings.comparisons)
    con.execute(
        f"""create or replace temp table _patterns as
        select *, {model.log2_odds_sql()} as log2_odds,
            {model.agreement_sql(settings.auto_merge_needs)} as is_corroborated
        from (select distinct {gammas} from candidates)"""
    )
    con.execute(
        f"""create or replace temp table scored as
        select c.* exclude (passes, {", ".join(f"tf_{c}" for c in TF_COLUMNS)}),
            1 / (1 + pow(2, -(p.log2_odds + {model.term_frequency_sql(TF_COLUMNS)})))
                as match_probability,
            p.is_corroborated
        from candidates as c join _patterns as p using ({gammas})"""
    )


def score_candidates(
    con: duckdb.DuckDBPyConnection,
    records: str,
    settings: ModelSettings,
    model: FellegiSunterModel | None = None,
    link_sources: tuple[str, str] | None = None,
) -> LinkageResult:
    """Block, compare and score; estimate the model first unless one is given.

    Leaves temp table ``scored(left_rid, right_rid, g_<column>…, match_probability,
    is_corroborated)`` (``rid`` numbers the records, ``left_rid < right_rid``)."""
    comparisons = settings.comparisons
    step = StepTimer("person match")
    step("blocking", _stage_candidate_pairs, con, records, settings, bool(link_sources))
    step(
        "comparisons",
        con.execute,
        f"""create or replace temp table candidates as
        select p.left_rid, p.right_rid, p.passes, {gamma_select(comparisons)},
            {", ".join(f"greatest(l.tf_{c}, r.tf_{c}) as tf_{c}" for c in TF_COLUMNS)}
        from pairs as p
        join {records} as l on l.rid = p.left_rid
        join {records} as r on r.rid = p.right_rid""",
    )
    if model is None:
        u = step("u", estimate_u, con, records, comparisons, settings.random_pairs, link_sources)
        sessions = _training_sessions(settings)
        model = step(
            "EM",
            estimate_model, con, "candidates", comparisons, u, settings.em_iterations, sessions,
        )  # fmt: skip
    step("scoring", _score, con, model, settings)
    (count,) = con.execute("select count(*) from scored").fetchone()
    for table in ("pairs", "candidates", "_patterns"):  # free the memory for the steps that follow
        con.execute(f"drop table {table}")
    return LinkageResult(count, model)


def keyed_pairs_sql(pairs: str, records: str, where: str = "true") -> str:
    """SQL of the rows of ``pairs`` (by ``left_rid``, ``right_rid``) that pass ``where``, with
    the record keys in place of the numbers (``left_key < right_key``)."""
    return f"""select least(l.record_key, r.record_key) as left_key,
            greatest(l.record_key, r.record_key) as right_key, p.* exclude (left_rid, right_rid)
        from (select * from {pairs} where {where}) as p
        join {records} as l on l.rid = p.left_rid
        join {records} as r on r.rid = p.right_rid"""


def one_to_one(pairs: list[tuple[str, str, float]]) -> list[tuple[str, str, float]]:
    """Keep each record in at most one pair, best probability first (ties by keys)."""
    used: set[str] = set()
    kept = []
    for left, right, probability in sorted(pairs, key=lambda p: (-p[2], p[0], p[1])):
        if left not in used and right not in used:
            used.update((left, right))
            kept.append((left, right, probability))
    return kept
