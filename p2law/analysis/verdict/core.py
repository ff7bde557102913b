"""Verdicts and the rule every claim goes through: four states, a noise floor from repeated seeds."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ...table import rate_key

CONFIRMED = "confirmed"
NOT_CONFIRMED = "not confirmed"
NOT_DISTINGUISHABLE = "not distinguishable"
NOT_TESTABLE = "not testable"
STATES = (CONFIRMED, NOT_CONFIRMED, NOT_DISTINGUISHABLE, NOT_TESTABLE)


@dataclass(frozen=True)
class Verdict:
    claim: str
    source: str  # where the paper makes the claim
    paper: str  # what the paper reports
    ours: str  # what our results show
    verdict: str  # one of STATES
    rule: str  # how the evidence was turned into the verdict
    baseline: str = "none: this rule names no baseline"  # the trivial predictor the claim must beat
    baseline_value: str = "–"  # the baseline's number, in the units of ``ours``
    noise_floor: str = "–"  # the seed-to-seed spread the difference is held against


def verdict_table(verdicts) -> pd.DataFrame:
    return pd.DataFrame([asdict(v) for v in verdicts], columns=list(Verdict.__dataclass_fields__))


def require_columns(df: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(df.columns)}")


RATE_MATCH = 0.03  # curves of two models are "at the same ρ" when their achieved rates differ by ≤ this


@dataclass(frozen=True)
class Floor:
    """The seed-to-seed spread of a statistic: the RMS difference between repeats of one curve.

    The RMS of s(seed a) − s(seed b) over matched curves estimates √2·σ, the spread of a *difference* of two
    single-seed values, which is what every rule compares (ours against a baseline, one model against
    another). ``value`` is NaN when no curve was repeated: the floor is then unknown.
    """

    value: float
    n_pairs: int
    statistic: str

    @property
    def known(self) -> bool:
        return self.n_pairs > 0 and bool(np.isfinite(self.value))

    def text(self, fmt: str = "{:.3g}") -> str:
        if not self.known:
            return f"unknown (no repeated seeds for {self.statistic})"
        return f"{fmt.format(self.value)} ({self.statistic}, {self.n_pairs} seed pair(s))"


def noise_floor(
    stats: pd.DataFrame, value: str = "value", statistic: str = "statistic", keys=("model", "method", "rate")
) -> Floor:
    """Seed-to-seed spread of a per-curve statistic (see ``Floor``).

    ``stats`` has one row per curve and seed: ``keys`` (what makes two rows repeats of one curve), ``seed``
    and ``value``. Every pair of seeds of one curve contributes its difference.
    """
    require_columns(stats, [*keys, "seed", value], "statistic table")
    s = stats.dropna(subset=[value]).copy()
    if "rate" in keys:
        s["rate"] = rate_key(s["rate"])
    diffs = []
    for _, g in s.groupby(list(keys)):
        v = g.drop_duplicates("seed")[value].to_numpy(float)
        diffs += [v[i] - v[j] for i in range(len(v)) for j in range(i + 1, len(v))]
    if not diffs:
        return Floor(float("nan"), 0, statistic)
    return Floor(float(np.sqrt(np.mean(np.square(diffs)))), len(diffs), statistic)


def floor_from_repeat(value_first: float, value_repeat: float, statistic: str, n_repeated: int) -> Floor:
    """The floor of a table-level statistic (a fit's held-out score): the statistic on the first seed's
    curves against the same statistic with every repeated curve swapped for its repeat (``swap_seeds``)."""
    if n_repeated == 0 or not (np.isfinite(value_first) and np.isfinite(value_repeat)):
        return Floor(float("nan"), 0, statistic)
    return Floor(abs(float(value_first) - float(value_repeat)), n_repeated, statistic)


def first_seed_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Each curve's lowest seed: one curve per (model, method, rate)."""
    if "seed" not in df.columns:
        return df
    key = [df["model"], df["method"], rate_key(df["rate"])]
    lowest = df.groupby(key)["seed"].transform("min")
    return df.loc[df["seed"] == lowest].reset_index(drop=True)


def decide(effect, floor: Floor) -> str:
    """The verdict on an effect that is positive when the claim holds (ours better than the baseline).

    ``effect`` is one number or a (low, high) range (a fit whose constants are not identified gives a range
    of equally good predictions). Confirmed: the whole range exceeds the floor. Not confirmed: the whole
    range is below −floor, or, with the floor unknown, at or below 0 (losing to the baseline needs no floor
    to fail the claim). Otherwise not distinguishable. NaN: not testable.
    """
    lo, hi = (effect, effect) if np.ndim(effect) == 0 else (min(effect), max(effect))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return NOT_TESTABLE
    if not floor.known:
        return NOT_CONFIRMED if hi <= 0 else NOT_DISTINGUISHABLE
    if lo > floor.value:
        return CONFIRMED
    if hi < -floor.value:
        return NOT_CONFIRMED
    return NOT_DISTINGUISHABLE


def format_value(x, fmt="{:.4g}") -> str:
    if np.ndim(x):
        lo, hi = min(x), max(x)
        return fmt.format(lo) if lo == hi else f"[{fmt.format(lo)}, {fmt.format(hi)}]"
    return "–" if not np.isfinite(x) else fmt.format(x)
