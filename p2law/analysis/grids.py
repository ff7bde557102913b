"""Grids of fits for the book's pages, and the process pool they run on (torch-free).

Each function fits a law to every (family, pruning method) cell of a checkpoint table and returns tidy
rows; a fit that cannot be made is a row with a reason, never an exception that stops a page.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from ..paper import FAMILIES, METHODS  # the families and the three pruning methods the paper fits laws for
from ..table import fit_rows
from .fit import FITTERS, fit


def coverage(df: pd.DataFrame, families=FAMILIES, methods=METHODS) -> pd.DataFrame:
    """Which family × method has curves (models and rates), so a page can say what is missing."""
    rows = []
    for fam in families:
        for m in methods:
            sub = df[(df["family"] == fam) & (df["method"] == m)]
            rows.append(
                {
                    "family": fam,
                    "method": m,
                    "models": sub["model"].nunique(),
                    "rates": sub["rate"].round(3).nunique(),
                    "curves": sub["run_id"].nunique(),
                    "rows": len(sub),
                }
            )
    return pd.DataFrame(rows)


def try_fit(rows: pd.DataFrame, form: str, fitter: str, n_unit: float, d_unit: float, **kw):
    """(FitResult, None) or (None, reason) — a degenerate fit becomes a reason, not an exception."""
    if rows.empty:
        return None, "no curves"
    try:
        return fit(rows, form, fitter, n_unit=n_unit, d_unit=d_unit, **kw), None
    except (ValueError, RuntimeError, np.linalg.LinAlgError, FloatingPointError) as err:
        return None, f"{type(err).__name__}: {err}"


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parallel_map(func, items, workers: int | None = None) -> list:
    """``[func(*item) for item in items]``, in that order, over ``workers`` processes (default: one per
    CPU). ``func`` must be importable (a module-level function): the workers are fresh interpreters
    (spawn), so a notebook's kernel is never forked. One worker, or one item, runs in this process."""
    items = list(items)
    workers = min(workers or available_cpus(), len(items))
    if workers <= 1:
        return [func(*item) for item in items]
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    ) as pool:
        return list(pool.map(func, *zip(*items)))


def die_with_parent(parent_pid: int, poll_seconds: float = 0.5) -> None:
    """Make this (worker) process end when ``parent_pid`` does, whatever killed the parent.

    A pool's workers finish the fit in hand and keep the CPU busy for minutes when the kernel that owns
    them is killed (a timed-out ``make book``), because nothing tells them. Linux delivers SIGKILL on the
    parent's death (``PR_SET_PDEATHSIG``); a watcher thread covers other systems and the case where the
    parent died before the request was made.
    """
    import signal
    import threading
    import time

    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def fit_grid(
    df: pd.DataFrame,
    forms,
    fitters=FITTERS,
    methods=METHODS,
    n_unit=1e6,
    d_unit=1e6,
    huber_start: str = "grid",
    workers: int | None = None,
    max_starts: int | None = None,
):
    """Fit every form × fitter × (family, method) present; returns (tidy scores table, fits dict).

    ``huber_start="lm"`` starts the huber-log fit from the LM optimum instead of the full starting grid
    (much faster; the notebooks expose it as a papermill parameter and say which was used); ``max_starts``
    optimises only that many grid starts, those with the lowest objective before any step. The fits are
    independent and deterministic, so they run in ``workers`` processes (``parallel_map``) with the same
    results as one after another.
    """
    cells = [(fam, m, form) for fam in sorted(df["family"].unique()) for m in methods for form in forms]
    data = {(fam, m): _rows_or_empty(df, m, fam) for fam, m, _ in cells}
    fits: dict = {}
    notes: dict = {}
    # Pass 1: every fit that needs nothing else; pass 2: huber-log started from its LM optimum.
    chained = huber_start == "lm" and "lm" in fitters
    for pass_fitters in (
        [f for f in fitters if not (chained and f == "huber-log")],
        ["huber-log"] if chained and "huber-log" in fitters else [],
    ):
        keys, args = [], []
        for fam, m, form in cells:
            for fitter in pass_fitters:
                lm = fits.get((fam, m, form, "lm"))
                kw = (
                    {"starts": [lm.vector]}
                    if fitter == "huber-log" and chained and lm is not None
                    else {"max_starts": max_starts}
                    if max_starts
                    else {}
                )
                keys.append((fam, m, form, fitter))
                args.append((data[(fam, m)], form, fitter, n_unit, d_unit, kw))
        for key, (res, why) in zip(keys, parallel_map(_try_fit_kw, args, workers)):
            fits[key], notes[key] = res, why
    rows = []
    for fam, m, form in cells:
        for fitter in fitters:
            key = (fam, m, form, fitter)
            res, why = fits[key], notes[key]
            rec = {
                "family": fam,
                "method": m,
                "form": form,
                "fitter": fitter,
                "n_points": len(data[(fam, m)]),
                "r2": np.nan,
                "huber": np.nan,
                "asd": np.nan,
                "note": why or "",
            }
            if res is not None:
                rec |= {
                    "r2": res.r2,
                    "huber": res.huber,
                    "asd": res.asd,
                    "note": "" if res.converged else "not converged",
                }
            rows.append(rec)
    return pd.DataFrame(rows), {
        k: fits[k] for k in ((f, m, form, fitter) for f, m, form in cells for fitter in fitters)
    }


def fit_with_bootstrap(
    rows: pd.DataFrame, form: str, fitter: str, n_unit: float, d_unit: float, n_bootstrap: int, seed: int
):
    """(fit with ``n_bootstrap`` refits on resampled curves kept on it, None) or (None or the fit, reason)."""
    res, why = try_fit(rows, form, fitter, n_unit, d_unit)
    if res is not None and n_bootstrap > 0:
        try:
            res = res.bootstrap(rows, n_resamples=n_bootstrap, seed=seed)
        except RuntimeError as err:
            why = f"bootstrap: {err}"
    return res, why


def held_out_scores(
    df: pd.DataFrame, family: str, method: str, protocol: str, form: str, fitters, options: dict
) -> tuple[list[dict], dict]:
    """One generalization cell (§4.3): fit ``form`` on the ``protocol`` split's fitting rows with each
    fitter, score it on the held-out rows, and refit it on ``n_bootstrap`` resamples of the fitting rows
    for a ``level`` interval of the held-out R².

    ``options``: n_unit, d_unit, huber_start ("lm": huber-log starts from the LM optimum), token_fraction
    (the dataset-size split), n_bootstrap, seed, level, and optionally max_starts (``fit``'s screen).
    Returns (one score row per fitter, {fitter: (fit, fitting rows, held-out rows)}); a split or fit that
    cannot be made is a row with a note.
    """
    from .protocols import SPLITS

    o = options
    base = {"family": family, "protocol": protocol, "method": method}
    data = _rows_or_empty(df, method, family)
    try:
        if data.empty:
            raise ValueError("no curves")
        split = SPLITS[protocol]
        train, test = split(data, o["token_fraction"]) if protocol == "dataset_size" else split(data)
    except ValueError as err:
        return [base | {"fitter": fitter, "note": f"split: {err}"} for fitter in fitters], {}
    rows, fits, lm = [], {}, None
    for fitter in fitters:
        kw = {"starts": [lm.vector]} if fitter == "huber-log" and o["huber_start"] == "lm" and lm else {}
        if o.get("max_starts") and "starts" not in kw:
            kw["max_starts"] = o["max_starts"]
        res, why = try_fit(train, form, fitter, o["n_unit"], o["d_unit"], **kw)
        if fitter == "lm":
            lm = res
        rec = base | {"fitter": fitter, "n_fit": len(train), "n_held_out": len(test), "note": why or ""}
        if res is not None:
            try:
                rec |= res.score(test)
            except ValueError as err:  # the law overflows on rows beyond the fitted range: no score, a note
                rec["note"] = f"held-out prediction: {err}"
                rows.append(rec)
                continue
            fits[fitter] = (res, train, test)
            if o["n_bootstrap"] > 0:
                try:
                    boot = res.bootstrap(train, n_resamples=o["n_bootstrap"], seed=o["seed"])
                    band = [
                        dataclasses.replace(res, params=dict(zip(res.form.param_names, v))).score(test)["r2"]
                        for v in boot.bootstrap_params
                    ]
                    lo, hi = np.nanpercentile(band, [50 * (1 - o["level"]), 50 * (1 + o["level"])])
                    # Failed refits are left out of the interval and counted, so the page can say how many.
                    rec |= {
                        "r2 low": lo,
                        "r2 high": hi,
                        "resamples": len(boot.bootstrap_params),
                        "failed refits": boot.bootstrap_failed,
                    }
                    fits[fitter] = (boot, train, test)
                except (RuntimeError, ValueError) as err:
                    rec["note"] = f"bootstrap: {err}"
        rows.append(rec)
    return rows, fits


def _rows_or_empty(df: pd.DataFrame, method: str, family: str) -> pd.DataFrame:
    """The cell's fit rows; none (reported as "no curves") when the table has no trained rows for it."""
    try:
        return fit_rows(df, method=method, family=family)
    except ValueError:
        return df.iloc[0:0]


def _try_fit_kw(rows, form, fitter, n_unit, d_unit, kw):
    return try_fit(rows, form, fitter, n_unit, d_unit, **kw)
