"""Configuration of one generator run."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GenerateConfig:
    """What to generate and where: sizes, seed, time window and output folders.

    The output depends only on ``customers, events, seed, end_date, days``; ``workers`` changes
    speed, never bytes.
    """

    landing_dir: Path
    truth_dir: Path
    customers: int = 5000
    events: int = 200_000
    seed: int = 42
    end_date: dt.date = dt.date(2026, 11, 20)
    days: int = 90
    workers: int | None = None

    def validate(self) -> None:
        """Raise ValueError naming the field when a value is out of range."""
        if not isinstance(self.end_date, dt.date):
            raise ValueError(f"end_date must be a datetime.date, got {self.end_date!r}")
        if self.customers < 1:
            raise ValueError(f"customers must be >= 1, got {self.customers}")
        if self.events < 1:
            raise ValueError(f"events must be >= 1, got {self.events}")
        if self.days < 7:
            raise ValueError(f"days must be >= 7, got {self.days}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
