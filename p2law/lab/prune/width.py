"""Width pruning (App. B.2): drop the hidden channels the model's norms emit least of.

Channel importance (Eq. 17) is the mean |RMSNorm output| per hidden channel over the calibration
tokens (per sample over its unpadded tokens, then over samples). We take it at every RMSNorm that
writes the hidden size: each layer's input_layernorm and post_attention_layernorm and the final norm,
and sum the per-norm scores, so a channel counts as important if any block reads it strongly.
The lowest channels are removed from the residual stream everywhere it appears: the embedding, every
q/k/v/gate/up input, every o/down output, every norm weight and the LM head (tied or not). Attention
heads and their head_dim are untouched (GQA intact); ``head_dim`` is written to the config explicitly
because it no longer equals hidden_size / num_heads.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from .common import PruneReport, calibration_batches, check_llama_shaped, check_rate, count_params, model_device


def _norms(model):
    inner = model.model
    for i, layer in enumerate(inner.layers):
        yield f"layers.{i}.input_layernorm", layer.input_layernorm
        yield f"layers.{i}.post_attention_layernorm", layer.post_attention_layernorm
    yield "norm", inner.norm


@torch.no_grad()
def channel_importance(model, calibration, progress: bool = True) -> np.ndarray:
    """Eq. 17 summed over the model's RMSNorms: one score per hidden channel."""
    check_llama_shaped(model)
    batches = calibration_batches(calibration)
    hidden = model.config.hidden_size
    total = torch.zeros(hidden, dtype=torch.float64)
    n_samples = 0
    current = {}

    def hook(module, args, output):
        m = current["m"]  # [B, T, 1]
        per_sample = (output.double().abs() * m).sum(1) / m.sum(1).clamp_min(1)  # [B, hidden]
        total.add_(per_sample.sum(0).cpu())

    handles = [norm.register_forward_hook(hook) for _, norm in _norms(model)]
    was_training = model.training
    model.eval()
    try:
        device = model_device(model)
        for ids, mask in tqdm(batches, desc="width: channel importance", disable=not progress, leave=False):
            current["m"] = mask.to(device).double().unsqueeze(-1)
            model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False)
            n_samples += ids.shape[0]
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return (total / n_samples).numpy()


def params_per_channel(config) -> int:
    """Parameters that one hidden channel carries (every tensor with a hidden-size dimension)."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    q, kv = config.num_attention_heads * head_dim, config.num_key_value_heads * head_dim
    per_layer = q + 2 * kv + q + 3 * config.intermediate_size + 2  # q,k,v in; o out; gate,up in; down out; 2 norms
    embeddings = config.vocab_size * (1 if config.tie_word_embeddings else 2)
    return embeddings + config.num_hidden_layers * per_layer + 1  # + final norm


def channels_for_rate(model, rate: float) -> int:
    """Hidden channels to remove so that ρ over all parameters comes closest to ``rate``.

    The kept hidden size stays a multiple of the number of attention heads: transformers' Llama/Qwen2
    configs refuse to save or load otherwise, even with an explicit head_dim.
    """
    rate = check_rate(rate)
    cfg = model.config
    per = params_per_channel(cfg)
    hidden, step = cfg.hidden_size, cfg.num_attention_heads
    kept = int(round((hidden - rate * count_params(model) / per) / step)) * step
    kept = min(kept, hidden - step)
    if kept <= 0:
        raise ValueError(f"rate {rate} would remove all {hidden} hidden channels")
    return hidden - kept


def _select(param: torch.nn.Parameter, dim: int, keep: torch.Tensor) -> torch.nn.Parameter:
    return torch.nn.Parameter(
        param.data.index_select(dim, keep.to(param.device)).clone(), requires_grad=param.requires_grad
    )


@torch.no_grad()
def keep_hidden_channels(model, keep) -> None:
    """Keep only the hidden channels ``keep`` (sorted indices) everywhere, in place."""
    check_llama_shaped(model)
    cfg = model.config
    keep = torch.as_tensor(sorted(set(int(i) for i in keep)), dtype=torch.long)
    if keep.numel() == 0:
        raise ValueError("cannot remove every hidden channel")
    if keep.min() < 0 or keep.max() >= cfg.hidden_size:
        raise ValueError(f"channel indices must be in [0, {cfg.hidden_size})")
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    tied = model.lm_head.weight is model.model.embed_tokens.weight
    inner = model.model
    inner.embed_tokens.weight = _select(inner.embed_tokens.weight, 1, keep)
    inner.embed_tokens.embedding_dim = keep.numel()
    for layer in inner.layers:
        for lin in (
            layer.self_attn.q_proj,
            layer.self_attn.k_proj,
            layer.self_attn.v_proj,
            layer.mlp.gate_proj,
            layer.mlp.up_proj,
        ):
            lin.weight = _select(lin.weight, 1, keep)
            lin.in_features = keep.numel()
        for lin in (layer.self_attn.o_proj, layer.mlp.down_proj):
            lin.weight = _select(lin.weight, 0, keep)
            if lin.bias is not None:
                lin.bias = _select(lin.bias, 0, keep)
            lin.out_features = keep.numel()
        for norm in (layer.input_layernorm, layer.post_attention_layernorm):
            norm.weight = _select(norm.weight, 0, keep)
        if hasattr(layer, "hidden_size"):
            layer.hidden_size = keep.numel()
        layer.self_attn.head_dim = head_dim
    inner.norm.weight = _select(inner.norm.weight, 0, keep)
    if tied:
        model.lm_head.weight = inner.embed_tokens.weight
    else:
        model.lm_head.weight = _select(model.lm_head.weight, 1, keep)
    model.lm_head.in_features = keep.numel()
    cfg.head_dim = head_dim  # explicit, so from_pretrained rebuilds the same attention shapes
    cfg.hidden_size = keep.numel()


def prune_width(model, calibration, rate: float | None = None, progress: bool = True, n_channels: int | None = None):
    """Remove the least important hidden channels so that ρ is as close to ``rate`` as whole channels allow
    (or exactly ``n_channels`` of them, a multiple of the head count, as a sweep's plan fixes it)."""
    check_llama_shaped(model)
    if (n_channels is None) == (rate is None):
        raise ValueError("give exactly one of rate or n_channels")
    step = model.config.num_attention_heads
    if n_channels is not None and (n_channels % step or not 0 < n_channels < model.config.hidden_size):
        raise ValueError(
            f"n_channels must be a positive multiple of the {step} heads below the hidden size "
            f"{model.config.hidden_size}, got {n_channels}"
        )
    n_remove = n_channels if n_channels is not None else channels_for_rate(model, rate)
    n0 = count_params(model)
    scores = channel_importance(model, calibration, progress)
    order = np.argsort(scores, kind="stable")  # lowest importance first
    removed = sorted(int(i) for i in order[:n_remove])
    hidden = model.config.hidden_size
    keep_hidden_channels(model, [i for i in range(hidden) if i not in set(removed)])
    report = PruneReport(
        "width",
        scores.tolist(),
        removed,
        n0,
        count_params(model),
        details={
            "hidden_before": hidden,
            "hidden_after": hidden - n_remove,
            "target_rate": rate,
            "norms": "input, post-attention (every layer) and final RMSNorm, summed",
        },
    )
    return model, report
