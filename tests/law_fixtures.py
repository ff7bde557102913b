"""Synthetic checkpoint tables drawn from a known law (shared by the law-side tests)."""

import numpy as np
import pandas as pd

from p2law.analysis import law

TRUE_L1 = {"N_C": 0.3, "D_C": 0.8, "E": 0.05, "alpha": 0.4, "beta": 0.35, "gamma": -0.9, "delta": 0.3}


def synthetic_table(
    form="L1",
    params=TRUE_L1,
    noise=0.002,
    seed=0,
    sizes=(1e9, 3e9, 8e9),
    rates=(0.15, 0.25, 0.35),
    n_ckpt=20,
    method="depth",
    family="llama",
):
    """A checkpoint table whose eval_loss follows ``form`` (paper units: N in 1e9, D in 1e6) plus noise."""
    f = law.get_form(form, method)
    vec = f.params_from_dict(params)
    rng = np.random.default_rng(seed)
    rows = []
    for n0 in sizes:
        l0 = 2.0 + 0.3 * (1e9 / n0) ** 0.2
        for rho in rates if method != "2:4" else (0.4,):
            for step, tokens in enumerate(np.linspace(25e6, 500e6, n_ckpt), start=1):
                y = float(f(n0 / 1e9, tokens / 1e6, rho, l0, vec)) + rng.normal(0, noise)
                rows.append(
                    dict(
                        family=family,
                        model=f"m{n0:.0e}",
                        n0=n0,
                        l0=l0,
                        method=method,
                        rate=rho,
                        n=n0 * (1 - rho),
                        tokens=tokens,
                        step=step,
                        train_loss=y,
                        eval_loss=y,
                        seed=seed,
                        run_id=f"{family}-{n0:.0e}-{method}-{rho}",
                    )
                )
    return pd.DataFrame(rows)
