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
