"""The book's result tables, computed from the checkpoint table (Tables 2, 3, 4 and 6, the held-out form
comparison, the token budgets), each cached on disk by the table's fingerprint (``cache.cached``).

The fitting, generalization and planning pages show these tables; the verdict page judges the paper's
claims on them. Both call the same functions with the same parameters, so no page reads another page's
files and the second caller reads what the first computed. Every function takes the checkpoint table as
read (all seeds): laws are fitted to the first data-order seed of each run (``table.first_seed``); the
repeats serve only the held-out form comparison's noise floor.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..paper import METHODS
from ..table import first_seed, fit_rows, swap_seeds
from . import grids
from .budget import flattening_tokens, token_budget
from .cache import cached
from .fit import FITTERS
from .metrics import Domain, check_conditions
from .protocols import SPLITS

FORMS = ("L1", "L2", "L3", "L4", "L5")


def _with_columns(table: pd.DataFrame, columns) -> pd.DataFrame:
    """``table`` with every one of ``columns`` present (NaN where no row had it): a fixed set of columns."""
    for c in columns:
        if c not in table:
            table[c] = np.nan
    return table


@cached
def table2(checkpoints, fitters=FITTERS, n_unit=1e6, d_unit=1e6, huber_start="grid", max_starts=None, cache_dir=None):
    """Table 2: L1–L3 fitted to every (family, method) with each fitter. (scores, {(family, method, form,
    fitter): FitResult or None}); ``grids.fit_grid`` says what the parameters do."""
    return grids.fit_grid(
        first_seed(checkpoints),
        ["L1", "L2", "L3"],
        fitters=list(fitters),
        n_unit=n_unit,
        d_unit=d_unit,
        huber_start=huber_start,
        max_starts=max_starts,
    )


@cached
def table4(checkpoints, fitters=FITTERS, n_unit=1e6, d_unit=1e6, huber_start="grid", max_starts=None, cache_dir=None):
    """Table 4: L1 (Table 2's fits) against L4 and L5. (scores, fits of L4 and L5)."""
    grid = dict(n_unit=n_unit, d_unit=d_unit, huber_start=huber_start, max_starts=max_starts)
    scores2, _ = table2(checkpoints, fitters=fitters, **grid, cache_dir=cache_dir)
    scores, fits = grids.fit_grid(first_seed(checkpoints), ["L4", "L5"], fitters=list(fitters), **grid)
    return pd.concat([scores2[scores2["form"] == "L1"], scores], ignore_index=True), fits


@cached
def table6(
    checkpoints,
    fitter="lm",
    fitters=FITTERS,
    n_unit=1e6,
    d_unit=1e6,
    huber_start="grid",
    max_starts=None,
    cache_dir=None,
):
    """Table 6: whether each of Table 2's ``fitter`` fits satisfies Condition 2 (∂²L/∂N0∂D > 0), in closed
    form where one exists, else numerically over the table's range of N0, D and ρ. Columns family, form,
    method, ours (True, False, or NaN where the fit failed or the condition cannot be judged)."""
    df = first_seed(checkpoints)
    _, fits = table2(
        checkpoints,
        fitters=fitters,
        n_unit=n_unit,
        d_unit=d_unit,
        huber_start=huber_start,
        max_starts=max_starts,
        cache_dir=cache_dir,
    )
    domain = Domain(
        n0=(df["n0"].min() / n_unit, df["n0"].max() / n_unit),
        d=(max(df.loc[df["tokens"] > 0, "tokens"].min(), 1) / d_unit, df["tokens"].max() / d_unit),
        rho=(max(df.loc[df["rate"] > 0, "rate"].min(), 0.01), df["rate"].max()),
        l0=float(df["l0"].mean()),
    )
    rows = []
    for (fam, m, form, f), res in fits.items():
        if f != fitter:
            continue
        verdict = np.nan
        if res is not None:
            try:
                c2 = [c for c in check_conditions(res.form, res.params, domain) if c.condition == 2][0]
                verdict = bool(c2.analytic if c2.analytic is not None else c2.numeric)
            except (ValueError, FloatingPointError):  # the condition cannot be judged: left blank
                verdict = np.nan
        rows.append({"family": fam, "form": form, "method": m, "ours": verdict})
    return pd.DataFrame(rows, columns=["family", "form", "method", "ours"])


@cached
def table3(
    checkpoints,
    form="L1",
    fitters=FITTERS,
    n_unit=1e6,
    d_unit=1e6,
    huber_start="grid",
    max_starts=None,
    token_fraction=0.8,
    n_bootstrap=20,
    seed=0,
    level=0.9,
    cache_dir=None,
):
    """Table 3: ``form`` fitted on each split's fitting rows (§4.3), scored on its held-out rows, with a
    ``level`` bootstrap interval of the held-out R² from ``n_bootstrap`` refits (``grids.held_out_scores``).
    (scores, {(family, method, protocol, fitter): (fit, fitting rows, held-out rows)})."""
    df = first_seed(checkpoints)
    options = dict(
        n_unit=n_unit,
        d_unit=d_unit,
        huber_start=huber_start,
        token_fraction=token_fraction,
        n_bootstrap=n_bootstrap,
        seed=seed,
        level=level,
        max_starts=max_starts,
    )
    cells = [(fam, m, protocol) for fam in sorted(df["family"].unique()) for m in METHODS for protocol in SPLITS]
    results = grids.parallel_map(
        grids.held_out_scores, [(df, fam, m, protocol, form, list(fitters), options) for fam, m, protocol in cells]
    )
    rows, held_fits = [], {}
    for (fam, m, protocol), (cell_rows, cell_fits) in zip(cells, results):
        rows += cell_rows
        held_fits |= {(fam, m, protocol, fitter): fit for fitter, fit in cell_fits.items()}
    columns = ["r2", "huber", "asd", "r2 low", "r2 high", "n_fit", "n_held_out", "resamples", "failed refits"]
    return _with_columns(pd.DataFrame(rows), columns), held_fits


@cached
def forms_held_out(
    checkpoints,
    forms=FORMS,
    protocols=("dataset_size", "pruning_rate"),
    n_unit=1e6,
    d_unit=1e6,
    token_fraction=0.8,
    max_starts=2,
    cache_dir=None,
):
    """Each form fitted with LM on the ``protocols`` splits' fitting rows and scored held out, once on the
    first seed's curves (``seeds`` "first") and once with every repeated curve swapped for its other seed
    ("repeat"; ``n_repeated`` says how many were), so the comparison has a noise floor. LM starts from the
    ``max_starts`` grid starts with the lowest initial error."""

    swapped, n_swapped = swap_seeds(checkpoints)
    seed_tables = {"first": first_seed(checkpoints), "repeat": swapped}
    families = sorted(seed_tables["first"]["family"].unique())
    cells = [
        (s, fam, m, p, f) for s in seed_tables for fam in families for m in METHODS for p in protocols for f in forms
    ]
    options = dict(
        n_unit=n_unit,
        d_unit=d_unit,
        huber_start="lm",
        token_fraction=token_fraction,
        n_bootstrap=0,
        seed=0,
        level=0.9,
        max_starts=max_starts,
    )
    results = grids.parallel_map(
        grids.held_out_scores, [(seed_tables[s], fam, m, p, f, ["lm"], options) for s, fam, m, p, f in cells]
    )
    rows = [
        row | {"seeds": s, "form": f, "n_repeated": n_swapped}
        for (s, fam, m, p, f), (cell_rows, _) in zip(cells, results)
        for row in cell_rows
    ]
    return _with_columns(pd.DataFrame(rows), ["r2", "huber", "asd"])


@cached
def budgets(
    checkpoints,
    form="L1",
    fitter="lm",
    threshold=0.01,
    per="decade",
    n_bootstrap=20,
    level=0.9,
    seed=0,
    n_unit=1e6,
    d_unit=1e6,
    cache_dir=None,
):
    """The token budget of every pruned curve: ``form`` fitted per (family, method) with ``n_bootstrap``
    refits for a ``level`` interval, and the tokens at which its slope falls under ``threshold`` nats per
    ``per`` (``budget.token_budget``); beside it, where the measured curve itself flattened by the same
    threshold (per decade only). (table, {(family, method): fit or None})."""

    df = first_seed(checkpoints)
    cells = {
        (fam, m): fit_rows(df, method=m, family=fam)
        for fam in sorted(df["family"].unique())
        for m in METHODS
        if (df.loc[(df["family"] == fam) & (df["method"] == m), "tokens"] > 0).any()
    }
    fitted = grids.parallel_map(
        grids.fit_with_bootstrap,
        [(data, form, fitter, n_unit, d_unit, n_bootstrap, seed) for data in cells.values()],
    )
    rows, laws = [], {}
    for ((fam, m), data), (res, why) in zip(cells.items(), fitted):
        laws[(fam, m)] = res
        for (model, rate), g in data.groupby(["model", "rate"]):
            rec = {
                "family": fam,
                "method": m,
                "model": model,
                "N0": int(g["n0"].iloc[0]),
                "rate ρ": float(rate),
                "tokens trained": int(g["tokens"].max()),
                "note": why or "",
            }
            if res is not None:
                try:
                    n0, l0 = float(g["n0"].iloc[0]), float(g["l0"].iloc[0])
                    b = token_budget(res, n0, float(rate), l0, threshold, per=per, level=level)
                    rec |= {
                        "budget tokens": b.tokens,
                        "low": (b.tokens_interval or (np.nan,))[0],
                        "high": (b.tokens_interval or (np.nan, np.nan))[1],
                        "compute 6ND": b.compute,
                        "loss at budget": b.loss_at_budget,
                    }
                except ValueError as err:
                    rec["note"] = str(err)
            if per == "decade":
                curve = g.sort_values("tokens")
                rec["measured flattening"] = flattening_tokens(curve["tokens"], curve["eval_loss"], threshold)
            rows.append(rec)
    columns = ["budget tokens", "low", "high", "compute 6ND", "loss at budget", "measured flattening"]
    return _with_columns(pd.DataFrame(rows), columns), laws
