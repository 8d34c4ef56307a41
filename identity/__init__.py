"""Identity resolution: source records → stable unified ``customer_id``s."""

from identity.config import IdentitySettings, load_identity_settings
from identity.ids import customer_id_for
from identity.normalize import normalize_email, normalize_phone
from identity.resolve import ResolutionResult, resolve_identities

__all__ = [
    "IdentitySettings",
    "ResolutionResult",
    "customer_id_for",
    "load_identity_settings",
    "normalize_email",
    "normalize_phone",
    "resolve_identities",
]
