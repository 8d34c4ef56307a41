"""Resolve source records into customers: apply the rules, cluster, assign stable customer ids."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pandas as pd

from identity.graph import connected_components
from identity.rules import RECORDS_SQL, RULES, LinkRule

#: Which kind of record anchors a customer id (a CRM record is the most durable).
_ANCHOR_PRIORITY = {"crm_customer_id": 0, "user_id": 1, "anonymous_id": 2}


@dataclass(frozen=True)
class ResolutionResult:
    """Counts of one identity run."""

    run_id: str
    records: int
    edges: int
    customers: int
    edges_by_rule: dict[str, int]


def _split_key(record_key: str) -> tuple[str, str]:
    """``crm_customer_id:C1`` → ``("crm_customer_id", "C1")``."""
    id_type, record_id = record_key.split(":", 1)
    return id_type, record_id


def customer_id_for(anchor_key: str) -> str:
    """Stable customer id derived from the cluster's anchor record key."""
    return "cus_" + hashlib.sha256(anchor_key.encode()).hexdigest()[:16]


def _anchor(keys: list[str]) -> str:
    return min(keys, key=lambda k: (_ANCHOR_PRIORITY[_split_key(k)[0]], k))


def _collect_edges(
    con: duckdb.DuckDBPyConnection,
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """Run every rule; return record edges (left, right, rule) and identifiers found."""
    edges: list[tuple[str, str, str]] = []
    identifiers: list[tuple[str, str, str]] = []  # record_key, identifier type, value
    for rule in RULES:
        pairs = con.execute(rule.sql).fetchall()
        if isinstance(rule, LinkRule):
            edges.extend((left, right, rule.name) for left, right in pairs)
            continue
        by_value: dict[str, list[str]] = defaultdict(list)
        for record_key, raw_value in pairs:
            value = rule.normalize(raw_value)
            if value is not None:
                by_value[value].append(record_key)
                identifiers.append((record_key, rule.identifier_type, value))
        for members in by_value.values():
            members = sorted(set(members))
            edges.extend((members[0], other, rule.name) for other in members[1:])
    return edges, identifiers


def _replace_identity_tables(
    con: duckdb.DuckDBPyConnection, frames: dict[str, pd.DataFrame]
) -> None:
    """Swap the contents of ``identity.<name>`` for each frame, all in one transaction."""
    con.execute("begin transaction")
    try:
        for name, frame in frames.items():
            con.register("_frame", frame)
            columns = ", ".join(frame.columns)
            con.execute(f"delete from identity.{name}")
            con.execute(f"insert into identity.{name} ({columns}) select {columns} from _frame")
            con.unregister("_frame")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def resolve_identities(con: duckdb.DuckDBPyConnection, run_id: str) -> ResolutionResult:
    """Rebuild ``identity.identifiers``, ``identity.edges`` and ``identity.clusters`` from raw."""
    records = con.execute(RECORDS_SQL).fetchall()
    record_keys = [f"{id_type}:{record_id}" for _, id_type, record_id in records]
    source_of = {f"{id_type}:{record_id}": source for source, id_type, record_id in records}
    edges, identifiers = _collect_edges(con)
    # Guard: a rule's query could name a key that is not a source record; such edges are dropped.
    edges = [e for e in edges if e[0] in source_of and e[1] in source_of]
    components = connected_components(record_keys, ((left, right) for left, right, _ in edges))

    members: dict[str, list[str]] = defaultdict(list)
    for key, root in components.items():
        members[root].append(key)
    customer_of = {}
    for keys in members.values():
        customer_id = customer_id_for(_anchor(keys))
        customer_of.update({key: customer_id for key in keys})

    resolved_at = datetime.now(UTC).replace(tzinfo=None)
    clusters = pd.DataFrame(
        [(source_of[k], *_split_key(k), customer_of[k], run_id) for k in sorted(record_keys)],
        columns=["source", "id_type", "source_record_id", "customer_id", "run_id"],
    )
    edge_frame = pd.DataFrame(edges, columns=["left_key", "right_key", "rule"])
    identifier_frame = pd.DataFrame(
        [(source_of[k], *_split_key(k), t, v, run_id) for k, t, v in identifiers if k in source_of],
        columns=[
            "source",
            "id_type",
            "source_record_id",
            "identifier_type",
            "identifier_value",
            "run_id",
        ],
    ).drop_duplicates()

    _replace_identity_tables(
        con,
        {
            "clusters": clusters.assign(resolved_at=resolved_at),
            "edges": edge_frame.assign(score=1.0, run_id=run_id),
            "identifiers": identifier_frame,
        },
    )

    by_rule: dict[str, int] = defaultdict(int)
    for _, _, rule in edges:
        by_rule[rule] += 1
    return ResolutionResult(run_id, len(record_keys), len(edges), len(members), dict(by_rule))
