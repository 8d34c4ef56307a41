"""The Fellegi–Sunter model: u from random record pairs, m by EM on blocked pairs with u fixed.

Estimating u on blocked pairs makes "same postcode" look like evidence of nothing (every blocked
pair shares it); random pairs give the chance agreement rate that u stands for. The EM step then
only learns m and the share of matches among the blocked pairs (``lambda_``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import duckdb
import numpy as np

from identity.comparisons import gamma_select, level_count

#: Floor for probabilities, so that log weights stay finite.
_EPS = 1e-6


@dataclass(frozen=True)
class FellegiSunterModel:
    """Per comparison level m and u probabilities, plus the prior share of matches."""

    comparisons: dict[str, str]
    m: dict[str, list[float]]
    u: dict[str, list[float]]
    lambda_: float

    def to_json(self) -> str:
        """The model as JSON text."""
        return json.dumps(
            {"comparisons": self.comparisons, "m": self.m, "u": self.u, "lambda": self.lambda_},
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> FellegiSunterModel:
        """A model from ``to_json`` text."""
        data = json.loads(text)
        return cls(data["comparisons"], data["m"], data["u"], data["lambda"])

    def weights(self) -> dict[str, list[float]]:
        """log2(m / u) per comparison level (the evidence one level carries)."""
        return {
            c: [math.log2(mi / ui) for mi, ui in zip(self.m[c], self.u[c], strict=True)]
            for c in self.comparisons
        }

    def log2_odds_sql(self) -> str:
        """SQL of the posterior log2 odds of a match from the ``g_<column>`` levels alone (one
        value per comparison pattern; ``term_frequency_sql`` adds the value-specific part)."""
        terms = [f"{math.log2(self.lambda_ / (1 - self.lambda_))!r}"]
        for column, levels in self.weights().items():
            whens = " ".join(f"when {lvl} then {w!r}" for lvl, w in enumerate(levels))
            terms.append(f"(case g_{column} {whens} else 0 end)")
        return " + ".join(terms)

    def term_frequency_sql(self, tf_columns: tuple[str, ...]) -> str:
        """SQL of the log2 odds to add for exact matches on ``tf_columns``: such a match weighs
        log2(m / share of records with that value) in place of log2(m / u)."""
        terms = []
        for column in (c for c in tf_columns if c in self.comparisons):
            top, u_top = len(self.m[column]) - 1, self.u[column][-1]
            share = f"coalesce(tf_{column}, {u_top!r})"
            terms.append(
                f"(case when g_{column} = {top} then log2({u_top!r} / {share}) else 0 end)"
            )
        return " + ".join(terms) or "0"

    def agreement_sql(self, columns: tuple[str, ...]) -> str:
        """SQL: true when the pair agrees on one of ``columns`` (a level of positive weight)."""
        weights = self.weights()
        terms = [
            f"g_{c} in ({', '.join(str(i) for i, w in enumerate(weights[c]) if w > 0)})"
            for c in columns
            if c in weights and any(w > 0 for w in weights[c])
        ]
        return "(" + (" or ".join(terms) or "false") + ")"


def _level_frequencies(
    con: duckdb.DuckDBPyConnection, pairs_sql: str, comparisons: dict[str, str]
) -> dict[str, list[float]]:
    """Share of each non-null level per comparison over the pairs of ``pairs_sql``."""
    con.execute(f"create or replace temp table _level_pairs as {pairs_sql}")
    out = {}
    for column, kind in comparisons.items():
        counts = dict(
            con.execute(
                f"select g_{column}, count(*) from _level_pairs where g_{column} >= 0 group by 1"
            ).fetchall()
        )
        levels = [counts.get(level, 0) for level in range(level_count(kind))]
        total = sum(levels)
        out[column] = [max(n / total, _EPS) if total else 1.0 / len(levels) for n in levels]
    con.execute("drop table _level_pairs")
    return out


def estimate_u(
    con: duckdb.DuckDBPyConnection,
    records: str,
    comparisons: dict[str, str],
    pairs: int,
    link_sources: tuple[str, str] | None = None,
) -> dict[str, list[float]]:
    """u: level frequencies over record pairs drawn at random (across the two sources of a link
    task, else within all records), with a fixed seed so that runs repeat."""
    side = max(2, math.isqrt(pairs))
    left_where = f"where source = '{link_sources[0]}'" if link_sources else ""
    right_where = f"where source = '{link_sources[1]}'" if link_sources else ""
    sample = "(select * from {t} {w} order by hash(record_key || '{salt}') limit {n})"
    pairs_sql = f"""
        select {gamma_select(comparisons)}
        from {sample.format(t=records, w=left_where, salt="l", n=side)} as l
        join {sample.format(t=records, w=right_where, salt="r", n=side)} as r
          on l.record_key <> r.record_key
    """
    return _level_frequencies(con, pairs_sql, comparisons)


def _pattern_counts(
    con: duckdb.DuckDBPyConnection, candidates: str, comparisons: dict[str, str]
) -> tuple[np.ndarray, np.ndarray]:
    columns = ", ".join(f"g_{c}" for c in comparisons)
    rows = con.execute(f"select {columns}, count(*) from {candidates} group by all").fetchall()
    if not rows:
        return np.zeros((0, len(comparisons)), dtype=np.int64), np.zeros(0)
    data = np.array(rows, dtype=np.int64)
    return data[:, :-1], data[:, -1].astype(float)


def _initial_m(kind: str) -> list[float]:
    """Start of EM: agreement likely for matches, rising with the level."""
    raw = [2.0**level for level in range(level_count(kind))]
    return [value / sum(raw) for value in raw]


def _expectation(
    patterns: np.ndarray, counts: np.ndarray, columns: list[str], m: dict, u: dict, lambda_: float
) -> np.ndarray:
    """Expected number of matches among the pairs of each pattern."""
    log_odds = np.full(len(counts), math.log(lambda_ / (1 - lambda_)))
    for j, column in enumerate(columns):
        level = patterns[:, j]
        known = level >= 0
        safe = np.where(known, level, 0)
        log_odds += np.where(known, np.log(np.asarray(m[column]) / np.asarray(u[column]))[safe], 0)
    odds = np.exp(np.clip(log_odds, -700, 700))
    return counts * odds / (1 + odds)


def _em(
    patterns: np.ndarray, counts: np.ndarray, columns: list[str], m: dict, u: dict, iterations: int
) -> tuple[dict[str, list[float]], float]:
    """EM for m (of ``columns``) and the match share, u fixed; unobserved columns keep m = u."""
    m, lambda_ = dict(m), 0.1
    for _ in range(iterations):
        share = _expectation(patterns, counts, columns, m, u, lambda_)
        lambda_ = float(np.clip(share.sum() / counts.sum(), _EPS, 1 - _EPS))
        for j, column in enumerate(columns):
            level = patterns[:, j]
            sums = [share[level == lvl].sum() for lvl in range(len(m[column]))]
            total = sum(sums)
            m[column] = [max(s / total, _EPS) for s in sums] if total > 0 else u[column]
    return m, lambda_


def estimate_model(
    con: duckdb.DuckDBPyConnection,
    candidates: str,
    comparisons: dict[str, str],
    u: dict[str, list[float]],
    iterations: int,
    sessions: list[tuple[str, frozenset[str]]],
) -> FellegiSunterModel:
    """EM for m and the match share over the comparison patterns of the candidate pairs.

    Pairs found by one blocking pass agree on its key columns by construction, so m of those
    columns is learnt elsewhere: each *session* is ``(filter SQL, blocked columns)`` and learns m
    of the other columns on the pairs of one pass; each column's m is the mean over the sessions
    that learnt it (u where none did). The match share is then fitted on all pairs."""
    learnt: dict[str, list[list[float]]] = {c: [] for c in comparisons}
    for where, blocked in sessions:
        free = [c for c in comparisons if c not in blocked]
        patterns, counts = _pattern_counts(con, f"(select * from {candidates} where {where})", free)
        if not counts.sum():
            continue
        m, _ = _em(patterns, counts, free, {c: _initial_m(comparisons[c]) for c in free}, u,
                   iterations)  # fmt: skip
        for c in free:
            if (patterns[:, free.index(c)] >= 0).any():
                learnt[c].append(m[c])
    m = {c: [float(x) for x in np.mean(v, axis=0)] if v else u[c] for c, v in learnt.items()}
    columns = list(comparisons)
    patterns, counts = _pattern_counts(con, candidates, comparisons)
    lambda_ = 0.1
    for _ in range(iterations if counts.sum() else 0):
        share = _expectation(patterns, counts, columns, m, u, lambda_)
        lambda_ = float(np.clip(share.sum() / counts.sum(), _EPS, 1 - _EPS))
    return FellegiSunterModel(dict(comparisons), m, dict(u), lambda_)
