"""Run suites on DataFrames through Great Expectations 1.x checkpoints (pandas route).

Each suite gets a pandas data asset, a validation definition and a checkpoint in the file-backed
GX project under ``$CDP_HOME/quality/gx``; checkpoint runs store their results there, and
``build_data_docs`` renders the Data Docs site once per gate (rendering is the slow part).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cdp.quality.expectations import Suite
from cdp.quality.findings import Finding, to_findings

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no network here

DATASOURCE = "microcdp_frames"


@dataclass(frozen=True)
class SuiteOutcome:
    """Findings of one suite and its raw GX result (JSON-able)."""

    findings: list[Finding]
    result_json: dict


def gx_context(project_dir: Path):
    """The file-backed GX project (created on first use), progress bars off."""
    import great_expectations as gx

    project_dir.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(project_dir))
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    return context


def data_docs_index(project_dir: Path) -> Path:
    """The Data Docs site's start page."""
    return project_dir / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"


def build_data_docs(context) -> None:
    """Render the Data Docs site from every stored suite and validation result."""
    context.build_data_docs()


def run_suite(context, suite: Suite, frame: pd.DataFrame) -> SuiteOutcome:
    """Validate ``frame`` with ``suite`` through its checkpoint (results kept for Data Docs)."""
    import great_expectations as gx

    source = context.data_sources.add_or_update_pandas(DATASOURCE)
    asset = next((a for a in source.assets if a.name == suite.name), None)
    asset = asset or source.add_dataframe_asset(suite.name)
    batch = next((b for b in asset.batch_definitions if b.name == "whole"), None)
    batch = batch or asset.add_batch_definition_whole_dataframe("whole")
    gx_suite = gx.ExpectationSuite(name=suite.name, expectations=list(suite.expectations))
    gx_suite = context.suites.add_or_update(gx_suite)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite.name, data=batch, suite=gx_suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=suite.name,
            validation_definitions=[definition],
            result_format={"result_format": "COMPLETE"},
        )
    )
    result = checkpoint.run(batch_parameters={"dataframe": frame})
    [validation] = result.run_results.values()
    findings = to_findings(suite.name, suite.frame, frame, suite.locator, validation)
    if len(findings) != len(suite.expectations):
        findings.append(
            Finding(
                suite.name,
                suite.frame,
                "suite_ran_completely",
                None,
                False,
                True,
                None,
                None,
                f"{len(findings)} of {len(suite.expectations)} expectations returned a result",
            )
        )
    return SuiteOutcome(findings, validation.to_json_dict())
