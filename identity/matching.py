"""Probabilistic person matching in the warehouse: score touched CRM records against all, then
file each pair in its band — auto-merge link, review queue (with the evidence) or no merge."""

from __future__ import annotations

from pathlib import Path

import duckdb

from identity.config import IdentitySettings
from identity.linkage import keyed_pairs_sql, prepare_records, score_candidates
from identity.model import FellegiSunterModel
from identity.store import load_model, save_model

#: Below this many person records the model is not fitted; the shipped default is used.
MIN_RECORDS_TO_FIT = 2000
DEFAULT_MODEL = Path(__file__).with_name("default_model.json")
#: A pair whose levels here are 0 (clearly different) are different people, whatever else agrees.
CONTRADICTING = ("first_name", "date_of_birth")


def default_model() -> FellegiSunterModel:
    """The model shipped with MicroCDP, fitted on 1M generated records by
    ``python -m bench.identity_scale --write-default-model``."""
    return FellegiSunterModel.from_json(DEFAULT_MODEL.read_text(encoding="utf-8"))


def _model_for(
    con: duckdb.DuckDBPyConnection, settings: IdentitySettings, refit: bool
) -> FellegiSunterModel | None:
    """The model to score with; None means: fit one on this run's candidates."""
    if not refit:
        stored = load_model(con, settings.digest)
        if stored is not None:
            return stored
    (records,) = con.execute("select count(*) from identity.person_records").fetchone()
    return None if records >= MIN_RECORDS_TO_FIT else default_model()


def _evidence_sql(model: FellegiSunterModel) -> str:
    weights = model.weights()
    parts = []
    for column in model.comparisons:
        whens = " ".join(f"when {i} then {w:.3f}" for i, w in enumerate(weights[column]))
        parts.append(
            f"'{column}', json_object('level', g_{column}, 'weight', "
            f"case g_{column} {whens} else 0 end)"
        )
    return "json_object(" + ", ".join(parts) + ")"


def match_people(
    con: duckdb.DuckDBPyConnection, settings: IdentitySettings, run_id: str, refit: bool
) -> int:
    """Score touched person records against all; write links, review rows and pair evidence."""
    con.execute(
        """create or replace temp table touched_rids as select rid from identity.person_records
        semi join touched using (record_key)"""
    )
    (touched_people,) = con.execute("select count(*) from touched_rids").fetchone()
    if not touched_people:  # e.g. a micro-batch of analytics events only
        return 0
    con.execute(
        """delete from identity.review_queue where left_key in (select record_key from touched)
        or right_key in (select record_key from touched)"""
    )
    con.execute(
        """delete from identity.candidate_pairs where left_rid in (select rid from touched_rids)
        or right_rid in (select rid from touched_rids)"""
    )
    stale = """select left_key, right_key from identity.edges where rule = 'person_match'
        and (left_key in (select record_key from touched)
             or right_key in (select record_key from touched))"""
    con.execute(f"insert into affected select left_key from ({stale}) "
                f"union select right_key from ({stale})")  # fmt: skip
    con.execute(
        """delete from identity.edges where rule = 'person_match'
        and (left_key in (select record_key from touched)
             or right_key in (select record_key from touched))"""
    )
    prepare_records(
        con,
        """select p.* exclude (raw_phone, country) replace (
                case when be.identifier_value is null then p.email end as email,
                case when bp.identifier_value is null then p.phone end as phone),
            p.record_key in (select record_key from touched) as is_new
        from identity.person_records as p
        left join identity.blocked_values as be
          on be.identifier_type = 'email' and be.identifier_value = p.email
        left join identity.blocked_values as bp
          on bp.identifier_type = 'phone' and bp.identifier_value = p.phone""",
        "link_records",
        derive_keys=False,
    )
    model = _model_for(con, settings, refit)
    result = score_candidates(con, "link_records", settings.model, model)
    if model is None:
        save_model(con, settings.digest, result.model)
    contradicted = " or ".join(
        f"g_{c} = 0" for c in CONTRADICTING if c in settings.model.comparisons
    )
    con.execute(
        f"""insert into identity.candidate_pairs
        select left_rid, right_rid, match_probability, {contradicted or "false"} from scored"""
    )
    _file_in_bands(con, settings, result.model, run_id)
    return result.candidates


def _file_in_bands(
    con: duckdb.DuckDBPyConnection,
    settings: IdentitySettings,
    model: FellegiSunterModel,
    run_id: str,
) -> None:
    """Auto-merge links for confident pairs that are the best match of one of their records;
    the rest of the grey zone (and confident runners-up) go to the review queue."""
    confident = keyed_pairs_sql(
        "scored", "link_records", "match_probability >= $auto and is_corroborated"
    )
    con.execute(
        f"""create or replace temp table _auto as
        with confident as ({confident}),
        both_ways as (
            select left_key as record_key, right_key as other, match_probability from confident
            union all
            select right_key, left_key, match_probability from confident
        ),
        best as (
            select record_key, other from both_ways
            qualify row_number() over (
                partition by record_key order by match_probability desc, other) = 1
        )
        select c.* from confident as c
        where (c.left_key, c.right_key) in (select (record_key, other) from best)
           or (c.right_key, c.left_key) in (select (record_key, other) from best)""",
        {"auto": settings.model.auto_merge_at},
    )
    con.execute(
        """insert into identity.edges (left_key, right_key, rule, score, run_id, evidence)
        select left_key, right_key, 'person_match', match_probability, $run, null from _auto""",
        {"run": run_id},
    )
    con.execute("insert into affected select left_key from _auto union select right_key from _auto")
    con.execute(
        f"""insert into identity.review_queue
        select left_key, right_key, match_probability, {_evidence_sql(model)}, $run
        from ({keyed_pairs_sql("scored", "link_records", "match_probability >= $review")})
        anti join _auto using (left_key, right_key)""",
        {"run": run_id, "review": settings.model.review_at},
    )
