"""Output files: CSVs with fixed headers, weekly gzip JSONL event files, the truth folder."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, TextIO

from cdp.generate.clock import day_str
from cdp.generate.consent import CONSENT_HEADER, ERASURE_HEADER
from cdp.generate.crm import CUSTOMER_HEADER, ORDER_HEADER
from cdp.generate.thirdparty import INTENT_HEADER

EVENTS_DIR = "analytics/events"
LANDING_CSVS: dict[str, tuple[str, list[str]]] = {
    "customers": ("crm/customers/customers.csv", CUSTOMER_HEADER),
    "orders": ("crm/orders/orders.csv", ORDER_HEADER),
    "intent": ("thirdparty/intent/intent.csv", INTENT_HEADER),
    "consent": ("consent/events/consent.csv", CONSENT_HEADER),
    "erasure": ("privacy/erasure_requests/erasure_requests.csv", ERASURE_HEADER),
}
TRUTH_CSVS: dict[str, tuple[str, list[str]]] = {
    "identities": ("identities.csv", ["source", "id_type", "source_record_id", "person_id"]),
    "crm_duplicates": ("crm_duplicates.csv", ["person_id", "crm_customer_id", "has_email"]),
}


def event_file(monday: int) -> str:
    """Landing-relative path of the events file for the ISO week starting on ``monday``."""
    return f"{EVENTS_DIR}/events-{day_str(monday)}.jsonl.gz"


def _header(cols: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cols)
    return buf.getvalue()


class OutputFiles:
    """Open every output once, append chunk text in order, close at the end."""

    def __init__(self, landing: Path, truth: Path) -> None:
        self.landing = landing
        self.text: dict[str, TextIO] = {}
        for name, (rel, cols) in LANDING_CSVS.items():
            self.text[name] = self._open(landing / rel, cols)
        for name, (rel, cols) in TRUTH_CSVS.items():
            self.text[name] = self._open(truth / rel, cols)
        (landing / EVENTS_DIR).mkdir(parents=True, exist_ok=True)
        for old in (landing / EVENTS_DIR).glob("events-*.jsonl.gz"):
            old.unlink()  # a re-run must not leave weeks of an earlier window behind
        self.weeks: dict[int, BinaryIO] = {}

    @staticmethod
    def _open(path: Path, cols: list[str]) -> TextIO:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = path.open("w", encoding="utf-8", newline="")
        f.write(_header(cols))
        return f

    def write_text(self, name: str, text: str) -> None:
        """Append CSV rows (already rendered) to output ``name``."""
        if text:
            self.text[name].write(text)

    def write_week(self, monday: int, member: bytes) -> None:
        """Append a gzip member to the week's events file (concatenated members are valid gzip)."""
        f = self.weeks.get(monday)
        if f is None:
            f = self.weeks[monday] = (self.landing / event_file(monday)).open("wb")
        f.write(member)

    def close(self) -> None:
        """Close every file."""
        for f in [*self.text.values(), *self.weeks.values()]:
            f.close()

    def __enter__(self) -> OutputFiles:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
