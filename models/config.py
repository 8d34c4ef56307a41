"""ML knobs beyond the horizon (which lives in cdp.settings), each overridable by environment."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _float(name: str, default: float) -> float:
    value = os.environ.get(name, str(default))
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {value!r}") from None


@dataclass(frozen=True)
class MLConfig:
    """Promotion tolerance and drift threshold."""

    #: CDP_PROPENSITY_PROMOTION_TOLERANCE: a challenger is promoted unless its validation
    #: ROC AUC is more than this below the champion's on the same window.
    promotion_tolerance: float = 0.005
    #: CDP_DRIFT_PSI_THRESHOLD: PSI above which a feature or the score distribution alerts.
    psi_threshold: float = 0.25

    @classmethod
    def from_env(cls) -> MLConfig:
        """Read the overrides from the environment."""
        return cls(
            promotion_tolerance=_float("CDP_PROPENSITY_PROMOTION_TOLERANCE", 0.005),
            psi_threshold=_float("CDP_DRIFT_PSI_THRESHOLD", 0.25),
        )
