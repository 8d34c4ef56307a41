"""Identity resolution: source records → stable unified ``customer_id``s."""

from identity.normalize import normalize_email
from identity.resolve import ResolutionResult, customer_id_for, resolve_identities

__all__ = ["ResolutionResult", "customer_id_for", "normalize_email", "resolve_identities"]
