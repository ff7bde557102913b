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
#
# **What this page finds.**
# - Each pruner removes exactly what its score says: in {glue:text}`n_depth_top:d` of
#   {glue:text}`n_depth_runs:d` depth runs the layers removed are those whose output is most like their
#   input, and in {glue:text}`n_width_lowest:d` of {glue:text}`n_width_runs:d` width runs the channels
#   removed are the weakest.
# - Our toy models have no dominant channels: the weakest channel of any model scores
#   {glue:text}`width_min_norm:.2f` of its model's strongest, unlike the few outlier channels of the
#   paper's App. G.
# - 2:4 pruning leaves {glue:text}`n_matrices_half:d` of {glue:text}`n_matrices:d` decoder matrices at
#   exactly 50% sparsity, which is an achieved ρ of {glue:text}`semi_rate_low:.2f` to
#   {glue:text}`semi_rate_high:.2f` once the dense embeddings are counted.

# %% tags=["parameters"]
profile = "toy"
results_dir = "results/toy"
seed = 0
n_bins = 40  # bins of the normalised channel-importance histogram (App. G)
max_models = 6  # panels in the per-model figures

# %% [markdown]
# We need the book's page helpers, the sweep's coverage table and the page's figures.

# %%
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from myst_nb import glue

from p2law import book as bs
from p2law import figures
from p2law.analysis import grids

PAGE = "pruning"
out = bs.ensure_results(profile, results_dir)

# %% [markdown]
# The sweep writes one prune report per run. A run repeated with another data-order seed was pruned again
# from the same base on the same calibration data (the seed orders only the post-training data), so we
# keep the first seed's reports and check that the repeats removed the same thing.

# %%
all_reports = bs.load_reports(out)
first_seed = {k: r for k, r in all_reports.items() if not re.search(r"-seed[1-9]\d*$", k)}
repeats = {k: r for k, r in all_reports.items() if k not in first_seed}
same = sum(r["removed"] == first_seed.get(re.sub(r"-seed\d+$", "-seed0", k), {}).get("removed") for k, r in repeats.items())
glue("n_repeat_reports", len(repeats), display=False)
glue("n_repeat_same", int(same), display=False)
reports = first_seed

# %% [markdown]
# One row per pruned model: the rate the sweep asked for and the rate it got, counted over all parameters.

# %%
columns = ["run_id", "model", "method", "target rate", "achieved rate ρ", "N0", "N after pruning"]
summary = pd.DataFrame([
    {"run_id": k, "model": r["model"], "method": r["method"], "target rate": r.get("target_rate", np.nan),
     "achieved rate ρ": r["rate"], "N0": r["n0"], "N after pruning": r["n"]}
    for k, r in reports.items()], columns=columns)
bs.save_table(summary, out, PAGE, "prune_summary")
glue("n_prune_reports", int(len(summary)), display=False)
depth_gap = (summary["achieved rate ρ"] - summary["target rate"])[summary["method"] == "depth"]
glue("depth_gap_low", float(depth_gap.min()) if len(depth_gap) else np.nan, display=False)
glue("depth_gap_high", float(depth_gap.max()) if len(depth_gap) else np.nan, display=False)
summary

# %% [markdown]
# The sweep wrote {glue:text}`n_prune_reports:d` prune reports for the first data-order seed; of the
# {glue:text}`n_repeat_reports:d` runs repeated with another seed, {glue:text}`n_repeat_same:d` removed
# exactly what the first seed's run removed (pruning does not depend on the seed). Depth pruning removes
# whole layers, so its achieved ρ misses the target by {glue:text}`depth_gap_low:+.3f` to
# {glue:text}`depth_gap_high:+.3f`: one layer is a fixed share of each model.
#
# ## Depth: layer scores and the layers removed
#
# For each depth run we list the layers it removed and check that they are the layers with the highest
# cosine similarity of input and output (the least important ones).

# %%
depth = [r for r in reports.values() if r["method"] == "depth"]
is_top = [set(np.argsort(-np.asarray(r["scores"]))[: len(r["removed"])]) == set(r["removed"]) for r in depth]
glue("n_depth_top", int(sum(is_top)), display=False)
glue("n_depth_runs", len(depth), display=False)
glue("n_first_layer_removed", sum(0 in r["removed"] for r in depth), display=False)
layer_scores = np.array([x for scores in {r["model"]: r["scores"] for r in depth}.values() for x in scores], float)
glue("n_layer_scores", int(layer_scores.size), display=False)
glue("n_layer_scores_high", int((layer_scores > 0.85).sum()), display=False)
depth_table = pd.DataFrame([{"model": r["model"], "achieved rate ρ": r["rate"],
                             "layers removed": ", ".join(map(str, sorted(r["removed"]))),
                             "layers kept": len(r["scores"]) - len(r["removed"])} for r in depth])
depth_table

# %% [markdown]
# The figure draws each model's layer scores and marks the layers each rate removes.

# %% tags=["hide-input"]
by_model = {}
for r in depth:
    by_model.setdefault(r["model"], []).append(r)
fig = figures.depth_scores(by_model, max_models)
bs.save_figure(fig, out, PAGE, "depth_scores")
glue("fig_depth_scores", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_depth_scores
# :name: fig-depth-scores
#
# Depth pruning: cosine similarity of each decoder layer's input and output in our base models (bars) and
# the layers removed at each pruning rate (triangles, one colour per rate). High similarity means the layer
# barely changes the hidden state, i.e. low importance.
# ```
#
# The triangles sit on the tallest bars: in {glue:text}`n_depth_top:d` of {glue:text}`n_depth_runs:d` runs
# the removed layers are exactly the most similar ones. {glue:text}`n_layer_scores_high:d` of the
# {glue:text}`n_layer_scores:d` layers of our bases score above 0.85, so the ranking rests on small
# differences. The first layer is removed in {glue:text}`n_first_layer_removed:d` runs.
#
# ## Width: which channels go, and the histogram of App. G
#
# For each width run we count the channels removed and check that they are the weakest ones.

# %%
width = [r for r in reports.values() if r["method"] == "width"]
is_low = [set(np.argsort(np.asarray(r["scores"]))[: len(r["removed"])]) == set(r["removed"]) for r in width]
glue("n_width_lowest", int(sum(is_low)), display=False)
glue("n_width_runs", len(width), display=False)
width_table = pd.DataFrame([
    {"model": r["model"], "achieved rate ρ": r["rate"], "hidden channels": len(r["scores"]),
     "channels removed": len(r["removed"]),
     "first removed": ", ".join(map(str, sorted(r["removed"])[:8])) + (" …" if len(r["removed"]) > 8 else "")}
    for r in width])
width_table

# %% [markdown]
# App. G of the paper draws a histogram of the channel scores divided by their maximum; we draw the same for
# each model, with the channels its highest rate removes in red.

# %% tags=["hide-input"]
hist_data = {}
for r in width:
    scores = np.asarray(r["scores"], float)
    hist_data.setdefault(r["model"], (scores, []))[1].append((r["rate"], np.asarray(r["removed"], int)))
norm_min = [s.min() / s.max() for s, _ in hist_data.values() if s.max() > 0]
glue("width_min_norm", float(min(norm_min)) if norm_min else np.nan, display=False)
fig = figures.width_histogram(hist_data, n_bins, max_models)
bs.save_figure(fig, out, PAGE, "width_histogram")
glue("fig_width_hist", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_width_hist
# :name: fig-width-hist
#
# Width pruning, as in App. G: histogram of the channel importance divided by its maximum (grey), and the
# channels removed at the highest rate (red).
# ```
#
# The red bars sit at the left end of every histogram: width pruning removes the weakest channels, in
# {glue:text}`n_width_lowest:d` of {glue:text}`n_width_runs:d` runs exactly the lowest-scoring ones. Unlike
# the paper's App. G, no few channels dominate our small models: the weakest channel of any model still
# scores {glue:text}`width_min_norm:.2f` of the strongest (the real checkpoint of the SmolLM2 page does
# show the outliers).
#
# ## 2:4: sparsity per matrix
#
# A 2:4 report records the sparsity of every linear matrix it pruned; we take the range per model.

# %%
semi = [r for r in reports.values() if r["method"] == "2:4"]
sp_rows = []
for r in semi:
    per = r["removed"] if isinstance(r.get("removed"), dict) else r.get("scores", [])
    values = list(per.values()) if isinstance(per, dict) else per
    vals = np.asarray(values, float) if len(values) else np.array([np.nan])
    sp_rows.append({"model": r["model"], "achieved rate ρ": r["rate"], "matrices": int(np.isfinite(vals).sum()),
                    "min sparsity": np.nanmin(vals), "max sparsity": np.nanmax(vals)})
sparsity_table = pd.DataFrame(sp_rows)
bs.save_table(sparsity_table, out, PAGE, "sparsity")
sparsity_table

# %% [markdown]
# We count the matrices at exactly one half and the range of achieved ρ.

# %%
half = [sum(float(x) == 0.5 for x in r["removed"].values()) for r in semi if isinstance(r.get("removed"), dict)]
glue("n_matrices_half", int(sum(half)), display=False)
glue("n_matrices", int(sparsity_table["matrices"].sum()) if len(sparsity_table) else 0, display=False)
glue("semi_rate_low", float(sparsity_table["achieved rate ρ"].min()) if len(semi) else np.nan, display=False)
glue("semi_rate_high", float(sparsity_table["achieved rate ρ"].max()) if len(semi) else np.nan, display=False)

# %% [markdown]
# {glue:text}`n_matrices_half:d` of the {glue:text}`n_matrices:d` linear matrices inside the decoder layers
# sit at exactly 50% sparsity; embeddings and the output head are left dense, which is why ρ for 2:4 is
# {glue:text}`semi_rate_low:.2f` to {glue:text}`semi_rate_high:.2f` rather than one half.
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

# %% [markdown]
# ## On this page we
#
# - read the {glue:text}`n_prune_reports:d` prune reports of the sweep and found that the repeated seeds
#   removed the same layers, channels and weights as the first;
# - saw depth pruning remove the layers that change their input least, and width pruning the weakest hidden
#   channels, exactly as their scores rank them;
# - found no dominant channels in our toy models, where the paper's App. G finds a few;
# - checked that 2:4 pruning leaves every decoder matrix at one half, so its ρ over all parameters is below
#   one half.
