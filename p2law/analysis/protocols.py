"""The three generalization splits of §4.3: fit on one part of the table, validate on the rest.

Each returns ``(fit_rows, validation_rows)``, both DataFrames with the input's columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..table import curve_ids, validate


def split_by_tokens(df: pd.DataFrame, fraction: float = 0.8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Dataset size: the first ``fraction`` of each curve's checkpoints (by tokens) vs the rest."""
    validate(df, required=("tokens",))
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    ids = curve_ids(df)
    in_fit = np.zeros(len(df), dtype=bool)
    for c in np.unique(ids):
        idx = np.flatnonzero(ids == c)
        order = idx[np.argsort(df["tokens"].to_numpy(float)[idx], kind="stable")]
        n_fit = int(np.floor(fraction * len(order) + 1e-9))
        if n_fit < 1 or n_fit == len(order):
            raise ValueError(f"curve {c!r} has {len(order)} checkpoints: too few to split {fraction:.0%}/rest")
        in_fit[order[:n_fit]] = True
    return df.loc[in_fit].reset_index(drop=True), df.loc[~in_fit].reset_index(drop=True)


def split_by_model_size(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Model size: the smaller models of each family vs the family's largest (by n0)."""
    validate(df, required=("family", "n0"))
    largest = df.groupby("family")["n0"].transform("max")
    sizes = df.groupby("family")["n0"].nunique()
    if (sizes < 2).any():
        raise ValueError(
            f"model-size split needs at least two model sizes in every family; "
            f"{sorted(sizes[sizes < 2].index.astype(str))} have one"
        )
    held = df["n0"] == largest
    return df.loc[~held].reset_index(drop=True), df.loc[held].reset_index(drop=True)


def split_by_rate(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pruning rate: the lower rates of each (model, method) vs its highest rate.

    Per model, because depth pruning's rates come from whole layers and differ between models (Table 1).
    """
    validate(df, required=("model", "method", "rate"))
    keys = ["model", "method"]
    rates = df.groupby(keys)["rate"].nunique()
    if (rates < 2).any():
        few = [f"{m}/{p}" for m, p in rates[rates < 2].index]
        raise ValueError(
            f"rate split needs at least two pruning rates for every (model, method); {few[:5]} "
            "have one (2:4 has a single rate: the paper splits depth and width only)"
        )
    highest = df.groupby(keys)["rate"].transform("max")
    held = np.isclose(df["rate"].astype(float), highest.astype(float))
    return df.loc[~held].reset_index(drop=True), df.loc[held].reset_index(drop=True)


SPLITS = {"dataset_size": split_by_tokens, "model_size": split_by_model_size, "pruning_rate": split_by_rate}
