"""Row hashes: XXH3-128 hex texts, however many rows one Arrow array can hold."""

from __future__ import annotations

import pytest
import xxhash

from ingestion.row_hash import _hex_strings, text_hashes


@pytest.mark.parametrize("rows_per_array", [1, 3, 9, 10, 11])
def test_hashes_past_one_arrays_rows_are_split_and_stay_in_order(rows_per_array):
    texts = [f"record {i} é" for i in range(10)]
    digests = b"".join(xxhash.xxh3_128_digest(text.encode()) for text in texts)

    hashes = _hex_strings(digests, rows_per_array)

    assert hashes.to_pylist() == [xxhash.xxh3_128_hexdigest(text.encode()) for text in texts]
    chunks = getattr(hashes, "chunks", [hashes])
    assert [len(chunk) for chunk in chunks[:-1]] == [rows_per_array] * (len(chunks) - 1)
    assert all(len(chunk) <= rows_per_array for chunk in chunks)


def test_no_texts_have_no_hashes():
    assert text_hashes([]).to_pylist() == []
