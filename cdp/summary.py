"""What the warehouse holds after a run, as data and as the short text ``cdp demo`` prints."""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field

import duckdb

from cdp.settings import Settings
from cdp.warehouse import connect

PROFILES_QUERY = "select * from marts.customer_profiles order by lifetime_value desc limit 10"


@dataclass
class Summary:
    """Counts per layer of the warehouse."""

    sources: list[tuple] = field(default_factory=list)  # source, files, read, loaded, dup, quar
    identity_records: int = 0
    customers: int = 0
    known_customers: int = 0
    segments: list[tuple[str, int]] = field(default_factory=list)
    #: The champion propensity model: version, ROC AUC, top-decile lift, customers scored.
    champion: tuple[str, float | None, float | None, int] | None = None


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    query = "select count(*) from information_schema.tables where table_schema=? and table_name=?"
    return con.execute(query, [schema, table]).fetchone()[0] > 0


def collect_summary(settings: Settings) -> Summary:
    """Read the counts from the working warehouse."""
    summary = Summary()
    with connect(settings, read_only=True) as con:
        summary.sources = con.execute(
            """
            select source, count(*), sum(rows_read), sum(rows_loaded), sum(rows_duplicate),
                   sum(rows_quarantined)
            from audit.load_batches group by source order by source
            """
        ).fetchall()
        summary.identity_records = con.execute("select count(*) from identity.clusters").fetchone()[
            0
        ]
        if _table_exists(con, "marts", "customer_profiles"):
            summary.customers, summary.known_customers = con.execute(
                "select count(*), count(*) filter (where is_known) from marts.customer_profiles"
            ).fetchone()
        if _table_exists(con, "segments", "membership"):
            summary.segments = con.execute(
                """
                select d.name, count(m.customer_id)
                from segments.definitions as d
                left join segments.membership as m on m.segment = d.name
                group by d.name order by d.name
                """
            ).fetchall()
        if _table_exists(con, "ml", "model_runs") and _table_exists(con, "ml", "current_scores"):
            summary.champion = con.execute(
                """
                select r.model_version, r.roc_auc, r.top_decile_lift,
                       (select count(*) from ml.current_scores as s
                        where s.model_version = r.model_version)
                from ml.model_runs as r where r.is_champion
                order by r.as_of desc limit 1
                """
            ).fetchone()
    return summary


def _champion_line(champion: tuple | None) -> str:
    if champion is None:
        return "  propensity: no model trained yet (cdp run --only ml)"
    version, auc, lift, scored = champion
    quality = ", ".join(
        f"{name} {value:.3f}"
        for name, value in (("ROC AUC", auc), ("top-decile lift", lift))
        if value is not None
    )
    return f"  propensity: champion {version} ({quality}); {scored} customers scored"


def cdp_command() -> str:
    """How the user invoked ``cdp`` (e.g. ``.venv/bin/cdp`` from ``make demo``), to echo back."""
    invoked = sys.argv[0] if sys.argv and sys.argv[0] else "cdp"
    if os.path.basename(invoked) != "cdp" or os.sep not in invoked:
        return "cdp"
    return shlex.quote(os.path.relpath(invoked))


def format_summary(summary: Summary, settings: Settings, seconds: float | None = None) -> str:
    """Human-readable summary: what was loaded, who the customers are, where to look next."""
    cdp = cdp_command()
    lines = ["", "MicroCDP run summary" + (f" ({seconds:.0f} s)" if seconds else ""), ""]
    lines.append(
        f"  {'source':<26}{'files':>6}{'read':>10}{'loaded':>10}{'dupes':>8}{'quarant.':>10}"
    )
    for source, files, read, loaded, dupes, quarantined in summary.sources:
        lines.append(f"  {source:<26}{files:>6}{read:>10}{loaded:>10}{dupes:>8}{quarantined:>10}")
    anonymous = summary.customers - summary.known_customers
    lines += [
        "",
        f"  identity: {summary.identity_records} source identities → "
        f"{summary.customers} customers ({summary.known_customers} known, {anonymous} anonymous)",
        "  segments: "
        + (", ".join(f"{name} {size}" for name, size in summary.segments) or "none defined"),
        _champion_line(summary.champion),
        "",
        f"  warehouse:   {settings.warehouse_path}  (the pipeline's; analysts use the snapshot)",
        f"  snapshot:    {settings.publish_dir / 'warehouse.duckdb'}  (read-only, pseudonymized)",
        f'  quarantine:  {cdp} sql "select _source_file, _line_no, reason from quarantine.rows"',
        f'  profiles:    {cdp} sql "{PROFILES_QUERY}"',
        f"  Airflow UI:  make airflow   (metadata DB in {settings.airflow_home})",
        "",
    ]
    return "\n".join(lines)
