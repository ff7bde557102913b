"""Plain magnitude 2:4: SparseGPT's baseline (Frantar & Alistarh, 2023, compare it throughout).

In every group of 4 consecutive inputs of every output row, the 2 weights of largest |w| stay and the
other 2 become zero; nothing else changes and no calibration data is read. The same seven matrices of
every decoder block as ``prune_2of4``, so the two can be compared on one model (the real-model page does).
"""

from __future__ import annotations

import torch

from .common import ATTN_PROJ, MLP_PROJ, PruneReport, check_llama_shaped, count_params


def magnitude_mask_2of4(w: torch.Tensor) -> torch.Tensor:
    """Keep-mask (True = kept) with exactly the 2 largest |w| of every 4 consecutive inputs per row."""
    if w.ndim != 2 or w.shape[1] % 4:
        raise ValueError(f"expected a matrix with in-features divisible by 4, got shape {tuple(w.shape)}")
    groups = w.detach().abs().reshape(w.shape[0], -1, 4)
    drop = groups.topk(2, dim=-1, largest=False).indices
    return torch.ones_like(groups, dtype=torch.bool).scatter_(-1, drop, False).reshape(w.shape)


@torch.no_grad()
def prune_2of4_magnitude(model):
    """Magnitude 2:4 on q, k, v, o, gate, up, down of every block, in place; ``(model, PruneReport)`` with
    the keep-masks, named as ``prune_2of4`` names them."""
    check_llama_shaped(model)
    n0 = count_params(model)
    masks, sparsity = {}, {}
    for li, layer in enumerate(model.model.layers):
        for owner, names in (("self_attn", ATTN_PROJ), ("mlp", MLP_PROJ)):
            for name in names:
                w = getattr(getattr(layer, owner), name).weight
                keep = magnitude_mask_2of4(w)
                w.mul_(keep)
                key = f"model.layers.{li}.{owner}.{name}.weight"
                masks[key], sparsity[key] = keep, float(1 - keep.float().mean())
    n_zero = sum(int((~m).sum()) for m in masks.values())
    details = {"matrices": "q,k,v,o,gate,up,down of every block", "rule": "magnitude"}
    return model, PruneReport("2:4", list(sparsity.values()), sparsity, n0, n0 - n_zero, details, masks)
