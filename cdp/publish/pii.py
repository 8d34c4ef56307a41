"""Which published columns are personal data, and the keyed hash (HMAC-SHA256) that hides them.

The hash is deterministic for one key, so analysts can still join and count distinct people on a
pseudonymized column; without the key nobody can recompute it from a known email or phone.
"""

from __future__ import annotations

import hashlib
import hmac

#: Columns whose values are replaced by their keyed hash (hex) wherever they appear.
HASHED_COLUMNS = frozenset(
    {
        "first_name",
        "last_name",
        "email",
        "emails",
        "trait_email",
        "phone",
        "address_line1",
        "address_line2",
        "postcode",
        "crm_customer_id",
        "crm_customer_ids",
        "user_id",
        "anonymous_id",
        "source_record_id",
    }
)

#: Columns generalized instead of hashed: the date of birth keeps only its year (1 January).
YEAR_ONLY_COLUMNS = frozenset({"date_of_birth"})

_BLOCK_SIZE = 64  # SHA-256 block size in bytes (RFC 2104)


def hmac_sha256_hex(key: str, value: str) -> str:
    """The keyed hash of one value, exactly as the snapshot's SQL computes it."""
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def pseudonymize_macro_sql(key: str) -> str:
    """``pseudonymize(v)``: HMAC-SHA256 as a DuckDB temp macro (vectorized, works in lambdas)."""
    key_bytes = key.encode()
    if len(key_bytes) > _BLOCK_SIZE:
        key_bytes = hashlib.sha256(key_bytes).digest()
    padded = key_bytes.ljust(_BLOCK_SIZE, b"\0")
    inner = bytes(b ^ 0x36 for b in padded).hex()
    outer = bytes(b ^ 0x5C for b in padded).hex()
    return (
        "create or replace temp macro pseudonymize(v) as case when v is null then null else "
        f"sha256(unhex('{outer}') || unhex(sha256(unhex('{inner}') || encode(cast(v as varchar)))))"
        " end"
    )


def published_expression(column: str, data_type: str) -> str:
    """The select expression that publishes ``column`` (of DuckDB ``data_type``) safely."""
    quoted = '"' + column.replace('"', '""') + '"'
    if column in YEAR_ONLY_COLUMNS:
        return f"cast(date_trunc('year', {quoted}) as date) as {quoted}"
    if column not in HASHED_COLUMNS:
        return quoted
    if data_type.endswith("[]"):
        return f"list_transform({quoted}, lambda v: pseudonymize(v)) as {quoted}"
    return f"pseudonymize({quoted}) as {quoted}"
