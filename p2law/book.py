"""The book's page helpers: results on demand, saved tables and figures, how tables and figures display.

Nothing here computes: the fits the pages show come from ``p2law.analysis`` (``grids`` for whole tables).

Every notebook calls ``ensure_results(profile, results_dir)`` first. For the smoke profile a missing
results folder is filled by running the smoke sweep (once, under a file lock: the notebooks of one build
share the folder and may start together);
for toy and paper the results must already exist, since those sweeps take hours.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
from pandas.io.formats.style import Styler

from .table import read

RUNNABLE_PROFILES = ("smoke",)


def _book_display() -> None:
    """Inside a kernel, make figures and tables display as a book page wants them, whatever the backend.

    Figures: under ``MPLBACKEND=Agg`` (as CI exports) IPython has no PNG formatter for figures, so a glued
    figure would reach the page as the text "<Figure ...>"; registering the formatter keeps the book's
    figures independent of the caller's environment. Tables (DataFrames and their Stylers): without the
    row numbers pandas shows for a plain RangeIndex, and inside a frame of their own that scrolls
    sideways, so a wide table does not push the page wider than the screen.
    """
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:  # plain Python: nothing to display into
        return
    shell = get_ipython()
    if shell is not None:
        select_figure_formats(shell, {"png"})
        html = shell.display_formatter.formatters["text/html"]
        html.for_type(pd.DataFrame, table_html)
        html.for_type(Styler, table_html)


def table_html(table) -> str:
    """A DataFrame or Styler as HTML for a book page: no RangeIndex column, in a sideways-scrolling frame."""
    numbered = isinstance(table.index if isinstance(table, pd.DataFrame) else table.data.index, pd.RangeIndex)
    if isinstance(table, Styler):
        body = (copy.copy(table).hide(axis="index") if numbered else table).to_html()  # the page's Styler unchanged
    else:
        body = table.to_html(
            index=not numbered,
            max_rows=pd.get_option("display.max_rows"),
            max_cols=pd.get_option("display.max_columns"),
            border=0,
        )
    return f'<div class="p2law-table" style="overflow-x: auto; max-width: 100%;">{body}</div>'


_book_display()


class MissingResultsError(FileNotFoundError):
    """The results a notebook reads are not there and this profile is too expensive to run here."""


def ensure_results(profile: str, results_dir) -> Path:
    """The results folder, with ``checkpoints.csv``; runs (or resumes) the sweep only for the smoke profile.

    A run counts as finished when the manifest records it (the sweep writes that only after the run's last
    checkpoint). A smoke sweep killed half-way is resumed, not rendered; for the other profiles a run the
    table holds only part of is an error naming it (a sweep run in parts, whole models at a time, is fine).
    """
    out = Path(results_dir)
    if profile not in RUNNABLE_PROFILES:
        if not (out / "checkpoints.csv").exists():
            raise MissingResultsError(
                f"{out / 'checkpoints.csv'} does not exist. The {profile!r} sweep is not run by the book; run "
                f"`p2law run --profile {profile} --out {out}` first (or build with PROFILE=smoke)."
            )
        _, half_done = unfinished_runs(profile, out)
        if half_done:
            raise MissingResultsError(
                f"{out} holds part of {len(half_done)} unfinished run(s) ({', '.join(half_done[:5])}"
                f"{', ...' if len(half_done) > 5 else ''}): the sweep was stopped mid-run. Resume it with "
                f"`p2law run --profile {profile} --out {out}` before building the book."
            )
        return out
    from filelock import FileLock

    from .lab.experiment import run, sweep_lock

    # Notebooks of one build may start together on an empty folder: the first to get here runs the sweep,
    # the others wait for it and then find the whole table. (The table is looked at only under the lock:
    # outside it, a sweep under way has already written its first rows.) Waiting on the sweep's own lock
    # as well covers a sweep started by hand (`p2law run`) into the same folder.
    (out / "_cache").mkdir(parents=True, exist_ok=True)
    with FileLock(out / "_cache" / "ensure.lock"):
        with sweep_lock(out):
            not_finished, _ = unfinished_runs(profile, out)
        if not_finished:
            run(profile, out, progress=False)  # resumes: finished runs are skipped
    return out


def unfinished_runs(profile: str, results_dir) -> tuple[list[str], list[str]]:
    """(the profile's planned runs the manifest does not record as finished, those of them the table
    already holds rows of: runs stopped mid-way)."""
    from .lab.profiles import get_profile
    from .lab.schedule import plan_runs

    out = Path(results_dir)
    manifest = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").exists() else {}
    # runs recorded when they ended, and runs a later sweep found whole in the table (recovered_runs)
    finished = set(manifest.get("runs", {})) | set(manifest.get("recovered_runs", []))
    table = out / "checkpoints.csv"
    started = set(pd.read_csv(table, usecols=["run_id"])["run_id"].astype(str)) if table.exists() else set()
    planned = [r.run_id for r in plan_runs(get_profile(profile))]
    not_finished = [r for r in planned if r not in finished]
    return not_finished, [r for r in not_finished if r in started]


def load_checkpoints(results_dir) -> pd.DataFrame:
    return read(Path(results_dir) / "checkpoints.csv")


def load_reports(results_dir) -> dict[str, dict]:
    """Prune reports keyed by run id."""
    folder = Path(results_dir) / "prune_reports"
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.exists() else {}


def load_pretrain(results_dir) -> dict[str, dict]:
    folder = Path(results_dir) / "pretrain"
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.exists() else {}


def book_dir(results_dir, page: str) -> Path:
    out = Path(results_dir) / "book" / page
    out.mkdir(parents=True, exist_ok=True)
    return out


def save_figure(fig, results_dir, page: str, name: str) -> Path:
    path = book_dir(results_dir, page) / f"{name}.png"
    fig.savefig(path, dpi=90, bbox_inches="tight")
    return path


def save_table(table: pd.DataFrame, results_dir, page: str, name: str) -> Path:
    path = book_dir(results_dir, page) / f"{name}.csv"
    table.to_csv(path, index=not isinstance(table.index, pd.RangeIndex))
    return path
