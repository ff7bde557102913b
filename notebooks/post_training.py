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
# # Post-training loss curves (§3)
#
# After pruning, each model is trained again while its pruning masks stay in place, on the post-training
# split of the corpus: documents that no base saw during pretraining and that are disjoint from the
# calibration and evaluation documents too (the reproduction page lists the four splits). The paper reads
# two regularities off these curves. *Trend 1*: at the same pruning rate, smaller models lose loss faster
# as tokens accumulate. *Trend 2*: the loss increase caused by pruning grows with the pruning rate as a
# power law; in the paper's law the term is $(1/\rho)^{\gamma}$ with a negative $\gamma$ (Table 5:
# $-0.97$ to $-1.28$), so $\Delta\mathcal{L} \propto \rho^{-\gamma}$. The unpruned control ($\rho=0$,
# trained on the same tokens) shows how much of a curve's fall is plain further training; for a
# well-trained base it should stay flat. Every run of the small and medium models is repeated with a
# second data-order seed; the seed-to-seed spread is the noise floor the verdicts use.

# %% tags=["parameters"]
profile = "toy"
results_dir = "results/toy"
seed = 0
loss_col = "eval_loss"  # or "train_loss"
trend1_fraction = 0.5  # Trend 1: loss drop up to this share of the shortest budget among compared curves

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from myst_nb import glue

from p2law import book as bs
from p2law.analysis import grids
from p2law.analysis import verdict as v

PAGE = "post_training"
out = bs.ensure_results(profile, results_dir)
df = bs.load_checkpoints(out)
cov = grids.coverage(df)
missing = cov[cov["curves"] == 0]
glue("n_curves", int(df["run_id"].nunique()), display=False)
glue("n_missing_parts", int(len(missing)), display=False)
cov

# %% [markdown]
# The results hold {glue:text}`n_curves:d` post-training curves; {glue:text}`n_missing_parts:d` of the six
# family × method combinations have none (rows with zero curves above) and are absent from the figures.
#
# ## The curves

# %%
families = sorted(df["family"].unique())
methods = [m for m in grids.METHODS if m in set(df["method"])]
control = df[df["method"] == "none"]
fig, axes = plt.subplots(max(len(families), 1), max(len(methods), 1), figsize=(4 * max(len(methods), 1),
                         3.2 * max(len(families), 1)), squeeze=False)
for i, fam in enumerate(families):
    models = sorted(df.loc[df["family"] == fam, "model"].unique(), key=lambda m: df.loc[df["model"] == m, "n0"].iloc[0])
    for j, m in enumerate(methods):
        ax = axes[i][j]
        for k, model in enumerate(models):
            sub = df[(df["model"] == model) & (df["method"] == m)]
            for s, (rate, by_seed) in enumerate(sub.groupby("rate")):
                for i, (seed, curve) in enumerate(by_seed.groupby("seed")):  # repeats drawn faint, unlabelled
                    curve = curve.sort_values("tokens")
                    ax.plot(curve["tokens"].clip(lower=1), curve[loss_col], color=f"C{k}", ls=["-", "--", ":"][s % 3],
                            alpha=1 if i == 0 else 0.4, label=f"{model} ρ={rate:.2f}" if i == 0 else None)
            c = control[(control["model"] == model) & (control["seed"] == control["seed"].min())].sort_values("tokens")
            if len(c):
                ax.plot(c["tokens"].clip(lower=1), c[loss_col], color=f"C{k}", lw=0.8, alpha=0.6, marker=".",
                        label=f"{model} ρ=0")
        ax.set_xscale("log")
        ax.set_xlabel("post-training tokens D")
        ax.set_ylabel(f"{loss_col.replace('_', ' ')} (nats)")
        ax.set_title(f"{fam}, {m}", fontsize=9)
        if ax.lines:
            ax.legend(fontsize=5.5)
bs.save_figure(fig, out, PAGE, "curves")
glue("fig_curves", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_curves
# :name: fig-curves
#
# Post-training loss against tokens for each family (rows) and pruning method (columns). Colour: model;
# line style: pruning rate (solid is the lowest); faint lines: the same run with another data-order seed;
# thin lines with markers: the unpruned control trained on the same data. The first point (D = 0) is drawn
# at D = 1 on the log axis.
# ```
#
# ## Trend 1: smaller models recover faster

# %%
drops = v.relative_drops(df, loss_col, trend1_fraction)
trend1 = drops.rename(columns={"n0": "N0", "rate": "rate ρ", "loss at D=0": "loss after pruning"}).sort_values(
    ["family", "method", "N0", "rate ρ"])
bs.save_table(trend1, out, PAGE, "trend1")
trend1

# %% [markdown]
# The relative drop is measured from $D=0$ to the same token count for every model of a family, method and
# rank of rate (the column `tokens compared`): our larger models get larger budgets, and a share of each
# model's own budget would hand them more tokens. Trend 1 predicts that the relative drop falls as $N_0$
# grows. The verdict page counts the pairs of models that agree and repeats the test on the loss above the
# $\rho=0$ control.
#
# ## Trend 2: the loss increase grows as a power of ρ
#
# For each curve we take $\Delta\mathcal{L} = \mathcal{L} - \mathcal{L}_0$ at its last checkpoint, divide by
# $\mathcal{L}_0$, and fit a straight line in log–log against ρ per family and method. The slope $k$ is
# $-\gamma$ in the paper's convention (its law has $(1/\rho)^{\gamma}$), so the table gives both; the
# verdict page tests whether one power law actually describes the curves (a straight line in log–log),
# which a slope alone cannot show.

# %%
last = df[df["method"].isin(["depth", "width"])].sort_values("tokens").groupby("run_id").tail(1).copy()
last["dL_norm"] = (last[loss_col] - last["l0"]) / last["l0"]
gam = []
for (fam, m), g in last.groupby(["family", "method"]):
    ok = (g["dL_norm"] > 0) & (g["rate"] > 0)
    if ok.sum() >= 2 and g.loc[ok, "rate"].nunique() >= 2:
        slope, icpt = np.polyfit(np.log(g.loc[ok, "rate"]), np.log(g.loc[ok, "dL_norm"]), 1)
    else:
        slope = icpt = np.nan
    gam.append({"family": fam, "method": m, "curves": len(g), "slope k": slope, "γ (paper's sign)": -slope,
                "intercept": icpt})
gamma_table = pd.DataFrame(gam, columns=["family", "method", "curves", "slope k", "γ (paper's sign)", "intercept"])
bs.save_table(gamma_table, out, PAGE, "trend2_gamma")
fig, ax = plt.subplots(figsize=(5, 3.5))
for k, ((fam, m), g) in enumerate(last.groupby(["family", "method"])):
    ax.scatter(g["rate"], g["dL_norm"], color=f"C{k}", label=f"{fam} {m}")
    row = gamma_table[(gamma_table["family"] == fam) & (gamma_table["method"] == m)]
    if len(row) and np.isfinite(row["slope k"].iloc[0]):
        r = np.linspace(g["rate"].min(), g["rate"].max(), 20)
        ax.plot(r, np.exp(row["intercept"].iloc[0]) * r ** row["slope k"].iloc[0], color=f"C{k}")
ax.set_xscale("log")
if (last["dL_norm"] > 0).any():
    ax.set_yscale("log")
ax.set_xlabel("pruning rate ρ")
ax.set_ylabel("(L − L0) / L0 at the last checkpoint")
if ax.collections:
    ax.legend(fontsize=7)
bs.save_figure(fig, out, PAGE, "trend2")
glue("fig_trend2", fig, display=False)
plt.close(fig)
gamma_table

# %% [markdown]
# ```{glue:figure} fig_trend2
# :name: fig-trend2
#
# Trend 2: the normalised loss increase at the end of post-training against the pruning rate (points, one
# colour per family and method) with the fitted power law (lines; the slope in log–log is k = −γ). A fit needs
# two rates with a positive increase; cells without one are left empty in the table.
# ```
