"""Fitting a P² Law to a checkpoint table.

Two fitters, both started from a grid:

* ``"lm"``: the paper's choice, Levenberg–Marquardt (``scipy.optimize.least_squares(method="lm")``) on
  residuals in loss space.
* ``"huber-log"``: the Chinchilla/Epoch-style robust fit, Huber (δ = 1e-3) summed over residuals of
  log-loss, minimised with L-BFGS-B. Outlying checkpoints pull it less than they pull least squares.

The starting grid runs over the exponents; for the forms in which N_C, D_C and E enter linearly
(L1–L3 and their 2:4 variants) those three are solved by linear least squares at each grid point, so
every start is already a sensible curve. One law is fitted per (family, pruning method), as in the paper.
Units are arguments: the paper's are N in billions and D in millions; toy models want smaller ones so
the constants stay near 1. This module never imports torch.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import optimize

from ..table import curve_ids, validate
from . import metrics
from .law import Form, get_form

try:  # BLAS threads spin on these tiny problems: on a busy 2-core machine L-BFGS-B ran 25x slower.
    from threadpoolctl import threadpool_limits
except ImportError:  # without it the fits are identical, only slower on a loaded machine
    threadpool_limits = None

FITTERS = ("lm", "huber-log")
LINEAR_CONSTANTS = ("N_C", "D_C", "E")
EXPONENT_GRID = {
    "alpha": (0.1, 0.5, 1.0),
    "beta": (0.1, 0.3, 0.6),
    "gamma": (-0.5, -1.0),
    "delta": (0.0, 0.5),
}
NONLINEAR_CONSTANT_GRID = {"N_C": (0.1, 1.0), "D_C": (0.1, 1.0)}  # L4/L5, where N_C, D_C sit inside a power
HUBER_LOG_DELTA = 1e-3  # Hoffmann et al. (2022) and Besiroglu et al. (2024): log-loss residuals
NEAR_BEST = 1e-3  # relative objective gap under which two fits count as equally good
MAX_CONDITION = 1e8  # relative-sensitivity condition number above which constants are not identified


@dataclass(frozen=True)
class Inputs:
    n0: np.ndarray
    d: np.ndarray
    rho: np.ndarray
    l0: np.ndarray
    y: np.ndarray
    tokens: np.ndarray
    curves: np.ndarray


def _inputs(table: pd.DataFrame, form: Form, n_unit: float, d_unit: float, loss_col: str | None) -> Inputs:
    """The arrays a law needs from ``table``; ``loss_col=None`` for rows to predict (no loss to read)."""
    losses = () if loss_col is None else (loss_col,)
    validate(
        table,
        required=("n0", "tokens", "rate", "l0", *losses, "method"),
        finite=("n0", "tokens", "rate", "l0", *losses),
    )
    d = table["tokens"].to_numpy(float) / d_unit
    if np.any(d <= 0):
        raise ValueError(
            "tokens (D) must be > 0 to fit a law (D^-beta diverges at 0); select trained rows with p2law.table.fit_rows"
        )
    rho = table["rate"].to_numpy(float)
    if form.uses_rho and np.any((rho <= 0) | (rho >= 1)):
        raise ValueError(
            f"{form.name} needs a pruning rate rho in (0, 1) on every row; "
            "leave the rho = 0 control out (p2law.table.fit_rows)"
        )
    return Inputs(
        n0=table["n0"].to_numpy(float) / n_unit,
        d=d,
        rho=rho,
        l0=table["l0"].to_numpy(float),
        y=table[loss_col].to_numpy(float) if loss_col else np.full(len(table), np.nan),
        tokens=table["tokens"].to_numpy(float),
        curves=curve_ids(table)
        if loss_col
        else np.arange(len(table)).astype(str),  # ASD needs curves; predict does not
    )


@dataclass(frozen=True)
class FitResult:
    """A fitted law: constants, scores on the fitted rows, and how the optimisation went.

    Frozen: ``bootstrap`` returns a new result carrying its refits rather than changing this one.
    """

    form: Form
    fitter: str  # "lm" | "huber-log" | "given" (constants typed in, e.g. the paper's Table 5)
    params: dict[str, float]
    n_unit: float
    d_unit: float
    loss_col: str
    r2: float
    huber: float
    asd: float
    n_starts: int
    n_reached_best: int  # starts whose final objective is within 1e-4 (relative) of the best
    converged: bool
    objective: float
    n_points: int
    bootstrap_params: np.ndarray | None = field(default=None, repr=False)
    # Constants of every start that ended within NEAR_BEST of the best objective: equally good fits. Where
    # they disagree, the data do not identify the constants (see ``identifiability``).
    near_best_params: np.ndarray | None = field(default=None, repr=False)
    bootstrap_failed: int = 0  # resamples whose refit failed or diverged: left out of every interval
    message: str = ""  # the optimiser's own stopping message for the best start

    @classmethod
    def from_constants(
        cls,
        form,
        params: dict,
        n_unit: float = 1e9,
        d_unit: float = 1e6,
        pruning_method: str | None = None,
        loss_col: str = "eval_loss",
    ) -> "FitResult":
        """A law given by its constants rather than fitted here (e.g. the paper's Table 5, whose units
        are the defaults), so ``predict``, ``p2law.analysis.budget`` and the CLI treat it like a fit. Its scores
        are NaN and ``fitter`` is ``"given"``."""
        form = get_form(form, pruning_method)
        vec = form.params_from_dict(params)
        return cls(
            form=form,
            fitter="given",
            params=dict(zip(form.param_names, map(float, vec))),
            n_unit=n_unit,
            d_unit=d_unit,
            loss_col=loss_col,
            r2=np.nan,
            huber=np.nan,
            asd=np.nan,
            n_starts=0,
            n_reached_best=0,
            converged=True,
            objective=np.nan,
            n_points=0,
        )

    @property
    def vector(self) -> np.ndarray:
        return np.array([self.params[p] for p in self.form.param_names])

    def predict_arrays(self, n0, tokens, rho, l0, params=None) -> np.ndarray:
        """Loss at raw counts (n0 parameters, tokens), converting to the fit's units."""
        vec = self.vector if params is None else params
        return self.form(np.asarray(n0, float) / self.n_unit, np.asarray(tokens, float) / self.d_unit, rho, l0, vec)

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        """Loss on the rows of ``table`` (n0, tokens, rate, l0, method; no loss column needed)."""
        x = _inputs(table, self.form, self.n_unit, self.d_unit, None)
        return self.form(x.n0, x.d, x.rho, x.l0, self.vector)

    def score(self, table: pd.DataFrame, huber_delta: float = 1.0) -> dict[str, float]:
        """R², Huber and ASD of this law on (possibly held-out) rows."""
        x = _inputs(table, self.form, self.n_unit, self.d_unit, self.loss_col)
        pred = self.form(x.n0, x.d, x.rho, x.l0, self.vector)
        return {
            "r2": metrics.r2(x.y, pred),
            "huber": metrics.huber(x.y, pred, huber_delta),
            "asd": metrics.asd(x.tokens, x.y, pred, x.curves),
        }

    def bootstrap(self, table: pd.DataFrame, n_resamples: int = 100, seed: int = 0) -> "FitResult":
        """Refit on tables resampled by whole curves (with replacement), started from this fit.

        Returns a copy of this result whose ``bootstrap_params`` holds the (resamples kept, n_params) array
        of constants, for ``interval`` and ``predict_interval``; resamples whose fit fails are dropped and
        counted in ``bootstrap_failed``.
        """
        rng = np.random.default_rng(seed)
        ids = curve_ids(table)
        unique = np.unique(ids)
        groups = {c: table.loc[ids == c] for c in unique}
        samples, failed = [], 0
        for _ in range(n_resamples):
            pick = rng.choice(unique, size=len(unique), replace=True)
            resampled = pd.concat([groups[c].assign(run_id=f"{c}#{k}") for k, c in enumerate(pick)], ignore_index=True)
            try:
                res = fit(
                    resampled, self.form, self.fitter, self.n_unit, self.d_unit, self.loss_col, starts=[self.vector]
                )
            except (ValueError, np.linalg.LinAlgError, FloatingPointError):
                failed += 1
                continue
            if np.all(np.isfinite(res.vector)):
                samples.append(res.vector)
            else:
                failed += 1
        if not samples:
            raise RuntimeError("every bootstrap refit failed")
        return replace(self, bootstrap_params=np.array(samples), bootstrap_failed=failed)

    def interval(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        """Percentile interval of each constant over the bootstrap refits."""
        if self.bootstrap_params is None:
            raise ValueError("call .bootstrap(table) first")
        lo, hi = np.percentile(self.bootstrap_params, [50 * (1 - level), 50 * (1 + level)], axis=0)
        return {p: (float(a), float(b)) for p, a, b in zip(self.form.param_names, lo, hi)}

    def predict_interval(self, table: pd.DataFrame, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise percentile band of the predicted loss over the bootstrap refits."""
        if self.bootstrap_params is None:
            raise ValueError("call .bootstrap(table) first")
        x = _inputs(table, self.form, self.n_unit, self.d_unit, None)
        with np.errstate(all="ignore"):
            preds = np.array([self.form(x.n0, x.d, x.rho, x.l0, v) for v in self.bootstrap_params])
        lo, hi = np.nanpercentile(preds, [50 * (1 - level), 50 * (1 + level)], axis=0)
        return lo, hi


def _starting_grid(form: Form, x: Inputs) -> list[np.ndarray]:
    names = form.param_names
    exps = [n for n in names if n in EXPONENT_GRID]
    linear = [n for n in names if n in LINEAR_CONSTANTS] if form.name[:2] in ("L1", "L2", "L3") else []
    other = [n for n in names if n not in exps and n not in linear]
    starts = []
    for exp_values in itertools.product(*(EXPONENT_GRID[n] for n in exps)):
        for other_values in itertools.product(*(NONLINEAR_CONSTANT_GRID[n] for n in other)):
            p = dict(zip(exps, exp_values)) | dict(zip(other, other_values))
            if linear:
                # The law is affine in the linear constants at fixed exponents: solve them by lstsq.
                vec0 = np.array([p.get(n, 0.0) for n in names])
                base = form(x.n0, x.d, x.rho, x.l0, vec0)
                cols = []
                for n in linear:
                    v = vec0.copy()
                    v[names.index(n)] = 1.0
                    cols.append(form(x.n0, x.d, x.rho, x.l0, v) - base)
                a = np.column_stack(cols)
                if not np.all(np.isfinite(a)):
                    continue
                coef, *_ = np.linalg.lstsq(a, x.y - base, rcond=None)
                p |= dict(zip(linear, coef))
            starts.append(np.array([p[n] for n in names]))
    return starts


def _jacobian(form: Form, x: Inputs, v: np.ndarray) -> np.ndarray:
    """Exact derivatives of the predicted loss w.r.t. each constant, by the complex step.

    Every law is analytic in its constants, so f(v + i·h·e_k) = f(v) + i·h·∂f/∂v_k + O(h²) and the
    imaginary part divided by h is the derivative to machine precision (no subtraction, so h can be
    1e-20); L-BFGS-B on finite-difference gradients needed several times more evaluations.
    Rows whose real prediction is not finite get a zero row (the objective penalises them flat).
    """
    h = 1e-20
    # All k perturbed copies of v in one call: column k of `steps` is v + i·h·e_k, so each constant the
    # law unpacks is a length-k row that broadcasts against the data as columns (one numpy pass, not k).
    steps = v.astype(complex)[:, None] + 1j * h * np.eye(len(v))
    with np.errstate(all="ignore"):
        jac = np.imag(form.func(x.n0[:, None], x.d[:, None], x.rho[:, None], x.l0[:, None], steps)) / h
        base = form.func(x.n0, x.d, x.rho, x.l0, v)
    jac[~np.isfinite(base) | ~np.all(np.isfinite(jac), axis=1)] = 0.0
    return jac


def _objective(fitter: str, form: Form, x: Inputs):
    """The function each start minimises, with its exact derivative.

    "lm": (residuals, jacobian) for least_squares. "huber-log": one callable returning
    (Σ Huber_δ(log ŷ − log y) / δ², gradient) for L-BFGS-B with ``jac=True``. The division by δ²
    changes no minimiser, but L-BFGS-B's stopping tests are absolute: on the raw sum (about 1e-5) it
    stopped starts wherever the gradient was already below 1e-5, far from the best.
    """
    if fitter == "lm":

        def residuals(v):
            with np.errstate(all="ignore"):
                r = form.func(x.n0, x.d, x.rho, x.l0, v) - x.y
            return np.where(np.isfinite(r), r, 1e3)

        return residuals, (lambda v: _jacobian(form, x, v))
    log_y = np.log(x.y)
    delta = HUBER_LOG_DELTA

    def huber_log(v):
        with np.errstate(all="ignore"):
            pred = form.func(x.n0, x.d, x.rho, x.l0, v)
            ok = np.isfinite(pred) & (pred > 0)
            r = np.where(ok, np.log(np.where(ok, pred, 1.0)) - log_y, 1e3)
        a = np.abs(r)
        value = float(np.sum(np.where(a <= delta, 0.5 * a**2, delta * (a - 0.5 * delta))))
        # dHuber/dr = clip(r, −δ, δ); d log ŷ / dv = J / ŷ; rows outside the domain are flat.
        psi = np.where(ok, np.clip(r, -delta, delta), 0.0)
        grad = _jacobian(form, x, v).T @ (psi / np.where(ok, pred, 1.0))
        return value / delta**2, grad / delta**2

    return huber_log, None


def _minimise_from(starts, fitter: str, form: Form, x: Inputs) -> list[tuple[float, np.ndarray, bool, str]]:
    """(objective, constants, converged, the optimiser's message) from every start."""
    objective, jacobian = _objective(fitter, form, x)
    results = []
    for s in starts:
        if fitter == "lm":
            r = optimize.least_squares(objective, s, jac=jacobian, method="lm", max_nfev=200 * len(s))
            results.append((float(2 * r.cost), r.x, bool(r.success), str(r.message)))
        else:
            r = optimize.minimize(objective, s, jac=True, method="L-BFGS-B", options={"maxiter": 1000})
            results.append((float(r.fun) * HUBER_LOG_DELTA**2, r.x, bool(r.success), str(r.message)))
    return results


def _screen(starts, k: int, fitter: str, form: Form, x: Inputs) -> list[np.ndarray]:
    """The ``k`` starts with the lowest objective before optimisation (a non-finite value ranks last)."""
    if k < 1:
        raise ValueError(f"max_starts must be at least 1, not {k}")
    objective, _ = _objective(fitter, form, x)

    def value(s):
        v = objective(s)
        v = float(np.sum(np.square(v))) if fitter == "lm" else float(v[0])
        return v if np.isfinite(v) else np.inf

    return [starts[i] for i in np.argsort([value(s) for s in starts], kind="stable")[:k]]


def _one_blas_thread():
    return threadpool_limits(1, user_api="blas") if threadpool_limits else contextlib.nullcontext()


def fit(
    table: pd.DataFrame,
    form,
    fitter: str = "lm",
    n_unit: float = 1e9,
    d_unit: float = 1e6,
    loss_col: str = "eval_loss",
    starts=None,
    pruning_method: str | None = None,
    max_starts: int | None = None,
) -> FitResult:
    """Fit ``form`` to the rows of ``table`` with ``fitter`` ("lm" or "huber-log").

    ``table`` holds the rows to fit (see ``p2law.table.fit_rows``): raw parameter and token counts,
    which are divided by ``n_unit`` and ``d_unit``. ``pruning_method="2:4"`` maps L1–L3 to their ρ-free
    variants (Eqs. 13–15). ``starts`` replaces the grid (used by the bootstrap). ``max_starts`` screens
    the grid: only that many starts, those with the lowest objective before any step, are optimised
    (on 279 toy rows one L1 start costs ~1.5 s and the full grid 36 of them).
    """
    if fitter not in FITTERS:
        raise ValueError(f"unknown fitter {fitter!r}; use one of {FITTERS}")
    # One law per (family, pruning method), as the paper fits them: the constants of depth and width
    # pruning differ, and 2:4 has no rate at all (Eqs. 13-15 are other functions).
    for column in ("family", "method"):
        present = sorted(set(table[column].astype(str))) if column in table else []
        if len(present) > 1:
            detail = (
                f"2:4 with {[m for m in present if m != '2:4']}"
                if column == "method" and "2:4" in present
                else f"{ {'family': 'families', 'method': 'methods'}[column] } {present}"
            )
            raise ValueError(
                f"the table mixes {detail}; fit one {column} at a time "
                f"(p2law.table.fit_rows(df, method=..., family=...))"
            )
        if column == "method" and pruning_method is None and len(present) == 1:
            pruning_method = present[0]
    form = get_form(form, pruning_method)
    x = _inputs(table, form, n_unit, d_unit, loss_col)
    if len(x.y) <= form.n_params:
        raise ValueError(f"{len(x.y)} rows are too few to fit the {form.n_params} constants of {form.name}")
    if np.any(x.y <= 0):
        raise ValueError(f"{loss_col} must be positive")
    with _one_blas_thread():
        starts = _starting_grid(form, x) if starts is None else [np.asarray(s, float) for s in starts]
        if not starts:
            raise ValueError(f"no finite starting point for {form.name} on these rows (check units)")
        if max_starts is not None and len(starts) > max_starts:
            starts = _screen(starts, max_starts, fitter, form, x)
        results = _minimise_from(starts, fitter, form, x)
    finite = [r for r in results if np.isfinite(r[0]) and np.all(np.isfinite(r[1]))]
    if not finite:
        raise ValueError(f"every start of {form.name} diverged")
    best = min(finite, key=lambda r: r[0])
    n_best = sum(1 for r in finite if r[0] <= best[0] * (1 + 1e-4) + 1e-15)
    pred = form(x.n0, x.d, x.rho, x.l0, best[1])
    near = np.array([r[1] for r in finite if r[0] <= best[0] * (1 + NEAR_BEST) + 1e-15])
    return FitResult(
        form=form,
        fitter=fitter,
        params=dict(zip(form.param_names, map(float, best[1]))),
        n_unit=n_unit,
        d_unit=d_unit,
        loss_col=loss_col,
        r2=metrics.r2(x.y, pred),
        huber=metrics.huber(x.y, pred),
        asd=metrics.asd(x.tokens, x.y, pred, x.curves),
        n_starts=len(starts),
        n_reached_best=n_best,
        converged=best[2],
        objective=best[0],
        n_points=len(x.y),
        near_best_params=near,
        message=best[3],
    )


@dataclass(frozen=True)
class Identifiability:
    """Whether a fit's rows pin its constants down.

    ``condition``: the condition number of the Jacobian with each column scaled by its constant (relative
    sensitivities), at the optimum; a flat direction (N_C and E trading off when N0 takes two values) makes
    it explode. ``spread``: per constant, the largest relative difference among equally good fits (starts
    within ``NEAR_BEST`` of the best objective). Not identified when either is too large.
    """

    identified: bool
    condition: float
    n_equally_good: int
    spread: dict[str, float]
    reason: str


def identifiability(
    res: FitResult, table: pd.DataFrame, max_condition: float = MAX_CONDITION, max_spread: float = 0.05
) -> Identifiability:
    """Identifiability of ``res``'s constants by the rows of ``table`` it was fitted to."""
    x = _inputs(table, res.form, res.n_unit, res.d_unit, res.loss_col)
    v = res.vector
    jac = _jacobian(res.form, x, v) * np.maximum(np.abs(v), 1e-12)
    sv = np.linalg.svd(jac, compute_uv=False)
    condition = float(sv[0] / sv[-1]) if sv[-1] > 0 else float("inf")
    near = res.near_best_params if res.near_best_params is not None and len(res.near_best_params) else v[None, :]
    scale = np.maximum(np.abs(v), 1e-12)
    spread = {p: float(np.ptp(near[:, i]) / scale[i]) for i, p in enumerate(res.form.param_names)}
    loose = [p for p, s in spread.items() if s > max_spread]
    reasons = []
    if condition > max_condition:
        reasons.append(f"Jacobian condition {condition:.2g} > {max_condition:.0e}")
    if loose:
        reasons.append(f"equally good fits disagree on {', '.join(loose)}")
    return Identifiability(not reasons, condition, len(near), spread, "; ".join(reasons) or "identified")


def score_range(res: FitResult, table: pd.DataFrame, metric: str = "r2") -> tuple[float, float]:
    """``metric`` on (held-out) rows over every equally good fit: for an unidentified law the one number
    of ``res.score`` is an accident of the optimiser, the range is what the data say."""
    vectors = (
        res.near_best_params if res.near_best_params is not None and len(res.near_best_params) else res.vector[None, :]
    )
    values = []
    for vec in vectors:
        alt = FitResult(**{**res.__dict__, "params": dict(zip(res.form.param_names, map(float, vec)))})
        with np.errstate(all="ignore"):
            try:
                values.append(alt.score(table)[metric])
            except ValueError:  # a prediction that is not finite on these rows
                continue
    if not values:
        return float("nan"), float("nan")
    return float(np.min(values)), float(np.max(values))
