"""p2law.figures: the book's plotting, torch-free, each function a Figure from the tables a page computed."""

from __future__ import annotations

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from p2law import figures  # noqa: E402


def test_figures_never_import_torch():
    code = "import sys, p2law.figures\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _curves() -> pd.DataFrame:
    """Two models of one family, a depth curve at two rates and a control each, two seeds for the small one."""
    rows = []
    for model, n0, l0 in (("m-s", 100, 4.0), ("m-l", 400, 3.0)):
        for method, rate in (("depth", 0.1), ("depth", 0.3), ("none", 0.0)):
            for seed in (0, 1) if model == "m-s" else (0,):
                for tokens in (0, 10, 100, 1000):
                    loss = l0 + rate * (2 - np.log10(tokens + 1) / 3) + 0.001 * seed
                    rows.append(
                        {"family": "f", "model": model, "n0": n0, "l0": l0, "method": method, "rate": rate,
                         "seed": seed, "tokens": tokens, "eval_loss": loss,
                         "run_id": f"{model}-{method}-{rate}-seed{seed}"}
                    )  # fmt: skip
    return pd.DataFrame(rows)


def test_loss_curves_draw_each_family_in_its_own_row():
    df = pd.concat([_curves(), _curves().assign(family="g", model=lambda d: "g" + d["model"])])
    fig = figures.loss_curves(df, "eval_loss", ["depth", "none"])  # two columns: a row index reused inside
    axes = fig.axes  # the loop once drew the second family's later columns into the first family's row
    assert [ax.get_title() for ax in axes] == ["f, depth", "f, none", "g, depth", "g, none"]
    # each panel holds its own family's curves only: 2 rates × 3 curves (two seeds of m-s) + 2 controls
    for ax, fam in zip((axes[0], axes[2]), ("f", "g")):
        assert len(ax.lines) == 8
        assert all(not line.get_label().startswith("g" if fam == "f" else "m") for line in ax.lines)
    plt.close(fig)


@pytest.mark.parametrize("maker", ["depth", "width"])
def test_prune_figures_draw_reports_and_say_when_there_are_none(maker):
    if maker == "depth":
        report = {"rate": 0.2, "scores": [0.5, 0.9, 0.95, 0.8], "removed": [2]}
        fig = figures.depth_scores({"m": [report]}, max_models=6)
        empty = figures.depth_scores({}, max_models=6)
    else:
        scores = np.array([1.0, 0.2, 0.5, 0.7])
        fig = figures.width_histogram({"m": (scores, [(0.25, np.array([1]))])}, n_bins=4, max_models=6)
        empty = figures.width_histogram({}, n_bins=4, max_models=6)
    assert fig.axes[0].get_title() == "m"
    assert "no" in empty.axes[0].texts[0].get_text()
    plt.close("all")


def test_curves_with_control_and_control_drift():
    one_model = _curves().query("model == 'm-s'")
    fig = figures.curves_with_control(one_model, "eval_loss", ["depth"])
    assert len(fig.axes[0].lines) == 2 * 2 + 2  # two rates × two seeds, and the control's two seeds
    drift = figures.control_drift(_curves().query("method == 'none'"))
    assert len(drift.axes[0].lines) == 3  # m-s's two seeds and m-l's one
    plt.close("all")


class _Law:
    """A stand-in for a fitted law: a loss that falls with log tokens."""

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        return 3.0 + 1.0 / np.log10(table["tokens"].to_numpy(float) + 10)


def _styles(styler) -> dict:
    """{(row, column): 'prop: value; ...'} of a Styler's computed cell styles."""
    styler._compute()
    return {cell: "; ".join(f"{k}: {v}" for k, v in props) for cell, props in styler.ctx.items()}


def test_paper_beside_orders_paper_first_and_styles_its_columns():
    keys = ["family", "form", "method"]
    ours = pd.DataFrame(
        [{"family": "f", "form": "L1", "method": "depth", "fitter": fit, "r2": r2, "r2 low": -1e18, "asd": 0.01}
         for fit, r2 in (("lm", 0.9), ("huber-log", 0.8))]
    )  # fmt: skip
    theirs = pd.DataFrame([{"family": "f", "form": "L1", "method": "depth", "r2": 0.97, "asd": 0.001}])
    table = figures.paper_beside(ours, theirs, keys, ["lm", "huber-log"], metrics=["r2", "r2 low", "asd"])
    assert list(table.columns) == [
        ("r2", "paper"), ("r2", "ours (lm)"), ("r2", "ours (huber-log)"), ("r2 low", "ours (lm)"),
        ("r2 low", "ours (huber-log)"), ("asd", "paper"), ("asd", "ours (lm)"), ("asd", "ours (huber-log)"),
    ]  # fmt: skip
    assert table[("r2", "paper")].iloc[0] == 0.97 and table[("r2", "ours (huber-log)")].iloc[0] == 0.8
    styler = figures.style_paper_beside(table, "caption", clip_r2=True)
    styles = _styles(styler)
    italic = {col for (_, col), css in styles.items() if "italic" in css}
    assert italic == {0, 5}  # the two paper columns
    assert "&lt; −100" in styler.to_html() or "< −100" in styler.to_html()
    assert figures.r2_text(-1e18) == "< −100" and figures.r2_text(np.nan) == "–" and figures.r2_text(0.5) == "0.5"


def test_style_constants_shades_paper_rows_grey_and_flagged_rows_yellow():
    index = pd.MultiIndex.from_tuples(
        [("f", "L1", "depth", "paper"), ("f", "L1", "depth", "ours (lm)"), ("f", "L2", "depth", "ours (lm)")],
        names=["family", "form", "method", "source"],
    )
    table = pd.DataFrame({"alpha": [0.1, 0.2, 0.3], "beta": [1.0, 2.0, 3.0]}, index=index)
    styles = _styles(figures.style_constants(table, {("f", "L2", "depth")}, "caption"))
    assert all("italic" in styles[(0, c)] for c in (0, 1))
    assert all("#fff3cd" in styles[(2, c)] for c in (0, 1))
    assert not any(styles.get((1, c), "").strip() for c in (0, 1))  # our identified fit: unshaded


def test_fit_curves_draws_points_and_lines_per_curve_and_says_when_there_is_no_fit():
    rows = _curves().query("method == 'depth'").assign(n=lambda d: d["n0"] * (1 - d["rate"])).query("tokens > 0")
    panels = {("f", "depth"): (rows, _Law()), ("f", "width"): (rows.iloc[:0], None)}
    fig = figures.fit_curves(panels, ["f"], ["depth", "width"])
    curves = rows["run_id"].nunique()
    assert len(fig.axes[0].lines) == 2 * curves  # points and the law's line for each curve
    assert fig.axes[1].get_title() == "f, width (no fit)" and not fig.axes[1].lines
    plt.close(fig)


def _held_fits():
    """One cell (f, depth) under two splits; the third split could not be formed."""
    rows = _curves().query("method == 'depth' and tokens > 0")
    by_tokens = (rows[rows["tokens"] < 1000], rows[rows["tokens"] == 1000])
    by_size = (rows[rows["model"] == "m-s"], rows[rows["model"] == "m-l"])
    return {("f", "depth", "dataset_size", "lm"): (_Law(), *by_tokens),
            ("f", "depth", "model_size", "lm"): (_Law(), *by_size)}  # fmt: skip


def test_held_out_figures_draw_each_split_and_name_a_missing_one():
    splits = ["dataset_size", "model_size", "pruning_rate"]
    scatter = figures.held_out_scatter(_held_fits(), "lm", splits)
    assert [ax.get_title() for ax in scatter.axes] == ["dataset size", "model size", "pruning rate"]
    assert len(scatter.axes[0].collections) == 1 and not scatter.axes[2].collections
    curves = figures.held_out_curves(_held_fits(), ("f", "depth"), "lm", splits)
    # model size: the two m-l curves held out (line, fitted dots, held-out circles each) and the four m-s
    # curves (two rates, two seeds) used only for fitting (grey)
    assert len(curves.axes[1].lines) == 4 + 2 * 3
    assert sum(line.get_color() == "0.8" for line in curves.axes[1].lines) == 4
    assert curves.axes[2].get_title() == "pruning rate: no split"
    plt.close("all")


def test_budget_slopes_draws_ours_solid_the_papers_dashed_and_the_threshold():
    tokens = np.logspace(3, 6, 5)
    slopes = pd.concat(
        [pd.DataFrame({"source": s, "label": label, "tokens": tokens, "slope": 0.1 / np.log10(tokens)})
         for s, label in (("ours", "a"), ("ours", "b"), ("paper", "p"))]
    )  # fmt: skip
    fig = figures.budget_slopes(slopes, 0.01, "decade")
    styles = [line.get_linestyle() for line in fig.axes[0].lines]
    assert styles.count("-") == 2 and styles.count("--") == 1 and styles.count(":") == 1
    assert [t.get_text() for t in fig.axes[0].get_legend().texts] == ["a", "b", "p"]
    plt.close(fig)


def test_style_verdicts_colours_the_verdict_column_only():
    lead = pd.DataFrame({"claim": ["a", "b"], "verdict": ["confirmed", "not confirmed"]})
    styles = _styles(figures.style_verdicts(lead, {"confirmed": "#d9f2d9", "not confirmed": "#f8d7d7"}, "c"))
    assert "#d9f2d9" in styles[(0, 1)] and "#f8d7d7" in styles[(1, 1)]
    assert not any(styles.get((r, 0), "").strip() for r in (0, 1))


def test_trend2_collapse_and_ours_vs_paper_law_draw_one_panel_per_cell():
    collapsed = pd.DataFrame(
        [{"family": "f", "method": "depth", "model": "m-l", "rate": r, "slope": 1.3, "tokens": t, "value": 0.1 * t}
         for r in (0.1, 0.2, 0.3) for t in (10, 100)]
    )  # fmt: skip
    panels = [("f", "depth"), ("f", "width")]
    fig = figures.trend2_collapse(collapsed, panels)
    assert len(fig.axes[0].lines) == 3 and "slope 1.30" in fig.axes[0].get_title()
    assert fig.axes[1].get_title() == "f width: no fitted slope"
    one = {"family": "f", "method": "depth", "tpp": [0.1, 1.0], "dL": [0.3, 0.2]}
    measured = pd.concat([pd.DataFrame({**one, "k": k, "label": f"m{k}"}) for k in (0, 1)])
    predicted = pd.DataFrame({**one, "k": 0, "label": "paper law"})
    fig = figures.ours_vs_paper_law(measured, predicted, panels)
    styles = [line.get_linestyle() for line in fig.axes[0].lines]
    assert styles.count("-") == 2 + 1 and styles.count("--") == 1  # two measured, the zero line; one paper law
    assert len(fig.axes[1].lines) == 1 and fig.axes[1].get_legend() is None  # the zero line alone, no legend
    plt.close("all")
