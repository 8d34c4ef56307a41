"""Persons (the real humans behind the data) and their names, emails, phones and addresses."""

from __future__ import annotations

import random
from dataclasses import dataclass

from cdp.generate import vocab
from cdp.generate.clock import DAY, day_str
from cdp.generate.dirt import format_us_phone

EMAIL_STYLES = 5


@dataclass(slots=True)
class Address:
    """A postal address; ``state`` is empty outside the US/Canada."""

    line1: str
    line2: str
    city: str
    postcode: str
    state: str
    country: str


@dataclass(slots=True)
class Person:
    """One real human; ``n`` is their 1-based person number (``P0000042``)."""

    n: int
    first_name: str
    last_name: str
    email: str
    country: str
    phone_area: str
    phone_local: str
    phone_prefix: str
    date_of_birth: str
    address: Address
    created_at: int

    @property
    def person_id(self) -> str:
        """Ground-truth id of the human, ``P`` + 7 digits."""
        return f"P{self.n:07d}"

    def phone(self, style: int, area: str | None = None) -> str:
        """The phone number written in format ``style`` (US formats for +1 numbers)."""
        if self.phone_prefix == "+1":
            return format_us_phone(area or self.phone_area, self.phone_local, style)
        local = self.phone_local
        return f"{self.phone_prefix} {local[:3]} {local[3:]}"


def local_number(n: int) -> str:
    """Seven digits unique per person number (a bijection for n < 8,000,000)."""
    return str((n * 7_919 + 1_234_567) % 8_000_000 + 2_000_000)


def base_email(first: str, last: str, n: int, rng: random.Random) -> str:
    """A lowercase email unique to person ``n`` (letters, then the digits of ``n``, a domain)."""
    f, la = first.lower(), last.lower().replace(" ", "")
    style = rng.randrange(EMAIL_STYLES)
    if style == 0:
        local = f"{f}.{la}{n}"
    elif style == 1:
        local = f"{f[0]}{la}{n}"
    elif style == 2:
        local = f"{f}_{la}{n}"
    elif style == 3:
        local = f"{f}{n}"
    else:
        local = f"{la}.{f}{n}"
    return f"{local}@{rng.choice(vocab.EMAIL_DOMAINS)}"


def make_address(rng: random.Random, country: str) -> tuple[Address, str, str]:
    """A random address in ``country`` plus the phone prefix and area code that go with it."""
    street = f"{rng.choice(vocab.STREET_NAMES)} {rng.choice(vocab.STREET_SUFFIXES)}"
    line1 = f"{rng.randint(1, 9899)} {street}"
    roll = rng.random()
    line2 = ""
    if roll < 0.12:
        line2 = f"Apt {rng.randint(1, 40)}{rng.choice('ABCDEF')}"
    elif roll < 0.16:
        line2 = f"Suite {rng.randint(1, 9) * 100}"
    if country == "US":
        city, state, zip3, areas = rng.choice(vocab.US_CITIES)
        postcode = f"{zip3}{rng.randint(1, 99):02d}"
        return Address(line1, line2, city, postcode, state, "US"), "+1", rng.choice(areas)
    options = [c for c in vocab.OTHER_CITIES if c[0] == country]
    ctry, city, region, postcode, prefix = rng.choice(options)
    pfx, _, area = prefix.partition(" ")
    return Address(line1, line2, city, postcode, region, ctry), pfx, area


def pick_country(rng: random.Random) -> str:
    """Mostly US, a few Canadian, British and German customers."""
    roll = rng.random()
    if roll < 0.92:
        return "US"
    if roll < 0.96:
        return "CA"
    return "GB" if roll < 0.98 else "DE"


def make_person(n: int, rng: random.Random, window_start: int) -> Person:
    """Person number ``n``: random name, address and birth date; unique email and phone."""
    first = rng.choice(vocab.FIRST_NAMES)
    last = rng.choice(vocab.LAST_NAMES)
    country = pick_country(rng)
    address, prefix, area = make_address(rng, country)
    dob_day = rng.randint(-9_000, 13_000)  # 1945 .. 2005
    created = window_start - rng.randint(1, 5 * 365) * DAY + rng.randrange(DAY)
    return Person(
        n=n,
        first_name=first,
        last_name=last,
        email=base_email(first, last, n, rng),
        country=country,
        phone_area=area if prefix == "+1" else "",
        phone_local=local_number(n),
        phone_prefix=prefix,
        date_of_birth=day_str(dob_day),
        address=address,
        created_at=created,
    )


def other_area(person: Person, rng: random.Random) -> str:
    """A different US area code (a new phone number that stays unique to this person)."""
    while True:
        area = rng.choice(rng.choice(vocab.US_CITIES)[3])
        if area != person.phone_area:
            return area
