"""Provenance of a sweep's results: package versions, the git commit, the manifest file and its sessions.

``manifest.json`` beside ``checkpoints.csv`` records the profile, the corpus and its splits, each base (how it
was made or where it was loaded from, L0), each finished run (wall seconds, tokens, threads, its training
config) and every session that worked on the folder (a sweep may run in parts). A run is finished when the
manifest records it, which the sweep writes only after the run's last checkpoint row.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from pathlib import Path

import pandas as pd

from .. import table as checkpoint_table
from .data import write_json_atomic


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "accelerate", "datasets", "tokenizers", "numpy", "scipy", "pandas"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def existing_table(table_path: Path) -> pd.DataFrame | None:
    """The table an earlier (possibly killed) sweep left, checked to be ours before we append to it."""
    if not table_path.exists():
        return None
    df = pd.read_csv(table_path)
    if list(df.columns) != list(checkpoint_table.COLUMNS):
        raise ValueError(
            f"{table_path}: columns {list(df.columns)} are not a p2law checkpoint table's "
            f"{list(checkpoint_table.COLUMNS)}; refusing to append to it"
        )
    return df


def write_json(path, obj) -> None:
    """Atomic JSON write by the main process only (under torchrun every process runs the sweep)."""
    from .train import is_main_process

    if is_main_process():
        write_json_atomic(path, obj)


def open_manifest(path: Path, profile, device, only, threads: int) -> tuple[dict, dict]:
    """The manifest at ``path`` (an earlier session's, or a new one) headed with this session's profile,
    versions, commit and machine, and the record of this session, already appended to ``sessions``."""
    manifest = json.loads(path.read_text()) if path.exists() else {}
    manifest.update(
        {
            "profile": profile.to_dict(),
            "versions": versions(),
            "git_commit": git_commit(),
            "machine": {"cpus": threads, "platform": platform.platform(), "device": str(device)},
        }
    )
    manifest.setdefault("runs", {})
    manifest.setdefault("pretrain", {})
    session = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "only": list(only) if only else None,
        "threads": threads,
        "git_commit": manifest["git_commit"],
        "wall_seconds": 0.0,
    }
    manifest.setdefault("sessions", []).append(session)
    return manifest, session


def add_totals(manifest: dict) -> dict:
    """The summed wall seconds of every recorded run and pretraining."""
    manifest["wall_seconds_total_runs"] = sum(v["seconds"] for v in manifest["runs"].values())
    manifest["wall_seconds_total_pretrain"] = sum(v.get("seconds", 0) for v in manifest["pretrain"].values())
    return manifest
