"""Row hashes: a fingerprint of each record exactly as it arrived (``raw.*._row_hash``).

XXH3-128 of the record's UTF-8 bytes, as 32 lowercase hex digits (``xxhash``'s
``xxh3_128_hexdigest``). XXH3's output is fixed by its specification, so a stored hash never
changes with a library upgrade (DuckDB's own ``hash`` does change between releases), and it is
computed where the records are read, at a quarter of the CPU of DuckDB's ``md5`` (0.3 vs
1.35 µs for a 626-byte event; bench/RESULTS.md, "Ninth session").
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import xxhash

_DIGEST_BYTES = 16
_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", np.uint8)
#: most hex texts one Arrow string array holds: its offsets are int32
_ROWS_PER_ARRAY = np.iinfo(np.int32).max // (2 * _DIGEST_BYTES)


def _hex_array(digests: memoryview) -> pa.Array:
    """Concatenated 16-byte digests as an Arrow array of their 32-digit hex texts."""
    raw = np.frombuffer(digests, np.uint8)
    text = np.empty(2 * len(raw), np.uint8)
    text[0::2] = _HEX_DIGITS[raw >> 4]
    text[1::2] = _HEX_DIGITS[raw & 15]
    count = len(raw) // _DIGEST_BYTES
    offsets = np.arange(0, 2 * _DIGEST_BYTES * (count + 1), 2 * _DIGEST_BYTES, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(text)]
    )


def _hex_strings(
    digests: bytes, rows_per_array: int = _ROWS_PER_ARRAY
) -> pa.Array | pa.ChunkedArray:
    """The hex texts of concatenated digests; past ``rows_per_array`` rows, in several arrays
    (a CSV file is hashed whole, and int32 offsets would wrap past 67M rows)."""
    view, step = memoryview(digests), rows_per_array * _DIGEST_BYTES
    if len(view) <= step:
        return _hex_array(view)
    return pa.chunked_array([_hex_array(view[i : i + step]) for i in range(0, len(view), step)])


def text_hashes(texts: Iterable[str]) -> pa.Array | pa.ChunkedArray:
    """The row hash of each text (its UTF-8 bytes)."""
    digest = xxhash.xxh3_128_digest
    return _hex_strings(b"".join([digest(text.encode()) for text in texts]))


def line_hashes(
    block: bytes, starts: np.ndarray, lengths: np.ndarray
) -> pa.Array | pa.ChunkedArray:
    """The row hash of each line ``block[start:start + length]``, hashed in place."""
    view, digest = memoryview(block), xxhash.xxh3_128_digest
    return _hex_strings(
        b"".join(
            [
                digest(view[start : start + length])
                for start, length in zip(starts.tolist(), lengths.tolist(), strict=True)
            ]
        )
    )
