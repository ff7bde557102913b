import numpy as np
import pytest

from p2law import paper
from p2law.analysis.law import PARAMETERIZATIONS
from p2law.analysis.metrics import Domain, asd, asd_curve, check_conditions, huber, r2


def test_r2_hand_computed():
    y, y_hat = [1.0, 2.0, 3.0, 4.0], [1.1, 1.9, 3.2, 3.8]
    # SS_res = .01+.01+.04+.04 = .10; SS_tot = 5
    assert r2(y, y_hat) == pytest.approx(1 - 0.10 / 5.0)


def test_huber_both_branches_and_reductions():
    y, y_hat = [0.0, 0.0, 0.0], [0.5, -2.0, 0.0]
    # δ=1: 0.5*0.25 = 0.125 (quadratic); 1*(2-0.5) = 1.5 (linear); 0
    assert huber(y, y_hat, delta=1.0, reduction="sum") == pytest.approx(1.625)
    assert huber(y, y_hat, delta=1.0) == pytest.approx(1.625 / 3)
    assert huber(y, y_hat, delta=0.1, reduction="sum") == pytest.approx(0.1 * 0.45 + 0.1 * 1.95)
    with pytest.raises(ValueError, match="unknown reduction"):
        huber(y, y_hat, reduction="median")


def test_asd_uses_latter_half_and_divides_by_n():
    tokens = np.arange(1, 9) * 10.0  # 10..80: latter half is tokens >= 40 -> 40,50,60,70,80
    y = np.array([9, 9, 9, 5.0, 4.0, 3.5, 3.2, 3.0])
    y_hat = np.array([0, 0, 0, 5.0, 4.5, 4.0, 3.5, 3.4])
    # diffs y: -1,-.5,-.3,-.2 ; ŷ: -.5,-.5,-.5,-.1 ; |Δ|: .5,0,.2,.1 = .8 ; N = 5
    assert asd_curve(tokens, y, y_hat) == pytest.approx(0.8 / 5)
    # the first half does not matter at all
    y2 = y.copy()
    y2[:3] = [100, -50, 7]
    assert asd_curve(tokens, y2, y_hat) == pytest.approx(0.8 / 5)


def test_asd_samples_uniformly_in_tokens():
    # checkpoints crowded early in the latter half: 50,52,54,56,58,60,...,100 would over-weight 50-60
    tokens = np.array([10, 20, 50, 52, 54, 56, 58, 75, 100.0])
    y = np.array([5, 4, 3.0, 2.9, 2.8, 2.7, 2.6, 2.4, 2.0])
    y_hat = np.array([5, 4, 3.0, 2.9, 2.8, 2.7, 2.6, 2.3, 2.2])
    # 3 targets over [50, 100]: 50, 75, 100 -> those checkpoints; diffs y: -.6,-.4 ; ŷ: -.7,-.1
    assert asd_curve(tokens, y, y_hat, n_points=3) == pytest.approx((0.1 + 0.3) / 3)
    with pytest.raises(ValueError, match="at least 2 points"):
        asd_curve(tokens, y, y_hat, n_points=1)


def test_asd_averages_per_curve():
    t = np.array([1, 2, 3, 4, 1, 2, 3, 4.0])
    y = np.array([0, 0, 1, 3, 0, 0, 2, 2.0])
    yh = np.zeros(8)
    ids = np.array(["a"] * 4 + ["b"] * 4)
    # curve a: latter half t>=2: y 0,1,3 -> |diffs| 1,2 -> 3/3 = 1 ; curve b: 0,2,2 -> 2/3
    assert asd(t, y, yh, ids) == pytest.approx((1 + 2 / 3) / 2)


def test_metrics_reject_nan():
    with pytest.raises(ValueError, match="finite"):
        r2([1.0, np.nan], [1.0, 2.0])


def _l1(**over):
    p = {"N_C": 0.3, "D_C": 0.8, "E": 0.05, "alpha": 0.4, "beta": 0.35, "gamma": -0.9, "delta": 0.3}
    p.update(over)
    return p


def test_good_l1_satisfies_all_conditions():
    checks = check_conditions("L1", _l1())
    assert [c.condition for c in checks] == [1, 2, 3]
    assert all(c.analytic and c.numeric for c in checks)


@pytest.mark.parametrize(
    "violation, condition",
    [
        ({"D_C": -0.8}, 1),  # loss grows with tokens
        ({"delta": -0.3}, 2),  # larger models' curves fall faster
        ({"gamma": 0.9}, 3),  # ΔL blows up at ρ -> 0
    ],
)
def test_conditions_reject_each_violation(violation, condition):
    checks = {c.condition: c for c in check_conditions("L1", _l1(**violation))}
    assert checks[condition].analytic is False
    assert checks[condition].numeric is False
    assert not checks[condition].satisfied


def test_l2_never_satisfies_condition_2_and_l4_is_numeric_only():
    p = {"N_C": 0.3, "D_C": 0.8, "E": 0.05, "alpha": 0.4, "beta": 0.35, "gamma": -0.9}
    c2 = check_conditions("L2", p)[1]
    assert c2.analytic is False and c2.numeric is False
    l4 = check_conditions("L4", {"N_C": 0.3, "D_C": 0.8, "alpha": 0.4, "beta": 0.35, "gamma": -0.9, "delta": 0.3})
    assert l4[1].analytic is None and isinstance(l4[1].numeric, bool)
    assert [c.satisfied for c in l4] == [True, True, True]
    # numeric-only forms are still rejected: a negative beta makes L4 rise with tokens
    bad = check_conditions("L4", {"N_C": 0.3, "D_C": 0.8, "alpha": 0.4, "beta": -0.35, "gamma": -0.9, "delta": 0.3})
    assert bad[0].analytic is None and bad[0].numeric is False and not bad[0].satisfied


def test_table6_derived_from_table5_equals_paper():
    derived = []
    for row in paper.TABLE5.itertuples():
        form = f"{row.form}_24" if row.method == "2:4" else row.form
        constants = {k: getattr(row, k) for k in PARAMETERIZATIONS[form].param_names}
        derived.append(check_conditions(form, constants)[1].analytic)
    assert derived == list(paper.TABLE6["condition2"])


def test_numeric_check_agrees_with_analytic_on_paper_laws():
    # Each family's own range of N0 (billions) and the paper's token range (millions). Outside it,
    # Llama 2:4 L1's alpha = 26.5 makes N_C/N0^alpha dwarf the D term and finite differences cancel.
    domains = {"llama": Domain(n0=(1.2, 8.0), d=(50.0, 1000.0)), "qwen2": Domain(n0=(0.5, 3.1), d=(50.0, 1000.0))}
    for row in paper.TABLE5.itertuples():
        domain = domains[row.family]
        form = f"{row.form}_24" if row.method == "2:4" else row.form
        constants = {k: getattr(row, k) for k in PARAMETERIZATIONS[form].param_names}
        c2 = check_conditions(form, constants, domain)[1]
        assert c2.numeric == c2.analytic, (row.family, row.form, row.method)


def test_table2_huber_is_in_the_quadratic_branch():
    # Same cell = same checkpoints, so in the quadratic branch Huber/(1 - R2) = Var(y)/2 is shared by
    # L1-L3; in the linear branch Huber tracks sqrt(1 - R2). The first is the better invariant in
    # every cell (the documented reason for huber's defaults, delta = 1 and the mean).
    t = paper.TABLE2[paper.TABLE2.huber > 0]
    spreads = []
    for _, cell in t.groupby(["family", "method"]):
        quad = cell.huber / (1 - cell.r2)
        lin = cell.huber / np.sqrt(1 - cell.r2)
        spreads.append((quad.max() / quad.min(), lin.max() / lin.min()))
    assert len(spreads) == 6
    assert all(quad < lin for quad, lin in spreads)
    assert max(quad for quad, _ in spreads) < 1.85 and min(lin for _, lin in spreads) > 1.4
    # Llama depth L1: Huber 1.6e-5 as half the mean square means an RMS residual of 0.0057 nats.
    row = t[(t.family == "llama") & (t.form == "L1") & (t.method == "depth")].iloc[0]
    assert np.sqrt(2 * row.huber) == pytest.approx(0.0057, abs=1e-4)
    # and huber() with the defaults is exactly half the mean square for residuals of that size
    r = np.array([0.004, -0.007, 0.005, -0.006])
    assert huber(r, np.zeros(4)) == pytest.approx(0.5 * np.mean(r**2))


def test_fitted_law_checked_over_its_own_data():
    from law_fixtures import synthetic_table

    from p2law.analysis import fit

    df = synthetic_table(noise=0.001, seed=4)
    res = fit.fit(df, "L1", "lm")
    domain = Domain.from_table(df, res.n_unit, res.d_unit)
    assert domain.n0 == (1.0, 8.0) and domain.d == (25.0, 500.0) and domain.rho == (0.15, 0.35)
    checks = check_conditions(res, domain=domain)
    assert [c.satisfied for c in checks] == [True, True, True]
    assert all(c.numeric and c.fraction_satisfied == 1.0 for c in checks)
    # the same law with its D term's sign flipped fails Condition 1 on that domain, numerically too
    flipped = dict(res.params, D_C=-res.params["D_C"])
    c1 = check_conditions("L1", flipped, domain)[0]
    assert c1.analytic is False and c1.numeric is False and c1.fraction_satisfied == 0.0
    with pytest.raises(ValueError, match="needs the law's constants"):
        check_conditions("L1")
    with pytest.raises(ValueError, match="trained rows"):
        Domain.from_table(df.assign(tokens=0), 1e9, 1e6)
