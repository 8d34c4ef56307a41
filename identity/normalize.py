"""Normalization of identifiers, so that the same real-world value always compares equal."""

from __future__ import annotations

import re

#: Values people type when they do not want to give an email; they must never link records.
PLACEHOLDER_EMAILS = frozenset(
    {
        "test@test.com",
        "test@example.com",
        "none@none.com",
        "noemail@noemail.com",
        "no@email.com",
        "null@null.com",
        "unknown@unknown.com",
        "a@a.com",
        "email@email.com",
    }
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_email(value: str | None) -> str | None:
    """Trim and lowercase an email; ``None`` if it is missing, malformed or a placeholder."""
    if value is None:
        return None
    email = value.strip().lower()
    if not _EMAIL.match(email) or email in PLACEHOLDER_EMAILS:
        return None
    return email
