"""The budget question: how many post-training tokens before the loss curve flattens?

Given a fitted law and a pruned model (N0, ρ, L0), the predicted curve's slope falls as D grows. The
budget is the first D at which the slope's size falls under a threshold the user sets, either per
decade of tokens (dL/dlog10 D: "another 10× of data buys less than this") or per token (dL/dD). The
compute is C = 6·N·D with N = N0·(1 − ρ), the pruned model's size, as in the paper's figures.
With bootstrap refits on the fit, the same question is answered for every refit and the percentile
interval of the budget is reported.

Two kinds of budget are censored, and say so (``Budget.censored``): a curve already flatter than the
threshold at the range's first token count has a budget *at most* that floor (``"at or below the range"``),
and one that never flattens within the range has none (``tokens`` inf, ``"beyond the range"``). Bootstrap
refits that never flatten make the interval's upper end "beyond the range" (inf) rather than NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

PER = ("decade", "token")
BELOW = "at or below the range"  # already flatter than the threshold at d_range[0]: an upper bound
BEYOND = "beyond the range"  # never flatter than the threshold within d_range


@dataclass(frozen=True)
class Budget:
    tokens: float  # post-training tokens D at which |slope| falls under the threshold
    compute: float  # C = 6 N D, FLOPs
    threshold: float
    per: str
    loss_at_budget: float
    tokens_interval: tuple[float, float] | None = None
    compute_interval: tuple[float, float] | None = None
    censored: str = ""  # "" (a crossing inside the range), BELOW or BEYOND
    n_refits: int = 0  # bootstrap refits the interval was taken over
    n_refits_beyond: int = 0  # of those, refits that never flatten within the range
    n_refits_below: int = 0  # of those, refits already flat at the range's floor

    def describe(self) -> str:
        """The budget in words, with its censoring and interval."""

        def tok(d):
            return BEYOND if not np.isfinite(d) else f"{d:.3g}"

        head = {
            "": f"{tok(self.tokens)} tokens",
            BEYOND: f"{BEYOND} (never flattens)",
            BELOW: f"≤ {self.tokens:.3g} tokens (already flat at the range's floor)",
        }[self.censored]
        if self.tokens_interval is None:
            return head
        lo, hi = self.tokens_interval
        tail = f" [{tok(lo)}, {tok(hi)}] over {self.n_refits} refits"
        if self.n_refits_beyond:
            tail += f", {self.n_refits_beyond} never flatten"
        if self.n_refits_below:
            tail += f", {self.n_refits_below} flat at the floor"
        return head + tail


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


def _crossing(law, n0, rho, l0, threshold, per, d_range, params) -> tuple[float, str]:
    """(tokens, censoring): the first D in ``d_range`` where |slope| < threshold."""
    grid = np.geomspace(*d_range, 400)
    with np.errstate(all="ignore"):
        size = np.abs(slope(law, n0, rho, l0, grid, per, params))
    below = np.flatnonzero(np.isfinite(size) & (size < threshold))
    if below.size == 0:
        return np.inf, BEYOND
    i = below[0]
    if i == 0:  # no crossing seen: the true budget is somewhere at or below the floor
        return float(grid[0]), BELOW
    f = lambda logd: abs(slope(law, n0, rho, l0, np.exp(logd), per, params)) - threshold  # noqa: E731
    return float(np.exp(optimize.brentq(f, np.log(grid[i - 1]), np.log(grid[i])))), ""


def _percentile_interval(ds: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval of budgets that may be inf (refits that never flatten).

    Linear interpolation between a finite value and inf is inf − inf = NaN, so with any inf present the
    bounds are order statistics (the lower and the higher neighbour): the upper end is then inf,
    "beyond the range", whenever more than the tail share of refits never flatten.
    """
    q = [50 * (1 - level), 50 * (1 + level)]
    if np.all(np.isfinite(ds)):
        lo, hi = np.percentile(ds, q)
    else:
        lo, hi = np.percentile(ds, q[0], method="lower"), np.percentile(ds, q[1], method="higher")
    return float(lo), float(hi)


def token_budget(
    law,
    n0: float,
    rho: float,
    l0: float,
    threshold: float,
    per: str = "decade",
    d_range=(1e3, 1e15),
    level: float = 0.95,
) -> Budget:
    """Tokens and compute at which the predicted curve's slope falls under ``threshold``.

    ``law`` is a ``p2law.analysis.fit.FitResult`` (its units are applied); n0 and the returned tokens are raw
    counts. ``tokens`` is inf when the slope never falls under the threshold within ``d_range``
    (``censored == BEYOND``); when the slope is already under it at ``d_range[0]``, ``tokens`` is that floor
    and ``censored == BELOW``: an upper bound, not a budget. The interval comes from
    ``law.bootstrap_params`` when the fit has been bootstrapped; refits that never flatten are counted
    (``n_refits_beyond``) and push its upper end to inf.
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
    d, censored = _crossing(law, n0, rho, l0, threshold, per, d_range, None)
    loss = float(law.predict_arrays(n0, d, rho, l0)) if np.isfinite(d) else float("nan")
    t_int = c_int = None
    n_refits = n_beyond = n_below = 0
    if law.bootstrap_params is not None and len(law.bootstrap_params):
        found = [_crossing(law, n0, rho, l0, threshold, per, d_range, p) for p in law.bootstrap_params]
        ds = np.array([f[0] for f in found])
        n_refits, n_beyond, n_below = len(found), sum(f[1] == BEYOND for f in found), sum(f[1] == BELOW for f in found)
        lo, hi = _percentile_interval(ds, level)
        t_int, c_int = (lo, hi), (6 * n * lo, 6 * n * hi)
    return Budget(
        tokens=d,
        compute=6 * n * d,
        threshold=threshold,
        per=per,
        loss_at_budget=loss,
        tokens_interval=t_int,
        compute_interval=c_int,
        censored=censored,
        n_refits=n_refits,
        n_refits_beyond=n_beyond,
        n_refits_below=n_below,
    )


def flattening_tokens(tokens, loss, threshold: float, window: int = 3) -> float:
    """Where a measured curve flattened: the first checkpoint after which the loss falls by less than
    ``threshold`` nats per decade of tokens, judged on least-squares slopes over ``window`` consecutive
    checkpoints (single steps are too noisy). ``nan`` if it never flattens within the run; D = 0 is skipped.
    """
    t = np.asarray(tokens, dtype=float)
    y = np.asarray(loss, dtype=float)
    if t.shape != y.shape:
        raise ValueError(f"tokens and loss differ in length: {t.shape} vs {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError("loss contains NaN or inf")
    keep = t > 0
    order = np.argsort(t[keep])
    x, y = np.log10(t[keep][order]), y[keep][order]
    if len(x) < window:
        return float("nan")
    drops = np.array([-np.polyfit(x[i : i + window], y[i : i + window], 1)[0] for i in range(len(x) - window + 1)])
    steep = np.nonzero(drops >= threshold)[0]
    start = 0 if len(steep) == 0 else steep[-1] + 1
    return float(10 ** x[start]) if start < len(drops) else float("nan")
