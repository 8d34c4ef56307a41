"""Comparisons: how alike two records are on one column, as a small integer level.

Level ``-1`` means no evidence (a value is missing on either side), ``0`` a clear difference and
higher levels closer agreement, the highest being an exact match. Names and addresses use
Jaro–Winkler on normalized ASCII (DuckDB's works on bytes, so values are accent-stripped first).
"""

from __future__ import annotations

#: Per kind: (condition, level) from the strongest level down, as SQL over ``{l}`` and ``{r}``.
_LEVELS: dict[str, tuple[tuple[str, int], ...]] = {
    "name": (
        ("{l} = {r}", 3),
        ("jaro_winkler_similarity({l}, {r}) >= 0.92", 2),
        # the name written in the other name field (first and last name swapped)
        ("jaro_winkler_similarity({l}, {r_swap}) >= 0.92", 2),
        # one typo in a short name ("mei" / "mie") drops Jaro–Winkler below 0.8
        (
            "jaro_winkler_similarity({l}, {r}) >= 0.8"
            " or (length({l}) <= 4 and damerau_levenshtein({l}, {r}) <= 1)",
            1,
        ),
    ),
    "date": (
        ("{l} = {r}", 3),
        (
            "damerau_levenshtein({l}, {r}) <= 1 or (left({l}, 4) = left({r}, 4)"
            " and substr({l}, 5, 2) = substr({r}, 7, 2) and substr({l}, 7, 2) = substr({r}, 5, 2))",
            2,
        ),
        ("left({l}, 4) = left({r}, 4)", 1),
    ),
    "code": (("{l} = {r}", 2), ("damerau_levenshtein({l}, {r}) <= 1", 1)),
    "text": (("{l} = {r}", 2), ("jaro_winkler_similarity({l}, {r}) >= 0.88", 1)),
    "exact": (("{l} = {r}", 1),),
}


#: Name columns whose values are often swapped with each other.
_SWAPPED = {"first_name": "last_name", "last_name": "first_name"}


def level_count(kind: str) -> int:
    """Number of non-null levels of a comparison kind (``0`` … top)."""
    return _LEVELS[kind][0][1] + 1


def level_sql(column: str, kind: str, left: str = "l", right: str = "r") -> str:
    """SQL CASE giving the comparison level of ``column`` between two aliased records."""
    lhs, rhs = f"{left}.{column}", f"{right}.{column}"
    swap = f"{right}.{_SWAPPED[column]}" if column in _SWAPPED else rhs
    whens = " ".join(
        f"when {cond.format(l=lhs, r=rhs, r_swap=swap)} then {level}"
        for cond, level in _LEVELS[kind]
    )
    return f"case when {lhs} is null or {rhs} is null then -1 {whens} else 0 end"


def gamma_select(comparisons: dict[str, str], left: str = "l", right: str = "r") -> str:
    """Select list ``<level sql> as g_<column>`` for every comparison."""
    return ",\n".join(
        f"({level_sql(column, kind, left, right)})::tinyint as g_{column}"
        for column, kind in comparisons.items()
    )
