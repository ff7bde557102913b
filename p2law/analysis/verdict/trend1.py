"""Trend 1: larger models lose less and recover faster at the same pruning rate."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...table import rate_key
from .baselines import curve_at
from .core import (
    CONFIRMED,
    NOT_CONFIRMED,
    NOT_DISTINGUISHABLE,
    NOT_TESTABLE,
    RATE_MATCH,
    Floor,
    Verdict,
    decide,
    first_seed_rows,
    require_columns,
)

# --- Trend 1 ---------------------------------------------------------------------------------------------


def relative_drops(
    df: pd.DataFrame, loss_col: str = "eval_loss", fraction: float = 0.5, baseline: str = "none"
) -> pd.DataFrame:
    """Per pruned curve: the loss drop from D = 0 to a token count D* shared by the curves it is compared
    with, relative to the loss at D = 0.

    Curves are compared within (family, method, rate rank); ``rate rank`` numbers each model's rates from its
    lowest (0), since the toy models mirror paper models whose Table 1 rates differ. D* is ``fraction`` of
    the shortest curve's tokens in the group, so every model is measured over the same number of tokens
    (larger models get larger budgets; a share of each one's own budget would favour them). The loss at D*
    is interpolated linearly between checkpoints.

    ``baseline="control"`` measures the loss *above the ρ = 0 control* of the same model at the same tokens
    instead of the loss itself: the relative drop is then the share of the pruning damage repaired by D*.
    """
    if baseline not in ("none", "control"):
        raise ValueError(f"baseline must be 'none' or 'control', got {baseline!r}")
    require_columns(df, ["run_id", "family", "method", "model", "n0", "rate", "tokens", loss_col], "checkpoint table")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    columns = [
        "run_id",
        "family",
        "method",
        "model",
        "n0",
        "rate",
        "rate rank",
        "tokens compared",
        "loss at D=0",
        "loss at D*",
        "relative drop",
    ]
    curves = {run_id: c.sort_values("tokens") for run_id, c in df[df["method"] != "none"].groupby("run_id")}
    runs = pd.DataFrame(
        [
            {
                "run_id": k,
                "family": c["family"].iloc[0],
                "method": c["method"].iloc[0],
                "model": c["model"].iloc[0],
                "n0": int(c["n0"].iloc[0]),
                "rate": float(c["rate"].iloc[0]),
                "max tokens": float(c["tokens"].max()),
            }
            for k, c in curves.items()
        ]
    )
    if runs.empty:
        return pd.DataFrame(columns=columns)
    # dense: the repeats of one rate (other seeds) share its rank, so each rank is one rate of each model
    runs["rate rank"] = runs.groupby(["family", "method", "model"])["rate"].rank(method="dense").astype(int) - 1
    runs["tokens compared"] = fraction * runs.groupby(["family", "method", "rate rank"])["max tokens"].transform("min")
    controls = {m: c.sort_values("tokens") for m, c in df[df["method"] == "none"].groupby("model")}
    if baseline == "control":
        runs = runs[runs["model"].isin(controls)].copy()
    start, at = [], []
    for run_id, model, d_star in zip(runs["run_id"], runs["model"], runs["tokens compared"]):
        c = curves[run_id]
        y = c[loss_col].to_numpy(float)
        if baseline == "control":  # the control shares the model's token schedule; interpolate to be safe
            y = y - np.interp(c["tokens"], controls[model]["tokens"], controls[model][loss_col])
        start.append(float(y[0]))
        at.append(float(np.interp(d_star, c["tokens"], y)))
    runs["loss at D=0"], runs["loss at D*"] = start, at
    runs["relative drop"] = (runs["loss at D=0"] - runs["loss at D*"]) / runs["loss at D=0"]
    return runs[columns]


def trend1(
    df: pd.DataFrame,
    loss_col: str = "eval_loss",
    fraction: float = 0.5,
    agree: float = 2 / 3,
    min_pairs: int = 3,
    baseline: str = "none",
) -> tuple[Verdict, pd.DataFrame]:
    """Trend 1: smaller models' loss falls faster at the same pruning rate.

    Every pair of models of one family and method at the same rate rank is compared over the same tokens
    (``relative_drops``); the pair agrees when the smaller model has the larger relative drop. Confirmed
    when at least ``agree`` of the pairs agree, not testable with fewer than ``min_pairs`` pairs. Returns the
    verdict and the pair table.
    """
    drops = relative_drops(df, loss_col, fraction, baseline)
    pairs = []
    for (fam, method, rank), g in drops.groupby(["family", "method", "rate rank"]):
        g = g.sort_values("n0").reset_index(drop=True)
        for i in range(len(g)):
            for j in range(i + 1, len(g)):
                if g.loc[i, "n0"] == g.loc[j, "n0"]:
                    continue
                pairs.append(
                    {
                        "family": fam,
                        "method": method,
                        "rate rank": rank,
                        "smaller": g.loc[i, "model"],
                        "larger": g.loc[j, "model"],
                        "drop smaller": g.loc[i, "relative drop"],
                        "drop larger": g.loc[j, "relative drop"],
                        "agrees": bool(g.loc[i, "relative drop"] > g.loc[j, "relative drop"]),
                    }
                )
    pairs = pd.DataFrame(
        pairs, columns=["family", "method", "rate rank", "smaller", "larger", "drop smaller", "drop larger", "agrees"]
    )
    n, k = len(pairs), int(pairs["agrees"].sum()) if len(pairs) else 0
    if n < min_pairs:
        verdict = NOT_TESTABLE
    else:
        verdict = CONFIRMED if k / n >= agree else NOT_CONFIRMED
    ours = (
        f"{k} of {n} model pairs: the smaller model's loss fell more over the same tokens ({fraction:.0%} "
        "of the shorter budget)"
    )
    if baseline == "control":
        ours = ours.replace(
            "the smaller model's loss fell more",
            "the smaller model repaired a larger share of its loss above the ρ = 0 control",
        )
    what = "loss" if baseline == "none" else "loss above the ρ = 0 control"
    return Verdict(
        f"Trend 1: smaller models' {what} falls faster after pruning",
        "§3.2, Figs. 2, 3, 10",
        "8B curves visibly flatter than 1B/3B at similar rates",
        ours,
        verdict,
        f"confirmed if ≥ {agree:.0%} of same-rate-rank pairs agree; not testable below {min_pairs} pairs",
    ), pairs


# --- Trend 1 and Condition 2 with the paper's statistic ----------------------------------------------------


def log_slope(tokens, loss, window: tuple[float, float]) -> float:
    """How fast the loss falls over ``window`` of tokens: the least-squares slope of loss on log10 D
    (nats per decade; negative while the loss falls), on 9 points spaced evenly in log D and interpolated
    in log D between checkpoints, so curves logged at different token counts are weighed alike."""
    t, y = np.asarray(tokens, float), np.asarray(loss, float)
    keep = t > 0
    t, y = t[keep], y[keep]
    order = np.argsort(t)
    t, y = t[order], y[order]
    lo, hi = window
    if len(t) < 2 or not (0 < lo < hi) or lo < t[0] * (1 - 1e-9) or hi > t[-1] * (1 + 1e-9):
        return float("nan")
    grid = np.linspace(np.log10(lo), np.log10(hi), 9)
    return float(np.polyfit(grid, np.interp(grid, np.log10(t), y), 1)[0])


def rate_matched_pairs(df: pd.DataFrame, max_drho: float = RATE_MATCH) -> pd.DataFrame:
    """Pairs of first-seed curves of two model sizes, same family and method, achieved ρ within
    ``max_drho``; each with its common token window (the later first and the earlier last checkpoint)."""
    first = first_seed_rows(df[df["method"].isin(["depth", "width", "2:4"])])
    runs = (
        first[first["tokens"] > 0]
        .groupby("run_id")
        .agg(
            family=("family", "first"),
            method=("method", "first"),
            model=("model", "first"),
            n0=("n0", "first"),
            rate=("rate", "first"),
            start=("tokens", "min"),
            end=("tokens", "max"),
        )
        .reset_index()
    )
    rows = []
    for (fam, m), g in runs.groupby(["family", "method"]):
        g = g.sort_values("n0").to_dict("records")
        for i, a in enumerate(g):
            for b in g[i + 1 :]:
                if a["n0"] < b["n0"] and abs(a["rate"] - b["rate"]) <= max_drho + 1e-12:
                    rows.append(
                        {
                            "family": fam,
                            "method": m,
                            "smaller": a["run_id"],
                            "larger": b["run_id"],
                            "model smaller": a["model"],
                            "model larger": b["model"],
                            "rate smaller": a["rate"],
                            "rate larger": b["rate"],
                            "window": (max(a["start"], b["start"]), min(a["end"], b["end"])),
                        }
                    )
    return pd.DataFrame(
        rows,
        columns=[
            "family",
            "method",
            "smaller",
            "larger",
            "model smaller",
            "model larger",
            "rate smaller",
            "rate larger",
            "window",
        ],
    )


def trend1_slopes(
    df: pd.DataFrame,
    loss_col: str = "eval_loss",
    max_drho: float = RATE_MATCH,
    window_share: float = 1.0,
    agree: float = 2 / 3,
    min_pairs: int = 3,
    baseline: str = "none",
) -> tuple[Verdict, pd.DataFrame, Floor]:
    """Trend 1 as the paper states it: at the same ρ, a smaller model's loss falls *faster* over the
    same tokens.

    For each rate-matched pair (``rate_matched_pairs``), both curves' ``log_slope`` over the last
    ``window_share`` (in log D) of their common window; the effect is larger's slope − smaller's (positive:
    the smaller falls faster). ``baseline="control"`` takes each model's ρ = 0 control (same seed) off its
    curve first, so plain further training of the base does not count. The noise floor is the seed spread
    of the slope over the same windows. A pair agrees (disagrees) when its effect is above (below ∓) the
    floor. Confirmed if ≥ ``agree`` of the pairs agree; not confirmed if fewer than ``agree`` would agree
    even with every undecided pair counted for the claim (with the floor unknown: by sign); else not
    distinguishable; not testable below ``min_pairs`` pairs.
    """
    require_columns(df, ["run_id", "family", "method", "model", "n0", "rate", "tokens", loss_col], "checkpoint table")
    if baseline not in ("none", "control"):
        raise ValueError(f"baseline must be 'none' or 'control', got {baseline!r}")
    data = df.assign(seed=df["seed"] if "seed" in df.columns else 0)
    controls = {(m, s): c for (m, s), c in data[data["method"] == "none"].groupby(["model", "seed"])}

    def curve_y(c):
        y = c[loss_col].to_numpy(float)
        if baseline == "control":
            ctrl = controls.get((c["model"].iloc[0], c["seed"].iloc[0]))
            if ctrl is None:
                return None
            y = y - curve_at(ctrl, c["tokens"], loss_col)
        return y

    pairs = rate_matched_pairs(data, max_drho)
    curves = {k: c for k, c in data.groupby("run_id")}
    # repeats of each first-seed curve: same model, method, rate, other seed
    # repeats of a curve: same model, method and rate, another seed (two runs of one seed that reach the
    # same achieved rate are different runs, not repeats)
    seed_of_run = data.groupby("run_id")["seed"].first()
    key = data.assign(_r=rate_key(data["rate"])).groupby(["model", "method", "_r"])["run_id"].unique()
    repeats = {}
    for ids in key:
        for i in ids:
            repeats[i] = [j for j in ids if seed_of_run[j] != seed_of_run[i]]
    rows, noise = [], []
    for p in pairs.to_dict("records"):
        lo, hi = p["window"]
        lo = 10 ** (np.log10(hi) - window_share * (np.log10(hi) - np.log10(lo))) if lo > 0 else lo
        slopes = {}
        for side in ("smaller", "larger"):
            c = curves[p[side]]
            y = curve_y(c)
            slopes[side] = np.nan if y is None else log_slope(c["tokens"], y, (lo, hi))
            for rep in repeats.get(p[side], []):
                cr = curves[rep]
                yr = curve_y(cr)
                if yr is not None:
                    noise.append(
                        {"run": p[side], "rep": rep, "value": slopes[side] - log_slope(cr["tokens"], yr, (lo, hi))}
                    )
        rows.append(
            p
            | {
                "from": lo,
                "to": hi,
                "slope smaller": slopes["smaller"],
                "slope larger": slopes["larger"],
                "effect": slopes["larger"] - slopes["smaller"],
            }
        )
    table = pd.DataFrame(rows, columns=[*pairs.columns, "from", "to", "slope smaller", "slope larger", "effect"])
    table = table.drop(columns="window").dropna(subset=["effect"])
    d = np.array([x["value"] for x in noise], float)
    d = d[np.isfinite(d)]
    floor = Floor(
        float(np.sqrt(np.mean(d**2))) if len(d) else float("nan"), len(d), "slope in log10 D over the pair's window"
    )
    table["verdict"] = [decide(e, floor) for e in table["effect"]]
    n = len(table)
    k = int((table["verdict"] == CONFIRMED).sum())
    by_sign = int((table["effect"] > 0).sum())
    undecided = int((table["verdict"] == NOT_DISTINGUISHABLE).sum())
    if n < min_pairs:
        state = NOT_TESTABLE
    elif floor.known:
        state = CONFIRMED if k >= agree * n else (NOT_CONFIRMED if k + undecided < agree * n else NOT_DISTINGUISHABLE)
    else:
        state = NOT_CONFIRMED if by_sign < agree * n else NOT_DISTINGUISHABLE
    what = "loss" if baseline == "none" else "loss above the ρ = 0 control"
    return (
        Verdict(
            f"Trend 1: smaller models' {what} falls faster (slope in log D, ρ matched)",
            "§3.2, Figs. 2, 3, 10",
            "8B curves visibly flatter than 1B/3B at similar rates",
            f"{by_sign} of {n} rate-matched pairs (|Δρ| ≤ {max_drho}): the smaller model's {what} falls "
            f"faster over the same tokens; {k} by more than the floor",
            state,
            f"confirmed if ≥ {agree:.0%} of pairs agree by more than the noise floor; not confirmed if "
            f"fewer than {agree:.0%} could; not testable below {min_pairs} pairs",
            baseline="no difference between sizes (equal slopes)",
            baseline_value="effect 0 nats/decade",
            noise_floor=floor.text(),
        ),
        table,
        floor,
    )


def condition2_law_and_data(law_cells: pd.DataFrame, trend1: Verdict, form: str = "L1") -> Verdict:
    """Condition 2 (∂²L/∂N0∂D > 0) is Trend 1 written for the law: the fitted law satisfies it exactly
    when its smaller models' loss falls faster. ``law_cells``: family, form, method, boolean ``ours`` (the
    law's sign, e.g. from δ·β·D_C). Confirmed when the law satisfies it in every cell *and* the data's Trend 1
    (``trend1_slopes``) is confirmed; not confirmed when either says no; the row says which disagrees."""
    require_columns(law_cells, ["family", "form", "method", "ours"], "Condition 2 table")
    mine = law_cells[law_cells["form"] == form].dropna(subset=["ours"])
    k, n = int(mine["ours"].astype(bool).sum()), len(mine)
    if n == 0 or trend1.verdict == NOT_TESTABLE:
        state = NOT_TESTABLE
    elif k < n or trend1.verdict == NOT_CONFIRMED:
        state = NOT_CONFIRMED
    else:
        state = CONFIRMED if trend1.verdict == CONFIRMED else NOT_DISTINGUISHABLE
    why = ""
    if n and (k == n) != (trend1.verdict == CONFIRMED):
        why = (
            f"; the fitted law and the measured slopes disagree: the law says {'yes' if k == n else 'no'} "
            f"from the sign of its constants, the data's Trend 1 is '{trend1.verdict}'. A law fitted to all "
            "curves at once can take its δ from the levels of the curves rather than from their slopes"
        )
    return Verdict(
        f"{form} satisfies Condition 2, and the measured curves agree",
        "§3.3, §4.2, Table 6",
        "holds in every L1 cell (Table 6)",
        f"the fitted {form} satisfies it in {k} of {n} cells; measured (Trend 1): {trend1.verdict}{why}",
        state,
        "confirmed if the law satisfies it in every cell and the measured Trend 1 is confirmed",
        baseline=trend1.baseline,
        baseline_value=trend1.baseline_value,
        noise_floor=trend1.noise_floor,
    )
