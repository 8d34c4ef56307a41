"""Accuracy of identity resolution against ground truth: precision, recall and F1 over record
pairs, both for the model's pairwise decisions and after clustering, plus the seconds taken."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import duckdb

from identity.config import IdentitySettings, load_identity_settings
from identity.datasets import load_febrl4
from identity.graph import Link, PairEvidence, cluster
from identity.linkage import keyed_pairs_sql, one_to_one, prepare_records, score_candidates
from identity.normalize import install_macros


def _scores(tp: int, predicted: int, true: int) -> dict[str, float]:
    precision = tp / predicted if predicted else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 5), "recall": round(recall, 5), "f1": round(f1, 5),
            "true_pairs": true, "predicted_pairs": predicted}  # fmt: skip


def pair_metrics(con: duckdb.DuckDBPyConnection, pairs: str, truth: str) -> dict[str, float]:
    """Scores of predicted pairs ``(left_key, right_key)`` against ``truth(record_key,
    entity_id)``."""
    tp, predicted = con.execute(
        f"""select count(*) filter (where a.entity_id = b.entity_id), count(*)
        from (select distinct least(left_key, right_key) as l, greatest(left_key, right_key) as r
              from {pairs}) as p
        join {truth} as a on a.record_key = p.l join {truth} as b on b.record_key = p.r"""
    ).fetchone()
    (true,) = con.execute(
        f"select coalesce(sum(n * (n - 1) / 2), 0)::bigint from "
        f"(select count(*) as n from {truth} group by entity_id)"
    ).fetchone()
    return _scores(tp, predicted, true)


def cluster_metrics(con: duckdb.DuckDBPyConnection, clusters: str, truth: str) -> dict[str, float]:
    """Pairwise scores of ``clusters(record_key, cluster_id)`` against ``truth``."""
    tp, predicted, true = con.execute(
        f"""with j as (select c.cluster_id, t.entity_id from {clusters} as c
                       join {truth} as t using (record_key)),
        both_ as (select count(*) as n from j group by cluster_id, entity_id),
        pred as (select count(*) as n from j group by cluster_id),
        tru as (select count(*) as n from j group by entity_id)
        select (select sum(n * (n - 1) / 2) from both_)::bigint,
               (select sum(n * (n - 1) / 2) from pred)::bigint,
               (select sum(n * (n - 1) / 2) from tru)::bigint"""
    ).fetchone()
    return _scores(tp or 0, predicted or 0, true or 0)


def evaluate_febrl4(settings: IdentitySettings | None = None) -> dict:
    """Link FEBRL4's two files (one-to-one) and score the result against its truth."""
    settings = settings or load_identity_settings()
    started = time.perf_counter()
    con = duckdb.connect()
    install_macros(con)
    dataset = load_febrl4(con)
    prepare_records(con, f"select *, true as is_new from ({dataset.records_sql})", "records")
    result = score_candidates(con, "records", settings.model, link_sources=dataset.link_sources)
    review, auto = settings.model.review_at, settings.model.auto_merge_at
    con.execute(
        "create temp table graded as "
        + keyed_pairs_sql("scored", "records", f"match_probability >= {review!r}")
    )
    pairs = con.execute("select left_key, right_key, match_probability from graded").fetchall()
    corroborated = set(
        con.execute("select left_key, right_key from graded where is_corroborated").fetchall()
    )
    links = [
        Link(a, b, "person_match", p)
        for a, b, p in one_to_one(pairs)
        if p >= auto and (a, b) in corroborated
    ]
    con.execute("create temp table auto_pairs (left_key VARCHAR, right_key VARCHAR)")
    con.executemany("insert into auto_pairs values (?, ?)", [(x.left, x.right) for x in links])
    keys = [k for (k,) in con.execute("select record_key from records").fetchall()]
    evidence = PairEvidence(frozenset(), frozenset())
    components, _ = cluster({k: [] for k in keys}, links, settings.rules, settings.guards, evidence)
    con.execute("create temp table clusters (record_key VARCHAR, cluster_id VARCHAR)")
    con.executemany(
        "insert into clusters values (?, ?)",
        [(k, root) for root, members in components.items() for k in members],
    )
    report = {
        "dataset": "febrl4",
        "records": len(keys),
        "candidate_pairs": result.candidates,
        "pairwise": pair_metrics(con, "auto_pairs", "dataset_truth"),
        "clusters": cluster_metrics(con, "clusters", "dataset_truth"),
    }
    con.close()
    return {**report, "seconds": round(time.perf_counter() - started, 2)}


def evaluate_folder(folder: Path, settings: IdentitySettings | None = None) -> dict:
    """Resolve the CRM customers of a ``cdp generate`` folder in a scratch warehouse (the real
    pipeline: ingestion, then identity) and score the CRM records against the truth."""
    from cdp.settings import load_settings
    from cdp.warehouse import connect
    from identity.datasets import truth_sql
    from identity.resolve import resolve_identities
    from ingestion import ingest_entity

    folder = Path(folder)
    landing = folder / "landing" if (folder / "landing").is_dir() else folder
    truth_file = truth_sql(landing)  # fails early with a clear message on a wrong folder
    with tempfile.TemporaryDirectory(prefix="cdp-identity-eval-") as home:
        cdp_settings = load_settings({"CDP_HOME": home, "CDP_LANDING": str(landing)})
        cdp_settings.ensure_dirs()
        ingest_entity(cdp_settings, "crm/customers")
        started = time.perf_counter()
        with connect(cdp_settings) as con:
            result = resolve_identities(con, "evaluate", settings)
            seconds = time.perf_counter() - started
            con.execute(f"create temp table truth as {truth_file}")
            con.execute(
                """create temp table clusters as select 'crm_customer_id:' || source_record_id
                as record_key, customer_id as cluster_id from identity.clusters"""
            )
            report = {
                "dataset": str(folder),
                "records": result.records,
                "candidate_pairs": result.candidate_pairs,
                "pairwise": pair_metrics(
                    con,
                    "(select * from identity.edges where rule = 'person_match')",
                    "truth",
                ),
                "clusters": cluster_metrics(con, "clusters", "truth"),
            }
    return {**report, "seconds": round(seconds, 2)}


def evaluate_dataset(dataset: str) -> dict:
    """``febrl4`` or a folder written by ``cdp generate``."""
    if dataset == "febrl4":
        return evaluate_febrl4()
    folder = Path(dataset)
    if not folder.is_dir():
        raise FileNotFoundError(f"--dataset {dataset!r}: not 'febrl4' and not a folder")
    return evaluate_folder(folder)
