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
n_bootstrap = 20  # bootstrap refits behind each interval (0: no interval)
level = 0.9

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from myst_nb import glue

from p2law import book as bs
from p2law import paper, table
from p2law.analysis import grids, results
from p2law.analysis.budget import slope, token_budget
from p2law.table import fit_rows

PAGE = "planning"
out = bs.ensure_results(profile, results_dir)
checkpoints = bs.load_checkpoints(out)
# Laws are fitted to one data-order seed per run (the repeats measure the noise floor, on the verdict page).
df = table.first_seed(checkpoints)
grids.coverage(df)

# %% [markdown]
# ## Our models

# %%
# One law per family and method with its bootstrap refits, and each curve's budget beside where the measured
# curve itself flattened by the same threshold (p2law.analysis.results.budgets, cached under results_dir/cache
# by the table's fingerprint; the verdict page asks for the same table).
ours, laws = results.budgets(checkpoints, form=form, fitter=fitter, threshold=threshold, per=per,
                             n_bootstrap=n_bootstrap, level=level, seed=seed, n_unit=n_unit, d_unit=d_unit,
                             cache_dir=out / "cache")
bs.save_table(ours, out, PAGE, "budget_ours")
glue("plan_threshold", float(threshold), display=False)
both = ours.dropna(subset=["budget tokens", "measured flattening"])
both = both[np.isfinite(both["budget tokens"])]
ratio = both["budget tokens"] / both["measured flattening"]
glue("n_flattened", int(ours["measured flattening"].notna().sum()), display=False)
glue("n_budget_rows", int(len(ours)), display=False)
glue("median_budget_ratio", float(ratio.median()) if len(ratio) else float("nan"), display=False)
glue("share_within_2x", float(((ratio > 0.5) & (ratio < 2)).mean()) if len(ratio) else float("nan"), display=False)
ours.style.format({c: "{:.3g}" for c in ["rate ρ", "budget tokens", "low", "high", "compute 6ND", "loss at budget",
                                         "measured flattening"]},
                  na_rep="–").set_caption(f"Token budget of our pruned models ({form}, {fitter}, {level:.0%} interval).")

# %% [markdown]
# A budget of `inf` means the predicted curve never becomes flatter than
# {glue:text}`plan_threshold:.3g` nats per decade within $10^{15}$ tokens; compare the budget with the
# tokens actually trained to see whether our runs stopped early or late.
#
# The last column applies the same threshold to the measured curve: the first checkpoint after which the
# loss, judged over three consecutive checkpoints, falls by less than the threshold per decade (empty: it was
# still falling faster at the end of the run). {glue:text}`n_flattened:d` of the
# {glue:text}`n_budget_rows:d` curves flattened within their run; where both exist, the predicted budget is
# {glue:text}`median_budget_ratio:.2g` times the measured point (median), and
# {glue:text}`share_within_2x:.0%` of the predictions fall within a factor of two of it.
#
# ## The paper's models, from its Table 5

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
bs.save_table(paper_budget, out, PAGE, "budget_paper")
paper_budget.style.format({"rate ρ": "{:.2f}", "N0 (B)": "{:.2f}", "tokens trained (paper)": "{:.3g}",
                           "budget tokens": "{:.3g}", "compute 6ND": "{:.3g}"}, na_rep="–").set_caption(
    f"Token budget of the paper's pruned models from its Table 5 ({form}); no interval, as the paper "
    "publishes no uncertainty for its constants.")

# %% [markdown]
# ## How fast the predicted curves flatten

# %%
fig, ax = plt.subplots(figsize=(5.5, 3.5))
tokens = np.logspace(3, 9, 80)
for k, ((fam, m), res) in enumerate((kv for kv in laws.items() if kv[1] is not None)):
    g = fit_rows(df, method=m, family=fam)
    first = g.iloc[0]
    s = np.abs(slope(res, float(first["n0"]), float(first["rate"]), float(first["l0"]), tokens, per=per))
    ax.plot(tokens, s, color=f"C{k}", label=f"ours: {fam} {m} ({first['model']}, ρ={first['rate']:.2f})")
for k, m in enumerate(["depth", "width"]):
    try:
        law = paper.law("llama", m, form)
        n0_1b = float(paper.MODELS.set_index("model").loc["Llama-3.2-1B", "n_params"])
        s = np.abs(slope(law, n0_1b, 0.25, 0.0, tokens * 1e3, per=per))
        ax.plot(tokens, s, "--", color="gray", lw=1 + k, label=f"paper: Llama-3.2-1B {m} ρ=0.25 (D×1000)")
    except ValueError:
        pass
ax.axhline(threshold, color="k", lw=0.8, ls=":")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("post-training tokens D (paper curves: D / 1000)")
ax.set_ylabel(f"|dL/dlog10 D| (nats per {per})")
ax.legend(fontsize=6)
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
