"""Identity settings (rules, guards, model) read from a YAML file, checked on load."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cdp.yaml_strict import load_strict

DEFAULT_SETTINGS = Path(__file__).with_name("settings.yml")
KNOWN_RULES = ("crm_customer_id", "person_match", "email", "phone", "login")
COMPARISON_KINDS = ("name", "date", "code", "text", "exact")


@dataclass(frozen=True)
class Guards:
    """Limits that keep clusters from over-merging."""

    placeholders: dict[str, frozenset[str]]
    max_records_per_value: int
    max_distinct_per_cluster: dict[str, int]
    may_join_crm_records: frozenset[str]


@dataclass(frozen=True)
class ModelSettings:
    """Blocking passes, comparisons and bands of the Fellegi–Sunter model."""

    blocking: tuple[tuple[str, ...], ...]
    max_block_size: int
    comparisons: dict[str, str]
    correlated: tuple[frozenset[str], ...]
    random_pairs: int
    em_iterations: int
    auto_merge_at: float
    review_at: float
    auto_merge_needs: tuple[str, ...]


@dataclass(frozen=True)
class IdentitySettings:
    """Everything identity resolution is configured by; ``digest`` changes when any of it does."""

    rules: tuple[str, ...]
    guards: Guards
    model: ModelSettings
    digest: str


def _require(condition: bool, path: Path, message: str) -> None:
    if not condition:
        raise ValueError(f"{path}: {message}")


def load_identity_settings(path: Path | None = None) -> IdentitySettings:
    """Read and validate the identity settings YAML (default: the one shipped with identity/)."""
    path = Path(path or DEFAULT_SETTINGS)
    text = path.read_text(encoding="utf-8")
    raw = load_strict(text) or {}
    _require(isinstance(raw, dict), path, "expected a mapping with rules, guards and model")
    rules = tuple(raw.get("rules") or ())
    unknown = [r for r in rules if r not in KNOWN_RULES]
    _require(not unknown, path, f"rules: unknown rule(s) {unknown}; known: {list(KNOWN_RULES)}")
    _require(len(set(rules)) == len(rules), path, "rules: a rule is listed twice")
    guards, model = raw.get("guards") or {}, raw.get("model") or {}
    comparisons = dict(model.get("comparisons") or {})
    bad = {c: k for c, k in comparisons.items() if k not in COMPARISON_KINDS}
    _require(not bad, path, f"model.comparisons: unknown kind(s) {bad}; known: {COMPARISON_KINDS}")
    auto, review = float(model.get("auto_merge_at", 0.99)), float(model.get("review_at", 0.5))
    _require(0 < review <= auto < 1, path, "model: need 0 < review_at <= auto_merge_at < 1")
    return IdentitySettings(
        rules=rules,
        guards=Guards(
            placeholders={
                kind: frozenset(str(v) for v in values)
                for kind, values in (guards.get("placeholders") or {}).items()
            },
            max_records_per_value=int(guards.get("max_records_per_value", 20)),
            max_distinct_per_cluster={
                k: int(v) for k, v in (guards.get("max_distinct_per_cluster") or {}).items()
            },
            may_join_crm_records=frozenset(guards.get("may_join_crm_records") or ()),
        ),
        model=ModelSettings(
            blocking=tuple(tuple(p) for p in model.get("blocking") or ()),
            max_block_size=int(model.get("max_block_size", 40)),
            comparisons=comparisons,
            correlated=tuple(frozenset(group) for group in model.get("correlated") or ()),
            random_pairs=int(model.get("random_pairs", 1_000_000)),
            em_iterations=int(model.get("em_iterations", 40)),
            auto_merge_at=auto,
            review_at=review,
            auto_merge_needs=tuple(model.get("auto_merge_needs") or ()),
        ),
        digest=hashlib.sha256(text.encode()).hexdigest()[:16],
    )
