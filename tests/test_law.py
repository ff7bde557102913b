import subprocess
import sys

import numpy as np
import pytest

from p2law.analysis import law
from p2law.analysis.law import PARAMETERIZATIONS, get_form


def test_l1_matches_hand_computation():
    p = [0.3, 0.8, 0.05, 0.4, 0.35, -0.9, 0.3]
    n0, d, rho, l0 = 2.0, 100.0, 0.25, 2.1
    expected = l0 + (1 / rho) ** -0.9 * (1 / n0) ** 0.3 * (0.3 / n0**0.4 + 0.8 / d**0.35 + 0.05)
    assert law.L1(n0, d, rho, l0, p) == pytest.approx(expected, rel=1e-12)


def test_kaplan_forms_match_hand_computation():
    n0, d, rho, l0 = 3.0, 50.0, 0.3, 2.0
    expected4 = l0 + (1 / rho) ** -1.0 * (1 / n0) ** 0.2 * (0.5 / n0**0.3 + 2.0 / d) ** 0.4
    assert law.L4(n0, d, rho, l0, [0.5, 2.0, 0.3, 0.4, -1.0, 0.2]) == pytest.approx(expected4)
    expected5 = l0 + rho**1.0 * (0.5 / n0**0.3 + 2.0 / d) ** 0.4
    assert law.L5(n0, d, rho, l0, [0.5, 2.0, 0.3, 0.4, -1.0]) == pytest.approx(expected5)


@pytest.mark.parametrize("name", ["L1", "L2", "L3", "L4", "L5"])
def test_rho_zero_gives_l0_for_negative_gamma(name):
    form = PARAMETERIZATIONS[name]
    params = np.full(form.n_params, 0.5)
    params[form.param_names.index("gamma")] = -0.8
    out = form(np.array([1.0, 3.0]), np.array([10.0, 100.0]), 0.0, 2.5, params)
    np.testing.assert_array_equal(out, [2.5, 2.5])


def test_2of4_forms_ignore_rho_and_l0():
    f = get_form("L1", method="2:4")
    assert f.name == "L1_24" and not f.uses_rho
    p = [1.0, 0.9, 0.3, 0.1, 0.2, 0.15]
    assert f(1.5, 100.0, 0.1, 2.0, p) == f(1.5, 100.0, 0.9, 9.0, p)
    assert f(1.5, 100.0, 0.1, 2.0, p) == pytest.approx(1.5**-0.15 * (1.0 / 1.5**0.1 + 0.9 / 100**0.2 + 0.3))


def test_wrong_number_of_constants_and_unknown_form():
    with pytest.raises(ValueError, match="takes 7 constants"):
        PARAMETERIZATIONS["L1"](1.0, 1.0, 0.2, 2.0, [1.0, 2.0])
    with pytest.raises(ValueError, match="unknown form 'L9'"):
        get_form("L9")
    with pytest.raises(ValueError, match=r"missing or not finite"):
        PARAMETERIZATIONS["L3"].params_from_dict({"D_C": 1.0, "E": 0.1, "beta": 0.3, "gamma": float("nan")})


def test_law_side_never_imports_torch():
    """Every module of p2law.analysis, and the contract modules beside it, import without torch."""
    code = (
        "import pkgutil, sys, importlib, p2law.analysis as a\n"
        "names = [m.name for m in pkgutil.iter_modules(a.__path__, 'p2law.analysis.')]\n"
        "for n in names + ['p2law.paper', 'p2law.table', 'p2law.cli']: importlib.import_module(n)\n"
        "print(len(names), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    n_modules, torch_loaded = out.stdout.split()
    assert int(n_modules) >= 8 and torch_loaded == "False"


@pytest.mark.parametrize("name", ["L1", "L2", "L3", "L4", "L5"])
def test_every_form_on_2of4_rows_is_rho_and_l0_free(name):
    """2:4 rows have no rate: a form that kept (1/ρ)^γ and L0 there would be fitted to a column of zeros."""
    f = get_form(name, method="2:4")
    assert f.name == f"{name}_24" and not f.uses_rho and "gamma" not in f.param_names
    p = np.full(f.n_params, 0.5)
    assert f(1.5, 100.0, 0.1, 2.0, p) == f(1.5, 100.0, 0.9, 9.0, p)


def test_kaplan_2of4_forms_match_hand_computation():
    n0, d = 3.0, 50.0
    assert get_form("L4", "2:4")(n0, d, 0.0, 2.0, [0.5, 2.0, 0.3, 0.4, 0.2]) == pytest.approx(
        n0**-0.2 * (0.5 / n0**0.3 + 2.0 / d) ** 0.4
    )
    assert get_form("L5", "2:4")(n0, d, 0.0, 2.0, [0.5, 2.0, 0.3, 0.4]) == pytest.approx(
        (0.5 / n0**0.3 + 2.0 / d) ** 0.4
    )
