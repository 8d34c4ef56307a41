"""Reading JSON-lines files: exact line numbers and texts, whatever the line endings."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest
import xxhash

from ingestion.readers import read_chunks


def _rows(path: Path, chunk_bytes: int | None = None) -> list[tuple]:
    return [
        (row["line_no"], row["payload"], row["error"])
        for chunk in read_chunks(path, chunk_bytes)
        for row in chunk.to_pylist()
    ]


MIXED = (
    b'{"a": 1}\r\n'  # CRLF: the CR goes with the line feed
    b"\n"  # blank: skipped, its number too
    b'{"b": "x\ry"}\n'  # a CR inside a line stays
    b"   \n"  # whitespace only: kept (it is not valid JSON)
    b"\r\n"  # blank with CRLF
    b'{"c": 3}'  # no line feed at the end
)
EXPECTED = [
    (1, '{"a": 1}', None),
    (3, '{"b": "x\ry"}', None),
    (4, "   ", None),
    (6, '{"c": 3}', None),
]


@pytest.mark.parametrize("chunk_bytes", [None, 7])
def test_lines_keep_their_numbers_and_text(tmp_path, chunk_bytes):
    path = tmp_path / "a.jsonl"
    path.write_bytes(MIXED)

    assert _rows(path, chunk_bytes) == EXPECTED


def test_gzip_and_plain_files_read_the_same(tmp_path):
    plain, packed = tmp_path / "a.jsonl", tmp_path / "a.jsonl.gz"
    plain.write_bytes(MIXED.replace(b"\r", b""))
    packed.write_bytes(gzip.compress(MIXED.replace(b"\r", b"")))

    assert (
        _rows(packed)
        == _rows(plain)
        == [
            (1, '{"a": 1}', None),
            (3, '{"b": "xy"}', None),
            (4, "   ", None),
            (6, '{"c": 3}', None),
        ]
    )


def test_a_line_that_is_not_utf8_is_kept_with_a_reason(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": "\xff"}\n{"c": 3}\n')

    assert _rows(path) == [
        (1, '{"a": 1}', None),
        (2, '{"b": "\ufffd"}', "line is not valid UTF-8"),
        (3, '{"c": 3}', None),
    ]


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-20],  # truncated: still being copied
        lambda data: data[:10] + b"\xff" * 40 + data[50:],  # corrupt deflate stream
        lambda data: b"plain text, not gzip",
    ],
    ids=["truncated", "corrupt", "not-gzip"],
)
def test_a_damaged_gzip_file_is_a_clear_error(tmp_path, damage):
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(damage(gzip.compress(b'{"a": 1}\n' * 1000)))

    with pytest.raises(ValueError, match=r"a\.jsonl\.gz: cannot be decompressed"):
        _rows(path)


def _reference_lines(data: bytes) -> list[tuple[int, bytes]]:
    """The numbers and bytes of the lines a reader must return, in plain Python."""
    pieces = data.split(b"\n")
    if data.endswith(b"\n"):
        pieces.pop()  # no line after the last line feed
    lines = []
    for number, piece in enumerate(pieces, 1):
        terminated = number < len(pieces) or data.endswith(b"\n")
        if terminated and piece.endswith(b"\r"):
            piece = piece[:-1]
        if piece:
            lines.append((number, piece))
    return lines


def _reference_rows(data: bytes) -> list[tuple]:
    """What a reader must return, line by line, in plain Python."""
    rows = []
    for number, piece in _reference_lines(data):
        text = piece.decode("utf-8", "replace")
        rows.append((number, text, "line is not valid UTF-8" if "\ufffd" in text else None))
    return rows


@pytest.mark.parametrize("seed", range(6))
def test_random_lines_read_exactly_in_any_block_size(tmp_path, seed):
    """Short lines (held inside their Arrow view), long ones (pointing into the block), lines
    across blocks, CRLF, blanks and bad UTF-8, in blocks from 1 byte to the whole file."""
    rng = random.Random(seed)
    shapes = [
        *(b"", b"\r", b"x", b"  ", b"a\rb", b"\xff\xfe"),
        *(b"12345678901", b"123456789012", b"1234567890123"),  # around 12 bytes
        b'{"messageId": "m-\xc3\xa9", "type": "page"}',
    ]
    lines = [rng.choice(shapes) + rng.choice([b"", b"z" * rng.randint(1, 40)]) for _ in range(60)]
    data = b"\n".join(line + rng.choice([b"", b"\r"]) for line in lines)
    data += rng.choice([b"", b"\n", b"\r", b"\r\n"])
    path = tmp_path / "a.jsonl"
    path.write_bytes(data)

    hashes = [xxhash.xxh3_128_hexdigest(piece) for _, piece in _reference_lines(data)]
    for chunk_bytes in (1, 2, 5, 13, 64, None):
        assert _rows(path, chunk_bytes) == _reference_rows(data), chunk_bytes
        chunks = read_chunks(path, chunk_bytes)
        read = [h for chunk in chunks for h in chunk["row_hash"].to_pylist()]
        assert read == hashes, chunk_bytes  # of each line's bytes as they arrived
