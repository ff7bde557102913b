"""Seconds per fit for both fitting methods over all Table 2 cells' worth of synthetic curves.

3 forms x 3 pruning methods x 2 families = 18 fits per method. Each depth/width cell has 3 model sizes
x 3 rates x 20 checkpoints (2:4: 3 sizes x 20), drawn from a known law with noise (sd 0.002 nats), about
the size of the paper's data. Also prints, for one cell, the time of the same fit with scipy's
finite-difference derivatives instead of p2law.analysis.fit's exact (complex-step) ones, as a ratio.
Run: python benchmarks/bench_fit.py
"""

import sys
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np  # noqa: E402
from law_fixtures import TRUE_L1, synthetic_table  # noqa: E402

from p2law.analysis import fit  # noqa: E402

TRUE_24 = {"N_C": 1.0, "D_C": 0.9, "E": 0.3, "alpha": 0.1, "beta": 0.2, "delta": 0.15}


def cells():
    out = []
    for family, sizes in (("llama", (1.2e9, 3.2e9, 8.0e9)), ("qwen2", (0.5e9, 1.5e9, 3.1e9))):
        for method in ("depth", "width", "2:4"):
            params = TRUE_24 if method == "2:4" else TRUE_L1
            df = synthetic_table(params=params, method=method, family=family, sizes=sizes, noise=0.002)
            out += [(family, method, form, df) for form in ("L1", "L2", "L3")]
    return out


def finite_difference_objective(method, form, x):
    """p2law.analysis.fit's objective without its exact derivatives (scipy differences them instead)."""
    objective, _ = EXACT_OBJECTIVE(method, form, x)
    if method == "lm":
        return objective, "2-point"
    return (lambda v: objective(v)[0]), None


EXACT_OBJECTIVE = fit._objective


def time_fit(df, form, method):
    t = time.perf_counter()
    res = fit.fit(df, form, method)
    return time.perf_counter() - t, res


def main() -> None:
    all_cells = cells()
    print(
        f"{len(all_cells)} cells, {sum(len(c[3]) for c in all_cells) / len(all_cells):.0f} points per cell on average"
    )
    per_fit = {}
    for fit_method in fit.FITTERS:
        times, r2s, agree, conv = [], [], [], 0
        for family, method, form, df in all_cells:
            seconds, res = time_fit(df, form, fit_method)
            times.append(seconds)
            r2s.append(res.r2)
            agree.append(res.n_reached_best / res.n_starts)
            conv += res.converged
        per_fit[fit_method] = np.mean(times)
        print(
            f"{fit_method:>9}: {np.mean(times):.3f} s per fit (max {max(times):.3f} s, total {sum(times):.1f} s); "
            f"median R2 {np.median(r2s):.4f}; {conv}/{len(times)} converged; "
            f"median share of starts reaching the best {np.median(agree):.2f}"
        )
    print(f"huber-log / lm time per fit: {per_fit['huber-log'] / per_fit['lm']:.1f}x")

    # One L1 depth cell, exact vs finite-difference derivatives, both methods.
    df = all_cells[0][3]
    for fit_method in fit.FITTERS:
        exact_s, exact = time_fit(df, "L1", fit_method)
        with mock.patch.object(fit, "_objective", finite_difference_objective):
            if fit_method == "lm":
                # least_squares takes jac="2-point" as a string, which _minimise_from passes through
                fd_s, fd = time_fit(df, "L1", fit_method)
            else:
                with mock.patch.object(fit.optimize, "minimize", _minimize_without_jac):
                    fd_s, fd = time_fit(df, "L1", fit_method)
        print(
            f"{fit_method:>9} L1 llama depth: exact derivatives {exact_s:.2f} s, finite differences {fd_s:.2f} s "
            f"({fd_s / exact_s:.1f}x); starts reaching the best {exact.n_reached_best}/{exact.n_starts} vs "
            f"{fd.n_reached_best}/{fd.n_starts}; objective {exact.objective:.4g} vs {fd.objective:.4g}"
        )


_MINIMIZE = fit.optimize.minimize


def _minimize_without_jac(fun, x0, jac=None, **kw):
    return _MINIMIZE(fun, x0, jac=None, **kw)


if __name__ == "__main__":
    main()
