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

# %% tags=["parameters"]
profile = "toy"
results_dir = "results/toy"
seed = 0
n_unit = 1e6  # parameters per unit of N0 in our fits (toy models: 0.05M–1.7M parameters)
d_unit = 1e6  # tokens per unit of D
fitters = ["lm", "huber-log"]
huber_start = "grid"  # "grid": huber-log searches the full starting grid; "lm": it starts from the LM optimum (fast)
# None: every fit optimises the whole starting grid. k: only the k starts with the lowest initial error
# (about 36/k times faster). Not the default: on the committed toy sweep 8 screened starts lost up to
# 0.009 of in-sample R² on Table 2, 0.42 on Table 4's L5, and moved held-out R² (measured 2026-12-02).
max_starts = None
curve_form = "L1"  # the form drawn in the predicted-vs-actual figure
curve_fitter = "lm"

# %%
import matplotlib.pyplot as plt
import pandas as pd
from myst_nb import glue

from p2law import book as bs
from p2law import paper, table
from p2law.analysis import grids, results
from p2law.analysis.fit import identifiability
from p2law.table import fit_rows

PAGE = "fitting"
out = bs.ensure_results(profile, results_dir)
checkpoints = bs.load_checkpoints(out)
# Laws are fitted to one data-order seed per run (the repeats measure the noise floor, on the verdict page).
df = table.first_seed(checkpoints)
# The fits behind Tables 2, 4 and 6 (p2law.analysis.results), cached under results_dir/cache by the table's
# fingerprint: the verdict page asks for the same ones and reads them from there.
grid = dict(fitters=fitters, n_unit=n_unit, d_unit=d_unit, huber_start=huber_start, max_starts=max_starts,
            cache_dir=out / "cache")
cov = grids.coverage(df)
glue("fitting_starts", "every start" if max_starts is None else f"the {max_starts} best starts", display=False)
glue("fitting_missing", ", ".join(f"{r.family} {r.method}" for r in cov.itertuples() if r.curves == 0) or "none",
     display=False)
cov

# %% [markdown]
# Family × method combinations without curves (above): {glue:text}`fitting_missing`. Their rows in the
# tables below hold only the paper's numbers. Each fit starts from a grid over the exponents; of it we
# optimise {glue:text}`fitting_starts` (the `max_starts` parameter screens the grid by the error before
# any step: faster, but on this sweep it missed the best optimum of several cells, so it is off here).


# %%
def beside(ours: pd.DataFrame, theirs: pd.DataFrame, keys, metrics=("r2", "huber", "asd")) -> pd.DataFrame:
    """Paper and ours side by side: columns (metric, source)."""
    wide = ours.pivot_table(index=keys, columns="fitter", values=list(metrics), dropna=False)
    wide.columns = pd.MultiIndex.from_tuples([(m, f"ours ({f})") for m, f in wide.columns])
    p = theirs.set_index(keys)[list(metrics)]
    p.columns = pd.MultiIndex.from_tuples([(m, "paper") for m in p.columns])
    both = p.join(wide, how="outer")
    order = [(m, s) for m in metrics for s in ["paper"] + [f"ours ({f})" for f in fitters] if (m, s) in both.columns]
    return both[order]


def styled(table: pd.DataFrame, caption: str):
    paper_cols = [c for c in table.columns if c[1] == "paper"]
    return (table.style.format("{:.4g}", na_rep="–")
            .set_properties(subset=paper_cols, **{"background-color": "#eeeeee", "font-style": "italic"})
            .set_caption(caption))


scores, fits = results.table2(checkpoints, **grid)
bs.save_table(scores, out, PAGE, "table2_ours")
table2 = beside(scores, paper.TABLE2, ["family", "form", "method"])
glue("n_fits_t2", int(scores["r2"].notna().sum()), display=False)
glue("n_failed_t2", int(scores["r2"].isna().sum()), display=False)
styled(table2, "Table 2, paper (grey, italic) beside ours: L1–L3 fitted on all checkpoints. – = no fit.")

# %% [markdown]
# {glue:text}`n_fits_t2:d` of our fits succeeded and {glue:text}`n_failed_t2:d` failed or had no data
# (shown as – above); the reasons, and fits that did not converge, are listed here rather than hidden:

# %%
scores.loc[scores["note"] != "", ["family", "method", "form", "fitter", "n_points", "note"]]

# %% [markdown]
# ## Table 4: the OpenAI-style forms

# %%
scores4, fits4 = results.table4(checkpoints, **grid)
bs.save_table(scores4, out, PAGE, "table4_ours")
table4 = beside(scores4, paper.TABLE4, ["family", "form", "method"])
styled(table4, "Table 4, paper (grey, italic) beside ours: L1 against L4 and L5.")

# %% [markdown]
# ## Table 5: the fitted constants
#
# Our constants are in our units ($N_0$ in millions of parameters, $D$ in millions of tokens), the paper's
# in billions of parameters and millions of tokens, so $N_C$ and $D_C$ are not comparable in value; the
# exponents are.

# %%
const_rows = []
for (fam, m, form, fitter), res in fits.items():
    if res is not None and fitter == curve_fitter:
        ident = identifiability(res, fit_rows(df, method=m, family=fam))
        const_rows.append({"family": fam, "form": form, "method": m, "source": f"ours ({fitter})", **res.params,
                           "identified": ident.identified, "why not": "" if ident.identified else ident.reason})
ours5 = pd.DataFrame(const_rows)
paper5 = paper.TABLE5.assign(source="paper")
table5 = pd.concat([paper5, ours5], ignore_index=True).set_index(["family", "form", "method", "source"]).sort_index()
table5 = table5[[c for c in paper.CONSTANTS if c in table5.columns]]
bs.save_table(ours5, out, PAGE, "table5_ours")
unidentified = ours5.loc[~ours5["identified"].astype(bool)] if len(ours5) else ours5
glue("n_t5_unidentified", int(len(unidentified)), display=False)
glue("n_t5_ours", int(len(ours5)), display=False)
flagged = set(map(tuple, unidentified[["family", "form", "method"]].to_numpy())) if len(ours5) else set()
table5.style.format("{:.3g}", na_rep="–").apply(
    lambda row: ["background-color: #eeeeee; font-style: italic" if row.name[3] == "paper"
                 else ("background-color: #fff3cd" if row.name[:3] in flagged else "") for _ in row],
    axis=1).set_caption("Table 5: fitted constants, paper (grey, italic) and ours; our fits whose constants the "
                        "rows do not identify are shaded yellow.")

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
# ## Predicted against actual, over compute $C = 6ND$

# %%
families = sorted(df["family"].unique())
methods = [m for m in grids.METHODS if m in set(df["method"])]
fig, axes = plt.subplots(max(len(families), 1), max(len(methods), 1),
                         figsize=(4 * max(len(methods), 1), 3.2 * max(len(families), 1)), squeeze=False)
for i, fam in enumerate(families):
    for j, m in enumerate(methods):
        ax = axes[i][j]
        rows = fit_rows(df, method=m, family=fam)
        res = fits.get((fam, m, curve_form, curve_fitter))
        for k, (run_id, curve) in enumerate(rows.groupby("run_id")):
            curve = curve.sort_values("tokens")
            c = 6 * curve["n"] * curve["tokens"]
            ax.plot(c, curve["eval_loss"], "o", ms=2.5, color=f"C{k}", label=f"{curve['model'].iloc[0]} ρ={curve['rate'].iloc[0]:.2f}")
            if res is not None:
                ax.plot(c, res.predict(curve), "-", color=f"C{k}")
        ax.set_xscale("log")
        ax.set_xlabel("compute C = 6 N D (FLOPs)")
        ax.set_ylabel("eval loss (nats)")
        ax.set_title(f"{fam}, {m}" + ("" if res is not None else " (no fit)"), fontsize=9)
        if ax.lines:
            ax.legend(fontsize=5.5)
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
