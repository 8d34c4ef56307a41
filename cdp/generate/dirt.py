"""Corruption helpers: case/whitespace noise, typos, phone formats, malformed values and lines."""

from __future__ import annotations

import random

US_PHONE_FORMATS = 5
MALFORMED_EVENT_KINDS = ("truncated_json", "missing_message_id", "bad_timestamp", "no_identity")
MALFORMED_ORDER_KINDS = ("amount_abc", "amount_empty", "ordered_at_yesterday", "empty_order_id")
MALFORMED_CRM_KINDS = ("empty_id", "dob_31_02", "dob_not_a_date")


def mixed_case(email: str, rng: random.Random) -> str:
    """A case variant of an email (``John.Smith1@Gmail.com``), never equal to the input."""
    local, _, domain = email.partition("@")
    style = rng.randrange(3)
    if style == 0:
        out = ".".join(p[:1].upper() + p[1:] for p in local.split(".")) + "@" + domain.capitalize()
    elif style == 1:
        out = email.upper()
    else:
        out = local[:1].upper() + local[1:] + "@" + domain.upper()
    return out if out != email else email.upper()


def duplicate_email(email: str, rng: random.Random) -> str:
    """The same mailbox written differently: other case and/or surrounding whitespace."""
    roll = rng.random()
    if roll < 0.5:
        return mixed_case(email, rng)
    pad = rng.choice((" ", "  ", "\t"))
    variant = mixed_case(email, rng) if roll < 0.8 else email
    return rng.choice((pad + variant, variant + pad, pad + variant + " "))


def typo(name: str, rng: random.Random) -> str:
    """The name with one keyboard-style typo (swap, drop, double or replace a letter)."""
    if len(name) < 3:
        return name + name[-1]
    i = rng.randrange(1, len(name) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        out = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    elif kind == 1:
        out = name[:i] + name[i + 1 :]
    elif kind == 2:
        out = name[:i] + name[i] + name[i:]
    else:
        out = name[:i] + rng.choice("aeioulnrst") + name[i + 1 :]
    return out if out != name else name[:i] + name[i + 1 :]


def format_us_phone(area: str, local: str, style: int) -> str:
    """A 10-digit US number in one of several real-world formats."""
    a, b = local[:3], local[3:]
    if style == 0:
        return f"+1 {area}-{a}-{b}"
    if style == 1:
        return f"({area}) {a}-{b}"
    if style == 2:
        return f"{area}{a}{b}"
    if style == 3:
        return f"{area}.{a}.{b}"
    return f"001 {area} {a} {b}"


def malformed_dob(kind: str) -> str:
    """An unparseable date of birth for a malformed CRM row."""
    return "31/02/1990" if kind == "dob_31_02" else "not-a-date"


def corrupt_event_line(line: str, kind: str, message_id: str, timestamp: str) -> str:
    """Turn a valid JSON event line into one a strict parser must reject."""
    if kind == "truncated_json":
        return line[: max(10, len(line) // 2)]
    if kind == "missing_message_id":
        return line.replace(f'"messageId":"{message_id}",', "", 1)
    if kind == "bad_timestamp":
        return line.replace(f'"timestamp":"{timestamp}"', '"timestamp":"not-a-timestamp"', 1)
    out = line
    for key in ('"anonymousId":"', '"userId":"'):
        start = out.find(key)
        if start >= 0:
            end = out.index('",', start + len(key))
            out = out[:start] + out[end + 2 :]
    return out
