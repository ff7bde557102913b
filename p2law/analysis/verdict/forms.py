"""Which form of the law fits best (Tables 2, 4 and 6) and Condition 2 on the fitted constants."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import metrics
from .core import (
    CONFIRMED,
    NOT_CONFIRMED,
    NOT_TESTABLE,
    Floor,
    Verdict,
    decide,
    floor_from_repeat,
    format_value,
    require_columns,
)

# --- Tables 2, 3 and 6 -----------------------------------------------------------------------------------

_BETTER = {"r2": "max", "huber": "min", "asd": "min"}


def form_wins(scores: pd.DataFrame, metric: str, forms=("L1", "L2", "L3")) -> pd.DataFrame:
    """For each (family, method), which form scores best on ``metric`` (a Table 2-shaped table)."""
    if metric not in _BETTER:
        raise ValueError(f"metric must be one of {sorted(_BETTER)}, got {metric!r}")
    require_columns(scores, ["family", "method", "form", metric], "score table")
    rows = []
    for (fam, method), g in scores[scores["form"].isin(forms)].dropna(subset=[metric]).groupby(["family", "method"]):
        if g["form"].nunique() < 2:
            continue
        best = g.loc[g[metric].idxmax() if _BETTER[metric] == "max" else g[metric].idxmin(), "form"]
        rows.append({"family": fam, "method": method, "best": best})
    return pd.DataFrame(rows, columns=["family", "method", "best"])


def best_form(
    ours: pd.DataFrame, paper_table: pd.DataFrame, metric: str, form: str = "L1", fitter: str = "lm"
) -> Verdict:
    """Table 2: the paper's chosen form scores best among L1–L3 on ``metric``.

    Our table may hold several fitters; the paper's LM fit is compared with our ``fitter`` rows. Confirmed
    when ``form`` is best in more than half of our (family, method) cells with at least two fitted forms.
    """
    if "fitter" in ours.columns:
        ours = ours[ours["fitter"] == fitter]
    mine, theirs = form_wins(ours, metric), form_wins(paper_table, metric)
    k, n = int((mine["best"] == form).sum()), len(mine)
    kp, np_ = int((theirs["best"] == form).sum()), len(theirs)
    verdict = NOT_TESTABLE if n == 0 else (CONFIRMED if k > n / 2 else NOT_CONFIRMED)
    others = mine.loc[mine["best"] != form, "best"].value_counts()
    detail = (" (else " + ", ".join(f"{f} {c}×" for f, c in others.items()) + ")") if len(others) else ""
    return Verdict(
        f"{form} is the best form on {metric.upper() if metric != 'r2' else 'R²'}",
        "§4.2, Table 2",
        f"best in {kp} of {np_} cells",
        f"best in {k} of {n} cells ({fitter}){detail}",
        verdict,
        f"confirmed if {form} is best in more than half of the cells",
    )


def generalization(
    ours: pd.DataFrame, paper_table: pd.DataFrame, protocol: str, fitter: str = "lm", min_r2: float = 0.8
) -> Verdict:
    """Table 3: a law fitted on part of the data predicts the held-out part (one protocol of §4.3).

    Confirmed when the median held-out R² of our cells (``fitter``) is at least ``min_r2``.
    """
    require_columns(ours, ["protocol", "r2"], "held-out score table")
    mine = ours[ours["protocol"] == protocol]
    if "fitter" in mine.columns:
        mine = mine[mine["fitter"] == fitter]
    mine = mine["r2"].dropna()
    theirs = paper_table[paper_table["protocol"] == protocol]["r2"].dropna()
    verdict = NOT_TESTABLE if mine.empty else (CONFIRMED if mine.median() >= min_r2 else NOT_CONFIRMED)
    fmt = lambda s: (
        f"median R² {s.median():.3f} over {len(s)} cells (range {s.min():.2f} to {s.max():.2f})"
        if len(s)
        else "no cell"
    )
    return Verdict(
        f"The law generalizes to held-out {protocol.replace('_', ' ')}",
        "§4.3, Table 3",
        fmt(theirs),
        fmt(mine) + f" ({fitter})",
        verdict,
        f"confirmed if our median held-out R² ≥ {min_r2}",
    )


def condition2(ours: pd.DataFrame, paper_table: pd.DataFrame, form: str = "L1") -> Verdict:
    """Table 6: the chosen form satisfies Condition 2 (∂²L/∂N0∂D > 0) in every cell.

    ``ours`` has columns family, form, method and a boolean ``ours``; the paper's has ``condition2``.
    Confirmed when every one of our ``form`` cells with a verdict satisfies it.
    """
    require_columns(ours, ["family", "form", "method", "ours"], "Condition 2 table")
    mine = ours[ours["form"] == form].dropna(subset=["ours"])
    theirs = paper_table[paper_table["form"] == form]
    merged = ours.dropna(subset=["ours"]).merge(paper_table, on=["family", "form", "method"])
    same = int((merged["ours"].astype(bool) == merged["condition2"].astype(bool)).sum())
    k = int(mine["ours"].astype(bool).sum())
    verdict = NOT_TESTABLE if mine.empty else (CONFIRMED if k == len(mine) else NOT_CONFIRMED)
    return Verdict(
        f"{form} satisfies Condition 2 (∂²L/∂N0∂D > 0: smaller models' loss falls faster)",
        "§4.2, Table 6",
        f"holds in {int(theirs['condition2'].sum())} of {len(theirs)} {form} cells",
        f"holds in {k} of {len(mine)} {form} cells; all forms: {same} of {len(merged)} verdicts agree with Table 6",
        verdict,
        f"confirmed if every {form} cell satisfies it",
    )


# --- ASD, nested forms, Table 4 --------------------------------------------------------------------------


def flat_line_asd(test: pd.DataFrame, loss_col: str = "eval_loss") -> float:
    """ASD of a flat line through each curve: every slope difference is the measured step itself."""
    y = test[loss_col].to_numpy(float)
    flat = test.groupby("run_id")[loss_col].transform("mean").to_numpy(float)
    return metrics.asd(test["tokens"].to_numpy(float), y, flat, test["run_id"].to_numpy())


def asd_vs_flat(law_asd: dict, flat_asd: dict, floor: Floor, paper_text: str) -> Verdict:
    """ASD says the law follows the curves' slopes only where it beats a flat line's ASD (``law_asd``,
    ``flat_asd``: {cell: value}). Effect: the median over cells of flat − law."""
    cells = sorted(set(law_asd) & set(flat_asd))
    diffs = np.array([flat_asd[c] - law_asd[c] for c in cells], float)
    effect = float(np.nanmedian(diffs)) if len(cells) and np.isfinite(diffs).any() else float("nan")
    wins = int(np.sum(diffs > 0))
    return Verdict(
        "The law's ASD shows it follows the curves' slopes",
        "§4.1–4.2, Eq. 8, Table 2",
        paper_text,
        f"median L1 ASD {format_value(np.median([law_asd[c] for c in cells]) if cells else np.nan)}; below the "
        f"flat line's in {wins} of {len(cells)} cells",
        decide(effect, floor),
        "confirmed if the median over cells of (flat line's ASD − L1's) exceeds the noise floor",
        baseline="a flat line through each curve",
        baseline_value=f"median ASD {format_value(np.median([flat_asd[c] for c in cells]) if cells else np.nan)}",
        noise_floor=floor.text(),
    )


def _form_cells(scores: pd.DataFrame) -> list[str]:
    # A held-out table has one cell per split too; an in-sample one only per (family, method).
    return ["family", "method", *(["protocol"] if "protocol" in scores.columns else [])]


def form_effect(scores: pd.DataFrame, form: str, rivals, metric: str = "r2") -> dict:
    """Per cell, ``form``'s score minus the best rival's (sign flipped for lower-is-better metrics), and
    the median over cells (``effect``: positive when ``form`` wins). ``scores``: family, method (and
    protocol, for held-out tables), form, ``metric``; a cell lacking ``form`` or every rival is skipped."""
    require_columns(scores, ["family", "method", "form", metric], "score table")
    sign = 1.0 if metric == "r2" else -1.0
    diffs, best_rival, mine = [], [], []
    for _, g in scores.dropna(subset=[metric]).groupby(_form_cells(scores)):
        g = g.drop_duplicates("form").set_index("form")[metric]
        present = [r for r in rivals if r in g.index]
        if form not in g.index or not present:
            continue
        top = max(present, key=lambda r: sign * g[r])
        diffs.append(sign * (g[form] - g[top]))
        best_rival.append(g[top])
        mine.append(g[form])
    return {
        "effect": float(np.median(diffs)) if diffs else float("nan"),
        "diffs": diffs,
        "mine": mine,
        "best_rival": best_rival,
    }


def form_floor(
    first: pd.DataFrame, repeat: pd.DataFrame, form: str, rivals, n_repeated: int, metric: str = "r2"
) -> Floor:
    """The noise floor of a form comparison: its effect on fits to the first seed's curves against the
    same effect on fits with every repeated curve swapped for its repeat (``swap_seeds``)."""
    return floor_from_repeat(
        form_effect(first, form, rivals, metric)["effect"],
        form_effect(repeat, form, rivals, metric)["effect"],
        f"{form} − best of {', '.join(rivals)}, {metric}",
        n_repeated,
    )


def form_comparison(
    scores: pd.DataFrame,
    form: str,
    rivals,
    floor: Floor,
    claim: str,
    source: str,
    paper_text: str,
    metric: str = "r2",
    held_out: bool = True,
) -> Verdict:
    """One form against its rivals on *held-out* scores (in sample, a form that nests the rivals cannot
    lose). Effect per cell (family, method, and split where ``scores`` has a protocol column): ours − the
    best rival's; the verdict is on the median over cells. ``held_out=False`` only for rivals the form does
    not nest (L1 against L4/L5), where an in-sample comparison can fail too."""
    e = form_effect(scores, form, rivals, metric)
    diffs, mine, best_rival = e["diffs"], e["mine"], e["best_rival"]
    where = "held-out" if held_out else "in-sample"
    return Verdict(
        claim,
        source,
        paper_text,
        f"{where} {metric}: median {format_value(np.median(mine) if mine else np.nan)}; {form} ahead in "
        f"{int(np.sum(np.array(diffs) > 0))} of {len(diffs)} cells",
        decide(e["effect"], floor),
        f"confirmed if {form}'s {where} {metric} beats the best of {', '.join(rivals)} by more than "
        "the noise floor (median over cells)",
        baseline=f"the best of {', '.join(rivals)}, {where}",
        baseline_value=f"median {format_value(np.median(best_rival) if best_rival else np.nan)}",
        noise_floor=floor.text(),
    )
