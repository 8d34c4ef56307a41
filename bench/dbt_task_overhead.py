"""What one Airflow task per dbt model costs against one ``dbt build`` task.

``python -m bench.dbt_task_overhead [--builds N]`` generates the end-to-end test's data set
(400 customers, 8,000 events), then for each ``CDP_DBT_TASKS`` mode (``models``, ``single``)
runs, in a fresh process and ``CDP_HOME``, the ingest DAG and then the build DAG N times through
``dag.test()`` (the first build on an empty warehouse, later ones rebuild the same data), and
prints a Markdown table of the build DAG's seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import date, datetime

AS_OF = datetime(2026, 11, 1)


def _run_one_mode(builds: int) -> list[float]:
    """In this process: generate, ingest once, build ``builds`` times; the build seconds."""
    from cdp import airflow_env
    from cdp.generate import GenerateConfig, generate
    from cdp.runner import run_dags
    from cdp.settings import load_settings

    settings = load_settings({**os.environ, "CDP_HOME": tempfile.mkdtemp(prefix="cdp-bench-")})
    airflow_env.configure(settings)
    generate(GenerateConfig(landing_dir=settings.landing_dir, truth_dir=settings.home / "truth",
                            customers=400, events=8000, seed=7, end_date=date(2026, 10, 31),
                            days=60))  # fmt: skip
    run_dags(settings, as_of=AS_OF, only=["ingest"])
    return [run_dags(settings, as_of=AS_OF, only=["build"])[0].seconds for _ in range(builds)]


def main(argv: list[str] | None = None) -> None:
    """Time both modes, each in its own process, and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.dbt_task_overhead", description=__doc__)
    parser.add_argument("--builds", type=int, default=2)
    parser.add_argument("--one-mode", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.one_mode:
        print(json.dumps(_run_one_mode(options.builds)))
        return
    seconds = {}
    for mode in ("models", "single"):
        env = {**os.environ, "CDP_DBT_TASKS": mode, "OMP_WAIT_POLICY": "PASSIVE"}
        command = [sys.executable, "-m", "bench.dbt_task_overhead", "--one-mode",
                   "--builds", str(options.builds)]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        seconds[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    print("| build | models s | single s | overhead s |\n| --- | ---: | ---: | ---: |")
    for index, (models, single) in enumerate(
        zip(seconds["models"], seconds["single"], strict=True)
    ):
        print(f"| {index + 1} | {models:.1f} | {single:.1f} | {models - single:+.1f} |")


if __name__ == "__main__":
    main()
