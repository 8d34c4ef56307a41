"""Step timing for the identity run's log (where the seconds of a large run go)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger("identity")
T = TypeVar("T")


class StepTimer:
    """Runs one step of a run and logs how long it took, under a label such as the run id."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __call__(self, name: str, work: Callable[..., T], *args: object) -> T:
        started = time.perf_counter()
        result = work(*args)
        log.info("%s: %s took %.2f s", self.label, name, time.perf_counter() - started)
        return result
