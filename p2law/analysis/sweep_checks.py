"""Checks that a sweep's results can carry the paper's claims at all (torch-free; pandas only).

Before any law is fitted, three properties of the experiment decide what it can test:

* ``control_drift``: a well-trained base barely moves when it is post-trained unpruned (ρ = 0). If its
  loss keeps falling, part of every pruned curve's fall is plain further training, and "ΔL → 0 as ρ → 0"
  cannot hold. The evidence rule (DESIGN.md) allows 0.01 nats over the whole post-training budget.
* ``rate_matching``: Trend 1 compares models of one family at the same pruning rate; their achieved ρ
  must be close (0.05 for depth, 0.03 for width) and no two curves of one model may share a ρ.
* ``split_table``: the corpus splits the manifest recorded (documents, tokens, fingerprints), which the
  data tests prove disjoint.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DRIFT_TOLERANCE = 0.01  # nats: a base whose control moves less than this over its budget is well-trained
RATE_TOLERANCE = {"depth": 0.05, "width": 0.03}


def control_drift(df: pd.DataFrame, loss_col: str = "eval_loss", tolerance: float = DRIFT_TOLERANCE) -> pd.DataFrame:
    """Per ρ = 0 control curve (model × seed): how far its loss moves from L0 over its run.

    ``max |L − L0|`` is the largest distance at any checkpoint, ``final − L0`` the signed end point (negative:
    the base kept improving). ``flat`` is whether the largest distance is within ``tolerance``.
    """
    columns = ["model", "seed", "n0", "L0", "final", "final − L0", "max |L − L0|", "flat"]
    controls = df[df["method"] == "none"]
    rows = []
    for (model, seed), c in controls.groupby(["model", "seed"]):
        c = c.sort_values("tokens")
        l0 = float(c["l0"].iloc[0])
        dist = (c[loss_col] - l0).to_numpy(float)
        rows.append(
            {
                "model": model,
                "seed": int(seed),
                "n0": int(c["n0"].iloc[0]),
                "L0": l0,
                "final": float(c[loss_col].iloc[-1]),
                "final − L0": float(dist[-1]),
                "max |L − L0|": float(np.abs(dist).max()),
                "flat": bool(np.abs(dist).max() <= tolerance),
            }
        )
    return pd.DataFrame(rows, columns=columns).sort_values(["n0", "seed"]).reset_index(drop=True)


def rate_matching(df: pd.DataFrame, tolerance: dict | None = None) -> pd.DataFrame:
    """Per family × method × rate rank: each model's achieved ρ (first seed), their spread and the verdict.

    A model with two curves at one ρ has a duplicate: ``distinct`` is False for every rank of that model's
    method, because rank numbering would pair the wrong curves.
    """
    tolerance = tolerance or RATE_TOLERANCE
    runs = (
        df[df["method"].isin(list(tolerance))]
        .groupby("run_id")[["family", "method", "model", "n0", "rate", "seed"]]
        .first()
        .reset_index()
    )
    runs = runs[runs["seed"] == runs.groupby("model")["seed"].transform("min")]
    out = []
    for (family, method), g in runs.groupby(["family", "method"]):
        g = g.copy()
        dup = g.groupby("model")["rate"].transform(lambda r: r.round(6).duplicated(keep=False).any())
        g["rank"] = g.groupby("model")["rate"].rank(method="first").astype(int)
        for rank, r in g.groupby("rank"):
            r = r.sort_values("n0")
            spread = float(r["rate"].max() - r["rate"].min())
            out.append(
                {
                    "family": family,
                    "method": method,
                    "rank": int(rank),
                    "rates": ", ".join(f"{m.rsplit('-', 1)[-1]} {x:.3f}" for m, x in zip(r["model"], r["rate"])),
                    "spread": spread,
                    "limit": tolerance[method],
                    "distinct": not bool(dup[r.index].any()),
                    "matched": spread <= tolerance[method] + 1e-9 and not bool(dup[r.index].any()),
                }
            )
    return pd.DataFrame(out, columns=["family", "method", "rank", "rates", "spread", "limit", "distinct", "matched"])


def split_table(corpus_info: dict) -> pd.DataFrame:
    """The manifest's corpus splits as a table (documents, MB, blocks, tokens, fingerprint).

    A streamed corpus (the token store) counts documents per pass of the stream, not per split, and no bytes.
    """
    rows = []
    passes = (corpus_info or {}).get("documents", {})
    for name, s in (corpus_info or {}).get("splits", {}).items():
        streamed = sum(p.get(name, 0) for p in passes.values()) if isinstance(passes, dict) else None
        rows.append(
            {
                "split": name,
                "documents": s.get("n_documents", streamed or None),
                "MB": s["n_bytes"] / 1e6 if "n_bytes" in s else None,
                "blocks": s.get("blocks"),
                "tokens": s.get("tokens"),
                "documents its blocks come from": s.get("documents_in_blocks"),
                "blocks dropped (text seen in an earlier split)": s.get("blocks_dropped_as_seen"),
                "sha256 of its blocks": (s.get("sha256") or "")[:12],
            }
        )
    return pd.DataFrame(rows)


def curves_on_other_eval(pretrain: dict[str, dict], corpus_info: dict) -> list[str]:
    """Bases whose pretraining curve was measured on other evaluation blocks than the sweep's losses.

    A base is reused as long as its pretraining data and recipe are unchanged, so after the evaluation
    set changes its recorded curve stays on the old blocks (a record without the fingerprint predates it)."""
    current = ((corpus_info or {}).get("splits", {}).get("eval") or {}).get("sha256")
    return [m for m, info in pretrain.items() if info.get("curve") and info.get("curve_eval_sha256") != current]


def pretrain_curves(pretrain: dict[str, dict]) -> pd.DataFrame:
    """Long table of every base's pretraining curve: model, tokens, tokens per parameter, eval loss."""
    rows = []
    for model, info in pretrain.items():
        n = info.get("n_params")
        for tokens, loss in info.get("curve", []):
            rows.append(
                {
                    "model": model,
                    "tokens": tokens,
                    "tokens per parameter": tokens / n if n else np.nan,
                    "eval_loss": loss,
                }
            )
    return pd.DataFrame(rows, columns=["model", "tokens", "tokens per parameter", "eval_loss"])
