"""The ρ = 0 control's share of the recovery, and where the curves flatten (Fig. 1)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .core import NOT_TESTABLE, Floor, Verdict, decide, require_columns

# --- the ρ = 0 control and the planner ------------------------------------------------------------------


def control_share(df: pd.DataFrame, loss_col: str = "eval_loss") -> pd.DataFrame:
    """Per pruned curve: its loss drop over post-training and the unpruned control's drop over the same run.

    ``control share`` = control drop / pruned drop: the part of the recovery that plain extra training of
    the unpruned model also achieves (near 1: the "recovery" is mostly undertrained bases learning more).
    """
    require_columns(df, ["run_id", "family", "method", "model", "rate", "tokens", loss_col], "checkpoint table")
    ordered = df.sort_values(["run_id", "tokens"], kind="stable")  # the same rows whatever the table's order
    first, last = (
        ordered.groupby("run_id").head(1).set_index("run_id"),
        ordered.groupby("run_id").tail(1).set_index("run_id"),
    )
    drop = first[loss_col] - last[loss_col]
    runs = first[["family", "method", "model", "rate"]].assign(drop=drop)
    ctrl = runs[runs["method"] == "none"].set_index("model")["drop"]
    pruned = runs[(runs["method"] != "none") & runs["model"].isin(ctrl.index)].copy()
    pruned["control drop"] = pruned["model"].map(ctrl)
    pruned["control share"] = pruned["control drop"] / pruned["drop"]
    pruned["loss above control at the end"] = (
        last.loc[pruned.index, loss_col].to_numpy()
        - pruned["model"].map(last[last["method"] == "none"].set_index("model")[loss_col]).to_numpy()
    )
    return pruned.reset_index()


# --- Fig. 1: where the curve flattens -------------------------------------------------------------------


def flattening(budgets: pd.DataFrame, floor: Floor, paper_text: str = "Llama-3.2-1B: C ≈ 10^4 (Fig. 1)") -> Verdict:
    """The law's token budget against where each measured curve flattened.

    ``budgets``: one row per curve with ``predicted`` tokens, ``predicted censored`` (the law's budget is
    at/below or beyond its range) and ``measured`` (NaN: the curve had not flattened within its budget,
    a censored value, left out and counted). The effect is the median |log10(measured / baseline)| −
    |log10(measured / predicted)| (decades; positive: the law is closer), the baseline being the median
    measured flattening of the *other* curves (leave one out).
    """
    require_columns(budgets, ["predicted", "measured"], "budget table")
    b = budgets.copy()
    cens = b.get("predicted censored", pd.Series("", index=b.index)).fillna("").astype(str) != ""
    usable = b[b["measured"].notna() & ~cens & np.isfinite(b["predicted"]) & (b["predicted"] > 0)]
    n_censored = int(b["measured"].isna().sum())
    n_pred_censored = int((cens & b["measured"].notna()).sum())
    if len(usable) < 2:
        return Verdict(
            "The law predicts where the loss curve flattens",
            "§1, Fig. 1",
            paper_text,
            f"{len(usable)} usable curve(s); {n_censored} had not flattened within their budget "
            f"(censored), {n_pred_censored} with a censored prediction",
            NOT_TESTABLE,
            "needs ≥ 2 curves that flattened within their budget",
            baseline="the other curves' median flattening point",
            noise_floor=floor.text(),
        )
    m = np.log10(usable["measured"].to_numpy(float))
    p = np.log10(usable["predicted"].to_numpy(float))
    loo = np.array([np.median(np.delete(m, i)) for i in range(len(m))])
    law_err, base_err = float(np.median(np.abs(m - p))), float(np.median(np.abs(m - loo)))
    return Verdict(
        "The law predicts where the loss curve flattens",
        "§1, Fig. 1",
        paper_text,
        f"median error {law_err:.2f} decades over {len(usable)} curves; {n_censored} curve(s) had not "
        f"flattened within their budget (censored, left out)",
        decide(base_err - law_err, floor),
        "confirmed if the law's median error (decades) beats the baseline's by more than the floor",
        baseline="the other curves' median flattening point",
        baseline_value=f"median error {base_err:.2f} decades",
        noise_floor=floor.text(),
    )
