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
# # Does the law generalize? (§4.3)
#
# A law is useful if it predicts checkpoints it has not seen. The paper holds out data three ways: the
# last part of every curve (more tokens than seen in fitting), the largest model of each family (a bigger
# model than seen), and the highest pruning rate of each model (a harsher pruning than seen). We fit L1 on
# the rest with both fitters, score it on the held-out rows, and give each held-out score a bootstrap
# interval obtained by refitting on curves resampled with replacement.

# %% tags=["parameters"]
profile = "toy"
results_dir = "results/toy"
seed = 0  # seed of the bootstrap resampling
n_unit = 1e6
d_unit = 1e6
form = "L1"
fitters = ["lm", "huber-log"]
huber_start = "grid"  # "lm": huber-log starts from the LM optimum (fast)
# None: every fit optimises the whole starting grid. k: only the k starts with the lowest initial error
# (about 36/k times faster). Not the default: on the committed toy sweep 8 screened starts lost up to
# 0.009 of in-sample R² on Table 2, 0.42 on Table 4's L5, and moved held-out R² (measured 2026-12-02).
max_starts = None
token_fraction = 0.8  # dataset-size split: share of each curve's checkpoints used for fitting
n_bootstrap = 20  # resamples per fit for the intervals (0: none)
level = 0.9  # interval level
curve_family = "llama"  # the cell drawn as loss curves (Figs. 7-9 of the paper); any other present cell if absent
curve_method = "depth"
form_max_starts = 2  # held-out form comparison: LM from the best 2 grid starts only (one toy L1 start ~1.5 s)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from myst_nb import glue

from p2law import book as bs
from p2law import paper, table
from p2law.analysis import grids, results
from p2law.analysis.protocols import SPLITS

PAGE = "generalization"
out = bs.ensure_results(profile, results_dir)
checkpoints = bs.load_checkpoints(out)
# Laws are fitted to one data-order seed per run (the repeats measure the noise floor, on the verdict page).
df = table.first_seed(checkpoints)
grids.coverage(df)

# %%
# One cell per (family, method, split): fit on the split's fitting rows with each fitter, score on the held-out
# rows, and refit on bootstrap resamples for the interval (p2law.analysis.results.table3, cached under
# results_dir/cache by the table's fingerprint; the verdict page asks for the same table).
ours3, held_fits = results.table3(checkpoints, form=form, fitters=fitters, n_unit=n_unit, d_unit=d_unit,
                                  huber_start=huber_start, max_starts=max_starts, token_fraction=token_fraction,
                                  n_bootstrap=n_bootstrap, seed=seed, level=level, cache_dir=out / "cache")
bs.save_table(ours3, out, PAGE, "table3_ours")
glue("n_held_scored", int(ours3["r2"].notna().sum()), display=False)
glue("n_held_total", int(len(ours3)), display=False)
glue("n_refits_failed", int(ours3["failed refits"].fillna(0).sum()), display=False)
glue("n_refits", int(ours3["resamples"].fillna(0).sum() + ours3["failed refits"].fillna(0).sum()), display=False)

wide = ours3.pivot_table(index=["family", "protocol", "method"], columns="fitter",
                         values=["r2", "r2 low", "r2 high", "huber", "asd"], dropna=False)
wide.columns = pd.MultiIndex.from_tuples([(v, f"ours ({f})") for v, f in wide.columns])
p3 = paper.TABLE3.set_index(["family", "protocol", "method"])[["r2", "huber", "asd"]]
p3.columns = pd.MultiIndex.from_tuples([(c, "paper") for c in p3.columns])
table3 = p3.join(wide, how="outer")
order = [(v, s) for v in ["r2", "r2 low", "r2 high", "huber", "asd"]
         for s in ["paper"] + [f"ours ({f})" for f in fitters] if (v, s) in table3.columns]
table3 = table3[order]
paper_cols = [c for c in table3.columns if c[1] == "paper"]
r2_cols = [c for c in table3.columns if c[0].startswith("r2")]


def r2_text(v):
    # A refit that extrapolates wildly gives R² like -1e18; past -100 the digits say nothing more.
    return "–" if pd.isna(v) else ("< −100" if v < -100 else f"{v:.4g}")


(table3.style.format("{:.4g}", na_rep="–").format(r2_text, subset=r2_cols)
 .set_properties(subset=paper_cols, **{"background-color": "#eeeeee", "font-style": "italic"})
 .set_caption(f"Table 3: {form} scored on held-out checkpoints; paper grey and italic; "
              f"'r2 low/high' is our {level:.0%} bootstrap interval (values below −100 shown as such; "
              "the saved table keeps them)."))

# %% [markdown]
# {glue:text}`n_refits_failed:d` of the {glue:text}`n_refits:d` bootstrap refits failed; they are left out of
# the intervals (the saved table counts them per cell in `failed refits`).
#
# {glue:text}`n_held_scored:d` of our {glue:text}`n_held_total:d` cells have a held-out score. A split that
# cannot be formed (one model size per family, one rate per model) or a fit that fails is listed here:

# %%
ours3.loc[ours3["note"].fillna("") != "", ["family", "protocol", "method", "fitter", "note"]]

# %% [markdown]
# ## Predicted against actual on the held-out rows

# %%
keys = [k for k in held_fits if k[3] == fitters[0]]
fig, axes = plt.subplots(1, max(len(SPLITS), 1), figsize=(4 * len(SPLITS), 3.2), squeeze=False)
for ax, protocol in zip(axes[0], SPLITS):
    for k, key in enumerate(kk for kk in keys if kk[2] == protocol):
        res, train, test = held_fits[key]
        lim_lo, lim_hi = test["eval_loss"].min(), test["eval_loss"].max()
        ax.scatter(test["eval_loss"], res.predict(test), s=8, color=f"C{k}", label=f"{key[0]} {key[1]}")
    lims = ax.get_xlim() if ax.collections else (0, 1)
    ax.plot(lims, lims, "k--", lw=0.8)
    ax.set_xlabel("actual held-out loss (nats)")
    ax.set_ylabel("predicted loss (nats)")
    ax.set_title(protocol.replace("_", " "), fontsize=9)
    if ax.collections:
        ax.legend(fontsize=6)
bs.save_figure(fig, out, PAGE, "held_out")
glue("fig_held_out", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_held_out
# :name: fig-held-out
#
# Predicted against actual loss on the held-out checkpoints of each split (first fitter listed in the
# parameters). Points on the dashed diagonal are predicted exactly; an empty panel means that split could
# not be formed from these results.
# ```

# %% [markdown]
# ## The held-out curves
#
# The paper draws its generalization results as loss curves (its Figs. 7–9): the law, fitted without some
# checkpoints, traced over the whole token range next to the checkpoints it never saw. Here is the same
# picture for one family and pruning method (papermill parameters `curve_family`, `curve_method`).

# %%
cells = [(k[0], k[1]) for k in keys]
cell = (curve_family, curve_method) if (curve_family, curve_method) in cells else (cells[0] if cells else None)
fig, axes = plt.subplots(1, max(len(SPLITS), 1), figsize=(4.2 * len(SPLITS), 3.4), squeeze=False, sharey=True)
for ax, protocol in zip(axes[0], SPLITS):
    key = (*cell, protocol, fitters[0]) if cell else None
    if key not in held_fits:
        ax.set_title(f"{protocol.replace('_', ' ')}: no split", fontsize=9)
        continue
    res, train, test = held_fits[key]
    held_runs = list(dict.fromkeys(test["run_id"]))
    for run in dict.fromkeys(train["run_id"]):
        if run not in held_runs:  # curves only used for fitting: grey
            g = train[train["run_id"] == run]
            ax.plot(g["tokens"], g["eval_loss"], color="0.8", lw=0.8)
    for k, run in enumerate(held_runs):
        seen, unseen = train[train["run_id"] == run], test[test["run_id"] == run]
        both = pd.concat([seen, unseen])
        grid = both.iloc[[0] * 60].assign(tokens=np.geomspace(both["tokens"].min(), both["tokens"].max(), 60))
        ax.plot(grid["tokens"], res.predict(grid), color=f"C{k}", lw=1.2)
        ax.plot(seen["tokens"], seen["eval_loss"], "o", ms=2.5, color=f"C{k}", alpha=0.35)
        ax.plot(unseen["tokens"], unseen["eval_loss"], "o", ms=3.5, color=f"C{k}", mfc="none",
                label=f"{unseen['model'].iloc[0]} ρ={unseen['rate'].iloc[0]:.2f}")
    ax.set_xscale("log")
    ax.set_xlabel("post-training tokens D")
    ax.set_title(f"{protocol.replace('_', ' ')}: {cell[0]} {cell[1]}", fontsize=9)
    ax.legend(fontsize=5, ncol=1)
axes[0][0].set_ylabel("evaluation loss (nats)")
bs.save_figure(fig, out, PAGE, "held_out_curves")
glue("fig_held_out_curves", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_held_out_curves
# :name: fig-held-out-curves
#
# Held-out curves of one cell under each split. Lines: the law fitted without the open circles (first
# fitter listed in the parameters); open circles: held-out checkpoints; faint dots: checkpoints of the
# same curve used in the fit; grey lines: curves used only for fitting.
# ```

# %% [markdown]
# ## Which form predicts best, held out
#
# In sample, L1 cannot score worse than L2 or L3: it nests both, so it fits at least as well. The
# comparison that can fail is held out. Each form, L1–L5, is fitted (LM, from the
# {glue:text}`form_max_starts:d` grid starts with the lowest initial error) on the dataset-size and
# pruning-rate splits' fitting rows and scored on the held-out rows, once on the first seed's curves and
# once with every repeated curve swapped for its other seed; how much the comparison moves between the two
# is its noise floor. The verdict page judges Table 2's and Table 4's form rankings on these scores.

# %%
from p2law.analysis import verdict as v

forms_held = results.forms_held_out(checkpoints, n_unit=n_unit, d_unit=d_unit, token_fraction=token_fraction,
                                    max_starts=form_max_starts, cache_dir=out / "cache")
bs.save_table(forms_held, out, PAGE, "forms_held_out")
glue("form_max_starts", form_max_starts, display=False)
wins = {rivals: v.form_effect(forms_held[forms_held["seeds"] == "first"], "L1", rivals)
        for rivals in [("L2", "L3"), ("L4", "L5")]}
glue("forms_l1_nested_wins", int(np.sum(np.array(wins[("L2", "L3")]["diffs"]) > 0)), display=False)
glue("forms_l1_nested_cells", len(wins[("L2", "L3")]["diffs"]), display=False)
glue("forms_l1_kaplan_wins", int(np.sum(np.array(wins[("L4", "L5")]["diffs"]) > 0)), display=False)
glue("forms_l1_kaplan_cells", len(wins[("L4", "L5")]["diffs"]), display=False)
(forms_held[forms_held["seeds"] == "first"]
 .pivot_table(index=["family", "protocol", "method"], columns="form", values="r2", dropna=False)
 .style.format(r2_text).set_caption("Held-out R² of each form (LM fits, first seed)."))

# %% [markdown]
# Held out, L1 beats both of the forms it nests in {glue:text}`forms_l1_nested_wins:d` of
# {glue:text}`forms_l1_nested_cells:d` cells, and both Kaplan-style forms in
# {glue:text}`forms_l1_kaplan_wins:d` of {glue:text}`forms_l1_kaplan_cells:d`. Whether those margins exceed
# what a change of data-order seed does to them is the verdict page's question.
