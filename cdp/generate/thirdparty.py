"""Third-party intent rows (Bombora / 6sense style) keyed by email and company domain."""

from __future__ import annotations

import random

from cdp.generate import vocab
from cdp.generate.clock import iso_s
from cdp.generate.dirt import mixed_case

INTENT_HEADER = ["email", "company_domain", "topic", "intent_score", "observed_at", "provider"]
INTENT_SHARE = 0.30


def _row(email: str, rng: random.Random, window: tuple[int, int], score: str | None) -> list[str]:
    domain = rng.choice(vocab.COMPANY_DOMAINS) if rng.random() < 0.3 else ""
    if score is None:
        score = f"{rng.randint(0, 1000) / 10:.1f}"
    return [
        email,
        domain,
        rng.choice(vocab.INTENT_TOPICS),
        score,
        iso_s(rng.randint(window[0], window[1] - 1)),
        rng.choice(("bombora", "6sense")),
    ]


def intent_rows(email: str, rng: random.Random, window: tuple[int, int]) -> list[list[str]]:
    """1-4 intent signals for a known person's email (sometimes mixed case)."""
    rows = []
    for _ in range(rng.randint(1, 4)):
        shown = mixed_case(email, rng) if rng.random() < 0.2 else email
        rows.append(_row(shown, rng, window, None))
    return rows


def unknown_intent_row(tag: str, rng: random.Random, window: tuple[int, int]) -> list[str]:
    """A signal for an email nobody else has (must not create a customer)."""
    first, last = rng.choice(vocab.FIRST_NAMES).lower(), rng.choice(vocab.LAST_NAMES).lower()
    return _row(f"{first}.{last}.i{tag}@{rng.choice(vocab.EMAIL_DOMAINS)}", rng, window, None)


def malformed_intent_row(email: str, rng: random.Random, window: tuple[int, int]) -> list[str]:
    """A row whose intent_score is not a number."""
    return _row(email, rng, window, "high")
