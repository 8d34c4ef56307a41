"""Guarded clustering: union–find over links in priority order, refusing links that over-merge.

A link is refused (and the refusal recorded) when the merged customer would hold more distinct
values of a limited identifier type than allowed — e.g. two CRM ids — unless its rule may join
CRM records and those records were compared by the model without contradicting each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from identity.config import Guards

CRM_ID = "crm_customer_id"


@dataclass(frozen=True)
class Link:
    """Evidence that two records are one person."""

    left: str
    right: str
    rule: str
    score: float


@dataclass(frozen=True)
class GuardEvent:
    """A link that a guard refused."""

    guard: str
    identifier_type: str
    rule: str
    left: str
    right: str
    detail: str


@dataclass
class _Group:
    size: int = 1
    values: dict[str, set[str]] = field(default_factory=dict)
    crm_records: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PairEvidence:
    """Person-record pairs the model compared, and those whose names or birth dates disagree."""

    compared: frozenset[tuple[str, str]]
    contradicted: frozenset[tuple[str, str]]


class GuardedClusters:
    """Union–find whose groups remember their limited identifier values."""

    def __init__(self, guards: Guards, evidence: PairEvidence) -> None:
        self.guards = guards
        self.evidence = evidence
        self.parent: dict[str, str] = {}
        self.groups: dict[str, _Group] = {}
        self.events: list[GuardEvent] = []

    def add(self, record_key: str, limited: Iterable[tuple[str, str]] = ()) -> None:
        """Add a record with its values of limited identifier types (``(type, value)``)."""
        self.parent[record_key] = record_key
        group = _Group()
        for id_type, value in limited:
            group.values.setdefault(id_type, set()).add(value)
            if id_type == CRM_ID:
                group.crm_records.append(record_key)
        self.groups[record_key] = group

    def find(self, key: str) -> str:
        """Root of the record's group."""
        parent = self.parent
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def _corroborated(self, a: _Group, b: _Group) -> bool:
        found = False
        for left in a.crm_records:
            for right in b.crm_records:
                pair = (left, right) if left < right else (right, left)
                if pair in self.evidence.contradicted:
                    return False
                found = found or pair in self.evidence.compared
        return found

    def _refusal(self, link: Link, a: _Group, b: _Group) -> GuardEvent | None:
        for id_type, limit in self.guards.max_distinct_per_cluster.items():
            left, right = a.values.get(id_type), b.values.get(id_type)
            if not left or not right or len(left | right) <= limit:
                continue
            if (
                id_type == CRM_ID
                and link.rule in self.guards.may_join_crm_records
                and self._corroborated(a, b)
            ):
                continue
            detail = f"would hold {len(left | right)} distinct {id_type} values (max {limit})"
            return GuardEvent(
                "max_distinct_per_cluster", id_type, link.rule, link.left, link.right, detail
            )
        return None

    def link(self, link: Link) -> bool:
        """Merge the two records' groups unless a guard refuses; True when they are one group."""
        root_a, root_b = self.find(link.left), self.find(link.right)
        if root_a == root_b:
            return True
        a, b = self.groups[root_a], self.groups[root_b]
        event = self._refusal(link, a, b)
        if event is not None:
            self.events.append(event)
            return False
        if a.size < b.size:
            root_a, root_b, a, b = root_b, root_a, b, a
        self.parent[root_b] = root_a
        a.size += b.size
        for id_type, values in b.values.items():
            a.values.setdefault(id_type, set()).update(values)
        a.crm_records.extend(b.crm_records)
        del self.groups[root_b]
        return True

    def components(self) -> dict[str, list[str]]:
        """Root → sorted member record keys."""
        members: dict[str, list[str]] = {}
        for key in self.parent:
            members.setdefault(self.find(key), []).append(key)
        return {root: sorted(keys) for root, keys in members.items()}


def cluster(
    records: dict[str, list[tuple[str, str]]],
    links: list[Link],
    rule_order: tuple[str, ...],
    guards: Guards,
    evidence: PairEvidence,
) -> tuple[dict[str, list[str]], list[GuardEvent]]:
    """Cluster records by links taken in rule priority order, best score first."""
    clusters = GuardedClusters(guards, evidence)
    for key, limited in records.items():
        clusters.add(key, limited)
    rank = {rule: i for i, rule in enumerate(rule_order)}
    ordered = sorted(
        (x for x in links if x.left in clusters.parent and x.right in clusters.parent),
        key=lambda x: (rank.get(x.rule, len(rank)), -x.score, x.left, x.right),
    )
    for link in ordered:
        clusters.link(link)
    return clusters.components(), clusters.events
