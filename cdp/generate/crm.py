"""CRM customer rows (primary, duplicate, history, malformed) and order rows."""

from __future__ import annotations

import random

from cdp.generate import vocab
from cdp.generate.catalog import money
from cdp.generate.clock import DAY, iso_s
from cdp.generate.dirt import US_PHONE_FORMATS, duplicate_email, malformed_dob, mixed_case, typo
from cdp.generate.people import Address, Person, make_address, other_area

CUSTOMER_HEADER = [
    "crm_customer_id", "first_name", "last_name", "email", "phone", "date_of_birth",
    "address_line1", "address_line2", "city", "postcode", "state", "country", "created_at",
    "updated_at",
]  # fmt: skip
ORDER_HEADER = [
    "order_id", "crm_customer_id", "ordered_at", "total_amount", "currency", "item_count",
    "category", "status",
]  # fmt: skip


def crm_id(num: int) -> str:
    """CRM customer id for an id number, e.g. ``C0000042``."""
    return f"C{num:07d}"


def order_id(num: int) -> str:
    """Order id for an order number, e.g. ``O00000042``."""
    return f"O{num:08d}"


def _row(
    cid: str,
    first: str,
    last: str,
    email: str,
    phone: str,
    dob: str,
    a: Address,
    created: int,
    updated: int,
    rng: random.Random,
) -> list[str]:
    city, postcode = a.city, a.postcode
    if rng.random() < 0.01:
        city = ""
    if rng.random() < 0.01:
        postcode = ""
    return [
        cid, first, last, email, phone, dob, a.line1, a.line2, city, postcode, a.state,
        a.country, iso_s(created), iso_s(updated),
    ]  # fmt: skip


def _phone(p: Person, rng: random.Random, missing: float) -> str:
    return "" if rng.random() < missing else p.phone(rng.randrange(US_PHONE_FORMATS))


def customer_rows(
    p: Person,
    primary_id: str,
    dup_id: str | None,
    history: bool,
    window: tuple[int, int],
    rng: random.Random,
) -> tuple[list[list[str]], bool, bool]:
    """Rows for one person, plus whether the primary and the duplicate record carry an email."""
    start, end = window
    # The primary record is the web account people log in with, so it always has an email;
    # only duplicates (e.g. keyed in by a clerk) may lack one.
    email = mixed_case(p.email, rng) if rng.random() < 0.20 else p.email
    dob = "" if rng.random() < 0.05 else p.date_of_birth
    updated = rng.randint(p.created_at, start - 1)
    rows = [
        _row(primary_id, p.first_name, p.last_name, email, _phone(p, rng, 0.10), dob,
             p.address, p.created_at, updated, rng)
    ]  # fmt: skip
    if history:
        new_addr, phone = p.address, rows[0][4]
        if p.phone_prefix == "+1" and rng.random() < 0.4:
            phone = p.phone(rng.randrange(US_PHONE_FORMATS), other_area(p, rng))
        else:
            new_addr = make_address(rng, p.country)[0]
        changed = rng.randint(start, end - 1)
        rows.append(
            _row(primary_id, p.first_name, p.last_name, email, phone, dob, new_addr,
                 p.created_at, changed, rng)
        )  # fmt: skip
    dup_has_email = False
    if dup_id is not None:
        first, last, addr = p.first_name, p.last_name, p.address
        kind = rng.random()
        if kind < 0.4:
            first = typo(first, rng)
        elif kind < 0.8:
            last = typo(last, rng)
        if kind >= 0.8 or rng.random() < 0.5:
            addr = make_address(rng, p.country)[0]
        dup_email = "" if rng.random() < 0.25 else duplicate_email(p.email, rng)
        dup_has_email = bool(dup_email)
        created = rng.randint(p.created_at + DAY, end - 1)
        dup_updated = rng.randint(created, end - 1)
        rows.append(
            _row(dup_id, first, last, dup_email, _phone(p, rng, 0.4),
                 p.date_of_birth if rng.random() < 0.7 else "", addr, created, dup_updated, rng)
        )  # fmt: skip
    return rows, bool(email), dup_has_email


def malformed_customer_row(kind: str, id_num: int, rng: random.Random, start: int) -> list[str]:
    """A row a strict parser rejects: empty id or an unparseable date of birth."""
    first, last = rng.choice(vocab.FIRST_NAMES), rng.choice(vocab.LAST_NAMES)
    email = f"{first.lower()}.{last.lower()}.m{id_num}@example.com"
    addr = make_address(rng, "US")[0]
    cid = "" if kind == "empty_id" else crm_id(id_num)
    dob = "1990-05-17" if kind == "empty_id" else malformed_dob(kind)
    created = start - rng.randint(1, 900) * DAY
    return [
        cid, first, last, email, "", dob, addr.line1, addr.line2, addr.city, addr.postcode,
        addr.state, addr.country, iso_s(created), iso_s(created),
    ]  # fmt: skip


def _status(rng: random.Random) -> str:
    roll = rng.random()
    return "completed" if roll < 0.9 else ("refunded" if roll < 0.96 else "cancelled")


def offline_order(rng: random.Random, window: tuple[int, int]) -> tuple[int, int, int, str]:
    """(ordered_at seconds, amount cents, item count, category) for an order not placed online."""
    cat = rng.choice(vocab.CATEGORIES)
    lo, hi = vocab.CATEGORY_PRICE[cat]
    items = 1 if rng.random() < 0.7 else rng.randint(2, 5)
    cents = sum(rng.randint(lo, hi) // 10 * 10 + 9 for _ in range(items))
    return rng.randint(window[0], window[1] - 1), cents, items, cat


def order_row(
    oid: str, cid: str, at_s: int, cents: int, items: int, cat: str, rng: random.Random
) -> list[str]:
    """One valid order row."""
    return [oid, cid, iso_s(at_s), money(cents), "USD", str(items), cat, _status(rng)]


def malformed_order_row(kind: str, num: int, cid: str, rng: random.Random, start: int) -> list[str]:
    """An order row a strict parser rejects (bad amount, bad timestamp or empty id)."""
    oid = "" if kind == "empty_order_id" else order_id(num)
    at = "yesterday" if kind == "ordered_at_yesterday" else iso_s(start + rng.randrange(DAY))
    amount = {"amount_abc": "abc", "amount_empty": ""}.get(kind, "19.99")
    return [oid, cid, at, amount, "USD", "1", rng.choice(vocab.CATEGORIES), "completed"]
