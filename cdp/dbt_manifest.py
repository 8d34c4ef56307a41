"""The dbt manifest the build DAG is drawn from, and the proof that it matches the project.

The Airflow DAG shows one task per dbt model, read from ``<project>/target/manifest.json`` so
parsing a DAG never runs dbt. ``make install`` (or ``python -m cdp.dbt_manifest``) writes it with
``dbt parse`` together with a fingerprint of every project file; a DAG parse whose fingerprint
differs fails loudly instead of running a task graph that no longer matches the models.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

from cdp.settings import Settings, load_settings

#: Folders of a dbt project that dbt writes (never part of the fingerprint).
_GENERATED_DIRS = {"target", "logs", "dbt_packages"}


class StaleDbtManifest(RuntimeError):
    """The dbt manifest is missing or was generated from other project files."""


def manifest_path(project_dir: Path) -> Path:
    """Where the DAG reads the project's manifest."""
    return project_dir / "target" / "manifest.json"


def _fingerprint_path(project_dir: Path) -> Path:
    return project_dir / "target" / "manifest.fingerprint"


def _is_dbt_input(relative: Path) -> bool:
    """Files dbt reads: YAML at the top (project, profiles, packages) and everything in folders."""
    if len(relative.parts) == 1:
        return relative.suffix in (".yml", ".yaml")
    return relative.parts[0] not in _GENERATED_DIRS


def project_fingerprint(project_dir: Path) -> str:
    """SHA-256 over the relative path and content of every file of the project dbt reads."""
    digest = hashlib.sha256()
    for path in sorted(p for p in project_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(project_dir)
        if not _is_dbt_input(relative):
            continue
        digest.update(relative.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def fresh_manifest_path(project_dir: Path) -> Path:
    """The manifest path; raises ``StaleDbtManifest`` if it is missing or out of date."""
    manifest, fingerprint = manifest_path(project_dir), _fingerprint_path(project_dir)
    regenerate = f"run `make install` or `python -m cdp.dbt_manifest --project-dir {project_dir}`"
    if not manifest.is_file() or not fingerprint.is_file():
        raise StaleDbtManifest(f"no dbt manifest at {manifest}: {regenerate}")
    if fingerprint.read_text().strip() != project_fingerprint(project_dir):
        raise StaleDbtManifest(
            f"dbt manifest {manifest} is older than the files in {project_dir}: {regenerate}"
        )
    return manifest


def write_manifest(settings: Settings) -> Path:
    """``dbt parse`` the project into its ``target/`` and record the fingerprint it matches."""
    from cdp.transform import DbtBuildFailed, dbt_args, run_dbt

    project_dir = settings.dbt_project_dir
    fingerprint = project_fingerprint(project_dir)
    args = dbt_args(settings, "parse")
    # Everything goes next to the project (git-ignored target/): `make install` must leave
    # CDP_HOME untouched, or `cdp demo` would find a home it did not create.
    target = manifest_path(project_dir).parent
    args[args.index("--target-path") + 1] = str(target)
    args[args.index("--log-path") + 1] = str(target / "logs")
    result = run_dbt(settings, args)
    if not result.success:
        raise DbtBuildFailed(f"dbt parse of {project_dir} failed: {result.exception}")
    _fingerprint_path(project_dir).write_text(fingerprint + "\n")
    return manifest_path(project_dir)


def ensure_manifest(settings: Settings) -> Path:
    """The project's manifest, re-parsed first if it is missing or older than the project."""
    try:
        return fresh_manifest_path(settings.dbt_project_dir)
    except StaleDbtManifest:
        return write_manifest(settings)


def main(argv: list[str] | None = None) -> None:
    """Command line: regenerate the manifest of the configured (or given) dbt project."""
    parser = argparse.ArgumentParser(prog="python -m cdp.dbt_manifest", description=__doc__)
    parser.add_argument("--project-dir", type=Path, help="dbt project (default: settings)")
    parser.add_argument("--if-stale", action="store_true", help="only if missing or outdated")
    options = parser.parse_args(argv)
    env = {"CDP_DBT_PROJECT_DIR": str(options.project_dir)} if options.project_dir else {}
    settings = load_settings({**os.environ, **env})
    if options.if_stale:
        try:
            print(f"dbt manifest is up to date: {fresh_manifest_path(settings.dbt_project_dir)}")
            return
        except StaleDbtManifest as stale:
            print(stale)
    print(f"dbt manifest written to {write_manifest(settings)}")


if __name__ == "__main__":
    main()
