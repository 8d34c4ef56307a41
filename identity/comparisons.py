"""Comparisons: how alike two records are on one column, as a small integer level.

Level ``-1`` means no evidence (a value is missing on either side), ``0`` a clear difference and
higher levels closer agreement, the highest being an exact match. Names and addresses use
Jaro–Winkler on normalized ASCII (DuckDB's works on bytes, so values are accent-stripped first).
"""

from __future__ import annotations

#: At most one edit apart (Damerau–Levenshtein ≤ 1), with the costly Damerau–Levenshtein run
#: only on equal-length values two substitutions apart (a possible transposition). Nested
#: CASEs, not OR: DuckDB evaluates every operand of an OR in a CASE result for every row, but
#: a WHEN only for the rows that reach it.
_ONE_EDIT = (
    "(case when length({l}) = length({r}) then (case when hamming({l}, {r}) <= 1 then true"
    " when hamming({l}, {r}) = 2 then damerau_levenshtein({l}, {r}) = 1 else false end)"
    " when abs(length({l}) - length({r})) = 1 then levenshtein({l}, {r}) = 1 else false end)"
)

#: First and last name swapped: both names sit in the other field.
_SWAPPED_NAMES = (
    "jaro_winkler_similarity({l}, {r_swap}) >= 0.92"
    " and jaro_winkler_similarity({l_swap}, {r}) >= 0.92"
)

#: Per kind: (condition, level) from the strongest level down, as SQL over ``{l}`` and ``{r}``;
#: a level is a number or an SQL expression choosing between levels (the first is the top).
_LEVELS: dict[str, tuple[tuple[str, int | str], ...]] = {
    "name": (
        ("{l} = {r}", 3),
        # alike names: level 2 or 1, testing first what rules out most pairs (one Jaro–Winkler)
        (
            "jaro_winkler_similarity({l}, {r}) >= 0.8",
            "case when jaro_winkler_similarity({l}, {r}) >= 0.92 or (" + _SWAPPED_NAMES + ")"
            " then 2 else 1 end",
        ),
        (_SWAPPED_NAMES, 2),
        # one typo in a short name ("mei" / "mie") drops Jaro–Winkler below 0.8
        ("length({l}) <= 4 and " + _ONE_EDIT, 1),
    ),
    "date": (
        ("{l} = {r}", 3),
        (
            _ONE_EDIT + " or (left({l}, 4) = left({r}, 4)"
            " and substr({l}, 5, 2) = substr({r}, 7, 2) and substr({l}, 7, 2) = substr({r}, 5, 2))",
            2,
        ),
        ("left({l}, 4) = left({r}, 4)", 1),
    ),
    "code": (("{l} = {r}", 2), (_ONE_EDIT, 1)),
    "text": (("{l} = {r}", 2), ("jaro_winkler_similarity({l}, {r}) >= 0.88", 1)),
    "exact": (("{l} = {r}", 1),),
}


#: Name columns whose values are often swapped with each other.
_SWAPPED = {"first_name": "last_name", "last_name": "first_name"}


def level_count(kind: str) -> int:
    """Number of non-null levels of a comparison kind (``0`` … top)."""
    return int(_LEVELS[kind][0][1]) + 1


def level_sql(column: str, kind: str, left: str = "l", right: str = "r") -> str:
    """SQL CASE giving the comparison level of ``column`` between two aliased records."""
    lhs, rhs = f"{left}.{column}", f"{right}.{column}"
    other = _SWAPPED.get(column, column)
    l_swap, r_swap = f"{left}.{other}", f"{right}.{other}"
    names = {"l": lhs, "r": rhs, "l_swap": l_swap, "r_swap": r_swap}
    whens = " ".join(
        f"when {cond.format(**names)} then {str(level).format(**names)}"
        for cond, level in _LEVELS[kind]
    )
    return f"case when {lhs} is null or {rhs} is null then -1 {whens} else 0 end"


def gamma_select(comparisons: dict[str, str], left: str = "l", right: str = "r") -> str:
    """Select list ``<level sql> as g_<column>`` for every comparison."""
    return ",\n".join(
        f"({level_sql(column, kind, left, right)})::tinyint as g_{column}"
        for column, kind in comparisons.items()
    )
