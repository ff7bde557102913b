import dataclasses

import numpy as np
import pytest
from law_fixtures import synthetic_table

from p2law.analysis import budget, fit


@pytest.fixture(scope="module")
def fitted():
    df = synthetic_table(noise=0.0005, seed=2)
    return fit.fit(df, "L1", "lm"), df


def test_budget_matches_closed_form(fitted):
    res, _ = fitted
    p = res.params
    n0, rho, l0, thr = 1e9, 0.25, 2.3, 0.01
    # |dL/dlog10 D| = ln10 * rho^-gamma * N0^-delta * beta * D_C * D^-beta  (D, N0 in the fit's units)
    k = np.log(10) * rho ** (-p["gamma"]) * (n0 / 1e9) ** (-p["delta"]) * p["beta"] * p["D_C"]
    d_closed = (k / thr) ** (1 / p["beta"]) * 1e6
    b = budget.token_budget(res, n0, rho, l0, thr)
    assert b.tokens == pytest.approx(d_closed, rel=1e-4)
    assert b.compute == pytest.approx(6 * n0 * (1 - rho) * b.tokens)
    assert abs(budget.slope(res, n0, rho, l0, b.tokens)) == pytest.approx(thr, rel=1e-4)


def test_budget_interval_from_bootstrap(fitted):
    res, df = fitted
    res = res.bootstrap(df, n_resamples=30, seed=0)
    b = budget.token_budget(res, 3e9, 0.25, 2.2, 0.01)
    lo, hi = b.tokens_interval
    assert lo <= b.tokens <= hi and lo < hi


def test_higher_rate_needs_more_tokens_and_flat_never_reached(fitted):
    res, _ = fitted
    low = budget.token_budget(res, 1e9, 0.15, 2.3, 0.01).tokens
    high = budget.token_budget(res, 1e9, 0.35, 2.3, 0.01).tokens
    assert high > low  # gamma < 0: more pruning, steeper curve, later flattening
    assert budget.token_budget(res, 1e9, 0.25, 2.3, 1e-9, d_range=(1e6, 1e9)).tokens == np.inf


def test_budget_bad_input(fitted):
    res, _ = fitted
    with pytest.raises(ValueError, match=r"rho must be in \(0, 1\)"):
        budget.token_budget(res, 1e9, 1.5, 2.3, 0.01)
    with pytest.raises(ValueError, match="threshold must be positive"):
        budget.token_budget(res, 1e9, 0.2, 2.3, 0.0)
    with pytest.raises(ValueError, match="per must be one of"):
        budget.token_budget(res, 1e9, 0.2, 2.3, 0.01, per="epoch")


def test_budget_of_a_law_given_by_constants_matches_closed_form():
    # The paper's Qwen-2.5 depth L1 (Table 5; N0 in billions, D in millions) at Qwen-2.5-1.5B, rho = 0.25.
    p = {"N_C": 0.01, "D_C": 4.32, "E": 0.20, "alpha": -3.73, "beta": 0.21, "gamma": -1.17, "delta": 0.22}
    law = fit.FitResult.from_constants("L1", p)
    assert law.fitter == "given" and np.isnan(law.r2)
    n0, rho, thr = 1.5e9, 0.25, 0.005
    k = np.log(10) * rho**1.17 * 1.5**-0.22 * 0.21 * 4.32
    b = budget.token_budget(law, n0, rho, 0.0, thr)
    assert b.tokens == pytest.approx((k / thr) ** (1 / 0.21) * 1e6, rel=1e-4)
    per_token = budget.token_budget(law, n0, rho, 0.0, 1e-10, per="token")
    assert abs(budget.slope(law, n0, rho, 0.0, per_token.tokens, per="token")) == pytest.approx(1e-10, rel=1e-4)
    with pytest.raises(ValueError, match="missing or not finite"):
        fit.FitResult.from_constants("L1", {"N_C": 1.0})


QWEN_DEPTH = {"N_C": 0.01, "D_C": 4.32, "E": 0.20, "alpha": -3.73, "beta": 0.21, "gamma": -1.17, "delta": 0.22}


def test_interval_upper_end_is_beyond_the_range_when_some_refits_never_flatten():
    """np.percentile([1e5, 2e5, inf, inf], 97.5) is NaN (inf − inf in the interpolation); it must be inf."""
    law = fit.FitResult.from_constants("L1", QWEN_DEPTH)
    flat_never = QWEN_DEPTH | {"D_C": 1e6, "beta": 0.01}  # slope ~ 1e4 nats/decade over the whole range
    law = dataclasses.replace(
        law,
        bootstrap_params=np.array(
            [
                law.vector,
                law.vector * [1, 1.1, 1, 1, 1, 1, 1],
                law.form.params_from_dict(flat_never),
                law.form.params_from_dict(flat_never),
            ]
        ),
    )
    b = budget.token_budget(law, 1.5e9, 0.25, 0.0, 0.02, d_range=(1e3, 1e15))
    lo, hi = b.tokens_interval
    assert np.isfinite(b.tokens) and b.censored == ""
    assert np.isfinite(lo) and lo <= b.tokens and hi == np.inf and b.compute_interval[1] == np.inf
    assert (b.n_refits, b.n_refits_beyond, b.n_refits_below) == (4, 2, 0)
    assert "beyond the range" in b.describe() and "2 never flatten" in b.describe()


def test_a_curve_already_flat_at_the_floor_is_censored_not_a_budget():
    law = fit.FitResult.from_constants("L1", QWEN_DEPTH)
    assert abs(budget.slope(law, 1.5e9, 0.25, 0.0, 1e3)) < 100  # already flatter than the threshold below
    b = budget.token_budget(law, 1.5e9, 0.25, 0.0, 100.0, d_range=(1e3, 1e15))
    assert b.tokens == 1e3 and b.censored == budget.BELOW
    assert b.describe().startswith("≤ 1e+03 tokens") and "floor" in b.describe()
    never = budget.token_budget(law, 1.5e9, 0.25, 0.0, 1e-12, d_range=(1e3, 1e6))
    assert never.tokens == np.inf and never.censored == budget.BEYOND
    crossing = budget.token_budget(law, 1.5e9, 0.25, 0.0, 0.005)
    assert crossing.censored == "" and crossing.tokens > 1e3
