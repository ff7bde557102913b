"""The book's figures: plotting and styling only, so that a page's cells show the steps and not the axes.

Each function takes the tables or arrays a page has already computed and returns a matplotlib Figure (or,
for the tables set beside the paper's, a pandas Styler); none computes a number the page reports, reads a
file or saves anything (the pages save through ``p2law.book``). matplotlib, numpy and pandas only: no torch.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import paper

LINE_STYLES = ["-", "--", ":"]


def _panels(n: int, width: float, height: float):
    """A row of n panels (at least one), each width × height inches."""
    n = max(n, 1)
    return plt.subplots(1, n, figsize=(width * n, height), squeeze=False)


def _empty(ax, text: str, xlabel: str, ylabel: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", transform=ax.transAxes)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


# --- pruning ----------------------------------------------------------------------------------------------


def depth_scores(by_model: dict[str, list[dict]], max_models: int):
    """Depth pruning: each layer's score (bars) and the layers each rate removes (triangles, one colour per
    rate), one panel per model. ``by_model`` maps a model to its depth prune reports."""
    models = sorted(by_model)[:max_models]
    fig, axes = _panels(len(models), 3.2, 2.8)
    for ax, model in zip(axes[0], models):
        runs = sorted(by_model[model], key=lambda r: r["rate"])
        scores = np.asarray(runs[0]["scores"], float)
        ax.bar(np.arange(len(scores)), scores, color="tab:blue")
        for i, r in enumerate(runs):
            for layer in r["removed"]:
                ax.scatter(
                    layer,
                    scores[layer] + 0.02 * (i + 1),
                    marker="v",
                    color=f"C{i + 1}",
                    label=f"removed at ρ={r['rate']:.2f}",
                )
        handles, labels = ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles))
        ax.legend(uniq.values(), uniq.keys(), fontsize=6)
        ax.set_xlabel("layer index")
        ax.set_ylabel("cos(h_in, h_out)")
        ax.set_title(model, fontsize=9)
    if not models:
        _empty(axes[0][0], "no depth-pruning reports", "layer index", "cos(h_in, h_out)")
    return fig


def width_histogram(hist_data: dict[str, tuple], n_bins: int, max_models: int):
    """Width pruning, as App. G draws it: channel importance over its maximum (grey) and the channels removed
    at the highest rate (red). ``hist_data`` maps a model to (scores, [(rate, removed indices), ...])."""
    models = sorted(hist_data)[:max_models]
    fig, axes = _panels(len(models), 3.2, 2.8)
    for ax, model in zip(axes[0], models):
        scores, runs = hist_data[model]
        norm = scores / scores.max() if scores.max() > 0 else scores
        ax.hist(norm, bins=n_bins, color="tab:gray", label="all channels")
        rate, removed = max(runs, key=lambda t: t[0])
        ax.hist(
            norm[removed],
            bins=n_bins,
            range=(norm.min(), norm.max()),
            color="tab:red",
            alpha=0.7,
            label=f"removed at ρ={rate:.2f}",
        )
        ax.set_xlabel("normalised channel importance")
        ax.set_ylabel("channels")
        ax.set_title(model, fontsize=9)
        ax.legend(fontsize=6)
    if not models:
        _empty(axes[0][0], "no width-pruning reports", "normalised channel importance", "channels")
    return fig


# --- post-training ----------------------------------------------------------------------------------------


def loss_curves(df: pd.DataFrame, loss_col: str, methods: list[str]):
    """Post-training curves, one panel per family (rows) and method (columns). Colour: model (by N0); line
    style: rate rank; faint: another data-order seed; thin with markers: the ρ = 0 control (first seed)."""
    families = sorted(df["family"].unique())
    nrows, ncols = max(len(families), 1), max(len(methods), 1)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3.2 * nrows), squeeze=False)
    control = df[df["method"] == "none"]
    n0 = df.groupby("model")["n0"].first()
    for i, fam in enumerate(families):
        models = sorted(df.loc[df["family"] == fam, "model"].unique(), key=lambda m: n0[m])
        for j, m in enumerate(methods):
            ax = axes[i][j]
            for k, model in enumerate(models):
                sub = df[(df["model"] == model) & (df["method"] == m)]
                for s, (rate, by_seed) in enumerate(sub.groupby("rate")):
                    for r, (_, curve) in enumerate(by_seed.groupby("seed")):  # repeats faint, unlabelled
                        curve = curve.sort_values("tokens")
                        ax.plot(
                            curve["tokens"].clip(lower=1),
                            curve[loss_col],
                            color=f"C{k}",
                            ls=LINE_STYLES[s % 3],
                            alpha=1 if r == 0 else 0.4,
                            label=f"{model} ρ={rate:.2f}" if r == 0 else None,
                        )
                c = control[(control["model"] == model) & (control["seed"] == control["seed"].min())]
                c = c.sort_values("tokens")
                if len(c):
                    ax.plot(
                        c["tokens"].clip(lower=1),
                        c[loss_col],
                        color=f"C{k}",
                        lw=0.8,
                        alpha=0.6,
                        marker=".",
                        label=f"{model} ρ=0",
                    )
            ax.set_xscale("log")
            ax.set_xlabel("post-training tokens D")
            ax.set_ylabel(f"{loss_col.replace('_', ' ')} (nats)")
            ax.set_title(f"{fam}, {m}", fontsize=9)
            if ax.lines:
                ax.legend(fontsize=5.5)
    return fig


def power_law_in_rate(last: pd.DataFrame, gamma_table: pd.DataFrame):
    """Trend 2: the normalised loss increase at a curve's end (column ``dL_norm``) against ρ, per family and
    method (points), with the fitted power law of ``gamma_table`` (lines), on log–log axes."""
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
    return fig


# --- fitting the law: tables beside the paper's -------------------------------------------------------------

PAPER_STYLE = {"background-color": "#eeeeee", "font-style": "italic"}


def paper_beside(ours: pd.DataFrame, theirs: pd.DataFrame, keys, fitters, metrics=("r2", "huber", "asd")):
    """Our scores (one row per ``keys`` and fitter) beside the paper's: columns (metric, source), the paper's
    first. A metric the paper does not print (our bootstrap interval) has our columns only."""
    wide = ours.pivot_table(index=keys, columns="fitter", values=list(metrics), dropna=False)
    wide.columns = pd.MultiIndex.from_tuples([(m, f"ours ({f})") for m, f in wide.columns])
    printed = theirs.set_index(keys)[[m for m in metrics if m in theirs.columns]]
    printed.columns = pd.MultiIndex.from_tuples([(m, "paper") for m in printed.columns])
    both = printed.join(wide, how="outer")
    order = [(m, s) for m in metrics for s in ["paper"] + [f"ours ({f})" for f in fitters] if (m, s) in both.columns]
    return both[order]


def r2_text(value) -> str:
    """An R² for a table: a refit that extrapolates wildly gives R² like −1e18; past −100 the digits say
    nothing more."""
    return "–" if pd.isna(value) else ("< −100" if value < -100 else f"{value:.4g}")


def style_paper_beside(table: pd.DataFrame, caption: str, clip_r2: bool = False):
    """A ``paper_beside`` table with the paper's columns grey and italic; ``clip_r2`` writes R² below −100
    (in any column whose metric starts with "r2") as "< −100"."""
    styler = table.style.format("{:.4g}", na_rep="–")
    if clip_r2:
        styler = styler.format(r2_text, subset=[c for c in table.columns if c[0].startswith("r2")])
    paper_cols = [c for c in table.columns if c[1] == "paper"]
    return styler.set_properties(subset=paper_cols, **PAPER_STYLE).set_caption(caption)


def style_constants(table: pd.DataFrame, flagged: set, caption: str):
    """Table 5's constants indexed by (family, form, method, source): the paper's rows grey and italic, our
    rows whose (family, form, method) is in ``flagged`` (constants not identified) yellow."""
    paper_row = "; ".join(f"{k}: {v}" for k, v in PAPER_STYLE.items())

    def shade(row):
        colour = (
            paper_row if row.name[3] == "paper" else ("background-color: #fff3cd" if row.name[:3] in flagged else "")
        )
        return [colour] * len(row)

    return table.style.format("{:.3g}", na_rep="–").apply(shade, axis=1).set_caption(caption)


def fit_curves(panels: dict, families: list[str], methods: list[str]):
    """Measured losses (points) and a fitted law's predictions (lines, same colour) against compute 6ND, one
    panel per family (rows) and method (columns). ``panels`` maps (family, method) to (the fit's rows, the
    fit or None)."""
    nrows, ncols = max(len(families), 1), max(len(methods), 1)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3.2 * nrows), squeeze=False)
    for i, fam in enumerate(families):
        for j, m in enumerate(methods):
            ax = axes[i][j]
            rows, res = panels.get((fam, m), (pd.DataFrame(columns=["run_id"]), None))
            for k, (_, curve) in enumerate(rows.groupby("run_id")):
                curve = curve.sort_values("tokens")
                c = 6 * curve["n"] * curve["tokens"]
                label = f"{curve['model'].iloc[0]} ρ={curve['rate'].iloc[0]:.2f}"
                ax.plot(c, curve["eval_loss"], "o", ms=2.5, color=f"C{k}", label=label)
                if res is not None:
                    ax.plot(c, res.predict(curve), "-", color=f"C{k}")
            ax.set_xscale("log")
            ax.set_xlabel("compute C = 6 N D (FLOPs)")
            ax.set_ylabel("eval loss (nats)")
            ax.set_title(f"{fam}, {m}" + ("" if res is not None else " (no fit)"), fontsize=9)
            if ax.lines:
                ax.legend(fontsize=5.5)
    return fig


# --- generalization -----------------------------------------------------------------------------------------


def _split_title(protocol: str) -> str:
    return protocol.replace("_", " ")


def held_out_scatter(held_fits: dict, fitter: str, splits):
    """Predicted against actual loss on the held-out rows, one panel per split, one colour per (family,
    method). ``held_fits`` maps (family, method, split, fitter) to (fit, fitting rows, held-out rows)."""
    fig, axes = _panels(len(splits), 4, 3.2)
    for ax, protocol in zip(axes[0], splits):
        cells = [key for key in held_fits if key[3] == fitter and key[2] == protocol]
        for k, key in enumerate(cells):
            res, _, test = held_fits[key]
            ax.scatter(test["eval_loss"], res.predict(test), s=8, color=f"C{k}", label=f"{key[0]} {key[1]}")
        lims = ax.get_xlim() if ax.collections else (0, 1)
        ax.plot(lims, lims, "k--", lw=0.8)
        ax.set_xlabel("actual held-out loss (nats)")
        ax.set_ylabel("predicted loss (nats)")
        ax.set_title(_split_title(protocol), fontsize=9)
        if ax.collections:
            ax.legend(fontsize=6)
    return fig


def held_out_curves(held_fits: dict, cell, fitter: str, splits, n_grid: int = 60):
    """The paper's Figs. 7–9 for one (family, method) ``cell``: per split, the law fitted without the held-out
    checkpoints (lines) over the whole token range, the held-out checkpoints (open circles), the fitted
    checkpoints of the same curves (faint dots) and the curves used only for fitting (grey)."""
    n = max(len(splits), 1)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), squeeze=False, sharey=True)
    for ax, protocol in zip(axes[0], splits):
        key = (*cell, protocol, fitter) if cell else None
        if key not in held_fits:
            ax.set_title(f"{_split_title(protocol)}: no split", fontsize=9)
            continue
        res, train, test = held_fits[key]
        held_runs = list(dict.fromkeys(test["run_id"]))
        for run in dict.fromkeys(train["run_id"]):
            if run not in held_runs:
                g = train[train["run_id"] == run]
                ax.plot(g["tokens"], g["eval_loss"], color="0.8", lw=0.8)
        for k, run in enumerate(held_runs):
            seen, unseen = train[train["run_id"] == run], test[test["run_id"] == run]
            both = pd.concat([seen, unseen])
            grid = both.iloc[[0] * n_grid].assign(
                tokens=np.geomspace(both["tokens"].min(), both["tokens"].max(), n_grid)
            )
            ax.plot(grid["tokens"], res.predict(grid), color=f"C{k}", lw=1.2)
            ax.plot(seen["tokens"], seen["eval_loss"], "o", ms=2.5, color=f"C{k}", alpha=0.35)
            label = f"{unseen['model'].iloc[0]} ρ={unseen['rate'].iloc[0]:.2f}"
            ax.plot(unseen["tokens"], unseen["eval_loss"], "o", ms=3.5, color=f"C{k}", mfc="none", label=label)
        ax.set_xscale("log")
        ax.set_xlabel("post-training tokens D")
        ax.set_title(f"{_split_title(protocol)}: {cell[0]} {cell[1]}", fontsize=9)
        ax.legend(fontsize=5, ncol=1)
    axes[0][0].set_ylabel("evaluation loss (nats)")
    return fig


# --- planning -----------------------------------------------------------------------------------------------


def budget_slopes(slopes: pd.DataFrame, threshold: float, per: str):
    """The size of predicted slopes against tokens (columns ``label``, ``source``, ``tokens``, ``slope``): our
    laws solid, one colour each; the paper's dashed grey, thicker for each further one; the threshold dotted."""
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ours = [g for _, g in slopes[slopes["source"] == "ours"].groupby("label", sort=False)]
    theirs = [g for _, g in slopes[slopes["source"] == "paper"].groupby("label", sort=False)]
    for k, g in enumerate(ours):
        ax.plot(g["tokens"], g["slope"], color=f"C{k}", label=g["label"].iloc[0])
    for k, g in enumerate(theirs):
        ax.plot(g["tokens"], g["slope"], "--", color="gray", lw=1 + k, label=g["label"].iloc[0])
    ax.axhline(threshold, color="k", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("post-training tokens D (paper curves: D / 1000)")
    ax.set_ylabel(f"|dL/dlog10 D| (nats per {per})")
    if ax.lines:
        ax.legend(fontsize=6)
    return fig


# --- verdict ------------------------------------------------------------------------------------------------


def style_verdicts(lead: pd.DataFrame, colours: dict[str, str], caption: str):
    """The verdict table without its row numbers, each verdict cell on the background ``colours`` gives it."""
    return (
        lead.style.hide(axis="index")
        .map(lambda x: f"background-color: {colours[x]}" if x in colours else "", subset=["verdict"])
        .set_caption(caption)
    )


def trend2_collapse(collapsed: pd.DataFrame, panels: list[tuple[str, str]]):
    """Trend 2 as the paper's Fig. 4 draws it: per (family, method) panel, each rate's loss over the control
    divided by ρ to the fitted exponent (columns family, method, model, rate, slope, tokens, value). A panel
    without rows says it has no fitted slope."""
    fig, axes = plt.subplots(
        1, max(len(panels), 1), figsize=(3.8 * max(len(panels), 1), 3.2), squeeze=False, constrained_layout=True
    )
    for ax, (fam, m) in zip(axes[0], panels):
        sub = collapsed[(collapsed["family"] == fam) & (collapsed["method"] == m)]
        if sub.empty:
            ax.set_title(f"{fam} {m}: no fitted slope", fontsize=8)
            continue
        for k, (rate, curve) in enumerate(sub.groupby("rate")):
            ax.plot(curve["tokens"], curve["value"], color=f"C{k}", label=f"ρ={rate:.2f}")
        ax.set_xscale("log")
        ax.set_xlabel("post-training tokens D")
        ax.set_ylabel("(L − L_control) / ρ^slope")
        ax.set_title(f"{fam} {m}, {sub['model'].iloc[0]}, slope {sub['slope'].iloc[0]:.2f}", fontsize=8)
        ax.legend(fontsize=6)
    return fig


def ours_vs_paper_law(measured: pd.DataFrame, predicted: pd.DataFrame, panels: list[tuple[str, str]]):
    """Per (family, method) panel: our measured ΔL (solid) and the paper's law for the model each stands in for
    (dashed, same colour) against tokens per parameter. Both tables have family, method, k (the colour),
    label, tpp and dL."""
    fig, axes = plt.subplots(
        1, max(len(panels), 1), figsize=(3.8 * max(len(panels), 1), 3.2), squeeze=False, constrained_layout=True
    )
    for ax, (fam, m) in zip(axes[0], panels):
        for frame, style in ((measured, "-"), (predicted, "--")):
            sub = frame[(frame["family"] == fam) & (frame["method"] == m)]
            for (k, label), g in sub.groupby(["k", "label"], sort=True):
                ax.plot(g["tpp"], g["dL"], style, color=f"C{k}", label=label)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(plt.NullFormatter())  # crowded minor labels on a short log axis
        ax.set_xlabel("post-training tokens per parameter D/N0")
        ax.set_ylabel("ΔL = L − L0 (nats)")
        ax.set_title(f"{fam}, {m}", fontsize=9)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=5.5)
    return fig


# --- fitting method (synthetic lessons) ---------------------------------------------------------------------


def two_candidates(d, y, cand_a, cand_b, scores: pd.DataFrame):
    """Lesson 1: noisy data and two candidate curves, each labelled with its R² and ASD (rows of ``scores``)."""
    fig, ax = plt.subplots(figsize=(5, 3.3))
    ax.plot(d, y, "ko", ms=3, label="data (true curve + noise)")
    ax.plot(d, cand_a, "C3-", label=f"A: R²={scores['R²'].iloc[0]:.3f}, ASD={scores['ASD'].iloc[0]:.3g}")
    ax.plot(d, cand_b, "C0--", label=f"B: R²={scores['R²'].iloc[1]:.3f}, ASD={scores['ASD'].iloc[1]:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("post-training tokens D (millions)")
    ax.set_ylabel("loss (nats)")
    ax.legend(fontsize=7)
    return fig


def alpha_profile(profile: pd.DataFrame, true_alpha: float):
    """Lesson 3: the refitted sum of squared errors for each fixed α, and the true α (dotted)."""
    fig, ax = plt.subplots(figsize=(5, 3.3))
    ax.plot(profile["alpha (fixed)"], profile["SSE"], "o-")
    ax.axvline(true_alpha, color="k", ls=":", label="true α")
    ax.set_yscale("log")
    ax.set_xlabel("α held fixed")
    ax.set_ylabel("sum of squared errors after refitting the rest")
    ax.legend(fontsize=7)
    return fig


# --- the paper's numbers ------------------------------------------------------------------------------------


def paper_predictions(pred: pd.DataFrame, title: str):
    """Predicted curves for the paper's six models: rows are families, columns methods; colour is the model,
    line style its Table 1 rate (lowest solid). ΔL for depth and width, L itself for 2:4."""
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5), constrained_layout=True)
    for i, family in enumerate(paper.FAMILIES):
        names = list(paper.MODELS.loc[paper.MODELS["family"] == family, "model"])
        for j, method in enumerate(paper.METHODS):
            ax = axes[i, j]
            part = pred[(pred["family"] == family) & (pred["method"] == method)]
            for colour, name in zip(["C0", "C1", "C2"], names):
                one = part[part["model"] == name]
                for style, (rate, curve) in zip(LINE_STYLES, one.groupby("rate", dropna=False, sort=True)):
                    label = name if np.isnan(rate) else f"{name}, ρ={rate:.0%}"
                    ax.plot(curve["tokens"], curve["value"], style, color=colour, label=label)
            ax.set_xscale("log")
            ax.set_xlabel("post-training tokens D")
            ax.set_ylabel("predicted L (nats)" if method == "2:4" else "predicted ΔL = L − L0 (nats)")
            ax.set_title(f"{paper.FAMILY_LABELS[family]}, {paper.METHOD_LABELS[method].lower()}", fontsize=10)
            ax.legend(fontsize=6.5, ncol=1 if method == "2:4" else 2)
    fig.suptitle(title, fontsize=11)
    return fig


def llama_depth_side_by_side(panels: list[tuple[str, pd.DataFrame]]):
    """The Llama-3 depth-pruning predictions of several laws side by side: (panel label, predicted curves)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), constrained_layout=True)
    for ax, (label, frame) in zip(np.atleast_1d(axes), panels):
        part = frame[(frame["family"] == "llama") & (frame["method"] == "depth")]
        for colour, (name, one) in zip(["C0", "C1", "C2"], part.groupby("model", sort=False)):
            for style, (rate, curve) in zip(LINE_STYLES, one.groupby("rate")):
                ax.plot(curve["tokens"], curve["value"], style, color=colour, label=f"{name}, ρ={rate:.0%}")
        ax.set_xscale("log")
        ax.set_xlabel("post-training tokens D")
        ax.set_ylabel("predicted ΔL = L − L0 (nats)")
        ax.set_title(f"Llama-3 depth pruning, L1 {label}", fontsize=10)
        ax.legend(fontsize=6.5, ncol=2)
    return fig


# --- the reproduction's setting -----------------------------------------------------------------------------


def pretraining_curves(curves: pd.DataFrame):
    """Each base's evaluation loss against pretraining tokens per parameter."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k, (model, c) in enumerate(curves.groupby("model", sort=False)):
        ax.plot(c["tokens per parameter"], c["eval_loss"], marker=".", color=f"C{k}", label=model)
    ax.set_xlabel("pretraining tokens per parameter")
    ax.set_ylabel("eval loss (nats)")
    if ax.lines:
        ax.legend(fontsize=7)
    return fig


def control_drift(controls: pd.DataFrame, tolerance: float = 0.01):
    """The ρ = 0 controls' eval loss minus L0 against post-training tokens per parameter (faint: the second
    data-order seed; grey band: ± tolerance)."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for k, (model, c) in enumerate(controls.groupby("model", sort=False)):
        for i, (_, cs) in enumerate(c.groupby("seed")):
            cs = cs.sort_values("tokens")
            ax.plot(
                cs["tokens"] / cs["n0"],
                cs["eval_loss"] - cs["l0"],
                color=f"C{k}",
                alpha=1 if i == 0 else 0.4,
                label=model if i == 0 else None,
            )
    ax.axhspan(-tolerance, tolerance, color="0.9", zorder=0)
    ax.set_xlabel("post-training tokens per parameter")
    ax.set_ylabel("control loss − L0 (nats)")
    if ax.lines:
        ax.legend(fontsize=6.5, ncol=2)
    return fig


# --- one real checkpoint ------------------------------------------------------------------------------------


def layer_similarity(sim, depth_rows: pd.DataFrame):
    """Each layer's cosine similarity of input and output (bars), coloured by the lowest depth rate that removes
    it (grey: kept at every rate). ``depth_rows`` has ``rate`` and ``layers_removed``, sorted by rate."""
    fig, ax = plt.subplots(figsize=(7, 2.6), constrained_layout=True)
    colour = ["0.75"] * len(sim)
    for k, r in reversed(list(enumerate(depth_rows.itertuples()))):
        for layer in r.layers_removed:
            colour[layer] = f"C{k}"
    ax.bar(range(len(sim)), sim, color=colour)
    for k, r in enumerate(depth_rows.itertuples()):
        ax.bar([0], [0], color=f"C{k}", label=f"removed from ρ={r.rate:.3f} on")
    ax.legend(fontsize=7, loc="lower center")
    ax.set_xlabel("layer")
    ax.set_ylabel("cos(input, output)")
    return fig


def channel_importance(importance: dict):
    """The histogram of channel importance a width prune report records, on linear and on log bins."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.6), constrained_layout=True)
    for ax, key, title in ((axes[0], "histogram", "linear bins"), (axes[1], "histogram_log", "log bins")):
        h = importance.get(key)
        if h:
            ax.stairs(h["counts"], np.asarray(h["edges"]), fill=True, color="C0")
            ax.set_xscale("log" if h["log_scale"] else "linear")
            ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("channel importance")
    axes[0].set_ylabel("channels")
    return fig


def curves_with_control(df: pd.DataFrame, loss_col: str, methods: list[str]):
    """One panel per method: each rate's curve (faint: another seed) and the ρ = 0 control in black; D = 0 is
    drawn at D = 100 on the log axis."""
    ctrl = df[df["method"] == "none"]
    fig, axes = plt.subplots(1, len(methods), figsize=(3.6 * len(methods), 3), squeeze=False, constrained_layout=True)
    for ax, m in zip(axes[0], methods):
        for k, (rate, g) in enumerate(df[df["method"] == m].groupby("rate")):
            for i, (_, c) in enumerate(g.groupby("seed")):
                ax.plot(
                    c["tokens"].clip(lower=100),
                    c[loss_col],
                    color=f"C{k}",
                    alpha=1 if i == 0 else 0.45,
                    label=f"ρ={rate:.3f}" if i == 0 else None,
                )
        for i, (_, c) in enumerate(ctrl.groupby("seed")):
            ax.plot(
                c["tokens"].clip(lower=100),
                c[loss_col],
                color="k",
                lw=0.9,
                alpha=1 if i == 0 else 0.45,
                label="control ρ=0" if i == 0 else None,
            )
        ax.set_xscale("log")
        ax.set_title(m, fontsize=9)
        ax.set_xlabel("post-training tokens D (D=0 drawn at 100)")
        ax.legend(fontsize=6)
    axes[0][0].set_ylabel("held-out loss")
    return fig
