"""Claim-by-claim verdicts: does our reproduction confirm what the paper says?

Each function takes tables (the checkpoint table, or the score tables the book's pages save) and returns a
``Verdict`` with the evidence behind it, so the book's verdict table is computed, never typed in. The rule
that turns evidence into a verdict is stated in each function's docstring and in the verdict's ``rule``.

Four states. A claim is *confirmed* when our number beats the rule's stated baseline by more than the
noise floor (the seed-to-seed spread of the same statistic, from the sweep's repeated data-order seeds),
*not confirmed* when it loses to the baseline, *not distinguishable* when the difference is under the floor
(or the floor is unknown: one seed), and *not testable* when the data cannot form the comparison. Every
rule in the second half of this module (``decide`` and what uses it) can fail: its tests feed it data where
the claim is false. Pure pandas/numpy; never imports torch.

One module per claim group, all on ``core`` (the states, ``Verdict``, the noise floor and ``decide``):
``trend1`` (larger models lose less), ``trend2`` (the gap grows with the rate), ``forms`` (which form of
the law, Tables 2/4/6, Condition 2), ``baselines`` (held-out predictions against trivial ones, Table 3),
``planner`` (the ρ = 0 control's share, where curves flatten). Everything is importable from here.
"""

from __future__ import annotations

# computed with the tables (so they live where the fit cache's code hash covers them), used by rules too
from ...table import swap_seeds
from ..budget import flattening_tokens
from .baselines import (
    BASELINES,
    beats_baseline,
    carry_forward,
    curve_at,
    generalization_vs_baseline,
    held_out_floor,
    held_out_scores,
    next_lower_rate,
    smaller_model_shifted,
)
from .core import (
    CONFIRMED,
    NOT_CONFIRMED,
    NOT_DISTINGUISHABLE,
    NOT_TESTABLE,
    RATE_MATCH,
    STATES,
    Floor,
    Verdict,
    decide,
    first_seed_rows,
    floor_from_repeat,
    format_value,
    noise_floor,
    require_columns,
    verdict_table,
)
from .forms import (
    asd_vs_flat,
    best_form,
    condition2,
    flat_line_asd,
    form_comparison,
    form_effect,
    form_floor,
    form_wins,
    generalization,
)
from .planner import control_share, flattening
from .trend1 import condition2_law_and_data, log_slope, rate_matched_pairs, relative_drops, trend1, trend1_slopes
from .trend2 import end_gaps, local_slopes, trend2, trend2_power_law

__all__ = [
    "swap_seeds",
    "flattening_tokens",
    "CONFIRMED",
    "NOT_CONFIRMED",
    "NOT_DISTINGUISHABLE",
    "NOT_TESTABLE",
    "STATES",
    "Verdict",
    "verdict_table",
    "require_columns",
    "RATE_MATCH",
    "Floor",
    "noise_floor",
    "floor_from_repeat",
    "first_seed_rows",
    "decide",
    "format_value",
    "relative_drops",
    "trend1",
    "log_slope",
    "rate_matched_pairs",
    "trend1_slopes",
    "condition2_law_and_data",
    "trend2",
    "end_gaps",
    "local_slopes",
    "trend2_power_law",
    "form_wins",
    "best_form",
    "generalization",
    "condition2",
    "flat_line_asd",
    "asd_vs_flat",
    "form_effect",
    "form_floor",
    "form_comparison",
    "carry_forward",
    "curve_at",
    "next_lower_rate",
    "smaller_model_shifted",
    "held_out_scores",
    "beats_baseline",
    "BASELINES",
    "held_out_floor",
    "generalization_vs_baseline",
    "control_share",
    "flattening",
]
