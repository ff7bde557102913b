"""The checkpoint table: the one contract between experiments and analysis (DESIGN.md).

One row per evaluation checkpoint. Analysis code reads only this table, so a user's own loss curves in
these columns work as well as ours. ``validate`` names what is wrong; ``fit_rows`` picks the rows a
law is fitted to (one pruning method, trained checkpoints only, the ρ = 0 control left out) and says
in ``rows.attrs["note"]`` what it left out.

Columns outside the contract (a user's extra bookkeeping, say ``lr``) are carried along and ignored
by the analysis; ``validate(..., extra_ok=False)`` rejects them, which the sweep uses before it
appends to an existing file. Rows of method ``none`` are the ρ = 0 control (the unpruned base,
post-trained the same way): their rate must be 0, and they are never fitted, because every ρ-form is
L0 at ρ = 0 by construction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import paper

COLUMNS = (
    "family",
    "model",
    "n0",
    "l0",
    "method",
    "rate",
    "n",
    "tokens",
    "step",
    "train_loss",
    "eval_loss",
    "seed",
    "run_id",
)
METHODS = (*paper.METHODS, "none")  # the pruning methods, and "none" for the ρ = 0 control
NUMERIC = ("n0", "l0", "rate", "n", "tokens", "step", "eval_loss")


def read(path) -> pd.DataFrame:
    """Read and validate a checkpoint table (CSV or parquet)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint table {path} does not exist")
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    return validate(df, source=str(path))


def validate(
    df: pd.DataFrame, required=COLUMNS, extra_ok: bool = True, source: str = "table", finite=NUMERIC
) -> pd.DataFrame:
    """Check columns and values; return the table unchanged. Raises ValueError naming the problem.

    ``finite``: the columns whose values must be finite numbers (default: the numeric columns of the
    contract that are present; ``train_loss`` is not required to be finite unless named here).

    ``extra_ok=False`` rejects columns outside the contract (the sweep uses this before appending, so
    a foreign table is never extended with our rows).
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{source}: missing columns {missing}; a checkpoint table needs {list(required)}")
    if not extra_ok:
        foreign = [c for c in df.columns if c not in COLUMNS]
        if foreign:
            raise ValueError(f"{source}: foreign columns {foreign}; expected exactly {list(COLUMNS)}")
    if len(df) == 0:
        raise ValueError(f"{source}: the table has no rows")
    for col in (c for c in finite if c in df.columns):
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            raise ValueError(
                f"{source}: column {col!r} has {int(bad.sum())} NaN/inf/non-numeric values "
                f"(first at row {int(np.argmax(bad))})"
            )
    if "method" in df.columns:
        unknown = sorted(set(df["method"].astype(str)) - set(METHODS))
        if unknown:
            raise ValueError(f"{source}: unknown method(s) {unknown}; expected one of {list(METHODS)}")
        pruned = df["method"].astype(str) != "none"
        if "rate" in df.columns:
            r = df.loc[pruned, "rate"].astype(float)
            if ((r <= 0) | (r >= 1)).any():
                raise ValueError(
                    f"{source}: pruning rate rho must be in (0, 1) for pruned rows; "
                    f"found {sorted(r[(r <= 0) | (r >= 1)].unique())[:5]}"
                )
            control = df.loc[~pruned, "rate"].astype(float)
            if (control != 0).any():
                raise ValueError(
                    f"{source}: rows of method 'none' are the rho = 0 control and need rate 0; "
                    f"found {sorted(control[control != 0].unique())[:5]}"
                )
    if "tokens" in df.columns and (df["tokens"].astype(float) < 0).any():
        raise ValueError(f"{source}: tokens (D) must be >= 0")
    if "n0" in df.columns and (df["n0"].astype(float) <= 0).any():
        raise ValueError(f"{source}: n0 must be positive")
    return df


def fit_rows(df: pd.DataFrame, method: str | None = None, family: str | None = None) -> pd.DataFrame:
    """Rows a law is fitted to: one pruning method (and family), D > 0, the ρ = 0 control excluded.

    The control (method ``none``) has ρ = 0, where the ρ-forms are L0 by construction, so it carries no
    information about the constants; the rows at D = 0 are the loss right after pruning, where D^−β
    diverges. What was left out is counted in ``rows.attrs["excluded"]`` and said in
    ``rows.attrs["note"]`` (the command line prints it).
    """
    validate(df, required=("method", "tokens", "n0", "rate", "l0", "eval_loss"))
    methods = df["method"].astype(str)
    control = methods == "none"
    untrained = ~control & (df["tokens"].astype(float) <= 0)
    in_family = np.ones(len(df), dtype=bool)
    if family is not None:
        in_family = (df["family"].astype(str) == family).to_numpy()
    if method == "none":
        raise ValueError("method 'none' is the rho = 0 control; it is never fitted")
    chosen = in_family & ((methods == method).to_numpy() if method is not None else True)
    keep = chosen & ~control.to_numpy() & ~untrained.to_numpy()
    out = df.loc[keep].reset_index(drop=True)
    if out.empty:
        raise ValueError(f"no trained rows for method={method!r}, family={family!r}")
    # the control belongs to no pruning method: count the family's control rows as left out
    excluded = {
        "control": int((in_family & control.to_numpy()).sum()),
        "untrained": int((chosen & untrained.to_numpy()).sum()),
    }
    out.attrs["excluded"] = excluded
    out.attrs["note"] = (
        f"fitting {len(out)} rows; left out {excluded['control']} rows of the rho = 0 "
        f"control (method 'none') and {excluded['untrained']} rows at D = 0"
    )
    return out


def first_seed(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of each model's lowest data-order seed: one curve per (model, method, rate).

    A sweep repeats runs over seeds to measure the noise floor; fitting every repeat would weight the
    repeated models more than the others, so laws are fitted to one seed and the repeats are kept for the
    seed-to-seed spread.
    """
    if "seed" not in df.columns:
        return df
    lowest = df.groupby("model")["seed"].transform("min")
    return df.loc[df["seed"] == lowest].reset_index(drop=True)


def curve_ids(df: pd.DataFrame) -> np.ndarray:
    """One label per loss curve: ``run_id`` when present, else (model, method, rate)."""
    if "run_id" in df.columns:
        return df["run_id"].astype(str).to_numpy()
    return (df["model"].astype(str) + "|" + df["method"].astype(str) + "|" + df["rate"].astype(str)).to_numpy()


def replace_run_rows(path, run_id: str, rows: list[dict]) -> None:
    """Make ``rows`` the table's rows for ``run_id`` (others kept), written atomically.

    The whole file is rewritten through a temporary file and ``os.replace``, so a kill at any moment
    leaves either the old table or the new one, never half a line. Tables are small (a row per
    checkpoint), so rewriting is cheap.
    """
    import os

    path = Path(path)
    old = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=list(COLUMNS))
    if list(old.columns) != list(COLUMNS):
        # Never extend somebody else's table with our rows.
        raise ValueError(f"{path}: columns {list(old.columns)} are not a p2law checkpoint table's {list(COLUMNS)}")
    if len(old):
        old = old[old["run_id"].astype(str) != str(run_id)]
    new = pd.DataFrame(rows, columns=list(COLUMNS)) if rows else pd.DataFrame(columns=list(COLUMNS))
    out = pd.concat([old, new], ignore_index=True) if len(old) else new
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # per process: two writers never share one
    out.to_csv(tmp, index=False)
    os.replace(tmp, path)


def rate_key(rate) -> np.ndarray:
    """Achieved rates as keys: two rows of one curve compare equal."""
    # Repeats of one run share the pruned model, hence its achieved rate exactly; rounding absorbs CSV noise.
    return np.round(np.asarray(rate, float), 4)


def swap_seeds(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The first-seed table with every repeated curve replaced by its next seed, and how many were swapped.

    Refitting a statistic on this table and on the first seed's (``p2law.analysis.verdict.first_seed_rows``)
    gives the statistic's seed-to-seed difference."""
    if "seed" not in df.columns:
        return df, 0
    key = [df["model"], df["method"], rate_key(df["rate"])]
    seeds = df.groupby(key)["seed"].transform(lambda s: sorted(s.unique())[1] if s.nunique() > 1 else s.min())
    repeated = df.assign(_k=list(zip(*key))).groupby("_k")["seed"].nunique()
    n = int((repeated > 1).sum())
    return df.loc[df["seed"] == seeds].reset_index(drop=True), n
