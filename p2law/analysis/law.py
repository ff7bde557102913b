"""The P² Law parameterizations as plain numpy functions.

Every law is ``f(n0, d, rho, l0, params)`` with arrays broadcast together and ``params`` a vector in
the order of the form's ``param_names``. Units are the caller's: the paper's fits take N0 in billions
and D in millions (``p2law.paper.N_UNIT``/``D_UNIT``); ``p2law.analysis.fit`` converts raw counts before calling.

Forms (equation numbers of the later paper version):

* L1 (Eq. 10): L0 + (1/ρ)^γ (1/N0)^δ (N_C/N0^α + D_C/D^β + E)   — the paper's choice
* L2 (Eq. 11): L0 + (1/ρ)^γ (N_C/N0^α + D_C/D^β + E)
* L3 (Eq. 12): L0 + (1/ρ)^γ (1/N0)^δ (D_C/D^β + E)
* L4 (Eq. 21): L0 + (1/ρ)^γ (1/N0)^δ (N_C/N0^α + D_C/D)^β        — Kaplan-style inner term
* L5 (Eq. 22): L0 + (1/ρ)^γ (N_C/N0^α + D_C/D)^β
* L1_24, L2_24, L3_24 (Eqs. 13–15): 2:4 pruning has no rate, so neither ρ nor L0 enters:
  the law predicts L itself, not ΔL.
* L1_N0, L1_N0_24: L1 and L1_24 fitted to one base's curves. With N0 fixed, (1/N0)^δ and N_C/N0^α are
  constants that only rescale D_C and E, so the identified law is L0 + (1/ρ)^γ (D_C/D^β + E)
  (and D_C/D^β + E for 2:4); α, δ and N_C need several sizes.
* L4_24, L5_24: L4 and L5 with ρ and L0 dropped the same way, (1/N0)^δ (N_C/N0^α + D_C/D)^β and
  (N_C/N0^α + D_C/D)^β. The paper prints no equation for them but scores L4/L5 on 2:4 in Table 4,
  which only a ρ-free form can be fitted to (2:4 rows have no rate).

With γ < 0, (1/ρ)^γ = ρ^|γ| goes to 0 as ρ → 0, so every ρ-form gives L = L0 at ρ = 0: the unpruned
model is unchanged. ``rho = 0`` is therefore evaluated as a limit, not rejected, when γ < 0.
This module never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

CONSTANT_NAMES = ("N_C", "D_C", "E", "alpha", "beta", "gamma", "delta")


def _rho_factor(rho, gamma):
    """(1/ρ)^γ written as ρ^(−γ), so ρ = 0 with γ < 0 gives 0 rather than inf·0."""
    rho = np.asarray(rho, dtype=float)
    with np.errstate(divide="ignore"):
        return np.power(rho, -gamma)


def L1(n0, d, rho, l0, params):
    n_c, d_c, e, alpha, beta, gamma, delta = params
    n0, d = np.asarray(n0, float), np.asarray(d, float)
    return l0 + _rho_factor(rho, gamma) * n0 ** (-delta) * (n_c / n0**alpha + d_c / d**beta + e)


def L2(n0, d, rho, l0, params):
    n_c, d_c, e, alpha, beta, gamma = params
    n0, d = np.asarray(n0, float), np.asarray(d, float)
    return l0 + _rho_factor(rho, gamma) * (n_c / n0**alpha + d_c / d**beta + e)


def L3(n0, d, rho, l0, params):
    d_c, e, beta, gamma, delta = params
    n0, d = np.asarray(n0, float), np.asarray(d, float)
    return l0 + _rho_factor(rho, gamma) * n0 ** (-delta) * (d_c / d**beta + e)


def L4(n0, d, rho, l0, params):
    n_c, d_c, alpha, beta, gamma, delta = params
    n0, d = np.asarray(n0, float), np.asarray(d, float)
    return l0 + _rho_factor(rho, gamma) * n0 ** (-delta) * (n_c / n0**alpha + d_c / d) ** beta


def L5(n0, d, rho, l0, params):
    n_c, d_c, alpha, beta, gamma = params
    n0, d = np.asarray(n0, float), np.asarray(d, float)
    return l0 + _rho_factor(rho, gamma) * (n_c / n0**alpha + d_c / d) ** beta


def L1_24(n0, d, rho, l0, params):
    """Eq. 13: ρ and L0 are accepted for a uniform signature and ignored."""
    n_c, d_c, e, alpha, beta, delta = params
    n0, d = np.asarray(n0, float), np.asarray(d, float)
    return n0 ** (-delta) * (n_c / n0**alpha + d_c / d**beta + e) + 0.0 * np.asarray(l0, float)


def L2_24(n0, d, rho, l0, params):
    n_c, d_c, e, alpha, beta = params
    n0, d = np.asarray(n0, float), np.asarray(d, float)
    return n_c / n0**alpha + d_c / d**beta + e + 0.0 * np.asarray(l0, float)


def L3_24(n0, d, rho, l0, params):
    d_c, e, beta, delta = params
    n0, d = np.asarray(n0, float), np.asarray(d, float)
    return n0 ** (-delta) * (d_c / d**beta + e) + 0.0 * np.asarray(l0, float)


def L4_24(n0, d, rho, l0, params):
    n_c, d_c, alpha, beta, delta = params
    n0, d = np.asarray(n0, float), np.asarray(d, float)
    return n0 ** (-delta) * (n_c / n0**alpha + d_c / d) ** beta + 0.0 * np.asarray(l0, float)


def L5_24(n0, d, rho, l0, params):
    n_c, d_c, alpha, beta = params
    n0, d = np.asarray(n0, float), np.asarray(d, float)
    return (n_c / n0**alpha + d_c / d) ** beta + 0.0 * np.asarray(l0, float)


def L1_N0(n0, d, rho, l0, params):
    """Eq. 10 fitted to the curves of a single base: with N0 fixed, (1/N0)^δ and N_C/N0^α are constants that
    fold into D_C and E, so only L0 + (1/ρ)^γ (D_C/D^β + E) is identified. N0 is accepted and ignored."""
    d_c, e, beta, gamma = params
    d = np.asarray(d, float)
    return l0 + _rho_factor(rho, gamma) * (d_c / d**beta + e) + 0.0 * np.asarray(n0, float)


def L1_N0_24(n0, d, rho, l0, params):
    """Eq. 13 at a single N0: D_C/D^β + E (the loss itself, as for every 2:4 form)."""
    d_c, e, beta = params
    d = np.asarray(d, float)
    return d_c / d**beta + e + 0.0 * np.asarray(n0, float) + 0.0 * np.asarray(l0, float)


@dataclass(frozen=True)
class Form:
    """One parameterization: its function, the names of its constants, and whether ρ enters."""

    name: str
    func: Callable
    param_names: tuple[str, ...]
    uses_rho: bool
    equation: str

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    def __call__(self, n0, d, rho, l0, params):
        params = np.asarray(params, dtype=float)
        if params.shape != (self.n_params,):
            raise ValueError(
                f"{self.name} takes {self.n_params} constants {self.param_names}, got shape {params.shape}"
            )
        return self.func(n0, d, rho, l0, params)

    def params_from_dict(self, constants: dict) -> np.ndarray:
        """Vector of this form's constants from a dict keyed by name (extra keys ignored)."""
        missing = [
            p for p in self.param_names if p not in constants or constants[p] is None or not np.isfinite(constants[p])
        ]
        if missing:
            raise ValueError(f"{self.name} needs constants {missing}, which are missing or not finite")
        return np.array([float(constants[p]) for p in self.param_names])


PARAMETERIZATIONS: dict[str, Form] = {
    f.name: f
    for f in (
        Form("L1", L1, ("N_C", "D_C", "E", "alpha", "beta", "gamma", "delta"), True, "Eq. 10"),
        Form("L2", L2, ("N_C", "D_C", "E", "alpha", "beta", "gamma"), True, "Eq. 11"),
        Form("L3", L3, ("D_C", "E", "beta", "gamma", "delta"), True, "Eq. 12"),
        Form("L4", L4, ("N_C", "D_C", "alpha", "beta", "gamma", "delta"), True, "Eq. 21"),
        Form("L5", L5, ("N_C", "D_C", "alpha", "beta", "gamma"), True, "Eq. 22"),
        Form("L1_24", L1_24, ("N_C", "D_C", "E", "alpha", "beta", "delta"), False, "Eq. 13"),
        Form("L2_24", L2_24, ("N_C", "D_C", "E", "alpha", "beta"), False, "Eq. 14"),
        Form("L3_24", L3_24, ("D_C", "E", "beta", "delta"), False, "Eq. 15"),
        Form("L4_24", L4_24, ("N_C", "D_C", "alpha", "beta", "delta"), False, "Eq. 21 without ρ, L0"),
        Form("L5_24", L5_24, ("N_C", "D_C", "alpha", "beta"), False, "Eq. 22 without ρ, L0"),
        Form("L1_N0", L1_N0, ("D_C", "E", "beta", "gamma"), True, "Eq. 10 at one N0"),
        Form("L1_N0_24", L1_N0_24, ("D_C", "E", "beta"), False, "Eq. 13 at one N0"),
    )
}


def get_form(form: str | Form, method: str | None = None) -> Form:
    """Look a form up by name; for ``method="2:4"`` a name with a ρ-free variant (L1–L5, L1_N0) means it."""
    if isinstance(form, Form):
        return form
    name = str(form)
    if method == "2:4" and f"{name}_24" in PARAMETERIZATIONS:
        name = f"{name}_24"
    if name not in PARAMETERIZATIONS:
        raise ValueError(f"unknown form {form!r}; known forms: {sorted(PARAMETERIZATIONS)}")
    return PARAMETERIZATIONS[name]
