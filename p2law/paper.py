"""The P² Law paper's published numbers, as data.

Everything here was typed in from the paper (Chen et al., "P² Law: Scaling Law for Post-Training After
Model Pruning"; the later version with Tables 2–6, cross-checked against the earlier draft where the two
overlap, which is Table 1 only). Nothing is fitted or recomputed in this module except the parameter
counts of the six base models, which follow from their published architectures (``config.json`` on the
Hugging Face hub); the paper itself does not print them.

Keys used in every table
------------------------
``family``  ``"llama"`` (Llama-3 series) or ``"qwen2"`` (Qwen-2.5 series), the same names as
            ``p2law.lab.models.toy_family`` so paper rows and our rows join on them.
``method``  ``"depth"``, ``"width"`` or ``"2:4"`` (the checkpoint table's names).
``form``    ``"L1"`` … ``"L5"`` (Eqs. 10–12, 21–22; for 2:4 the ρ-free Eqs. 13–15).

Units (see ``UNITS``)
---------------------
Rates are fractions (Table 1's "15%" is ``0.15``). The fitted constants of Table 5 are in the paper's
units: N0 in billions of parameters (``N_UNIT``), D in millions of tokens (``D_UNIT``). The later paper
does not restate these units; they come from the earlier draft ("measured in billions" / "measured in
millions") and are the only ones under which Table 5 gives losses of a sensible size (see
``TRANSCRIPTION_NOTES``). R², Huber loss and ASD are dimensionless / in nats as printed.

The tables are plain pandas DataFrames; copy one before changing it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

FAMILIES = ("llama", "qwen2")
FAMILY_LABELS = {"llama": "Llama-3 series", "qwen2": "Qwen-2.5 series"}
METHODS = ("depth", "width", "2:4")
METHOD_LABELS = {"depth": "Depth pruning", "width": "Width pruning", "2:4": "2:4 semi-structured pruning"}
CONSTANTS = ("N_C", "D_C", "E", "alpha", "beta", "gamma", "delta")

N_UNIT = 1e9  # Table 5's N0 is in billions of parameters
D_UNIT = 1e6  # Table 5's D is in millions of tokens

UNITS = {
    "n0": "parameters of the unpruned model; Table 5's laws take N0 / N_UNIT (billions)",
    "tokens": "post-training tokens D; Table 5's laws take D / D_UNIT (millions)",
    "rate": "pruning rate rho = 1 - N/N0 as a fraction (0.15 = 15%)",
    "r2": "coefficient of determination, dimensionless",
    "huber": "Huber loss of the loss residuals (nats), as printed with 6 decimals",
    "asd": "average slope difference, Eq. 8 (nats per sampling step), as printed with 6 decimals",
    "constants": "N_C, D_C, E in nats (for depth/width: nats of Delta L = L - L0; for 2:4: nats of L); "
    "alpha, beta, gamma, delta dimensionless exponents",
}

# Settings of §3.1 and App. B (the `paper` profile re-uses them).
SETTINGS = {
    "calibration_samples": 1024,
    "calibration_corpus": "SlimPajama",
    "post_training_corpus": "SlimPajama",
    "learning_rate": 2e-5,
    "batch_tokens": 256 * 1024,  # "256k tokens"; the paper does not say whether k = 1000 or 1024
    "post_training_tokens": {"small": 500_000_000, "large": 1_000_000_000},
}


@dataclass(frozen=True)
class PaperModel:
    """One of the paper's six base models, described by its published architecture."""

    name: str  # as the paper writes it
    hub_id: str
    family: str
    n_layers: int
    hidden_size: int
    intermediate_size: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab_size: int
    tied_embeddings: bool
    qkv_bias: bool  # Qwen2 has biases on q, k, v projections; Llama has none
    post_training_tokens: int  # §3.1: 1B tokens for the 3B/8B models, 0.5B for the others

    @property
    def layer_params(self) -> int:
        """Parameters of one decoder layer (attention, gated MLP, two RMSNorm weights)."""
        q_out = self.n_heads * self.head_dim
        kv_out = self.n_kv_heads * self.head_dim
        attention = self.hidden_size * (q_out + 2 * kv_out) + q_out * self.hidden_size
        if self.qkv_bias:
            attention += q_out + 2 * kv_out
        mlp = 3 * self.hidden_size * self.intermediate_size
        return attention + mlp + 2 * self.hidden_size

    @property
    def n_params(self) -> int:
        """All parameters, tied embeddings counted once (the rule of ``p2law.lab.models.count_params``)."""
        embeddings = self.vocab_size * self.hidden_size * (1 if self.tied_embeddings else 2)
        return embeddings + self.n_layers * self.layer_params + self.hidden_size  # + final norm

    def depth_rate(self, n_layers_removed: int) -> float:
        """rho = 1 - N/N0 after removing whole decoder layers."""
        if not 0 <= n_layers_removed < self.n_layers:
            raise ValueError(f"n_layers_removed must be in [0, {self.n_layers}), got {n_layers_removed}")
        return n_layers_removed * self.layer_params / self.n_params


_PAPER_MODELS = (
    PaperModel(
        "Llama-3.2-1B", "meta-llama/Llama-3.2-1B", "llama", 16, 2048, 8192, 32, 8, 64, 128256, True, False, 500_000_000
    ),
    PaperModel(
        "Llama-3.2-3B",
        "meta-llama/Llama-3.2-3B",
        "llama",
        28,
        3072,
        8192,
        24,
        8,
        128,
        128256,
        True,
        False,
        1_000_000_000,
    ),
    PaperModel(
        "Llama-3.1-8B",
        "meta-llama/Llama-3.1-8B",
        "llama",
        32,
        4096,
        14336,
        32,
        8,
        128,
        128256,
        False,
        False,
        1_000_000_000,
    ),
    PaperModel(
        "Qwen-2.5-0.5B", "Qwen/Qwen2.5-0.5B", "qwen2", 24, 896, 4864, 14, 2, 64, 151936, True, True, 500_000_000
    ),
    PaperModel(
        "Qwen-2.5-1.5B", "Qwen/Qwen2.5-1.5B", "qwen2", 28, 1536, 8960, 12, 2, 128, 151936, True, True, 500_000_000
    ),
    PaperModel(
        "Qwen-2.5-3B", "Qwen/Qwen2.5-3B", "qwen2", 36, 2048, 11008, 16, 2, 128, 151936, True, True, 1_000_000_000
    ),
)
PAPER_MODELS = {m.name: m for m in _PAPER_MODELS}

MODELS = pd.DataFrame(
    [
        {
            "family": m.family,
            "model": m.name,
            "hub_id": m.hub_id,
            "n_params": m.n_params,
            "n_params_billions": m.n_params / N_UNIT,
            "n_layers": m.n_layers,
            "hidden_size": m.hidden_size,
            "post_training_tokens": m.post_training_tokens,
        }
        for m in _PAPER_MODELS
    ]
)

# ---------------------------------------------------------------------------------------------------
# Table 1: pruning rates (percent in the paper; fractions here). Identical in both paper versions.
_TABLE1_PERCENT = {
    # model: (depth rates, width rates)
    "Llama-3.2-1B": ((15, 25, 30), (15, 25, 35)),
    "Llama-3.2-3B": ((16, 25, 34), (15, 25, 35)),
    "Llama-3.1-8B": ((16, 24, 33), (15, 25, 35)),
    "Qwen-2.5-0.5B": ((15, 21, 27), (15, 25, 35)),
    "Qwen-2.5-1.5B": ((15, 24, 33), (15, 25, 35)),
    "Qwen-2.5-3B": ((17, 25, 32), (15, 25, 35)),
}
TABLE1 = pd.DataFrame(
    [
        {"family": PAPER_MODELS[model].family, "model": model, "method": method, "rate": pct / 100}
        for model, (depth, width) in _TABLE1_PERCENT.items()
        for method, rates in (("depth", depth), ("width", width))
        for pct in rates
    ]
)


def depth_layers_for_table1() -> pd.DataFrame:
    """For each Table 1 depth rate, the number of removed layers whose exact rho rounds to it.

    Derived, not published: the paper gives only the rounded percentages. Counting all parameters
    (embeddings included) every printed rate is reached by exactly one whole number of layers; the
    ``rate_exact`` column is that layer count's rho.
    """
    rows = []
    for row in TABLE1[TABLE1["method"] == "depth"].itertuples():
        model = PAPER_MODELS[row.model]
        matches = [k for k in range(model.n_layers) if round(100 * model.depth_rate(k)) == round(100 * row.rate)]
        if len(matches) != 1:
            raise ValueError(f"{row.model}: {len(matches)} layer counts round to {row.rate:.0%}: {matches}")
        rows.append(
            {
                "family": row.family,
                "model": row.model,
                "rate": row.rate,
                "n_layers_removed": matches[0],
                "rate_exact": model.depth_rate(matches[0]),
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------
# Tables 2, 3, 4: (R², Huber loss, ASD) per (family, row, method). Rows of the dicts below follow the
# paper's layout: for each row label, the three methods in the order depth, width, 2:4. None = "-".
_Triple = tuple[float, float, float] | None


def _metric_table(cells: dict[tuple[str, str], tuple[_Triple, _Triple, _Triple]], row_key: str) -> pd.DataFrame:
    rows = []
    for (family, label), per_method in cells.items():
        for method, triple in zip(METHODS, per_method):
            r2, huber, asd = triple if triple is not None else (np.nan, np.nan, np.nan)
            rows.append({"family": family, row_key: label, "method": method, "r2": r2, "huber": huber, "asd": asd})
    return pd.DataFrame(rows)


_TABLE2_CELLS = {
    ("llama", "L1"): ((0.9717, 0.000016, 0.000619), (-1.2985, 0.000177, 0.000592), (0.8126, 0.000056, 0.001466)),
    ("llama", "L2"): ((0.9300, 0.000045, 0.001150), (-2.5578, 0.000450, 0.001419), (0.7797, 0.000079, 0.002294)),
    ("llama", "L3"): ((0.7737, 0.000118, 0.000827), (-4.5905, 0.000776, 0.001754), (-0.2555, 0.000493, 0.002054)),
    ("qwen2", "L1"): ((0.9781, 0.000011, 0.000524), (0.9891, 0.000010, 0.000648), (0.9995, 0.000000, 0.000191)),
    ("qwen2", "L2"): ((0.9423, 0.000031, 0.000879), (0.9803, 0.000027, 0.000712), (0.9867, 0.000010, 0.000753)),
    ("qwen2", "L3"): ((0.8855, 0.000075, 0.001270), (0.9824, 0.000024, 0.000733), (0.9930, 0.000005, 0.000491)),
}
TABLE2 = _metric_table(_TABLE2_CELLS, "form")
"""Table 2: fit quality of L1, L2, L3 fitted on all checkpoints (one law per family and method)."""

_TABLE3_CELLS = {
    ("llama", "dataset_size"): (
        (0.9725, 0.000016, 0.001001),
        (0.9270, 0.000019, 0.000674),
        (0.8244, 0.000063, 0.002561),
    ),
    ("llama", "model_size"): ((-0.5441, 0.000745, 0.001321), None, None),
    ("llama", "pruning_rate"): ((0.9676, 0.000059, 0.000879), (0.9707, 0.000056, 0.001123), None),
    ("qwen2", "dataset_size"): (
        (0.9780, 0.000012, 0.001026),
        (0.9896, 0.000010, 0.001116),
        (0.9940, 0.000000, 0.000299),
    ),
    ("qwen2", "model_size"): ((-0.8786, 0.000763, 0.001573), (0.8627, 0.000137, 0.001772), None),
    ("qwen2", "pruning_rate"): ((0.9660, 0.000043, 0.000920), (0.9704, 0.000095, 0.001003), None),
}
TABLE3 = _metric_table(_TABLE3_CELLS, "protocol")
"""Table 3: L1 evaluated on held-out checkpoints under the three §4.3 protocols (NaN where the paper
prints "-": no model-size or pruning-rate split for 2:4, no Llama width model-size split)."""

GENERALIZATION_PROTOCOLS = {
    "dataset_size": "fit on the first 80% of each curve's checkpoints, evaluate on the last 20%",
    "model_size": "fit on the two smaller models of a family, evaluate on the largest",
    "pruning_rate": "fit on the two lower pruning rates, evaluate on the highest",
}

_TABLE4_CELLS = {
    ("llama", "L1"): _TABLE2_CELLS[("llama", "L1")],
    ("llama", "L4"): ((0.9339, 0.000035, 0.001482), (-1.3660, 0.000203, 0.000814), (0.7157, 0.000112, 0.002117)),
    ("llama", "L5"): ((0.6535, 0.000198, 0.001822), (-1.7948, 0.000345, 0.000729), (-0.3809, 0.000638, 0.003687)),
    ("qwen2", "L1"): _TABLE2_CELLS[("qwen2", "L1")],
    ("qwen2", "L4"): ((0.7730, 0.000192, 0.004085), (0.9838, 0.000015, 0.001126), (0.9960, 0.000002, 0.000550)),
    ("qwen2", "L5"): ((0.8283, 0.000134, 0.002648), (0.9694, 0.000040, 0.001007), (0.8360, 0.000118, 0.003925)),
}
TABLE4 = _metric_table(_TABLE4_CELLS, "form")
"""Table 4 (App. D): L1 (Chinchilla-based) against L4 and L5 (Eqs. 21–22, built on the OpenAI/Kaplan
law), all checkpoints, same metrics as Table 2. Its L1 rows are Table 2's L1 rows."""

# ---------------------------------------------------------------------------------------------------
# Table 5: fitted constants. Order within a tuple: N_C, D_C, E, alpha, beta, gamma, delta; None = "-"
# (the constant is not part of that form). The 2:4 columns have no gamma (Eqs. 13–15 have no rho).
_TABLE5_CELLS = {
    ("llama", "L1"): (
        (0.02, 5.94, 0.14, -1.57, 0.23, 1.08, 0.29),
        (0.05, 5.86, -2.52, -1.68, 0.08, -0.97, 0.38),
        (38.26, 0.87, 2.49, 26.53, 0.37, None, 0.05),
    ),
    ("llama", "L2"): (
        (0.64, 7.99, 0.73, 2.45, 0.47, -1.08, None),
        (0.00, 3.53, 0.20, -21.89, 0.25, -0.97, None),
        (0.53, 0.89, 2.19, 0.92, 0.41, None, None),
    ),
    ("llama", "L3"): (
        (None, 5.93, 0.54, None, 0.30, -1.06, 0.15),
        (None, 3.87, 0.53, None, 0.34, -0.98, -0.05),
        (None, 0.80, 2.5, None, 0.22, None, 0.07),
    ),
    ("qwen2", "L1"): (
        (0.01, 4.32, 0.20, -3.73, 0.21, -1.17, 0.22),
        (-0.58, 7.01, -1.89, 0.38, 0.10, -1.28, 0.16),
        (1.85, 0.93, 0.32, -0.12, 0.10, None, 0.17),
    ),
    ("qwen2", "L2"): (
        (0.02, 4.78, 0.62, 4.08, 0.32, -1.17, None),
        (-0.01, 5.84, -0.65, -1.58, 0.18, -1.28, None),
        (1.52, 0.75, 0.92, 0.15, 0.18, None, None),
    ),
    ("qwen2", "L3"): (
        (None, 4.77, 0.87, None, 0.36, -1.15, 0.16),
        (None, 5.95, -0.91, None, 0.16, -1.28, 0.02),
        (None, 0.76, 2.41, None, 0.16, None, 0.09),
    ),
}
TABLE5 = pd.DataFrame(
    [
        {
            "family": family,
            "form": form,
            "method": method,
            **{name: (np.nan if value is None else value) for name, value in zip(CONSTANTS, values)},
        }
        for (family, form), per_method in _TABLE5_CELLS.items()
        for method, values in zip(METHODS, per_method)
    ]
)
"""Table 5 (App. E): fitted constants, one row per (family, form, method); NaN where the constant is
not part of the form. Units: N0 in billions, D in millions (``N_UNIT``, ``D_UNIT``)."""

# ---------------------------------------------------------------------------------------------------
# Table 6: does the fitted law satisfy Condition 2 (d²L/dN0 dD > 0)? ✓ = True, × = False.
_TABLE6_CELLS = {
    ("llama", "L1"): (True, True, True),
    ("llama", "L2"): (False, False, False),
    ("llama", "L3"): (True, False, True),
    ("qwen2", "L1"): (True, True, True),
    ("qwen2", "L2"): (False, False, False),
    ("qwen2", "L3"): (True, True, True),
}
TABLE6 = pd.DataFrame(
    [
        {"family": family, "form": form, "method": method, "condition2": ok}
        for (family, form), per_method in _TABLE6_CELLS.items()
        for method, ok in zip(METHODS, per_method)
    ]
)
"""Table 6 (App. E): compliance of the fitted L1, L2, L3 with Condition 2."""


def law_constants(family: str, method: str, form: str) -> dict[str, float]:
    """The Table 5 constants of one fitted law, only those its form uses (paper units)."""
    _check_key("family", family, FAMILIES)
    _check_key("method", method, METHODS)
    _check_key("form", form, ("L1", "L2", "L3"))
    row = TABLE5[(TABLE5["family"] == family) & (TABLE5["method"] == method) & (TABLE5["form"] == form)]
    values = row.iloc[0][list(CONSTANTS)]
    return {name: float(value) for name, value in values.items() if not np.isnan(value)}


def law(family: str, method: str, form: str, constants: dict | None = None):
    """Table 5's fitted law for (family, method, form) as a ``p2law.analysis.fit.FitResult`` in the paper's units
    (N0 in billions, D in millions of tokens), so it predicts, plans and scores like one of our fits.
    ``constants`` replaces Table 5's (e.g. a refit in the same units). For 2:4 the law predicts L itself
    (Eqs. 13-15), for depth and width ΔL on top of the ``l0`` it is given."""
    from .analysis.fit import FitResult  # numpy/scipy only; imported here so the published numbers load without it

    constants = law_constants(family, method, form) if constants is None else constants
    return FitResult.from_constants(form, constants, n_unit=N_UNIT, d_unit=D_UNIT, pruning_method=method)


def _check_key(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(map(repr, allowed))}")


TRANSCRIPTION_NOTES = (
    "Table 1 is identical in the earlier draft and the later version. Tables 2-6 exist only in the later "
    "version, so they could not be cross-checked against a second text; Table 4's L1 rows equal Table 2's.",
    "Units of Table 5 are not stated in the later version. The earlier draft fits its laws with N in billions "
    "of parameters and D in millions of tokens; with these units the 2:4 laws (which predict L itself, Eqs. "
    "13-15) give losses near 2.3-2.7 nats, with raw counts they would not. We assume the same units.",
    "Table 5 prints constants with two decimals. Llama width L2 has N_C printed as 0.00 with alpha = -21.89: "
    "the fitted N_C must be tiny but non-zero (N_C * N0**21.89 is huge for N0 = 8), so that law cannot be "
    "evaluated from the printed numbers.",
    "Table 5, Llama 2:4 L3: E is printed with one decimal (2.5) where every other entry has two.",
    "Table 5, Llama depth L1: gamma is printed as +1.08; the same cell is -1.08 for L2 and -1.06 for L3, and "
    "every other gamma in the table is negative. Transcribed as printed; the notebook shows the consequences.",
    "Tables 2-4 print Huber losses with six decimals; 0.000000 (Qwen 2:4) is kept as 0.0.",
    "Table 3 prints '-' for splits the paper did not run (NaN here): model size and pruning rate for 2:4, and "
    "model size for Llama width (Llama-3.1-8B width pruning is excluded as anomalous, Sec. 4.2).",
    "Table 1's width rates are round targets (15/25/35%) for every model; the paper does not say whether they "
    "are fractions of embedding channels or of parameters. Depth rates match whole layers counted over all "
    "parameters (see depth_layers_for_table1).",
    "Table 4: the paper gives L4 and L5 with the (1/rho)^gamma factor only; for 2:4 it does not print the "
    "rho-free variants it must have fitted.",
    "Batch size '256k tokens' (Sec. 3.1): k = 1000 or 1024 is not said; SETTINGS uses 256 * 1024.",
)
