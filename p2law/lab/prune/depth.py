"""Depth pruning (App. B.1): drop the decoder layers whose output is most like their input.

A layer's importance is the mean cosine similarity between the hidden state entering it and the one
leaving it (Eq. 16): per calibration sample, averaged over its real (unpadded) tokens, then over
samples. A layer that barely turns the residual stream (similarity near 1) is the cheapest to lose.
The states are taken with forward hooks on the layers themselves, because the last entry of
``output_hidden_states`` has the final norm applied and is not the last layer's raw output.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from .common import PruneReport, calibration_batches, check_llama_shaped, check_rate, count_params, model_device


def _hidden_in(args, kwargs):
    return kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]


@torch.no_grad()
def layer_similarity(model, calibration, progress: bool = True) -> np.ndarray:
    """Eq. 16 for every decoder layer: mean cosine similarity of its input and output states."""
    check_llama_shaped(model)
    batches = calibration_batches(calibration)
    layers = model.model.layers
    sums = torch.zeros(len(layers), dtype=torch.float64)
    n_samples = 0
    current_mask: dict[str, torch.Tensor] = {}

    def hook(index):
        def fn(module, args, kwargs, output):
            x_in = _hidden_in(args, kwargs).double()
            x_out = (output[0] if isinstance(output, tuple) else output).double()
            cos = torch.nn.functional.cosine_similarity(x_in, x_out, dim=-1)  # [B, T]
            m = current_mask["m"]
            per_sample = (cos * m).sum(1) / m.sum(1).clamp_min(1)
            sums[index] += per_sample.sum().cpu()

        return fn

    handles = [layer.register_forward_hook(hook(i), with_kwargs=True) for i, layer in enumerate(layers)]
    was_training = model.training
    model.eval()
    try:
        device = model_device(model)
        for ids, mask in tqdm(batches, desc="depth: layer similarity", disable=not progress, leave=False):
            current_mask["m"] = mask.to(device).double()
            model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False)
            n_samples += ids.shape[0]
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return (sums / n_samples).numpy()


def layer_param_count(model) -> int:
    """Parameters of one decoder layer (all layers of these families have the same shape)."""
    return count_params(model.model.layers[0])


def layers_for_rate(n0: int, per_layer: int, n_layers: int, rate: float) -> int:
    """Number of whole layers whose removal gives ρ = k·per_layer/n0 closest to ``rate``.

    At least one layer is removed; an exact tie goes to fewer layers. A rate whose closest whole-layer
    count is all ``n_layers`` raises ValueError instead of being quietly capped, so a caller asking for
    more than depth pruning can give learns it (and the highest rate it can reach) up front.
    """
    rate = check_rate(rate)
    if n_layers < 2:
        raise ValueError(f"a model with {n_layers} layer(s) cannot be depth-pruned: one layer must stay")
    candidates = np.arange(1, n_layers + 1)  # include "all layers" so asking for too much is detected
    gaps = np.abs(candidates * per_layer / n0 - rate)
    k = int(candidates[np.argmin(gaps)])  # argmin takes the first minimum: ties go to fewer layers
    if k == n_layers:
        highest = (n_layers - 1) * per_layer / n0
        raise ValueError(
            f"rate {rate} would remove all {n_layers} layers (removing them all gives "
            f"rho={n_layers * per_layer / n0:.4f}); the nearest allowed rate is {highest:.4f}, "
            f"removing {n_layers - 1} layers and keeping one"
        )
    return k


def drop_layers(model, indices) -> None:
    """Remove the decoder layers at ``indices`` in place; renumber the rest and fix the config."""
    check_llama_shaped(model)
    n = len(model.model.layers)
    drop = sorted(set(int(i) for i in indices))
    if any(i < 0 or i >= n for i in drop):
        raise ValueError(f"layer indices must be in [0, {n}), got {drop}")
    if len(drop) >= n:
        raise ValueError(f"removing {len(drop)} of {n} layers would leave none")
    keep = [i for i in range(n) if i not in drop]
    model.model.layers = torch.nn.ModuleList([model.model.layers[i] for i in keep])
    for new_idx, layer in enumerate(model.model.layers):
        # The KV cache is indexed by layer_idx; stale numbers would make layers share cache slots.
        layer.self_attn.layer_idx = new_idx
        if hasattr(layer, "layer_idx"):
            layer.layer_idx = new_idx
    cfg = model.config
    cfg.num_hidden_layers = len(keep)
    if getattr(cfg, "layer_types", None) is not None:
        cfg.layer_types = [cfg.layer_types[i] for i in keep]
    if hasattr(cfg, "max_window_layers") and cfg.max_window_layers is not None:
        cfg.max_window_layers = min(cfg.max_window_layers, len(keep))


def prune_depth(model, calibration, n_layers: int | None = None, rate: float | None = None, progress: bool = True):
    """Remove the ``n_layers`` most redundant layers (or as many as best match ``rate``).

    Returns ``(model, PruneReport)``; the model is changed in place. Validation happens before any
    change, so a bad argument leaves the model untouched.
    """
    check_llama_shaped(model)
    total = len(model.model.layers)
    if (n_layers is None) == (rate is None):
        raise ValueError("give exactly one of n_layers or rate")
    n0 = count_params(model)
    if n_layers is None:
        n_layers = layers_for_rate(n0, layer_param_count(model), total, rate)
    if not 0 <= int(n_layers) < total:
        raise ValueError(f"n_layers must be in [0, {total}) for a {total}-layer model, got {n_layers}")
    scores = layer_similarity(model, calibration, progress)
    # Highest similarity = least change to the residual stream = removed first (stable on ties).
    order = np.argsort(-scores, kind="stable")
    removed = sorted(int(i) for i in order[: int(n_layers)])
    drop_layers(model, removed)
    report = PruneReport(
        "depth",
        scores.tolist(),
        removed,
        n0,
        count_params(model),
        details={"layers_before": total, "layers_after": total - len(removed), "target_rate": rate},
    )
    return model, report
