"""``cdp`` — the MicroCDP command line."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from cdp.settings import Settings, load_settings

DEMO_MARKER = ".microcdp-demo"


class UsageError(Exception):
    """Bad input from the user; printed without a traceback."""


def _parse_date(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z])"
        ) from None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return int(value)


def _generate(settings: Settings, args: argparse.Namespace) -> dict:
    from cdp.generate import GenerateConfig, generate

    landing = Path(args.out).resolve() if args.out else settings.landing_dir
    truth = Path(args.truth).resolve() if args.truth else landing.parent / "truth"
    end = args.end_date.date() if args.end_date else date.today() - timedelta(days=1)
    config = GenerateConfig(
        landing_dir=landing,
        truth_dir=truth,
        customers=args.customers,
        events=args.events,
        seed=args.seed,
        end_date=end,
        days=args.days,
    )
    summary = generate(config)
    print(
        f"generated {summary['crm_rows']} CRM rows, {summary['order_rows']} orders, "
        f"{summary['event_lines']} event lines for {summary['persons']} persons\n"
        f"  landing: {landing}\n  truth:   {truth}"
    )
    return summary


def _run(settings: Settings, as_of: datetime | None, only: str | None, verbose: bool) -> None:
    from cdp.runner import run_dags

    steps = [s.strip() for s in only.split(",") if s.strip()] if only else None
    for report in run_dags(settings, as_of=as_of, only=steps, verbose=verbose):
        print(f"  {report.dag_id:<12} {report.state:<8} {report.seconds:6.1f} s  ({report.run_id})")


def _print_summary(settings: Settings, seconds: float | None = None) -> None:
    from cdp.summary import collect_summary, format_summary

    print(format_summary(collect_summary(settings), settings, seconds))


def _reset_demo_home(settings: Settings) -> None:
    """Start the demo from scratch, but never wipe a CDP_HOME the demo did not create."""
    marker = settings.home / DEMO_MARKER
    owned = [settings.warehouse_path, settings.landing_dir, settings.airflow_home,
             settings.home / "truth", settings.home / "dbt"]  # fmt: skip
    if not marker.exists() and any(p.exists() for p in owned):
        raise UsageError(
            f"{settings.home} already holds data that `cdp demo` did not create; "
            "set CDP_HOME to an empty folder for the demo (or use `cdp run` on your data)"
        )
    for path in owned:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    settings.home.mkdir(parents=True, exist_ok=True)
    marker.write_text("created by `cdp demo`; the demo may delete and recreate this folder\n")


def _demo(settings: Settings, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    _reset_demo_home(settings)
    args.out = args.truth = None
    args.end_date = datetime.combine(date.today() - timedelta(days=1), datetime.min.time())
    _generate(settings, args)
    as_of = datetime.combine(date.today(), datetime.min.time())
    print(f"running the DAGs in-process as of {as_of:%Y-%m-%d %H:%M} UTC ...")
    _run(settings, as_of, None, args.verbose)
    _print_summary(settings, time.perf_counter() - started)


def _read_only(settings: Settings):
    """The warehouse opened read-only (a clear error if there is none yet)."""
    import duckdb

    if not settings.warehouse_path.exists():
        raise UsageError(f"no warehouse at {settings.warehouse_path}; run `cdp demo` first")
    return duckdb.connect(str(settings.warehouse_path), read_only=True)


def _sql(settings: Settings, query: str) -> None:
    con = _read_only(settings)
    try:
        con.sql(query).show(max_width=200)
    finally:
        con.close()


def _segments(settings: Settings, args: argparse.Namespace) -> None:
    from cdp import segments

    if args.action == "validate":
        definitions = segments.load_definitions(settings.segments_dir)  # raises on any problem
        print(f"{len(definitions)} segment definitions in {settings.segments_dir} are valid")
        return
    as_of = getattr(args, "as_of", None) or datetime.now(UTC).replace(tzinfo=None)
    if args.action == "microbatch":
        _segments_microbatch(settings, as_of)
        return
    con = _read_only(settings)
    try:
        if args.action == "list":
            for info in segments.list_segments(con):
                print(f"{info.name:<28}{info.members:>8}  {info.kind:<8}{info.description}")
        elif args.action == "show":
            info = segments.get_segment(con, args.name)
            consent = info.consent_purpose or "none required"
            print(
                f"{info.name} ({info.kind}, refresh {info.refresh}, owner {info.owner})\n"
                f"  {info.description}\n  consent: {consent}\n  members: {info.members}"
                f" (run {info.last_run_id}, as of {info.last_as_of})\n"
                f"  rule: {info.rule_json}\n  sql:  {' '.join(info.compiled_sql.split())}"
            )
        elif args.action == "explain":
            definitions = segments.load_definitions(settings.segments_dir, con=con)
            if args.as_of is None:  # judge at the time the current membership was decided
                as_of = _last_decided(con, args.name) or as_of
            explanation = segments.explain_membership(
                con, definitions, args.name, args.customer_id, as_of
            )
            print(explanation.render())
        else:
            for member in segments.segment_members(con, args.name, args.limit):
                print(f"{member.customer_id}  entered {member.entered_at:%Y-%m-%d %H:%M}")
    finally:
        con.close()


def _last_decided(con, segment: str) -> datetime | None:
    """The as-of time of a segment's latest recorded run (None before its first run)."""
    import duckdb

    try:
        [(as_of,)] = con.execute(
            "select max(as_of) from segments.sizes where segment = ?", [segment]
        ).fetchall()
    except duckdb.CatalogException:  # no segment has ever been evaluated here
        return None
    return as_of


def _segments_microbatch(settings: Settings, as_of: datetime) -> None:
    from cdp.segments.microbatch import run_microbatch

    report = run_microbatch(settings, f"cli__microbatch__{as_of:%Y-%m-%dT%H:%M:%S}", as_of)
    loaded = report.ingest.rows_loaded if report.ingest else 0
    print(f"micro-batch as of {as_of:%Y-%m-%d %H:%M:%S} UTC: {loaded} new events")
    for step, seconds in report.seconds.items():
        print(f"  {step:<10}{seconds:>8.2f} s")
    for segment, members in report.segments.items():
        print(f"  {segment:<28}{members:>8} members")


def _publish(settings: Settings, args: argparse.Namespace) -> None:
    """Mart quality gate, then atomic publish of the analyst snapshot (or roll back one)."""
    from cdp.publish import publish_snapshot, rollback_snapshot

    if not settings.warehouse_path.exists():
        raise UsageError(f"no warehouse at {settings.warehouse_path}; run `cdp demo` first")
    if args.rollback:
        result = rollback_snapshot(settings, run_id="cli")
        print(f"rolled back to snapshot {result.publish_id}: {result.snapshot_path}")
        return
    from cdp.quality.gate import run_mart_gate

    as_of = args.as_of or datetime.now(UTC).replace(tzinfo=None)
    run_id = f"cli__{datetime.now(UTC):%Y-%m-%dT%H:%M:%S}"
    gate = run_mart_gate(settings, run_id, as_of)
    print(f"quality gate passed: {gate['expectations']} expectations in {gate['suites']} suites")
    result = publish_snapshot(settings, run_id, as_of)
    if result.uses_dev_key:
        print("warning: PII hashed with the built-in DEV key; set CDP_PSEUDONYMIZATION_KEY")
    print(f"published snapshot {result.publish_id}: {result.snapshot_path}")
    for table, rows in result.row_counts.items():
        print(f"  {table:<40}{rows:>10}")


def _identity_evaluate(dataset: str) -> None:
    import json

    from identity.evaluate import evaluate_dataset

    print(json.dumps(evaluate_dataset(dataset), indent=2))


def build_parser() -> argparse.ArgumentParser:
    """The ``cdp`` argument parser."""
    parser = argparse.ArgumentParser(prog="cdp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add_generate_options(p: argparse.ArgumentParser, customers: int, events: int) -> None:
        p.add_argument("--customers", type=_positive_int, default=customers)
        p.add_argument("--events", type=_positive_int, default=events)
        p.add_argument("--seed", type=int, default=42)
        p.add_argument("--days", type=_positive_int, default=90, help="days of history")

    gen = sub.add_parser("generate", help="synthetic sources with realistic dirt + ground truth")
    add_generate_options(gen, 5000, 200_000)
    gen.add_argument("--out", help="landing folder (default $CDP_HOME/landing)")
    gen.add_argument("--truth", help="ground-truth folder (default: 'truth' beside --out)")
    gen.add_argument("--end-date", type=_parse_date, help="last day of data (default yesterday)")

    run = sub.add_parser("run", help="run the DAGs in-process on what is in landing")
    run.add_argument("--as-of", type=_parse_date, help="the Airflow logical date (default now)")
    run.add_argument("--only", help="comma-separated steps: ingest,build,ml")
    run.add_argument("--verbose", action="store_true", help="show Airflow's task logs")

    demo = sub.add_parser("demo", help="generate sample data, run every DAG, print a summary")
    add_generate_options(demo, 5000, 200_000)
    demo.add_argument("--verbose", action="store_true", help="show Airflow's task logs")

    sql = sub.add_parser("sql", help="run a read-only SQL query on the warehouse")
    sql.add_argument("query")

    sub.add_parser("summary", help="print what the warehouse holds")

    pub = sub.add_parser("publish", help="quality gate, then atomic publish of the snapshot")
    pub.add_argument("--as-of", type=_parse_date, help="reference time for freshness (now)")
    pub.add_argument("--rollback", action="store_true", help="restore the previous snapshot")

    ident = sub.add_parser("identity", help="identity resolution tools")
    ident_actions = ident.add_subparsers(dest="action", required=True)
    evaluate = ident_actions.add_parser(
        "evaluate", help="precision / recall / F1 against ground truth, as JSON"
    )
    evaluate.add_argument(
        "--dataset", required=True, help="'febrl4' or a folder written by `cdp generate`"
    )

    seg = sub.add_parser("segments", help="inspect and validate segments")
    seg_actions = seg.add_subparsers(dest="action", required=True)
    seg_actions.add_parser("list", help="every segment with its current size")
    seg_actions.add_parser("validate", help="check every definition in CDP_SEGMENTS_DIR")
    for action in ("show", "members"):
        one = seg_actions.add_parser(action, help=f"{action} one segment")
        one.add_argument("name")
        if action == "members":
            one.add_argument("--limit", type=_positive_int, default=20)
    why = seg_actions.add_parser("explain", help="why a customer is (not) in a segment")
    why.add_argument("name")
    why.add_argument("customer_id")
    why.add_argument(
        "--as-of",
        type=_parse_date,
        help="the time T to judge at (default: when the current membership was decided)",
    )
    micro = seg_actions.add_parser(
        "microbatch", help="ingest new events, resolve identity, refresh minutes-fresh segments"
    )
    micro.add_argument("--as-of", type=_parse_date, help="the run's logical time (default now)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cdp`` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "generate":
            _generate(settings, args)
        elif args.command == "run":
            _run(settings, args.as_of, args.only, args.verbose)
            _print_summary(settings)
        elif args.command == "demo":
            _demo(settings, args)
        elif args.command == "sql":
            _sql(settings, args.query)
        elif args.command == "summary":
            _print_summary(settings)
        elif args.command == "segments":
            _segments(settings, args)
        elif args.command == "identity":
            _identity_evaluate(args.dataset)
        elif args.command == "publish":
            _publish(settings, args)
    except UsageError as exc:
        print(f"cdp: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - every failure ends in one clear line + exit code
        from cdp.errors import is_user_facing

        if not is_user_facing(exc):
            raise
        print(f"cdp: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
