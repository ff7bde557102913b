"""Claim-by-claim verdicts: does our reproduction confirm what the paper says?

Each function takes tables (the checkpoint table, or the score tables the book's pages save) and returns a
``Verdict`` with the evidence behind it, so the book's verdict table is computed, never typed in. The rule
that turns evidence into "confirmed" / "not confirmed" / "not testable at this scale" is stated in each
function's docstring and in the verdict's ``rule`` field. Pure pandas/numpy; never imports torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from . import paper

CONFIRMED = "confirmed"
NOT_CONFIRMED = "not confirmed"
NOT_TESTABLE = "not testable at this scale"


@dataclass(frozen=True)
class Verdict:
    claim: str
    source: str  # where the paper makes the claim
    paper: str  # what the paper reports
    ours: str  # what our results show
    verdict: str  # CONFIRMED | NOT_CONFIRMED | NOT_TESTABLE
    rule: str  # how the evidence was turned into the verdict


def verdict_table(verdicts) -> pd.DataFrame:
    return pd.DataFrame([asdict(v) for v in verdicts], columns=list(Verdict.__dataclass_fields__))


def _require(df: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(df.columns)}")


# --- Trend 1 ---------------------------------------------------------------------------------------------

def relative_drops(df: pd.DataFrame, loss_col: str = "eval_loss", fraction: float = 0.5,
                   baseline: str = "none") -> pd.DataFrame:
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
    _require(df, ["run_id", "family", "method", "model", "n0", "rate", "tokens", loss_col], "checkpoint table")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    columns = ["run_id", "family", "method", "model", "n0", "rate", "rate rank", "tokens compared",
               "loss at D=0", "loss at D*", "relative drop"]
    curves = {run_id: c.sort_values("tokens") for run_id, c in df[df["method"] != "none"].groupby("run_id")}
    runs = pd.DataFrame([{"run_id": k, "family": c["family"].iloc[0], "method": c["method"].iloc[0],
                          "model": c["model"].iloc[0], "n0": int(c["n0"].iloc[0]), "rate": float(c["rate"].iloc[0]),
                          "max tokens": float(c["tokens"].max())} for k, c in curves.items()])
    if runs.empty:
        return pd.DataFrame(columns=columns)
    runs["rate rank"] = runs.groupby(["family", "method", "model"])["rate"].rank(method="first").astype(int) - 1
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


def trend1(df: pd.DataFrame, loss_col: str = "eval_loss", fraction: float = 0.5, agree: float = 2 / 3,
           min_pairs: int = 3, baseline: str = "none") -> tuple[Verdict, pd.DataFrame]:
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
                pairs.append({"family": fam, "method": method, "rate rank": rank, "smaller": g.loc[i, "model"],
                              "larger": g.loc[j, "model"], "drop smaller": g.loc[i, "relative drop"],
                              "drop larger": g.loc[j, "relative drop"],
                              "agrees": bool(g.loc[i, "relative drop"] > g.loc[j, "relative drop"])})
    pairs = pd.DataFrame(pairs, columns=["family", "method", "rate rank", "smaller", "larger", "drop smaller",
                                         "drop larger", "agrees"])
    n, k = len(pairs), int(pairs["agrees"].sum()) if len(pairs) else 0
    if n < min_pairs:
        verdict = NOT_TESTABLE
    else:
        verdict = CONFIRMED if k / n >= agree else NOT_CONFIRMED
    ours = (f"{k} of {n} model pairs: the smaller model's loss fell more over the same tokens ({fraction:.0%} "
            "of the shorter budget)")
    if baseline == "control":
        ours = ours.replace("the smaller model's loss fell more", "the smaller model repaired a larger share of "
                            "its loss above the ρ = 0 control")
    what = "loss" if baseline == "none" else "loss above the ρ = 0 control"
    return Verdict(f"Trend 1: smaller models' {what} falls faster after pruning", "§3.2, Figs. 2, 3, 10",
                   "8B curves visibly flatter than 1B/3B at similar rates", ours, verdict,
                   f"confirmed if ≥ {agree:.0%} of same-rate-rank pairs agree; not testable below {min_pairs} pairs"
                   ), pairs


# --- Trend 2 ---------------------------------------------------------------------------------------------

def _gamma_fit(g: pd.DataFrame) -> tuple[float, float]:
    """Slope of log ΔL on log ρ with one intercept per model (N0 shifts ΔL, the slope is shared); and R²."""
    models = sorted(g["model"].unique())
    x = np.log(g["rate"].to_numpy(float))
    y = np.log(g["dL"].to_numpy(float))
    design = np.column_stack([x] + [(g["model"] == m).to_numpy(float) for m in models])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    within = y - g.groupby("model")["dL"].transform(lambda v: np.log(v).mean()).to_numpy(float)
    ss = float(within @ within)
    r2 = 1 - float(resid @ resid) / ss if ss > 0 else np.nan
    return float(coef[0]), r2


def trend2(df: pd.DataFrame, loss_col: str = "eval_loss", baseline: str = "l0", n_resamples: int = 200,
           seed: int = 0, level: float = 0.9, min_r2: float = 0.8) -> tuple[Verdict, pd.DataFrame]:
    """Trend 2: ΔL at the end of post-training grows as a power of ρ (ΔL ∝ ρ^slope; the paper's γ = −slope).

    ΔL is the last checkpoint's loss minus ``baseline``: ``"l0"`` (the base model before post-training, as in
    the paper) or ``"control"`` (the unpruned model post-trained on the same tokens, our ρ = 0 control). Per
    family and depth/width method, the slope of log ΔL on log ρ is fitted with one intercept per model and
    given a bootstrap interval by resampling curves. A cell is testable with ≥ 2 rates of one model and every
    ΔL > 0. Confirmed when every testable cell has an interval above 0 and a log–log R² ≥ ``min_r2``.
    """
    _require(df, ["run_id", "family", "method", "model", "rate", "tokens", "l0", loss_col], "checkpoint table")
    if baseline not in ("l0", "control"):
        raise ValueError(f"baseline must be 'l0' or 'control', got {baseline!r}")
    # Sorted by run, so the bootstrap draws the same curves whatever order the table's rows come in.
    last = df.sort_values(["run_id", "tokens"], kind="stable").groupby("run_id").tail(1)
    pruned = last[last["method"].isin(["depth", "width"])].copy()
    if baseline == "l0":
        pruned["dL"] = pruned[loss_col] - pruned["l0"]
    else:
        ctrl = last[last["method"] == "none"].set_index("model")[loss_col]
        pruned = pruned[pruned["model"].isin(ctrl.index)]
        pruned["dL"] = pruned[loss_col] - pruned["model"].map(ctrl)
    rng = np.random.default_rng(seed)
    rows = []
    for (fam, method), g in pruned.groupby(["family", "method"]):
        rec = {"family": fam, "method": method, "curves": len(g), "slope": np.nan, "low": np.nan,
               "high": np.nan, "log-log R²": np.nan, "note": ""}
        enough = g.groupby("model")["rate"].nunique().max() >= 2 if len(g) else False
        if not enough:
            rec["note"] = "fewer than 2 rates per model"
        elif (g["dL"] <= 0).any():
            rec["note"] = f"{int((g['dL'] <= 0).sum())} curve(s) end at or below the baseline"
        else:
            rec["slope"], rec["log-log R²"] = _gamma_fit(g)
            boots = []
            for _ in range(n_resamples):
                sample = g.iloc[rng.integers(0, len(g), len(g))]
                if sample.groupby("model")["rate"].nunique().max() >= 2:
                    boots.append(_gamma_fit(sample)[0])
            if boots:
                rec["low"], rec["high"] = np.percentile(boots, [50 * (1 - level), 50 * (1 + level)])
        rows.append(rec)
    table = pd.DataFrame(rows, columns=["family", "method", "curves", "slope", "low", "high", "log-log R²", "note"])
    tested = table.dropna(subset=["slope"])
    if tested.empty:
        verdict = NOT_TESTABLE
    else:
        good = (tested["low"] > 0) & (tested["log-log R²"] >= min_r2)
        verdict = CONFIRMED if good.all() else NOT_CONFIRMED
    ours = "; ".join(f"{r['family']} {r['method']}: slope {r['slope']:.2f} [{r['low']:.2f}, {r['high']:.2f}], "
                     f"R² {r['log-log R²']:.2f}" for _, r in tested.iterrows()) or "no cell with two rates and ΔL > 0"
    against = "the base loss L0" if baseline == "l0" else "the ρ = 0 control"
    gammas = paper.TABLE5["gamma"].dropna()
    return Verdict(f"Trend 2: ΔL (against {against}) is a power law in ρ", "§3.2, Eq. 4, Fig. 4",
                   f"normalised curves at three rates overlap; Table 5: γ < 0 (ΔL grows with ρ) in "
                   f"{int((gammas < 0).sum())} of {len(gammas)} laws", ours, verdict,
                   f"confirmed if every testable cell has a {level:.0%} interval of the slope above 0 and "
                   f"log–log R² ≥ {min_r2}"), table


# --- Tables 2, 3 and 6 -----------------------------------------------------------------------------------

_BETTER = {"r2": "max", "huber": "min", "asd": "min"}


def form_wins(scores: pd.DataFrame, metric: str, forms=("L1", "L2", "L3")) -> pd.DataFrame:
    """For each (family, method), which form scores best on ``metric`` (a Table 2-shaped table)."""
    if metric not in _BETTER:
        raise ValueError(f"metric must be one of {sorted(_BETTER)}, got {metric!r}")
    _require(scores, ["family", "method", "form", metric], "score table")
    rows = []
    for (fam, method), g in scores[scores["form"].isin(forms)].dropna(subset=[metric]).groupby(["family", "method"]):
        if g["form"].nunique() < 2:
            continue
        best = g.loc[g[metric].idxmax() if _BETTER[metric] == "max" else g[metric].idxmin(), "form"]
        rows.append({"family": fam, "method": method, "best": best})
    return pd.DataFrame(rows, columns=["family", "method", "best"])


def best_form(ours: pd.DataFrame, paper_table: pd.DataFrame, metric: str, form: str = "L1",
              fitter: str = "lm") -> Verdict:
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
    return Verdict(f"{form} is the best form on {metric.upper() if metric != 'r2' else 'R²'}", "§4.2, Table 2",
                   f"best in {kp} of {np_} cells", f"best in {k} of {n} cells ({fitter}){detail}", verdict,
                   f"confirmed if {form} is best in more than half of the cells")


def generalization(ours: pd.DataFrame, paper_table: pd.DataFrame, protocol: str, fitter: str = "lm",
                   min_r2: float = 0.8) -> Verdict:
    """Table 3: a law fitted on part of the data predicts the held-out part (one protocol of §4.3).

    Confirmed when the median held-out R² of our cells (``fitter``) is at least ``min_r2``.
    """
    _require(ours, ["protocol", "r2"], "held-out score table")
    mine = ours[ours["protocol"] == protocol]
    if "fitter" in mine.columns:
        mine = mine[mine["fitter"] == fitter]
    mine = mine["r2"].dropna()
    theirs = paper_table[paper_table["protocol"] == protocol]["r2"].dropna()
    verdict = NOT_TESTABLE if mine.empty else (CONFIRMED if mine.median() >= min_r2 else NOT_CONFIRMED)
    fmt = lambda s: (f"median R² {s.median():.3f} over {len(s)} cells (range {s.min():.2f} to {s.max():.2f})"
                     if len(s) else "no cell")
    return Verdict(f"The law generalizes to held-out {protocol.replace('_', ' ')}", "§4.3, Table 3", fmt(theirs),
                   fmt(mine) + f" ({fitter})", verdict, f"confirmed if our median held-out R² ≥ {min_r2}")


def condition2(ours: pd.DataFrame, paper_table: pd.DataFrame, form: str = "L1") -> Verdict:
    """Table 6: the chosen form satisfies Condition 2 (∂²L/∂N0∂D > 0) in every cell.

    ``ours`` has columns family, form, method and a boolean ``ours``; the paper's has ``condition2``.
    Confirmed when every one of our ``form`` cells with a verdict satisfies it.
    """
    _require(ours, ["family", "form", "method", "ours"], "Condition 2 table")
    mine = ours[ours["form"] == form].dropna(subset=["ours"])
    theirs = paper_table[paper_table["form"] == form]
    merged = ours.dropna(subset=["ours"]).merge(paper_table, on=["family", "form", "method"])
    same = int((merged["ours"].astype(bool) == merged["condition2"].astype(bool)).sum())
    k = int(mine["ours"].astype(bool).sum())
    verdict = NOT_TESTABLE if mine.empty else (CONFIRMED if k == len(mine) else NOT_CONFIRMED)
    return Verdict(f"{form} satisfies Condition 2 (∂²L/∂N0∂D > 0: smaller models' loss falls faster)", "§4.2, Table 6",
                   f"holds in {int(theirs['condition2'].sum())} of {len(theirs)} {form} cells",
                   f"holds in {k} of {len(mine)} {form} cells; all forms: {same} of {len(merged)} verdicts "
                   "agree with Table 6", verdict, f"confirmed if every {form} cell satisfies it")


# --- the ρ = 0 control and the planner ------------------------------------------------------------------

def control_share(df: pd.DataFrame, loss_col: str = "eval_loss") -> pd.DataFrame:
    """Per pruned curve: its loss drop over post-training and the unpruned control's drop over the same run.

    ``control share`` = control drop / pruned drop: the part of the recovery that plain extra training of
    the unpruned model also achieves (near 1: the "recovery" is mostly undertrained bases learning more).
    """
    _require(df, ["run_id", "family", "method", "model", "rate", "tokens", loss_col], "checkpoint table")
    ordered = df.sort_values("tokens")
    first, last = ordered.groupby("run_id").head(1).set_index("run_id"), ordered.groupby("run_id").tail(1).set_index("run_id")
    drop = first[loss_col] - last[loss_col]
    runs = first[["family", "method", "model", "rate"]].assign(drop=drop)
    ctrl = runs[runs["method"] == "none"].set_index("model")["drop"]
    pruned = runs[(runs["method"] != "none") & runs["model"].isin(ctrl.index)].copy()
    pruned["control drop"] = pruned["model"].map(ctrl)
    pruned["control share"] = pruned["control drop"] / pruned["drop"]
    pruned["loss above control at the end"] = (last.loc[pruned.index, loss_col].to_numpy()
                                               - pruned["model"].map(last[last["method"] == "none"]
                                                                     .set_index("model")[loss_col]).to_numpy())
    return pruned.reset_index()


def flattening_tokens(tokens, loss, threshold: float, window: int = 3) -> float:
    """Where a measured curve flattened: the first checkpoint after which the loss falls by less than
    ``threshold`` nats per decade of tokens, judged on least-squares slopes over ``window`` consecutive
    checkpoints (single steps are too noisy). ``nan`` if it never flattens within the run; D = 0 is skipped.
    """
    t = np.asarray(tokens, dtype=float)
    y = np.asarray(loss, dtype=float)
    if t.shape != y.shape:
        raise ValueError(f"tokens and loss differ in length: {t.shape} vs {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError("loss contains NaN or inf")
    keep = t > 0
    order = np.argsort(t[keep])
    x, y = np.log10(t[keep][order]), y[keep][order]
    if len(x) < window:
        return float("nan")
    drops = np.array([-np.polyfit(x[i:i + window], y[i:i + window], 1)[0] for i in range(len(x) - window + 1)])
    steep = np.nonzero(drops >= threshold)[0]
    start = 0 if len(steep) == 0 else steep[-1] + 1
    return float(10 ** x[start]) if start < len(drops) else float("nan")
