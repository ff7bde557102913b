"""The verdict functions on tables whose answer is known by construction."""

import numpy as np
import pandas as pd
import pytest

from p2law import paper
from p2law import verdict as v

TOKENS = np.array([0, 1e3, 2e3, 4e3, 8e3, 16e3, 32e3, 64e3])
MODELS = {"s": 1e5, "m": 3e5, "l": 1e6}


def curves(drop_of, end_of, methods=("depth",), rates=(0.15, 0.25, 0.35), control_end=None):
    """A checkpoint table: each curve starts at 3.0 + end and falls to ``end_of(model, rate)`` by
    ``drop_of(model, rate)`` nats, spread evenly over log tokens; base loss l0 = 3.0."""
    rows = []
    for model, n0 in MODELS.items():
        runs = [(m, r) for m in methods for r in rates]
        if control_end is not None:
            runs.append(("none", 0.0))
        for method, rate in runs:
            end = control_end[model] if method == "none" else end_of(model, rate)
            drop = 0.2 if method == "none" else drop_of(model, rate)
            frac = np.r_[0, np.log(TOKENS[1:]) - np.log(TOKENS[1])] / (np.log(TOKENS[-1]) - np.log(TOKENS[1]))
            loss = end + drop * (1 - frac)
            for t, y in zip(TOKENS, loss):
                rows.append({"run_id": f"{model}-{method}-{rate}", "family": "llama", "model": model, "n0": n0,
                             "method": method, "rate": rate, "tokens": t, "eval_loss": y, "l0": 3.0})
    return pd.DataFrame(rows)


def test_trend1_confirmed_when_smaller_models_drop_more():
    df = curves(lambda m, r: {"s": 0.9, "m": 0.6, "l": 0.3}[m], lambda m, r: 3.2)
    verdict, pairs = v.trend1(df)
    assert len(pairs) == 9 and pairs["agrees"].all()  # 3 rate ranks x 3 model pairs
    assert verdict.verdict == v.CONFIRMED and verdict.ours.startswith("9 of 9")


def test_trend1_not_confirmed_when_larger_models_drop_more():
    df = curves(lambda m, r: {"s": 0.3, "m": 0.6, "l": 0.9}[m], lambda m, r: 3.2)
    verdict, pairs = v.trend1(df)
    assert not pairs["agrees"].any() and verdict.verdict == v.NOT_CONFIRMED


def test_trend1_not_testable_with_one_model():
    df = curves(lambda m, r: 0.5, lambda m, r: 3.2)
    verdict, pairs = v.trend1(df[df["model"] == "s"])
    assert pairs.empty and verdict.verdict == v.NOT_TESTABLE


def test_trend2_recovers_the_power_and_its_interval():
    # ΔL = c(model) * rho^1.5: the slope is 1.5 whatever the per-model level
    level = {"s": 0.4, "m": 0.2, "l": 0.1}
    df = curves(lambda m, r: 0.5, lambda m, r: 3.0 + level[m] * r ** 1.5)
    verdict, table = v.trend2(df, n_resamples=50)
    row = table.iloc[0]
    assert row["slope"] == pytest.approx(1.5, abs=1e-9) and row["log-log R²"] == pytest.approx(1.0)
    assert row["low"] <= 1.5 <= row["high"] and verdict.verdict == v.CONFIRMED
    n_neg = int((paper.TABLE5["gamma"] < 0).sum())
    assert f"in {n_neg} of {int(paper.TABLE5['gamma'].notna().sum())} laws" in verdict.paper


def test_trend2_interval_does_not_depend_on_the_order_of_the_rows():
    """A sweep run in parts appends its models in any order; the same curves must give the same interval."""
    noise = dict(zip([(m, r) for m in MODELS for r in (0.15, 0.25, 0.35)], np.random.default_rng(3).normal(0, .02, 9)))
    df = curves(lambda m, r: 0.5, lambda m, r: 3.0 + 0.3 * r ** 1.5 * np.exp(noise[(m, r)]))
    _, table = v.trend2(df, n_resamples=50)
    _, shuffled = v.trend2(df.sample(frac=1, random_state=1), n_resamples=50)
    assert table.iloc[0]["low"] < 1.5 < table.iloc[0]["high"] and table.iloc[0]["high"] - table.iloc[0]["low"] > 0.01
    pd.testing.assert_frame_equal(table, shuffled)


def test_trend2_not_testable_when_curves_end_below_the_baseline():
    df = curves(lambda m, r: 0.5, lambda m, r: 2.9)  # every pruned model ends below L0 = 3.0
    verdict, table = v.trend2(df)
    assert np.isnan(table["slope"]).all() and "below the baseline" in table["note"].iloc[0]
    assert verdict.verdict == v.NOT_TESTABLE


def test_trend2_against_the_control_and_not_confirmed_when_flat():
    control = {"s": 2.9, "m": 2.8, "l": 2.7}
    df = curves(lambda m, r: 0.5, lambda m, r: control[m] + 0.3 * r ** 2, control_end=control)
    verdict, table = v.trend2(df, baseline="control", n_resamples=20)
    assert table["slope"].iloc[0] == pytest.approx(2.0) and verdict.verdict == v.CONFIRMED
    flat = curves(lambda m, r: 0.5, lambda m, r: 3.1 + 0.001 * np.sin(100 * r))  # ΔL does not grow with ρ
    assert v.trend2(flat, n_resamples=20)[0].verdict == v.NOT_CONFIRMED
    with pytest.raises(ValueError, match="baseline"):
        v.trend2(df, baseline="median")


def test_best_form_counts_wins_per_metric():
    rows = []
    for method, r2 in [("depth", (0.9, 0.8, 0.7)), ("width", (0.5, 0.6, 0.4)), ("2:4", (0.95, 0.9, 0.2))]:
        for form, score in zip(["L1", "L2", "L3"], r2):
            rows.append({"family": "llama", "method": method, "form": form, "fitter": "lm", "r2": score,
                         "huber": 1 - score, "asd": 0.1})
            rows.append({"family": "llama", "method": method, "form": form, "fitter": "huber-log", "r2": 1 - score,
                         "huber": score, "asd": 0.1})
    ours = pd.DataFrame(rows)
    r2 = v.best_form(ours, paper.TABLE2, "r2")
    assert r2.verdict == v.CONFIRMED and r2.ours.startswith("best in 2 of 3") and "L2 1×" in r2.ours
    assert r2.paper == "best in 6 of 6 cells"  # Table 2: L1 has the top R² in every cell
    assert v.best_form(ours, paper.TABLE2, "huber").verdict == v.CONFIRMED
    assert v.best_form(ours, paper.TABLE2, "r2", fitter="huber-log").verdict == v.NOT_CONFIRMED
    assert v.best_form(ours[ours["form"] == "L1"], paper.TABLE2, "r2").verdict == v.NOT_TESTABLE
    with pytest.raises(ValueError, match="metric"):
        v.best_form(ours, paper.TABLE2, "mse")


def test_generalization_uses_the_median_of_one_protocol_and_fitter():
    ours = pd.DataFrame({"protocol": ["model_size"] * 3 + ["dataset_size"], "fitter": ["lm", "lm", "huber-log", "lm"],
                         "r2": [0.9, 0.85, -5.0, np.nan]})
    good = v.generalization(ours, paper.TABLE3, "model_size")
    assert good.verdict == v.CONFIRMED and "median R² 0.875 over 2 cells" in good.ours
    assert v.generalization(ours, paper.TABLE3, "model_size", fitter="huber-log").verdict == v.NOT_CONFIRMED
    assert v.generalization(ours, paper.TABLE3, "dataset_size").verdict == v.NOT_TESTABLE
    assert "median R² 0.975" in v.generalization(ours, paper.TABLE3, "dataset_size").paper


def test_condition2_and_agreement_with_table6():
    ours = paper.TABLE6.rename(columns={"condition2": "ours"}).copy()
    same = v.condition2(ours, paper.TABLE6)
    assert same.verdict == v.CONFIRMED and f"{len(ours)} of {len(ours)} verdicts agree" in same.ours
    ours.loc[(ours["form"] == "L1") & (ours["method"] == "width"), "ours"] = False
    worse = v.condition2(ours, paper.TABLE6)
    assert worse.verdict == v.NOT_CONFIRMED and "holds in 4 of 6 L1 cells" in worse.ours


def test_control_share_is_the_ratio_of_drops():
    control = {"s": 2.9, "m": 2.8, "l": 2.7}
    df = curves(lambda m, r: 0.8, lambda m, r: control[m] + 0.1, control_end=control)
    share = v.control_share(df)
    assert len(share) == 9 and share["control share"].to_numpy() == pytest.approx(0.2 / 0.8)
    assert share["loss above control at the end"].to_numpy() == pytest.approx(0.1)


def test_flattening_tokens_finds_the_knee():
    t = np.logspace(2, 6, 17)  # 4 decades, 4 checkpoints per decade
    loss = np.where(t < 1e4, 4.0 - 0.5 * np.log10(t), 4.0 - 0.5 * 4)  # falls 0.5 nats/decade, then flat
    assert v.flattening_tokens(t, loss, threshold=0.05) == pytest.approx(1e4)
    assert np.isnan(v.flattening_tokens(t, 4.0 - 0.5 * np.log10(t), threshold=0.05))  # never flattens
    assert v.flattening_tokens(np.r_[0, t], np.r_[9.0, loss], 0.05) == pytest.approx(1e4)  # D = 0 is skipped
    with pytest.raises(ValueError, match="NaN"):
        v.flattening_tokens(t, np.r_[loss[:-1], np.nan], 0.05)


def test_missing_column_is_named():
    with pytest.raises(ValueError, match="eval_loss"):
        v.trend1(pd.DataFrame({"run_id": [1], "family": ["llama"]}))


def test_relative_drops_compare_the_same_tokens_by_hand():
    df = curves(lambda m, r: {"s": 0.9, "m": 0.6, "l": 0.3}[m], lambda m, r: 3.2)
    drops = v.relative_drops(df, fraction=0.5)
    # D* = 0.5 x 64k = 32k tokens, where the helper's curve has fallen 5/6 of its drop (32 = 64^(5/6))
    assert (drops["tokens compared"] == 32e3).all()
    s = drops[drops["model"] == "s"].iloc[0]
    assert s["relative drop"] == pytest.approx(0.9 * 5 / 6 / (3.2 + 0.9))
    # a larger model with a longer budget is measured at the same D*, not at half of its own budget
    longer = df.copy()
    longer.loc[longer["model"] == "l", "tokens"] *= 2
    assert (v.relative_drops(longer)["tokens compared"] == 32e3).all()


def test_trend1_against_the_control_measures_the_repaired_share():
    control = {"s": 2.9, "m": 2.8, "l": 2.7}
    df = curves(lambda m, r: {"s": 0.9, "m": 0.6, "l": 0.3}[m], lambda m, r: control[m] + 0.1, control_end=control)
    verdict, pairs = v.trend1(df, baseline="control")
    assert verdict.verdict == v.CONFIRMED and "above the ρ = 0 control" in verdict.claim
    drops = v.relative_drops(df, baseline="control")
    s = drops[drops["model"] == "s"].iloc[0]
    # excess over control: 0.1 + (0.9 - 0.2)(1 - frac); at D* frac = 5/6
    assert s["relative drop"] == pytest.approx(0.7 * 5 / 6 / (0.1 + 0.7))
    with pytest.raises(ValueError, match="baseline"):
        v.relative_drops(df, baseline="l0")
