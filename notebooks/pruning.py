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
# # Pruning: what each method removes (§2, App. B)
#
# Three pruners turn a base model into a smaller one before post-training. Depth pruning scores every
# decoder layer by how much it changes its input (one minus the cosine similarity of the hidden state
# before and after the layer) and drops the least important layers. Width pruning scores each hidden
# channel by its activation magnitude after the RMSNorms and keeps the strongest channels. 2:4 pruning
# (SparseGPT) zeroes two of every four weights in each linear matrix and compensates the rest. This page
# reads the prune reports of our sweep and shows the scores and the choices made from them.

# %% tags=["parameters"]
profile = "toy"
results_dir = "results/toy"
seed = 0
n_bins = 40  # bins of the normalised channel-importance histogram (App. G)
max_models = 6  # panels in the per-model figures

# %%
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from myst_nb import glue

from p2law import book as bs
from p2law.analysis import grids

PAGE = "pruning"
out = bs.ensure_results(profile, results_dir)
all_reports = bs.load_reports(out)
# A run repeated with another data-order seed was pruned again from the same base on the same calibration
# data; the seed orders only the post-training data, so its report must be the first seed's. Shown once.
first_seed = {k: r for k, r in all_reports.items() if not re.search(r"-seed[1-9]\d*$", k)}
repeats = {k: r for k, r in all_reports.items() if k not in first_seed}
same = sum(r["removed"] == first_seed.get(re.sub(r"-seed\d+$", "-seed0", k), {}).get("removed") for k, r in repeats.items())
glue("n_repeat_reports", len(repeats), display=False)
glue("n_repeat_same", int(same), display=False)
reports = first_seed
pretrain = bs.load_pretrain(out)
summary = pd.DataFrame([
    {"run_id": k, "model": r["model"], "method": r["method"], "target rate": r.get("target_rate", np.nan),
     "achieved rate ρ": r["rate"], "N0": r["n0"], "N after pruning": r["n"]}
    for k, r in reports.items()])
if summary.empty:
    summary = pd.DataFrame(columns=["run_id", "model", "method", "target rate", "achieved rate ρ", "N0",
                                    "N after pruning"])
bs.save_table(summary, out, PAGE, "prune_summary")
glue("n_prune_reports", int(len(summary)), display=False)
summary

# %% [markdown]
# The sweep wrote {glue:text}`n_prune_reports:d` prune reports for the first data-order seed; of the
# {glue:text}`n_repeat_reports:d` runs repeated with another seed, {glue:text}`n_repeat_same:d` removed
# exactly what the first seed's run removed (pruning does not depend on the seed). The achieved rate counts all parameters,
# embeddings included, so it is below the target for depth pruning of our small models, whose embeddings
# are a large share of the total.
#
# ## Depth: layer importance and the layers removed

# %%
depth = {k: r for k, r in reports.items() if r["method"] == "depth"}
by_model = {}
for r in depth.values():
    by_model.setdefault(r["model"], []).append(r)
models = sorted(by_model)[:max_models]
fig, axes = plt.subplots(1, max(len(models), 1), figsize=(3.2 * max(len(models), 1), 2.8), squeeze=False)
for ax, model in zip(axes[0], models):
    runs = sorted(by_model[model], key=lambda r: r["rate"])
    scores = np.asarray(runs[0]["scores"], float)
    ax.bar(np.arange(len(scores)), scores, color="tab:blue")
    for i, r in enumerate(runs):
        for layer in r["removed"]:
            ax.scatter(layer, scores[layer] + 0.02 * (i + 1), marker="v", color=f"C{i + 1}",
                       label=f"removed at ρ={r['rate']:.2f}")
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    ax.legend(uniq.values(), uniq.keys(), fontsize=6)
    ax.set_xlabel("layer index")
    ax.set_ylabel("importance 1 − cos(h_in, h_out)")
    ax.set_title(model, fontsize=9)
if not models:
    axes[0][0].text(0.5, 0.5, "no depth-pruning reports", ha="center", transform=axes[0][0].transAxes)
    axes[0][0].set_xlabel("layer index")
    axes[0][0].set_ylabel("importance")
bs.save_figure(fig, out, PAGE, "depth_scores")
glue("fig_depth_scores", fig, display=False)
plt.close(fig)
depth_table = pd.DataFrame([{"model": r["model"], "achieved rate ρ": r["rate"],
                             "layers removed": ", ".join(map(str, sorted(r["removed"]))),
                             "layers kept": len(r["scores"]) - len(r["removed"])} for r in depth.values()])
depth_table

# %% [markdown]
# ```{glue:figure} fig_depth_scores
# :name: fig-depth-scores
#
# Depth pruning: importance of each decoder layer of our base models (bars) and the layers removed at
# each pruning rate (triangles, one colour per rate). Low importance means the layer barely changes the
# hidden state.
# ```
#
# ## Width: which channels go, and the histogram of App. G

# %%
width = {k: r for k, r in reports.items() if r["method"] == "width"}
width_rows, hist_data = [], {}
for r in width.values():
    scores = np.asarray(r["scores"], float)
    removed = np.asarray(r["removed"], int)
    width_rows.append({"model": r["model"], "achieved rate ρ": r["rate"], "hidden channels": len(scores),
                       "channels removed": len(removed),
                       "first removed": ", ".join(map(str, sorted(removed)[:8])) + (" …" if len(removed) > 8 else "")})
    hist_data.setdefault(r["model"], (scores, []))[1].append((r["rate"], removed))
width_table = pd.DataFrame(width_rows)
models_w = sorted(hist_data)[:max_models]
fig, axes = plt.subplots(1, max(len(models_w), 1), figsize=(3.2 * max(len(models_w), 1), 2.8), squeeze=False)
for ax, model in zip(axes[0], models_w):
    scores, runs = hist_data[model]
    norm = scores / scores.max() if scores.max() > 0 else scores
    ax.hist(norm, bins=n_bins, color="tab:gray", label="all channels")
    rate, removed = max(runs, key=lambda t: t[0])
    ax.hist(norm[removed], bins=n_bins, range=(norm.min(), norm.max()), color="tab:red", alpha=0.7,
            label=f"removed at ρ={rate:.2f}")
    ax.set_xlabel("normalised channel importance")
    ax.set_ylabel("channels")
    ax.set_title(model, fontsize=9)
    ax.legend(fontsize=6)
if not models_w:
    axes[0][0].text(0.5, 0.5, "no width-pruning reports", ha="center", transform=axes[0][0].transAxes)
    axes[0][0].set_xlabel("normalised channel importance")
    axes[0][0].set_ylabel("channels")
bs.save_figure(fig, out, PAGE, "width_histogram")
glue("fig_width_hist", fig, display=False)
plt.close(fig)
width_table

# %% [markdown]
# ```{glue:figure} fig_width_hist
# :name: fig-width-hist
#
# Width pruning, as in App. G: histogram of the channel importance divided by its maximum (grey), and the
# channels removed at the highest rate (red). As in the paper, most channels have small importance and a
# few carry most of the activation mass.
# ```
#
# ## 2:4: sparsity per matrix

# %%
semi = {k: r for k, r in reports.items() if r["method"] == "2:4"}
sp_rows = []
for r in semi.values():
    per = r["removed"] if isinstance(r.get("removed"), dict) else r.get("scores", [])
    if isinstance(per, dict):
        vals = np.array([float(v) for v in per.values()]) if per else np.array([np.nan])
    else:
        vals = np.asarray(per, float) if len(per) else np.array([np.nan])
    sp_rows.append({"model": r["model"], "achieved rate ρ": r["rate"], "matrices": int(np.isfinite(vals).sum()),
                    "min sparsity": np.nanmin(vals), "max sparsity": np.nanmax(vals)})
sparsity_table = pd.DataFrame(sp_rows)
bs.save_table(sparsity_table, out, PAGE, "sparsity")
sparsity_table

# %% [markdown]
# Every linear matrix inside the decoder layers should sit at exactly 50% sparsity; embeddings and the
# output head are left dense, which is why ρ for 2:4 is below one half.
#
# ## What is missing
#
# The table below counts, per family and method, the models and rates present in these results; a zero
# means that part of the sweep has not been run (yet) and the figures above skip it.

# %%
df = bs.load_checkpoints(out)
cov = grids.coverage(df)
bs.save_table(cov, out, PAGE, "coverage")
cov
