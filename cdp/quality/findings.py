"""Turn GX validation results into findings a person can act on: which expectation, which rows."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

#: Offending rows quoted per failed expectation.
SAMPLE_ROWS = 5


class QualityGateFailed(RuntimeError):
    """At least one expectation failed or errored; the message names them and their rows."""


@dataclass(frozen=True)
class Finding:
    """The outcome of one expectation on one frame."""

    suite: str
    frame: str
    expectation: str
    column: str | None
    success: bool
    errored: bool
    element_count: int | None
    unexpected_count: int | None
    detail: str  # the error, or the offending sample rows as JSON; empty on success

    def describe(self) -> str:
        """One line naming the expectation, the frame and what went wrong."""
        target = f"{self.frame}.{self.column}" if self.column else self.frame
        if self.errored:
            return f"{self.expectation} on {target} ERRORED (counts as failed): {self.detail}"
        counts = ""
        if self.unexpected_count is not None:
            total = f" of {self.element_count} rows" if self.element_count is not None else ""
            counts = f" {self.unexpected_count}{total} unexpected;"
        return f"{self.expectation} on {target} FAILED:{counts} sample rows: {self.detail}"


def _error_message(exception_info: dict) -> str | None:
    """GX reports errors either flat or keyed by metric id; any raised exception is an error."""
    infos = [exception_info] if "raised_exception" in exception_info else exception_info.values()
    messages = [i.get("exception_message") or "error" for i in infos if i.get("raised_exception")]
    return "; ".join(messages) if messages else None


def _sample_rows(frame: pd.DataFrame, locator: list[str], column: str | None, result: dict) -> str:
    if "partial_missing_list" in result:  # a set expectation: what is missing, what is extra
        difference = {
            "missing": result["partial_missing_list"],
            "unexpected": result.get("partial_unexpected_list", []),
        }
        return json.dumps(difference, default=str)
    indexes = (result.get("unexpected_index_list") or [])[:SAMPLE_ROWS]
    if indexes and all(isinstance(i, int) for i in indexes):
        columns = [c for c in [*locator, column] if c and c in frame.columns]
        rows = frame.loc[indexes, list(dict.fromkeys(columns)) or frame.columns]
        return rows.to_json(orient="records", date_format="iso", default_handler=str)
    if result.get("partial_unexpected_list"):
        return json.dumps(result["partial_unexpected_list"][:SAMPLE_ROWS], default=str)
    observed = {k: v for k, v in result.items() if k in ("observed_value", "details")}
    if observed:
        return json.dumps(observed, default=str)
    return frame.head(SAMPLE_ROWS).to_json(orient="records", date_format="iso", default_handler=str)


def to_findings(
    suite: str, frame_name: str, frame: pd.DataFrame, locator: list[str], validation
) -> list[Finding]:
    """One finding per expectation result of a GX ``ExpectationSuiteValidationResult``."""
    findings = []
    for result in validation.results:
        config = result.expectation_config
        column = config.kwargs.get("column")
        error = _error_message(result.exception_info or {})
        success = bool(result.success) and error is None
        details = result.result or {}
        detail = ""
        if error is not None:
            detail = error
        elif not success:
            detail = _sample_rows(frame, locator, column, details)
        findings.append(
            Finding(
                suite=suite,
                frame=frame_name,
                expectation=config.type,
                column=column,
                success=success,
                errored=error is not None,
                element_count=details.get("element_count"),
                unexpected_count=details.get("unexpected_count"),
                detail=detail,
            )
        )
    return findings
