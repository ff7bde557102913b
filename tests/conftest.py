"""Shared, expensive fixtures: one smoke sweep and one smoke build of the book per test session."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory) -> Path:
    """A folder with the smoke profile's checkpoints.csv, manifest.json, prune reports and caches."""
    from p2law.lab.experiment import run

    out = tmp_path_factory.mktemp("smoke") / "results"
    run("smoke", out, progress=False)
    return out


@pytest.fixture(scope="session")
def smoke_book(smoke_results, tmp_path_factory) -> Path:
    """The real book, copied to a temporary folder and built end to end by scripts/build_book.py at the
    smoke profile on the session's smoke sweep (so no notebook re-runs it), warnings as errors, exactly as
    `make book PROFILE=smoke` does.

    Returns the copy's root: executed notebooks in book/_executed, the site in _build/html, and each
    page's saved tables and figures in ``smoke_results/book/<page>``.
    """
    copy = tmp_path_factory.mktemp("book") / "repo"
    copy.mkdir()
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(ROOT / name, copy / name)
    ignore = shutil.ignore_patterns("_executed", "__pycache__", ".ipynb_checkpoints", "_cache")
    for folder in ("book", "notebooks", "scripts"):
        shutil.copytree(ROOT / folder, copy / folder, ignore=ignore)
    # The real-model page reads the committed SmolLM2 results whatever the profile (not re-run at smoke scale).
    shutil.copytree(ROOT / "results" / "smollm", copy / "results" / "smollm", ignore=ignore)
    # Agg as in CI: the build must still put figures on the pages as images.
    # BOOK_PARAMS: one parameter, which the end-to-end test looks for in the executed notebook (the smoke
    # profile's cheap fits are the pages' own defaults at that profile).
    env = {
        **os.environ,
        "PROFILE": "smoke",
        "RESULTS_DIR": str(smoke_results),
        "MPLBACKEND": "Agg",
        "BOOK_PARAMS": json.dumps({"fitting_method": {"n_points": 10}}),
    }
    result = subprocess.run(
        [sys.executable, str(copy / "scripts" / "build_book.py")],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # CI builds the smoke book only here and opens this build in a browser afterwards (.ci/run).
    keep = os.environ.get("P2LAW_KEEP_SMOKE_BOOK_HTML")
    if keep:
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(copy / "_build" / "html", keep)
    return copy
