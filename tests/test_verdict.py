"""The verdict functions on tables whose answer is known by construction."""

import numpy as np
import pandas as pd
import pytest

from p2law import paper
from p2law.analysis import verdict as v

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
                rows.append(
                    {
                        "run_id": f"{model}-{method}-{rate}",
                        "family": "llama",
                        "model": model,
                        "n0": n0,
                        "method": method,
                        "rate": rate,
                        "tokens": t,
                        "eval_loss": y,
                        "l0": 3.0,
                    }
                )
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


def test_a_repeated_seed_shares_its_rate_rank_so_pairs_compare_equal_rates():
    """The small and medium models have each rate twice (two seeds), the large once: every rate rank must
    still hold one rate per model, so pairs never compare a 0.15 curve with a 0.25 one."""
    df = curves(lambda m, r: {"s": 0.9, "m": 0.6, "l": 0.3}[m], lambda m, r: 3.2)
    repeat = df[df["model"] != "l"].assign(run_id=lambda d: d["run_id"] + "-seed1", seed=1)
    drops = v.relative_drops(pd.concat([df.assign(seed=0), repeat], ignore_index=True))
    assert (drops.groupby("rate rank")["rate"].nunique() == 1).all()
    assert sorted(drops["rate rank"].unique()) == [0, 1, 2]


def test_trend1_not_testable_with_one_model():
    df = curves(lambda m, r: 0.5, lambda m, r: 3.2)
    verdict, pairs = v.trend1(df[df["model"] == "s"])
    assert pairs.empty and verdict.verdict == v.NOT_TESTABLE


def test_trend2_recovers_the_power_and_its_interval():
    # ΔL = c(model) * rho^1.5: the slope is 1.5 whatever the per-model level
    level = {"s": 0.4, "m": 0.2, "l": 0.1}
    df = curves(lambda m, r: 0.5, lambda m, r: 3.0 + level[m] * r**1.5)
    verdict, table = v.trend2(df, n_resamples=50)
    row = table.iloc[0]
    assert row["slope"] == pytest.approx(1.5, abs=1e-9) and row["log-log R²"] == pytest.approx(1.0)
    assert row["low"] <= 1.5 <= row["high"] and verdict.verdict == v.CONFIRMED
    n_neg = int((paper.TABLE5["gamma"] < 0).sum())
    assert f"in {n_neg} of {int(paper.TABLE5['gamma'].notna().sum())} laws" in verdict.paper


def test_trend2_interval_does_not_depend_on_the_order_of_the_rows():
    """A sweep run in parts appends its models in any order; the same curves must give the same interval."""
    noise = dict(zip([(m, r) for m in MODELS for r in (0.15, 0.25, 0.35)], np.random.default_rng(3).normal(0, 0.02, 9)))
    df = curves(lambda m, r: 0.5, lambda m, r: 3.0 + 0.3 * r**1.5 * np.exp(noise[(m, r)]))
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
    df = curves(lambda m, r: 0.5, lambda m, r: control[m] + 0.3 * r**2, control_end=control)
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
            rows.append(
                {
                    "family": "llama",
                    "method": method,
                    "form": form,
                    "fitter": "lm",
                    "r2": score,
                    "huber": 1 - score,
                    "asd": 0.1,
                }
            )
            rows.append(
                {
                    "family": "llama",
                    "method": method,
                    "form": form,
                    "fitter": "huber-log",
                    "r2": 1 - score,
                    "huber": score,
                    "asd": 0.1,
                }
            )
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
    ours = pd.DataFrame(
        {
            "protocol": ["model_size"] * 3 + ["dataset_size"],
            "fitter": ["lm", "lm", "huber-log", "lm"],
            "r2": [0.9, 0.85, -5.0, np.nan],
        }
    )
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


# ======================================================================================================
# Rules that can fail: each gets data where its claim is false ("not confirmed"), true ("confirmed",
# two seeds), and true but under the seed-to-seed noise ("not distinguishable").
# ======================================================================================================

SIZES = {"s": 1e5, "m": 3e5, "l": 1e6}
GRID = np.r_[0, np.geomspace(1e3, 1e5, 13)]


def sweep(loss_of, sigma=0.001, seeds=None, rates=(0.1, 0.2, 0.3), methods=("depth",), control=True, rng_seed=0):
    """A two-seed toy sweep: ``loss_of(model, method, rate, tokens)`` plus N(0, sigma) per checkpoint;
    the small and medium models have seeds 0 and 1, the large one seed 0 (as the toy sweep)."""
    rng = np.random.default_rng(rng_seed)
    seeds = seeds or {"s": (0, 1), "m": (0, 1), "l": (0,)}
    rows = []
    for model, n0 in SIZES.items():
        runs = [(m, r) for m in methods for r in rates] + ([("none", 0.0)] if control else [])
        for method, rate in runs:
            for seed in seeds[model]:
                y = loss_of(model, method, rate, GRID) + rng.normal(0, sigma, len(GRID))
                for t, loss in zip(GRID, y):
                    rows.append(
                        {
                            "run_id": f"{model}-{method}-{rate}-seed{seed}",
                            "family": "llama",
                            "model": model,
                            "n0": n0,
                            "method": method,
                            "rate": rate,
                            "tokens": t,
                            "eval_loss": loss,
                            "l0": 3.0,
                            "seed": seed,
                        }
                    )
    return pd.DataFrame(rows)


def falling(speed):
    """Curves that fall ``speed[model]`` nats per decade of tokens above a flat control at l0."""

    def loss(model, method, rate, t):
        decades = np.log10(np.maximum(t, 1e3) / 1e3)
        return 3.0 + (0 if method == "none" else rate * (2.0 - speed[model] * decades))

    return loss


def test_decide_four_states():
    known, unknown = v.Floor(0.1, 4, "x"), v.Floor(np.nan, 0, "x")
    assert [v.decide(e, known) for e in (0.5, -0.5, 0.05, np.nan)] == [
        v.CONFIRMED,
        v.NOT_CONFIRMED,
        v.NOT_DISTINGUISHABLE,
        v.NOT_TESTABLE,
    ]
    # a range (an unidentified law) must clear the floor over all of it
    assert v.decide((0.2, 0.5), known) == v.CONFIRMED and v.decide((-1.0, 0.5), known) == v.NOT_DISTINGUISHABLE
    # with one seed nothing is confirmed, but losing to the baseline still fails the claim
    assert v.decide(0.5, unknown) == v.NOT_DISTINGUISHABLE and v.decide(-0.5, unknown) == v.NOT_CONFIRMED
    assert "unknown" in unknown.text() and "4 seed pair" in known.text()


def test_noise_floor_is_the_rms_difference_between_repeats():
    stats = pd.DataFrame(
        {
            "model": ["s", "s", "m", "m", "l"],
            "method": "depth",
            "rate": [0.1, 0.1, 0.2, 0.2, 0.3],
            "seed": [0, 1, 0, 1, 0],
            "value": [1.0, 1.3, 2.0, 1.9, 5.0],
        }
    )
    f = v.noise_floor(stats)
    assert f.n_pairs == 2 and f.value == pytest.approx(np.sqrt((0.3**2 + 0.1**2) / 2))
    assert not v.noise_floor(stats[stats["seed"] == 0]).known


def test_swap_seeds_replaces_repeated_curves_only():
    df = sweep(falling({"s": 0.3, "m": 0.2, "l": 0.1}))
    swapped, n = v.swap_seeds(df)
    assert n == 8  # s and m: 3 rates + control each
    assert set(swapped.loc[swapped["model"] != "l", "seed"]) == {1} and set(
        swapped.loc[swapped["model"] == "l", "seed"]
    ) == {0}
    assert len(v.first_seed_rows(df)) == len(swapped)


def test_trend1_slopes_confirmed_refuted_and_under_the_floor():
    true = sweep(falling({"s": 0.3, "m": 0.2, "l": 0.1}))
    verdict, pairs, floor = v.trend1_slopes(true)
    assert len(pairs) == 9 and floor.known and verdict.verdict == v.CONFIRMED
    assert pairs["effect"].min() > 0 and "9 of 9" in verdict.ours and verdict.noise_floor == floor.text()
    false = sweep(falling({"s": 0.1, "m": 0.2, "l": 0.3}))
    assert v.trend1_slopes(false)[0].verdict == v.NOT_CONFIRMED
    tiny = sweep(falling({"s": 0.2002, "m": 0.2001, "l": 0.2}), sigma=0.01)  # true, but far under the noise
    assert v.trend1_slopes(tiny)[0].verdict == v.NOT_DISTINGUISHABLE
    one_seed = true[true["seed"] == 0]  # the floor is unknown: right by sign, still not confirmable
    verdict1, _, floor1 = v.trend1_slopes(one_seed)
    assert not floor1.known and verdict1.verdict == v.NOT_DISTINGUISHABLE and "unknown" in verdict1.noise_floor


def test_trend1_slopes_pairs_only_matched_rates():
    df = sweep(falling({"s": 0.3, "m": 0.2, "l": 0.1}))
    df.loc[df["model"] == "l", "rate"] += 0.05  # the large model's rates are 0.05 off: no pair with it
    pairs = v.trend1_slopes(df)[1]
    assert len(pairs) == 3 and set(pairs["model larger"]) == {"m"}


def test_log_slope_is_nats_per_decade_over_the_window():
    t = np.geomspace(1e2, 1e6, 30)
    y = 5.0 - 0.4 * np.log10(t)
    assert v.log_slope(t, y, (1e3, 1e5)) == pytest.approx(-0.4)
    assert np.isnan(v.log_slope(t, y, (1e3, 1e7)))  # outside the curve: not extrapolated


def test_condition2_is_not_confirmed_when_law_and_data_disagree():
    cells = paper.TABLE6.rename(columns={"condition2": "ours"})
    refuted = v.trend1_slopes(sweep(falling({"s": 0.1, "m": 0.2, "l": 0.3})))[0]
    both = v.condition2_law_and_data(cells, refuted)
    assert both.verdict == v.NOT_CONFIRMED and "disagree" in both.ours
    holds = v.trend1_slopes(sweep(falling({"s": 0.3, "m": 0.2, "l": 0.1})))[0]
    assert v.condition2_law_and_data(cells, holds).verdict == v.CONFIRMED
    law_no = cells.assign(ours=False)
    assert v.condition2_law_and_data(law_no, holds).verdict == v.NOT_CONFIRMED


def gap_curves(gap_of):
    """Curves above a falling control by ``gap_of(model, rate)`` (times a factor that decays with D)."""

    def loss(model, method, rate, t):
        decades = np.log10(np.maximum(t, 1e3) / 1e3)
        control = 3.0 - 0.05 * decades
        return control + (0 if method == "none" else gap_of(model, rate) * (1 + 1 / (1 + decades)))

    return loss


def test_trend2_power_law_true_convex_and_one_seed():
    level = {"s": 1.2, "m": 0.6, "l": 0.3}
    power = sweep(gap_curves(lambda m, r: level[m] * r**1.5), sigma=0.0002)
    verdict, table = v.trend2_power_law(power)
    assert table["γ (ours)"].iloc[0] == pytest.approx(-1.5, abs=0.05) and verdict.verdict == v.CONFIRMED
    assert table["γ (paper L1)"].iloc[0] == 1.08  # Table 5, Llama depth, as printed
    convex = sweep(gap_curves(lambda m, r: level[m] * (r + 10 * r**3)), sigma=0.0002)  # slopes 1.35 -> 1.75
    verdict_c, table_c = v.trend2_power_law(convex)
    assert verdict_c.verdict == v.NOT_CONFIRMED and table_c["max |curvature|"].iloc[0] > 0.3
    assert v.trend2_power_law(power[power["seed"] == 0])[0].verdict == v.NOT_DISTINGUISHABLE
    assert "local slopes differ by up to" in verdict.ours
    two_rates = power[power["rate"].round(4).isin(sorted(power["rate"].round(4).unique())[:3])]  # 0, and two
    text = v.trend2_power_law(two_rates)[0].ours
    assert "two rates: no local slopes to compare" in text and "nan" not in text


def test_trend2_against_l0_fails_when_the_control_leaves_l0():
    level = {"s": 0.4, "m": 0.2, "l": 0.1}
    df = sweep(gap_curves(lambda m, r: level[m] * r**1.5), sigma=0.0005)
    # the control falls 0.1 nats below L0 over the run: ΔL against L0 does not vanish at rho = 0
    verdict, _ = v.trend2_power_law(df, baseline="l0")
    assert verdict.verdict == v.NOT_CONFIRMED


def test_baseline_predictors_by_hand():
    df = sweep(falling({"s": 0.3, "m": 0.2, "l": 0.1}), sigma=0.0)
    curve = df[(df["run_id"] == "m-depth-0.3-seed0") & (df["tokens"] > 0)].sort_values("tokens")
    train, test = curve.iloc[:10], curve.iloc[10:]
    assert (v.carry_forward(train, test) == train["eval_loss"].iloc[-1]).all()
    lower = df[df["run_id"] == "m-depth-0.2-seed0"].set_index("tokens")["eval_loss"]
    np.testing.assert_allclose(v.next_lower_rate(df, test), lower.loc[test["tokens"]].to_numpy())
    big = df[(df["run_id"] == "l-depth-0.3-seed0") & (df["tokens"] > 0)]
    small = df[df["run_id"] == "m-depth-0.3-seed0"].set_index("tokens")["eval_loss"]
    np.testing.assert_allclose(v.smaller_model_shifted(df, big), small.loc[big["tokens"]].to_numpy())  # same l0
    assert np.isnan(v.next_lower_rate(df, df[df["run_id"] == "m-depth-0.1-seed0"])).all()


def test_beats_baseline_dataset_size_rule_can_fail():
    df = sweep(falling({"s": 0.3, "m": 0.2, "l": 0.1}), sigma=0.0)
    trained = df[(df["tokens"] > 0) & (df["method"] == "depth") & (df["seed"] == 0)]
    from p2law.analysis.protocols import split_by_tokens

    train, test = split_by_tokens(trained, 0.7)
    base = v.held_out_scores(test, v.carry_forward(train, test))
    truth = test["eval_loss"].to_numpy()
    good = v.held_out_scores(test, truth + 0.0001)
    bad = v.held_out_scores(test, truth + 0.2)  # a law whose extrapolation is off by 0.2 nats
    floor = v.Floor(0.001, 8, "rmse difference")
    args = (
        "dataset size",
        "§4.3",
        "R² 0.97",
    )
    assert v.beats_baseline(*args, good, base, "carry forward", floor).verdict == v.CONFIRMED
    refuted = v.beats_baseline(*args, bad, base, "carry forward", floor)
    assert refuted.verdict == v.NOT_CONFIRMED and refuted.baseline == "carry forward"
    assert "within-curve R²" in refuted.baseline_value
    close = v.held_out_scores(test, v.carry_forward(train, test) - 0.0001)
    assert v.beats_baseline(*args, close, base, "carry forward", v.Floor(0.05, 8, "x")).verdict == v.NOT_DISTINGUISHABLE
    # an unidentified law: a range of equally good fits straddling the baseline is not a confirmation
    assert (
        v.beats_baseline(*args, good, base, "carry forward", floor, ours_range=(good["rmse"], bad["rmse"])).verdict
        == v.NOT_DISTINGUISHABLE
    )


def test_asd_against_a_flat_line():
    df = sweep(falling({"s": 0.3, "m": 0.2, "l": 0.1}), sigma=0.0)
    curves_ = df[(df["tokens"] > 0) & (df["method"] == "depth")]
    flat = v.flat_line_asd(curves_)
    assert flat > 0
    floor = v.Floor(flat / 10, 4, "ASD")
    assert v.asd_vs_flat({"a": 0.0}, {"a": flat}, floor, "").verdict == v.CONFIRMED
    assert v.asd_vs_flat({"a": 2 * flat}, {"a": flat}, floor, "").verdict == v.NOT_CONFIRMED
    assert v.asd_vs_flat({"a": flat * 0.99}, {"a": flat}, floor, "").verdict == v.NOT_DISTINGUISHABLE


def test_form_comparison_on_held_out_scores():
    def scores(l1, l2, l3):
        return pd.DataFrame(
            [
                {"family": "llama", "method": m, "form": f, "r2": s}
                for m in ("depth", "width")
                for f, s in zip(("L1", "L2", "L3"), (l1, l2, l3))
            ]
        )

    floor = v.Floor(0.01, 4, "held-out R²")
    args = (floor, "L1 best held out", "§4.2", "")
    assert v.form_comparison(scores(0.95, 0.90, 0.80), "L1", ("L2", "L3"), *args).verdict == v.CONFIRMED
    worse = v.form_comparison(scores(0.90, 0.95, 0.80), "L1", ("L2", "L3"), *args)
    assert worse.verdict == v.NOT_CONFIRMED and "0 of 2" in worse.ours and "0.95" in worse.baseline_value
    assert v.form_comparison(scores(0.9907, 0.9908, 0.5), "L1", ("L2", "L3"), *args).verdict == v.NOT_DISTINGUISHABLE


def test_form_comparison_counts_each_split_as_a_cell_and_takes_its_floor_from_the_repeats():
    def scores(l1_by_split, l2=0.9):
        return pd.DataFrame(
            [
                {"family": "llama", "method": "depth", "protocol": p, "form": f, "r2": s}
                for p, l1 in l1_by_split.items()
                for f, s in (("L1", l1), ("L2", l2), ("L4", 0.5))
            ]
        )

    first = scores({"dataset_size": 0.95, "pruning_rate": 0.80})  # L1 wins one split, loses the other
    e = v.form_effect(first, "L1", ("L2",))
    assert len(e["diffs"]) == 2 and sorted(e["diffs"]) == pytest.approx([-0.10, 0.05])
    # The floor is how much the effect moves when the repeated curves replace the first seed's.
    repeat = scores({"dataset_size": 0.93, "pruning_rate": 0.78})
    floor = v.form_floor(first, repeat, "L1", ("L2",), n_repeated=3)
    assert floor.known and floor.value == pytest.approx(0.02)
    assert v.form_comparison(first, "L1", ("L2",), floor, "c", "s", "").verdict == v.NOT_CONFIRMED
    # L1 far ahead of a non-nested rival in both splits, by more than the floor: confirmed.
    assert v.form_comparison(first, "L1", ("L4",), floor, "c", "s", "").verdict == v.CONFIRMED
    # A repeat that moves the effect a lot makes the same difference not distinguishable.
    wide = v.form_floor(first, scores({"dataset_size": 0.3, "pruning_rate": 0.3}), "L1", ("L4",), 3)
    assert v.form_comparison(first, "L1", ("L4",), wide, "c", "s", "").verdict == v.NOT_DISTINGUISHABLE
    assert not v.form_floor(first, repeat, "L1", ("L2",), n_repeated=0).known  # no repeats: unknown


def test_flattening_against_the_other_curves_median():
    measured = np.array([1e3, 1e4, 1e5, 1e6])
    floor = v.Floor(0.1, 4, "decades")
    right = pd.DataFrame({"predicted": measured * 1.2, "measured": measured})
    assert v.flattening(right, floor).verdict == v.CONFIRMED
    wrong = pd.DataFrame({"predicted": measured[::-1], "measured": measured})
    assert v.flattening(wrong, floor).verdict == v.NOT_CONFIRMED
    censored = pd.DataFrame({"predicted": measured, "measured": [np.nan] * 3 + [1e6]})
    out = v.flattening(censored, floor)
    assert out.verdict == v.NOT_TESTABLE and "3 had not flattened" in out.ours
    predicted_censored = right.assign(**{"predicted censored": ["at or below the range", "", "", ""]})
    assert "3 curves" in v.flattening(predicted_censored, floor).ours


# --- identifiability (p2law.analysis.fit) -------------------------------------------------------------------------


def test_two_model_sizes_do_not_identify_the_size_constants():
    """N_C/N0^α + E has three constants for two values of N0: a whole family of fits is equally good."""
    from law_fixtures import synthetic_table

    from p2law.analysis import fit

    true24 = {"N_C": 1.0, "D_C": 0.9, "E": 0.3, "alpha": 0.5, "beta": 0.3}
    three = synthetic_table("L2", true24, noise=0.0005, method="2:4", sizes=(0.5e9, 1.5e9, 4e9), seed=3)
    two = three[three["n0"] < 4e9]
    ok = fit.identifiability(fit.fit(three, "L2", "lm"), three)
    assert ok.identified and ok.reason == "identified"
    res = fit.fit(two, "L2", "lm")
    bad = fit.identifiability(res, two)
    assert not bad.identified and ("condition" in bad.reason or "disagree" in bad.reason)
    held = three[three["n0"] == 4e9]
    lo, hi = fit.score_range(res, held)
    assert lo <= res.score(held)["r2"] <= hi


def test_two_runs_of_one_seed_at_one_rate_are_not_repeats():
    """Depth pruning can reach one achieved rate from two planned ones: that is two runs, not a repeat."""
    df = sweep(falling({"s": 0.3, "m": 0.2, "l": 0.1}), seeds={"s": (0,), "m": (0,), "l": (0,)})
    twin = df[df["run_id"] == "s-depth-0.1-seed0"].assign(run_id="s-depth-0.1b-seed0")
    _, _, floor = v.trend1_slopes(pd.concat([df, twin], ignore_index=True))
    assert not floor.known


def test_generalization_against_carry_forward_from_saved_scores():
    """The dataset-size rule reads the law's held-out R²: a law no better than the flat line fails it."""
    df = sweep(falling({"s": 0.3, "m": 0.2, "l": 0.1}), sigma=0.0005)
    from p2law.analysis.protocols import split_by_tokens

    first = v.first_seed_rows(df[(df["tokens"] > 0) & (df["method"] == "depth")])
    train, test = split_by_tokens(first, 0.8)
    base = v.held_out_scores(test, v.carry_forward(train, test))

    def scores(r2):
        return pd.DataFrame(
            [{"family": "llama", "protocol": "dataset_size", "method": "depth", "fitter": "lm", "r2": r2}]
        )

    worse = v.generalization_vs_baseline(df, scores(base["r2"] - 0.01), "dataset_size")[0]
    assert worse.verdict == v.NOT_CONFIRMED and "carried forward" in worse.baseline
    exact = v.generalization_vs_baseline(df, scores(1.0), "dataset_size")[0]
    assert exact.verdict == v.CONFIRMED and "seed pair" in exact.noise_floor


def test_model_size_floor_comes_from_other_models_when_the_largest_has_one_seed():
    df = sweep(falling({"s": 0.3, "m": 0.2, "l": 0.1}), sigma=0.001)
    big = df.loc[df["model"] == "l", "run_id"].unique()
    floor = v.held_out_floor(df, big)
    assert floor.known and "other models" in floor.statistic
    assert not v.held_out_floor(df[df["seed"] == 0], big).known
