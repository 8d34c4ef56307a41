"""Consent events (granted / denied / revoked per purpose) and privacy erasure requests."""

from __future__ import annotations

import random

from cdp.generate.clock import DAY, iso_s
from cdp.generate.dirt import mixed_case

CONSENT_HEADER = ["email", "crm_customer_id", "purpose", "status", "recorded_at", "source"]
ERASURE_HEADER = ["request_id", "email", "crm_customer_id", "requested_at"]
PURPOSES = ("email_marketing", "personalization", "advertising")
CONSENT_SHARE = 0.50


def _who(email: str, ids: list[str], rng: random.Random) -> tuple[str, str, str]:
    """(email, crm_customer_id, source) with one or both identifiers filled."""
    roll = rng.random()
    shown = mixed_case(email, rng) if rng.random() < 0.2 else email
    cid = ids[-1] if len(ids) > 1 and rng.random() < 0.2 else ids[0]
    if roll < 0.4 or not ids[0]:
        return shown, "", rng.choice(("web_banner", "preference_center"))
    if roll < 0.75 or not email:
        return "", cid, "crm"
    return shown, cid, rng.choice(("preference_center", "crm"))


def consent_rows(
    email: str, ids: list[str], rng: random.Random, window: tuple[int, int]
) -> list[list[str]]:
    """Consent history for one person: per purpose a first decision, maybe a later change."""
    start, end = window
    rows = []
    for purpose in rng.sample(PURPOSES, rng.randint(1, 3)):
        t1 = rng.randint(start, start + (end - start) * 7 // 10)
        first = "granted" if rng.random() < 0.65 else "denied"
        events = [(t1, first)]
        roll = rng.random()
        t2 = rng.randint(t1 + 3600, end - 1)
        if first == "granted" and roll < 0.25:
            events.append((t2, "revoked"))
        elif first == "denied" and roll < 0.10:
            events.append((t2, "granted"))
        for t, status in events:
            e, cid, source = _who(email, ids, rng)
            rows.append([e, cid, purpose, status, iso_s(t), source])
    return rows


def malformed_consent_row(
    kind: str, email: str, rng: random.Random, window: tuple[int, int]
) -> list[str]:
    """A consent row with status ``maybe`` or with neither email nor crm_customer_id."""
    at = iso_s(rng.randint(window[0], window[1] - 1))
    purpose = rng.choice(PURPOSES)
    if kind == "status_maybe":
        return [email, "", purpose, "maybe", at, "web_banner"]
    return ["", "", purpose, "granted", at, "web_banner"]


def erasure_row(
    request_num: int, email: str, cid: str, rng: random.Random, window: tuple[int, int]
) -> list[str]:
    """One erasure request by email, CRM id or both, in the last two weeks of the window."""
    roll = rng.random()
    e = email if roll < 0.75 or not cid else ""
    c = cid if roll >= 0.5 or not email else ""
    at = rng.randint(max(window[0], window[1] - 14 * DAY), window[1] - 1)
    return [f"R{request_num:06d}", e, c, iso_s(at)]
