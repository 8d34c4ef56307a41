"""The up-front plan: per-person counts, ids and dirt placements, cut into chunks of persons.

Everything random that needs a global view (id numbering, order numbering, which events get
corrupted) is decided here once, with numpy, in O(persons) memory; chunks then generate rows and
events independently from their own seeded RNG.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cdp.generate.dirt import MALFORMED_CRM_KINDS, MALFORMED_EVENT_KINDS, MALFORMED_ORDER_KINDS

CHUNK_PERSONS = 2000
CHUNK_EVENTS = 100_000
CRM_BROWSE_SHARE = 0.85  # CRM persons who visit the website in the window
ANON_SHARE_OF_VISITORS = 0.40
DUP_SHARE = 0.10
HISTORY_SHARE = 0.05
BUYER_SHARE = 0.60
WEB_ORDER_SHARE = 0.70  # of orders by website visitors, placed on the site
PURCHASE_SESSION_EVENTS = 6  # events reserved per web order (a session ending in a purchase)


@dataclass
class ChunkTask:
    """Everything one chunk needs: its person ranges and the planned dirt that falls into it."""

    index: int
    seed: int
    window: tuple[int, int]
    crm_range: tuple[int, int]
    anon_range: tuple[int, int]
    customers: int
    crm_id: np.ndarray
    dup_id: np.ndarray
    history: np.ndarray
    n_orders: np.ndarray
    web_orders: np.ndarray
    order_start: np.ndarray
    crm_budget: np.ndarray
    anon_budget: np.ndarray
    malformed_crm: list[tuple[int, str, int]] = field(default_factory=list)
    malformed_orders: list[tuple[int, str, int]] = field(default_factory=list)
    event_dirt: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    malformed_intent: list[int] = field(default_factory=list)
    malformed_consent: list[tuple[int, str]] = field(default_factory=list)
    erasures: dict[int, int] = field(default_factory=dict)


@dataclass
class Plan:
    """Global sizes plus the list of chunk tasks."""

    customers: int
    anonymous: int
    crm_ids: int
    tasks: list[ChunkTask]


def _budgets(rng: np.random.Generator, n: int, events: int) -> np.ndarray:
    """Events per visitor: heavy-tailed, at least one each, summing to about ``events``."""
    w = rng.lognormal(0.0, 1.0, n)
    w = np.minimum(w, w.mean() * 40)
    x = w / w.sum() * events
    b = np.floor(x).astype(np.int64)
    short = events - int(b.sum())  # largest remainders get the leftover events
    if short > 0:
        b[np.argsort(b - x, kind="stable")[:short]] += 1
    return np.maximum(b, 1)


def make_plan(customers: int, events: int, seed: int, window: tuple[int, int]) -> Plan:
    """Decide ids, counts and dirt placements for the whole run."""
    rng = np.random.default_rng(seed)
    c = customers
    anon = max(
        1, round(c * CRM_BROWSE_SHARE * ANON_SHARE_OF_VISITORS / (1 - ANON_SHARE_OF_VISITORS))
    )
    has_dup = rng.random(c) < DUP_SHARE
    history = rng.random(c) < HISTORY_SHARE
    n_dup = int(has_dup.sum())
    n_bad_crm = max(2, round(0.002 * (c + n_dup + int(history.sum()))))
    total_ids = c + n_dup + n_bad_crm
    perm = rng.permutation(total_ids) + 1
    crm_id = perm[:c]
    dup_id = np.zeros(c, dtype=np.int64)
    dup_id[has_dup] = perm[c : c + n_dup]
    bad_ids = perm[c + n_dup :]

    browses = rng.random(c) < CRM_BROWSE_SHARE
    buyer = rng.random(c) < BUYER_SHARE
    n_orders = np.where(buyer, np.minimum(rng.zipf(2.2, c), 40), 0).astype(np.int64)
    web_orders = np.where(browses, rng.binomial(n_orders, WEB_ORDER_SHARE), 0)
    reserve = web_orders * PURCHASE_SESSION_EVENTS
    if reserve.sum() > 0.5 * events:  # tiny event counts: fewer web orders, not more events
        web_orders = np.floor(web_orders * (0.5 * events / reserve.sum())).astype(np.int64)
        reserve = web_orders * PURCHASE_SESSION_EVENTS
    budgets = np.zeros(c + anon, dtype=np.int64)
    visitors = np.concatenate([np.flatnonzero(browses), np.arange(c, c + anon)])
    budgets[visitors] = _budgets(rng, len(visitors), max(1, events - int(reserve.sum())))
    budgets[:c] += reserve
    order_start = np.concatenate([[1], np.cumsum(n_orders)[:-1] + 1]).astype(np.int64)
    n_valid_orders = int(n_orders.sum())

    # dirt placements
    bad_crm = [
        (int(p), MALFORMED_CRM_KINDS[i % len(MALFORMED_CRM_KINDS)], int(bad_ids[i]))
        for i, p in enumerate(rng.integers(0, c, n_bad_crm))
    ]
    n_bad_orders = max(4, round(0.002 * n_valid_orders))
    bad_orders = [
        (int(p), MALFORMED_ORDER_KINDS[i % len(MALFORMED_ORDER_KINDS)], n_valid_orders + 1 + i)
        for i, p in enumerate(rng.integers(0, c, n_bad_orders))
    ]
    total_budget = int(budgets.sum())
    n_bad_ev = max(4, round(0.0002 * total_budget))
    n_dup_ev = max(2, round(0.0005 * total_budget))
    n_late = max(3, round(0.001 * total_budget))
    picks = rng.choice(total_budget, n_bad_ev + n_dup_ev + n_late, replace=False)
    kinds = (
        [MALFORMED_EVENT_KINDS[i % len(MALFORMED_EVENT_KINDS)] for i in range(n_bad_ev)]
        + ["duplicate"] * n_dup_ev
        + ["late"] * n_late
    )
    ends = np.cumsum(budgets)
    owners = np.searchsorted(ends, picks, side="right")
    event_dirt: dict[int, list[tuple[int, str]]] = {}
    for pick, owner, kind in zip(picks.tolist(), owners.tolist(), kinds, strict=True):
        ordinal = pick - (int(ends[owner - 1]) if owner else 0)
        event_dirt.setdefault(owner, []).append((ordinal, kind))

    n_intent_bad = max(1, round(0.002 * c * 0.3 * 2.5))
    bad_intent = sorted(int(p) for p in rng.integers(0, c, n_intent_bad))
    n_consent_bad = max(2, round(0.002 * c * 0.5 * 3))
    bad_consent = [
        (int(p), ("status_maybe", "no_identifier")[i % 2])
        for i, p in enumerate(rng.integers(0, c, n_consent_bad))
    ]
    n_erase = max(1, round(0.001 * c))
    erasures = {int(p): i + 1 for i, p in enumerate(sorted(rng.choice(c, n_erase, replace=False)))}

    # chunks hold at most CHUNK_PERSONS persons and about CHUNK_EVENTS events (bounded memory)
    n_chunks = max(-(-(c + anon) // CHUNK_PERSONS), -(-total_budget // CHUNK_EVENTS))
    n_chunks = max(1, min(n_chunks, c, anon))
    cb = np.linspace(0, c, n_chunks + 1).round().astype(np.int64)
    ab = np.linspace(c, c + anon, n_chunks + 1).round().astype(np.int64)
    tasks = []
    for k in range(n_chunks):
        c0, c1, a0, a1 = int(cb[k]), int(cb[k + 1]), int(ab[k]), int(ab[k + 1])
        tasks.append(
            ChunkTask(
                index=k,
                seed=seed,
                window=window,
                crm_range=(c0, c1),
                anon_range=(a0, a1),
                customers=c,
                crm_id=crm_id[c0:c1],
                dup_id=dup_id[c0:c1],
                history=history[c0:c1],
                n_orders=n_orders[c0:c1],
                web_orders=web_orders[c0:c1],
                order_start=order_start[c0:c1],
                crm_budget=budgets[c0:c1],
                anon_budget=budgets[a0:a1],
            )
        )

    def task_of(p: int) -> ChunkTask:
        bounds = cb if p < c else ab
        return tasks[min(int(np.searchsorted(bounds, p, side="right")) - 1, n_chunks - 1)]

    for t in bad_crm:
        task_of(t[0]).malformed_crm.append(t)
    for t in bad_orders:
        task_of(t[0]).malformed_orders.append(t)
    for p in sorted(event_dirt):
        task_of(p).event_dirt[p] = sorted(event_dirt[p])
    for p in bad_intent:
        task_of(p).malformed_intent.append(p)
    for t in bad_consent:
        task_of(t[0]).malformed_consent.append(t)
    for p, r in erasures.items():
        task_of(p).erasures[p] = r
    return Plan(customers=c, anonymous=anon, crm_ids=total_ids, tasks=tasks)
