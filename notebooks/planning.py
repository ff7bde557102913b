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
# # Planning a post-training budget (beyond the paper)
#
# A fitted law answers a practical question the paper only implies: after pruning a model at rate ρ, how
# many post-training tokens are worth spending? We call the budget the number of tokens at which the
# predicted curve has flattened, meaning one more tenfold increase of data lowers the loss by less than a
# threshold (in nats per decade of tokens). The interval comes from repeating the calculation for every
# bootstrap refit of the law. We answer it for our own models with our fits, and for the paper's six models
# with the constants of its Table 5 (in its units: billions of parameters, millions of tokens).
#
# **What this page finds.**
# - With our {glue:text}`plan_law` laws, {glue:text}`plan_n_inside:d` of our {glue:text}`n_budget_rows:d`
#   pruned curves get a budget inside the range searched ({glue:text}`plan_range_text` tokens);
#   {glue:text}`plan_n_beyond:d` never flatten below {glue:text}`plan_threshold:.3g` nats per decade within it,
#   and {glue:text}`plan_n_below:d` are already that flat at its floor.
# - Measured, {glue:text}`n_flattened:d` of the {glue:text}`n_budget_rows:d` curves flattened within their
#   run; {glue:text}`plan_compare_text`.
# - From the paper's Table 5, {glue:text}`plan_paper_finite:d` of its {glue:text}`plan_paper_rows:d` pruned
#   models get a finite budget ({glue:text}`plan_paper_finite_text`); the rest never flatten within the
#   range.

# %% tags=["parameters"]
profile = "toy"
results_dir = "results/toy"
seed = 0
n_unit = 1e6
d_unit = 1e6
form = "L1"
fitter = "lm"
threshold = 0.01  # nats of loss per decade of tokens below which a curve counts as flat
per = "decade"  # or "token" (then threshold is nats per token)
n_bootstrap = None  # bootstrap refits behind each interval (0: no interval; None: the profile's)
level = 0.9

# %% [markdown]
# We need the book's page helpers, the paper's models and laws, the library's budgets and slopes, and the
# page's figures.

# %%
import inspect

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from myst_nb import glue

from p2law import book as bs
from p2law import figures, paper, table
from p2law.analysis import grids, results
from p2law.analysis.budget import slope, token_budget
from p2law.lab.profiles import get_profile
from p2law.table import fit_rows

PAGE = "planning"
n_bootstrap = get_profile(profile).n_bootstrap if n_bootstrap is None else n_bootstrap

# %% [markdown]
# Laws are fitted to one data-order seed per run (the repeats measure the noise floor, on the verdict page);
# the curves per family and method:

# %%
out = bs.ensure_results(profile, results_dir)
checkpoints = bs.load_checkpoints(out)
df = table.first_seed(checkpoints)
grids.coverage(df)

# %% [markdown]
# ## Our models
#
# One law per family and method with its bootstrap refits, and each curve's budget beside where the measured
# curve itself flattened by the same threshold (`p2law.analysis.results.budgets`, cached under
# `results_dir/cache` by the table's fingerprint; the verdict page asks for the same table).

# %%
ours, laws = results.budgets(checkpoints, form=form, fitter=fitter, threshold=threshold, per=per,
                             n_bootstrap=n_bootstrap, level=level, seed=seed, n_unit=n_unit, d_unit=d_unit,
                             cache_dir=out / "cache")
bs.save_table(ours, out, PAGE, "budget_ours")
glue("plan_threshold", float(threshold), display=False)
glue("plan_law", f"{form} ({fitter})", display=False)
ours.style.format({c: "{:.3g}" for c in ["rate ρ", "budget tokens", "low", "high", "compute 6ND", "loss at budget",
                                         "measured flattening"]},
                  na_rep="–").set_caption(f"Token budget of our pruned models ({form}, {fitter}, {level:.0%} interval).")

# %% [markdown]
# The budget is searched over a fixed range of token counts. A budget of `inf` means the predicted curve
# never becomes flatter than the threshold within it; a budget at the range's floor means the curve is
# already that flat there, so the floor is only an upper bound. We count the three cases.

# %%
d_range = inspect.signature(token_budget).parameters["d_range"].default
budget = ours["budget tokens"]
glue("plan_range_text", f"1e{np.log10(d_range[0]):.0f} to 1e{np.log10(d_range[1]):.0f}", display=False)
glue("plan_n_beyond", int(np.isinf(budget).sum()), display=False)
glue("plan_n_below", int((budget <= d_range[0]).sum()), display=False)
glue("plan_n_inside", int(((budget > d_range[0]) & np.isfinite(budget)).sum()), display=False)
glue("n_budget_rows", int(len(ours)), display=False)

# %% [markdown]
# Of our {glue:text}`n_budget_rows:d` curves, {glue:text}`plan_n_inside:d` have a budget inside
# {glue:text}`plan_range_text` tokens, {glue:text}`plan_n_beyond:d` never flatten below
# {glue:text}`plan_threshold:.3g` nats per decade within it, and {glue:text}`plan_n_below:d` are already that
# flat at its floor. Compare a budget with the tokens actually trained to see whether a run stopped early or
# late.
#
# The last column applies the same threshold to the measured curve: the first checkpoint after which the
# loss, judged over three consecutive checkpoints, falls by less than the threshold per decade (empty: it was
# still falling faster at the end of the run). Where a curve has both, we compare the two.

# %%
both = ours.dropna(subset=["budget tokens", "measured flattening"])
both = both[np.isfinite(both["budget tokens"])]
ratio = both["budget tokens"] / both["measured flattening"]
glue("n_flattened", int(ours["measured flattening"].notna().sum()), display=False)
glue("median_budget_ratio", float(ratio.median()) if len(ratio) else float("nan"), display=False)
glue("share_within_2x", float(((ratio > 0.5) & (ratio < 2)).mean()) if len(ratio) else float("nan"), display=False)
glue("plan_compare_text", f"where both exist ({len(ratio)} curves) the predicted budget is {ratio.median():.2g} times "
     f"the measured point (median), and {((ratio > 0.5) & (ratio < 2)).mean():.0%} of the predictions fall within a "
     "factor of two of it" if len(ratio) else "no curve has both a finite predicted budget and a measured "
     "flattening point, so these runs cannot check the predicted budgets", display=False)
glue("plan_below_falling", int(((ours["budget tokens"] <= d_range[0]) & ours["measured flattening"].isna()).sum()),
     display=False)

# %% [markdown]
# {glue:text}`n_flattened:d` of the {glue:text}`n_budget_rows:d` curves flattened within their run;
# {glue:text}`plan_compare_text`. Of the {glue:text}`plan_n_below:d` curves the law calls flat already at
# the range's floor, {glue:text}`plan_below_falling:d` were still falling faster than the threshold at the
# end of their run. The verdict page turns this comparison into a verdict on the paper's Fig. 1.
#
# ## The paper's models, from its Table 5
#
# The same calculation with the paper's L1 constants, for each of its pruned models at its Table 1 rates.

# %%
prow = []
for r in paper.TABLE1.itertuples():
    model = paper.MODELS.set_index("model").loc[r.model]
    rec = {"model": r.model, "method": r.method, "rate ρ": r.rate, "N0 (B)": model["n_params_billions"],
           "tokens trained (paper)": model["post_training_tokens"]}
    try:
        law = paper.law(r.family, r.method, form)
        # depth/width laws predict L − L0 up to the unknown L0; the slope does not depend on it
        b = token_budget(law, float(model["n_params"]), float(r.rate), 0.0, threshold, per=per)
        rec |= {"budget tokens": b.tokens, "compute 6ND": b.compute}
    except ValueError as err:
        rec |= {"budget tokens": np.nan, "compute 6ND": np.nan, "note": str(err)}
    prow.append(rec)
paper_budget = pd.DataFrame(prow)

# %% [markdown]
# We save the table, count the finite budgets and show it.

# %%
bs.save_table(paper_budget, out, PAGE, "budget_paper")
finite = paper_budget[np.isfinite(paper_budget["budget tokens"])]
glue("plan_paper_rows", int(len(paper_budget)), display=False)
glue("plan_paper_finite", int(len(finite)), display=False)
glue("plan_paper_finite_text", f"{finite['budget tokens'].min():.2g} to {finite['budget tokens'].max():.2g} tokens, "
     f"for {', '.join(dict.fromkeys(finite['model'] + ' ' + finite['method']))}" if len(finite) else "none",
     display=False)
paper_budget.style.format({"rate ρ": "{:.2f}", "N0 (B)": "{:.2f}", "tokens trained (paper)": "{:.3g}",
                           "budget tokens": "{:.3g}", "compute 6ND": "{:.3g}"}, na_rep="–").set_caption(
    f"Token budget of the paper's pruned models from its Table 5 ({form}); no interval, as the paper "
    "publishes no uncertainty for its constants.")

# %% [markdown]
# {glue:text}`plan_paper_finite:d` of the paper's {glue:text}`plan_paper_rows:d` pruned models get a finite
# budget: {glue:text}`plan_paper_finite_text`. The paper trained each model on 0.5B or 1B tokens.
#
# ## How fast the predicted curves flatten
#
# For one curve of each of our fits (the first row it was fitted on) we compute the size of the predicted
# slope over a range of token counts.

# %%
tokens = np.logspace(3, 9, 80)
curves = []
for (fam, m), res in laws.items():
    if res is not None:
        first = fit_rows(df, method=m, family=fam).iloc[0]
        s = np.abs(slope(res, float(first["n0"]), float(first["rate"]), float(first["l0"]), tokens, per=per))
        label = f"ours: {fam} {m} ({first['model']}, ρ={first['rate']:.2f})"
        curves.append(pd.DataFrame({"source": "ours", "label": label, "tokens": tokens, "slope": s}))

# %% [markdown]
# Beside them, the paper's Llama-3.2-1B laws at ρ = 0.25, with the tokens multiplied by 1000 to share the
# axis.

# %%
n0_1b = float(paper.MODELS.set_index("model").loc["Llama-3.2-1B", "n_params"])
for m in ["depth", "width"]:
    try:
        s = np.abs(slope(paper.law("llama", m, form), n0_1b, 0.25, 0.0, tokens * 1e3, per=per))
    except ValueError:
        continue
    label = f"paper: Llama-3.2-1B {m} ρ=0.25 (D×1000)"
    curves.append(pd.DataFrame({"source": "paper", "label": label, "tokens": tokens, "slope": s}))
slopes = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=["source", "label", "tokens", "slope"])

# %% [markdown]
# How many of our drawn curves are still steeper than the threshold at the largest token count drawn, and
# how many grow steeper with tokens instead of flattening?

# %%
ours_slopes = slopes[slopes["source"] == "ours"]
at_start, at_end = (ours_slopes[ours_slopes["tokens"] == t].set_index("label")["slope"] for t in (tokens[0], tokens[-1]))
glue("plan_slopes_drawn", int(len(at_end)), display=False)
glue("plan_slopes_steep_end", int((at_end > threshold).sum()), display=False)
glue("plan_slopes_growing", int((at_end > 1.01 * at_start).sum()), display=False)
glue("plan_slopes_constant", int(((at_end / at_start).between(1 / 1.5, 1.5)).sum()), display=False)
glue("plan_slopes_end_tokens", f"1e{np.log10(tokens[-1]):.0f}", display=False)

# %% [markdown]
# The figure draws the slopes and the threshold.

# %% tags=["hide-input"]
fig = figures.budget_slopes(slopes, threshold, per)
bs.save_figure(fig, out, PAGE, "slopes")
glue("fig_slopes", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_slopes
# :name: fig-slopes
#
# Size of the predicted slope against tokens for one curve of each of our fits (solid) and for the
# paper's Llama-3.2-1B laws (dashed grey, tokens divided by 1000 to share the axis). The budget is where a
# curve crosses the dotted threshold.
# ```
#
# {glue:text}`plan_slopes_steep_end:d` of our {glue:text}`plan_slopes_drawn:d` drawn curves are still above
# the dotted threshold at {glue:text}`plan_slopes_end_tokens` tokens, the right edge of the figure, and
# {glue:text}`plan_slopes_growing:d` grow steeper with more tokens rather than flatter.
# {glue:text}`plan_slopes_constant:d` keep nearly the same slope (within a factor of 1.5) over the six decades
# drawn: such a law never crosses the threshold if it starts above it, and is already under it at the floor
# if it starts below, so its budget is `inf` or the floor unless the threshold falls inside that narrow band.
#
# ## On this page we
#
# - turned each fitted law into a post-training budget, the tokens after which one more tenfold increase of
#   data gains less than {glue:text}`plan_threshold:.3g` nats, with a bootstrap interval;
# - found budgets inside the searched range for {glue:text}`plan_n_inside:d` of our
#   {glue:text}`n_budget_rows:d` curves and checked them against where the measured curves flattened
#   ({glue:text}`n_flattened:d` did within their run);
# - computed the same budgets for the paper's models from its Table 5: {glue:text}`plan_paper_finite:d` of
#   {glue:text}`plan_paper_rows:d` are finite;
# - drew how fast the predicted curves flatten, ours beside the paper's.
