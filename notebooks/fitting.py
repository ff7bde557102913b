# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (p2law)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Fitting the P² law (§4.1–4.2)
#
# A scaling law for post-training after pruning predicts the loss $\mathcal{L}(N_0, D, \rho, \mathcal{L}_0)$
# from the size of the unpruned model, the post-training tokens, the pruning rate and the base loss. The
# paper compares three parameterizations built on the Chinchilla law (L1–L3) and two on the OpenAI law
# (L4, L5), fits each per model family and pruning method, and scores the fits by R², Huber loss and the
# average slope difference (ASD), which compares the predicted and actual slope of each curve. Here we fit
# the same forms to our curves with both of our fitters, Levenberg–Marquardt on the loss (`lm`) and a Huber
# loss on log-loss (`huber-log`), and put the paper's numbers beside ours.
#
# **What this page finds.**
# - In sample, L1 has a higher R² than both L2 and L3 in {glue:text}`fit_l1_nested_text`, as in the
#   paper's Table 2, and higher than both Kaplan-style forms (L4, L5) in {glue:text}`fit_l1_kaplan_text`
#   (Table 4). L1 nests L2 and L3, so the first comparison only shows the fitter reaching L1's optimum; the
#   held-out comparison is on the generalization page.
# - Our L1 fits ({glue:text}`fit_curve_label`) reach R² from {glue:text}`fit_l1_r2_min:.3f` to
#   {glue:text}`fit_l1_r2_max:.3f`; the paper's L1 rows range from {glue:text}`fit_l1_r2_paper_min:.3f` to
#   {glue:text}`fit_l1_r2_paper_max:.3f`.
# - {glue:text}`n_t5_unidentified:d` of our {glue:text}`n_t5_ours:d` fits do not identify their constants, so
#   only {glue:text}`n_t5_identified:d` of them can be set beside the paper's Table 5.
# - Condition 2 holds for our L1 fits in {glue:text}`fit_c2_l1_ours:d` of {glue:text}`fit_c2_l1_cells:d`
#   cells, against {glue:text}`fit_c2_l1_paper:d` of {glue:text}`fit_c2_l1_paper_cells:d` in the paper; over
#   all three forms our signs agree with the paper's Table 6 in {glue:text}`fit_t6_agree:d` of
#   {glue:text}`fit_t6_cells:d` rows.

# %% tags=["parameters"]
profile = "toy"
results_dir = "results/toy"
seed = 0
n_unit = 1e6  # parameters per unit of N0 in our fits (toy models: 0.05M–1.7M parameters)
d_unit = 1e6  # tokens per unit of D
fitters = ["lm", "huber-log"]
huber_start = None  # "grid": huber-log searches its whole starting grid; "lm": from the LM optimum; None: the profile's
# None: every fit optimises the whole starting grid. k: only the k starts with the lowest initial error
# (about 36/k times faster). Not the default: on the committed toy sweep 8 screened starts lost up to
# 0.009 of in-sample R² on Table 2, 0.42 on Table 4's L5, and moved held-out R² (measured 2026-12-02).
max_starts = None
curve_form = "L1"  # the form drawn in the predicted-vs-actual figure
curve_fitter = "lm"

# %% [markdown]
# We need the book's page helpers, the paper's tables, the library's fitted tables and identifiability check,
# and the page's figures and table styles.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from myst_nb import glue

from p2law import book as bs
from p2law import figures, paper, table
from p2law.analysis import grids, results
from p2law.analysis.fit import identifiability
from p2law.lab.profiles import get_profile
from p2law.table import fit_rows

PAGE = "fitting"
huber_start = huber_start or get_profile(profile).huber_start  # None above: the profile's

# %% [markdown]
# Laws are fitted to one data-order seed per run (the repeats measure the noise floor, on the verdict page).
# The fits behind Tables 2, 4 and 6 come from `p2law.analysis.results`, cached under `results_dir/cache` by
# the table's fingerprint: the verdict page asks for the same ones and reads them from there.

# %%
out = bs.ensure_results(profile, results_dir)
checkpoints = bs.load_checkpoints(out)
df = table.first_seed(checkpoints)
grid = dict(fitters=fitters, n_unit=n_unit, d_unit=d_unit, huber_start=huber_start, max_starts=max_starts,
            cache_dir=out / "cache")
glue("fitting_starts", "every start" if max_starts is None else f"the {max_starts} best starts", display=False)

# %% [markdown]
# The curves per family and pruning method tell us which cells of the paper's tables we can fill.

# %%
cov = grids.coverage(df)
glue("fitting_missing", ", ".join(f"{r.family} {r.method}" for r in cov.itertuples() if r.curves == 0) or "none",
     display=False)
cov

# %% [markdown]
# Family × method combinations without curves (above): {glue:text}`fitting_missing`. Their rows in the
# tables below hold only the paper's numbers. Each fit starts from a grid over the exponents; of it we
# optimise {glue:text}`fitting_starts` (the `max_starts` parameter screens the grid by the error before
# any step: faster, but on this sweep it missed the best optimum of several cells, so it is off here).
#
# ## Table 2: the Chinchilla-style forms
#
# We fit L1, L2 and L3 with each fitter to every family × method cell, and save our scores.

# %%
scores, fits = results.table2(checkpoints, **grid)
bs.save_table(scores, out, PAGE, "table2_ours")
glue("n_fits_t2", int(scores["r2"].notna().sum()), display=False)
glue("n_failed_t2", int(scores["r2"].isna().sum()), display=False)

# %% [markdown]
# Set beside the paper's Table 2 (grey, italic), metric by metric:

# %%
figures.style_paper_beside(figures.paper_beside(scores, paper.TABLE2, ["family", "form", "method"], fitters),
                           "Table 2, paper (grey, italic) beside ours: L1–L3 fitted on all checkpoints. – = no fit.")

# %% [markdown]
# {glue:text}`n_fits_t2:d` of our fits succeeded and {glue:text}`n_failed_t2:d` failed or had no data
# (shown as – above). The reasons, and the fits whose optimiser stopped before its convergence test passed
# ({glue:text}`n_not_converged_t2:d`, kept and scored), are listed here rather than hidden:

# %%
noted = scores.loc[scores["note"].fillna("") != "", ["family", "method", "form", "fitter", "n_points", "note"]]
glue("n_not_converged_t2", int((noted["note"] == "not converged").sum()), display=False)
noted

# %% [markdown]
# Which form scores the highest R² in each cell? We count, per fitter, the cells where L1 beats every rival
# form, and read the range of L1's R² beside the paper's.

# %%
def l1_wins(scores: pd.DataFrame, rivals) -> str:
    """'k of n cells with <fitter>' for each fitter: cells where L1's R² exceeds every rival's."""
    wide = scores.pivot_table(index=["fitter", "family", "method"], columns="form", values="r2", sort=False)
    wide = wide.reindex(columns=["L1", *rivals])  # a form with no fit at all is still a column
    wins = (wide["L1"] > wide[list(rivals)].max(axis=1))[wide["L1"].notna()]
    return ", ".join(f"{int(w.sum())} of {len(w)} cells with {f}" for f, w in wins.groupby(level=0, sort=False))


l1 = scores[(scores["form"] == "L1") & (scores["fitter"] == curve_fitter)]
glue("fit_l1_nested_text", l1_wins(scores, ["L2", "L3"]), display=False)
glue("fit_curve_label", f"{curve_fitter}", display=False)
glue("fit_l1_r2_min", float(l1["r2"].min()), display=False)
glue("fit_l1_r2_max", float(l1["r2"].max()), display=False)
glue("fit_l1_r2_paper_min", float(paper.TABLE2.query("form == 'L1'")["r2"].min()), display=False)
glue("fit_l1_r2_paper_max", float(paper.TABLE2.query("form == 'L1'")["r2"].max()), display=False)

# %% [markdown]
# L1 beats both L2 and L3 on R² in {glue:text}`fit_l1_nested_text`. With {glue:text}`fit_curve_label` its R²
# runs from {glue:text}`fit_l1_r2_min:.3f` to {glue:text}`fit_l1_r2_max:.3f`, the paper's from
# {glue:text}`fit_l1_r2_paper_min:.3f` to {glue:text}`fit_l1_r2_paper_max:.3f`. An R² pooled over many curves
# is dominated by the gaps between their levels, so it says little about the slopes by itself: the verdict
# page sets the law against trivial baselines.
#
# ## Table 4: the OpenAI-style forms
#
# L4 and L5 follow the OpenAI (Kaplan) law instead of Chinchilla's; they are fitted to the same cells.

# %%
scores4, fits4 = results.table4(checkpoints, **grid)
bs.save_table(scores4, out, PAGE, "table4_ours")
glue("fit_l1_kaplan_text", l1_wins(scores4, ["L4", "L5"]), display=False)
figures.style_paper_beside(figures.paper_beside(scores4, paper.TABLE4, ["family", "form", "method"], fitters),
                           "Table 4, paper (grey, italic) beside ours: L1 against L4 and L5.")

# %% [markdown]
# L1 beats both L4 and L5 on R² in {glue:text}`fit_l1_kaplan_text`. L4 and L5 do not nest L1, so here the
# in-sample comparison can go either way; the verdict page repeats it on held-out checkpoints.
#
# ## Table 5: the fitted constants
#
# Our constants are in our units ($N_0$ in millions of parameters, $D$ in millions of tokens), the paper's
# in billions of parameters and millions of tokens, so $N_C$ and $D_C$ are not comparable in value; the
# exponents are. For each of our fits with the `curve_fitter` we also ask whether its rows identify the
# constants.

# %%
const_rows = []
for (fam, m, form, fitter), res in fits.items():
    if res is not None and fitter == curve_fitter:
        ident = identifiability(res, fit_rows(df, method=m, family=fam))
        const_rows.append({"family": fam, "form": form, "method": m, "source": f"ours ({fitter})", **res.params,
                           "identified": ident.identified, "why not": "" if ident.identified else ident.reason})
ours5 = pd.DataFrame(const_rows)

# %% [markdown]
# We save them, count the fits that do not identify their constants, and put all constants beside the paper's.

# %%
bs.save_table(ours5, out, PAGE, "table5_ours")
unidentified = ours5.loc[~ours5["identified"].astype(bool)] if len(ours5) else ours5
glue("n_t5_unidentified", int(len(unidentified)), display=False)
glue("n_t5_ours", int(len(ours5)), display=False)
glue("n_t5_identified", int(len(ours5) - len(unidentified)), display=False)
flagged = set(map(tuple, unidentified[["family", "form", "method"]].to_numpy())) if len(ours5) else set()
table5 = pd.concat([paper.TABLE5.assign(source="paper"), ours5], ignore_index=True)
table5 = table5.set_index(["family", "form", "method", "source"]).sort_index()
table5 = table5[[c for c in paper.CONSTANTS if c in table5.columns]]

# %% [markdown]
# The constants, with our unidentified fits shaded:

# %%
figures.style_constants(table5, flagged, "Table 5: fitted constants, paper (grey, italic) and ours; our fits whose "
                        "constants the rows do not identify are shaded yellow.")

# %% [markdown]
# {glue:text}`n_t5_unidentified:d` of our {glue:text}`n_t5_ours:d` fits do not identify their constants: the
# Jacobian at the optimum is ill-conditioned, or starts that reach the same objective disagree on a constant
# (`p2law.analysis.fit.identifiability`). Their constants are one point on a ridge of equally good fits (such as a
# large N_C cancelled by a large E, or an exponent near 0 that a constant absorbs), so they are not compared
# with the paper's. Which ones, and why:

# %%
unidentified[["family", "form", "method", "why not"]] if len(unidentified) else unidentified

# %% [markdown]
# ## Table 6: Condition 2
#
# Condition 2 is Trend 1 written as a derivative: $\partial^2\mathcal{L}/\partial N_0\,\partial D > 0$, so
# the slope $\partial\mathcal{L}/\partial D$ (negative) moves towards zero as the model grows, and a smaller
# model's loss falls faster with tokens. We check the sign of the mixed derivative with `check_conditions`,
# in closed form where one exists and numerically over the range of our model sizes and token counts.

# %%
t6 = results.table6(checkpoints, fitter=curve_fitter, **grid)
table6 = paper.TABLE6.rename(columns={"condition2": "paper"}).merge(t6, how="outer", on=["family", "form", "method"])
bs.save_table(t6, out, PAGE, "table6_ours")
mark = lambda v: "–" if pd.isna(v) else ("✓" if bool(v) else "×")
table6.style.format({"paper": mark, "ours": mark}).set_caption("Table 6: Condition 2 satisfied (✓) or not (×).")

# %% [markdown]
# We count where L1 satisfies it, ours and the paper's, and how many rows agree.

# %%
rows_l1 = table6[table6["form"] == "L1"]
both6 = table6.dropna(subset=["paper", "ours"])
glue("fit_c2_l1_ours", int(rows_l1["ours"].dropna().astype(bool).sum()), display=False)
glue("fit_c2_l1_cells", int(rows_l1["ours"].notna().sum()), display=False)
glue("fit_c2_l1_paper", int(rows_l1["paper"].dropna().astype(bool).sum()), display=False)
glue("fit_c2_l1_paper_cells", int(rows_l1["paper"].notna().sum()), display=False)
glue("fit_t6_agree", int((both6["paper"].astype(bool) == both6["ours"].astype(bool)).sum()), display=False)
glue("fit_t6_cells", int(len(both6)), display=False)

# %% [markdown]
# Our L1 fits satisfy Condition 2 in {glue:text}`fit_c2_l1_ours:d` of {glue:text}`fit_c2_l1_cells:d` cells,
# the paper's in {glue:text}`fit_c2_l1_paper:d` of {glue:text}`fit_c2_l1_paper_cells:d`; over all forms the two
# tables agree in {glue:text}`fit_t6_agree:d` of {glue:text}`fit_t6_cells:d` rows. The sign is a property of
# the fitted constants, and a law fitted to all curves at once can take it from the curves' levels rather
# than their slopes; the verdict page sets it against the measured slopes.
#
# ## Predicted against actual, over compute $C = 6ND$
#
# For each family and method we take the fit of form `curve_form` by `curve_fitter` and the rows it was
# fitted on.

# %%
families = sorted(df["family"].unique())
methods = [m for m in grids.METHODS if m in set(df["method"])]
panels = {(fam, m): (fit_rows(df, method=m, family=fam), fits.get((fam, m, curve_form, curve_fitter)))
          for fam in families for m in methods}

# %% [markdown]
# How far do the lines miss the points? The root-mean-square error of each drawn fit, in nats:

# %%
rmse = pd.Series({f"{fam} {m}": float(np.sqrt(np.mean((res.predict(rows) - rows["eval_loss"]) ** 2)))
                  for (fam, m), (rows, res) in panels.items() if res is not None and len(rows)}, name="rmse (nats)")
glue("fit_curve_form", f"{curve_form} ({curve_fitter})", display=False)
glue("fit_curve_rmse_low", float(rmse.min()) if len(rmse) else float("nan"), display=False)
glue("fit_curve_rmse_high", float(rmse.max()) if len(rmse) else float("nan"), display=False)
glue("fit_curve_worst", str(rmse.idxmax()) if len(rmse) else "none", display=False)
rmse.to_frame()

# %% [markdown]
# The figure draws the points and the fitted lines.

# %% tags=["hide-input"]
fig = figures.fit_curves(panels, families, methods)
bs.save_figure(fig, out, PAGE, "predicted_vs_actual")
glue("fig_fit_curves", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_fit_curves
# :name: fig-fit-curves
#
# Actual post-training losses (points) and the fitted law's predictions (lines, same colour) against
# compute C = 6ND, with N the parameters left after pruning; one panel per family and method. The form
# and fitter drawn are papermill parameters (`curve_form`, `curve_fitter`).
# ```
#
# One law per panel has to draw every model and rate of that family and method. {glue:text}`fit_curve_form`
# misses the points by {glue:text}`fit_curve_rmse_low:.3f` to {glue:text}`fit_curve_rmse_high:.3f` nats (root
# mean square per panel), most in {glue:text}`fit_curve_worst`.
#
# ## On this page we
#
# - fitted the paper's five forms to our curves with two fitters and set Tables 2 and 4 beside the paper's:
#   L1 has the highest R² of L1–L3 in {glue:text}`fit_l1_nested_text`, and beats L4 and L5 in
#   {glue:text}`fit_l1_kaplan_text`;
# - found that {glue:text}`n_t5_unidentified:d` of {glue:text}`n_t5_ours:d` fits do not identify their
#   constants, which limits what Table 5 can compare;
# - checked Condition 2 (Table 6): our L1 fits satisfy it in {glue:text}`fit_c2_l1_ours:d` of
#   {glue:text}`fit_c2_l1_cells:d` cells;
# - drew the fitted laws over the measured curves against compute.
