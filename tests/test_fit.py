import dataclasses

import numpy as np
import pandas as pd
import pytest
from law_fixtures import TRUE_L1, synthetic_table

from p2law import table
from p2law.analysis import fit, protocols
from p2law.analysis import law as law_mod


@pytest.fixture(scope="module")
def l1_table():
    return synthetic_table(noise=0.002, seed=1)


@pytest.mark.parametrize("fitter", ["lm", "huber-log"])
def test_fit_recovers_held_out_predictions(l1_table, fitter):
    fit_rows, held_out = protocols.split_by_tokens(l1_table, 0.8)
    res = fit.fit(fit_rows, "L1", fitter)
    assert res.fitter == fitter and res.message  # the optimiser's own stopping message is kept
    truth = synthetic_table(noise=0.0, seed=1)
    truth_held = truth.loc[truth.tokens >= held_out.tokens.min()]
    assert res.score(held_out)["r2"] >= 0.99
    # and the noiseless curve is matched to within the noise level
    assert np.max(np.abs(res.predict(truth_held) - truth_held.eval_loss.to_numpy())) < 0.01
    assert res.converged and res.n_starts > 1
    # the grid's starts agree: most of them end at the same minimum
    assert res.n_reached_best >= res.n_starts // 2
    assert res.params["gamma"] == pytest.approx(TRUE_L1["gamma"], abs=0.1)


def test_max_starts_polishes_only_the_best_screened_starts(l1_table):
    from p2law.analysis.fit import _inputs, _objective, _screen, _starting_grid

    form = law_mod.get_form("L1")
    x = _inputs(l1_table, form, 1e9, 1e6, "eval_loss")
    grid = _starting_grid(form, x)
    residuals, _ = _objective("lm", form, x)
    picked = _screen(grid, 3, "lm", form, x)
    errors = sorted(float(np.sum(residuals(s) ** 2)) for s in grid)
    assert [float(np.sum(residuals(s) ** 2)) for s in picked] == pytest.approx(errors[:3])  # the lowest three
    res = fit.fit(l1_table, "L1", "lm", max_starts=3)
    assert res.n_starts == 3 < len(grid)
    full = fit.fit(l1_table, "L1", "lm")
    assert res.r2 == pytest.approx(full.r2, abs=1e-4)  # the screen keeps a start in the best basin here
    with pytest.raises(ValueError, match="max_starts must be at least 1"):
        fit.fit(l1_table, "L1", "lm", max_starts=0)


def test_fit_2of4_uses_rho_free_form():
    df = synthetic_table(
        form="L1",
        method="2:4",
        params={"N_C": 1.0, "D_C": 0.9, "E": 0.3, "alpha": 0.1, "beta": 0.2, "delta": 0.15},
        noise=0.001,
        sizes=(0.5e9, 1.5e9, 3e9),
    )
    res = fit.fit(df, "L1", "lm")
    assert res.form.name == "L1_24" and "gamma" not in res.params
    assert res.r2 > 0.98


def test_bootstrap_intervals_cover_truth(l1_table):
    plain = fit.fit(l1_table, "L1", "lm")
    res = plain.bootstrap(l1_table, n_resamples=40, seed=3)
    samples = res.bootstrap_params
    assert samples.shape == (40, 7) and res.bootstrap_failed == 0
    assert plain.bootstrap_params is None and res.params == plain.params  # a new result; the fit is unchanged
    with pytest.raises(dataclasses.FrozenInstanceError):
        plain.params = {}
    again = fit.fit(l1_table, "L1", "lm").bootstrap(l1_table, n_resamples=40, seed=3)
    np.testing.assert_array_equal(samples, again.bootstrap_params)  # same seed, same numbers
    lo, hi = res.interval()["gamma"]
    assert lo <= TRUE_L1["gamma"] <= hi
    band_lo, band_hi = res.predict_interval(l1_table)
    assert np.all(band_lo <= band_hi) and np.mean(band_hi - band_lo) > 0


def test_bad_input_is_named(l1_table):
    with pytest.raises(ValueError, match="missing columns"):
        fit.fit(l1_table.drop(columns=["l0"]), "L1")
    bad = l1_table.copy()
    bad.loc[3, "eval_loss"] = np.nan
    with pytest.raises(ValueError, match="'eval_loss' has 1 NaN"):
        fit.fit(bad, "L1")
    bad = l1_table.copy()
    bad.loc[3, "eval_loss"] = np.inf
    with pytest.raises(ValueError, match="NaN/inf"):
        fit.fit(bad, "L1")
    bad = l1_table.copy()
    bad.loc[0, "rate"] = 1.2
    with pytest.raises(ValueError, match=r"rho must be in \(0, 1\)"):
        fit.fit(bad, "L1")
    bad = l1_table.copy()
    bad.loc[0, "tokens"] = 0
    with pytest.raises(ValueError, match=r"tokens \(D\) must be > 0"):
        fit.fit(bad, "L1")
    bad.loc[0, "tokens"] = -5
    with pytest.raises(ValueError, match=r"tokens \(D\) must be >= 0"):
        fit.fit(bad, "L1")
    with pytest.raises(ValueError, match="unknown form"):
        fit.fit(l1_table, "L7")
    with pytest.raises(ValueError, match="unknown fitter"):
        fit.fit(l1_table, "L1", fitter="adam")
    with pytest.raises(ValueError, match=r"mixes 2:4 with \['depth'\]"):
        fit.fit(pd.concat([l1_table, l1_table.assign(method="2:4")]), "L1")
    with pytest.raises(ValueError, match=r"mixes methods \['depth', 'width'\]; fit one method at a time"):
        fit.fit(pd.concat([l1_table, l1_table.assign(method="width")]), "L1")
    with pytest.raises(ValueError, match=r"mixes families \['llama', 'qwen2'\]; fit one family at a time"):
        fit.fit(pd.concat([l1_table, l1_table.assign(family="qwen2")]), "L1")
    with pytest.raises(ValueError, match="too few to fit the 7 constants"):
        fit.fit(l1_table.head(6), "L1")


def test_nan_train_loss_matters_only_when_fitted(l1_table):
    df = l1_table.copy()
    df.loc[0, "train_loss"] = np.nan
    assert fit.fit(df, "L1", "lm").n_points == len(df)  # eval_loss is what is fitted
    with pytest.raises(ValueError, match="'train_loss' has 1 NaN"):
        fit.fit(df, "L1", "lm", loss_col="train_loss")


@pytest.mark.parametrize("name", ["L1", "L2", "L3", "L4", "L5", "L1_24", "L2_24", "L3_24"])
def test_complex_step_jacobian_matches_finite_differences(l1_table, name):
    form = law_mod.PARAMETERIZATIONS[name]
    x = fit._inputs(l1_table, form, 1e9, 1e6, "eval_loss")
    v = np.linspace(0.2, 0.6, form.n_params)
    if "gamma" in form.param_names:
        v[form.param_names.index("gamma")] = -0.8
    jac = fit._jacobian(form, x, v)
    for k in range(form.n_params):
        e = np.zeros_like(v)
        e[k] = 1e-6
        numeric = (form(x.n0, x.d, x.rho, x.l0, v + e) - form(x.n0, x.d, x.rho, x.l0, v - e)) / 2e-6
        np.testing.assert_allclose(jac[:, k], numeric, rtol=1e-6, atol=1e-9)


def test_fit_rows_drops_control_and_untrained_rows(l1_table):
    control = l1_table.head(3).assign(method="none", rate=0.0, run_id="ctrl")
    start = l1_table.head(1).assign(tokens=0)
    rows = table.fit_rows(pd.concat([l1_table, control, start]), method="depth")
    assert len(rows) == len(l1_table)
    assert rows.attrs["excluded"] == {"control": 3, "untrained": 1}
    assert "left out 3 rows of the rho = 0 control" in rows.attrs["note"]
    with pytest.raises(ValueError, match="'none' is the rho = 0 control; it is never fitted"):
        table.fit_rows(pd.concat([l1_table, control]), method="none")
    with pytest.raises(ValueError, match="control and need rate 0"):
        table.validate(pd.concat([l1_table, control.assign(rate=0.2)]))
    # a foreign column is carried along and ignored by the fit
    assert "colour" in table.fit_rows(l1_table.assign(colour="red")).columns
    with pytest.raises(ValueError, match="foreign columns"):
        table.validate(l1_table.assign(colour="red"), extra_ok=False)
    with pytest.raises(ValueError, match="unknown method"):
        table.validate(l1_table.assign(method="magnitude"))


def test_predict_needs_only_the_inputs_of_the_law(l1_table):
    """n0, tokens, rate, l0 and method are enough to predict: no loss, run or model column."""
    res = fit.fit(l1_table, "L1", "lm")
    bare = l1_table[["n0", "tokens", "rate", "l0", "method"]]
    np.testing.assert_allclose(res.predict(bare), res.predict(l1_table))
