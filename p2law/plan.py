"""The budget question: how many post-training tokens before the loss curve flattens?

Given a fitted law and a pruned model (N0, ρ, L0), the predicted curve's slope falls as D grows. The
budget is the first D at which the slope's size falls under a threshold the user sets, either per
decade of tokens (dL/dlog10 D: "another 10× of data buys less than this") or per token (dL/dD). The
compute is C = 6·N·D with N = N0·(1 − ρ), the pruned model's size, as in the paper's figures.
With bootstrap refits on the fit, the same question is answered for every refit and the percentile
interval of the budget is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

PER = ("decade", "token")


@dataclass(frozen=True)
class Budget:
    tokens: float  # post-training tokens D at which |slope| falls under the threshold
    compute: float  # C = 6 N D, FLOPs
    threshold: float
    per: str
    loss_at_budget: float
    tokens_interval: tuple[float, float] | None = None
    compute_interval: tuple[float, float] | None = None


def slope(law, n0, rho, l0, tokens, per: str = "decade", params=None) -> np.ndarray:
    """dL/dlog10(D) or dL/dD of the fitted law at raw token counts (central differences in log D)."""
    if per not in PER:
        raise ValueError(f"per must be one of {PER}, got {per!r}")
    tokens = np.asarray(tokens, float)
    h = 1e-4
    up = law.predict_arrays(n0, tokens * np.exp(h), rho, l0, params)
    down = law.predict_arrays(n0, tokens * np.exp(-h), rho, l0, params)
    per_ln = (up - down) / (2 * h)  # dL/dln D
    return per_ln * np.log(10) if per == "decade" else per_ln / tokens


def _crossing(law, n0, rho, l0, threshold, per, d_range, params) -> float:
    grid = np.geomspace(*d_range, 400)
    with np.errstate(all="ignore"):
        size = np.abs(slope(law, n0, rho, l0, grid, per, params))
    below = np.flatnonzero(np.isfinite(size) & (size < threshold))
    if below.size == 0:
        return np.inf  # never flattens within the range
    i = below[0]
    if i == 0:
        return float(grid[0])
    f = lambda logd: abs(slope(law, n0, rho, l0, np.exp(logd), per, params)) - threshold  # noqa: E731
    return float(np.exp(optimize.brentq(f, np.log(grid[i - 1]), np.log(grid[i]))))


def token_budget(law, n0: float, rho: float, l0: float, threshold: float, per: str = "decade",
                 d_range=(1e3, 1e15), level: float = 0.95) -> Budget:
    """Tokens and compute at which the predicted curve's slope falls under ``threshold``.

    ``law`` is a ``p2law.fit.FitResult`` (its units are applied); n0 and the returned tokens are raw
    counts. ``tokens`` is inf when the slope never falls under the threshold within ``d_range``.
    The interval comes from ``law.bootstrap_params`` when the fit has been bootstrapped.
    """
    if threshold <= 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    if n0 <= 0:
        raise ValueError(f"n0 must be positive, got {n0}")
    if law.form.uses_rho and not 0 < rho < 1:
        raise ValueError(f"rho must be in (0, 1), got {rho}")
    if per not in PER:
        raise ValueError(f"per must be one of {PER}, got {per!r}")
    n = n0 * (1 - rho)
    d = _crossing(law, n0, rho, l0, threshold, per, d_range, None)
    loss = float(law.predict_arrays(n0, d, rho, l0)) if np.isfinite(d) else float("nan")
    t_int = c_int = None
    if law.bootstrap_params is not None:
        ds = np.array([_crossing(law, n0, rho, l0, threshold, per, d_range, p) for p in law.bootstrap_params])
        with np.errstate(invalid="ignore"):  # refits that never flatten give inf
            lo, hi = np.percentile(ds, [50 * (1 - level), 50 * (1 + level)])
        t_int, c_int = (float(lo), float(hi)), (6 * n * float(lo), 6 * n * float(hi))
    return Budget(tokens=d, compute=6 * n * d, threshold=threshold, per=per, loss_at_budget=loss,
                  tokens_interval=t_int, compute_interval=c_int)
