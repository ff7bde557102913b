"""What the three pruners share: the report, the shape checks, calibration handling, counting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..models import count_params

SUPPORTED_MODEL_TYPES = ("llama", "qwen2")
ATTN_PROJ = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_PROJ = ("gate_proj", "up_proj", "down_proj")


@dataclass
class PruneReport:
    """What a pruner did. ``rate`` is ρ = 1 − n/n0 over all parameters, embeddings included."""

    method: str  # "depth" | "width" | "2:4"
    scores: list[float]  # importance per layer (depth), per hidden channel (width), per matrix (2:4)
    removed: Any  # layer indices, channel indices, or {matrix name: fraction of zeros}
    n0: int
    n: int
    details: dict = field(default_factory=dict)
    masks: dict[str, torch.Tensor] | None = field(default=None, repr=False)  # 2:4 only; True = may train

    @property
    def rate(self) -> float:
        return 1.0 - self.n / self.n0

    def to_dict(self) -> dict:
        """JSON-serialisable summary (no tensors)."""
        return {
            "method": self.method,
            "n0": self.n0,
            "n": self.n,
            "rate": self.rate,
            "scores": [float(s) for s in self.scores],
            "removed": self.removed,
            "details": self.details,
        }


def check_llama_shaped(model) -> None:
    """Raise TypeError unless ``model`` is a causal LM with Llama/Qwen2 decoder blocks."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise TypeError(
            f"expected a Llama or Qwen2 causal LM (config.model_type in {SUPPORTED_MODEL_TYPES}), "
            f"got {type(model).__name__} with model_type={model_type!r}"
        )
    inner = getattr(model, "model", None)
    needed = ("embed_tokens", "layers", "norm")
    if inner is None or any(not hasattr(inner, a) for a in needed) or not hasattr(model, "lm_head"):
        raise TypeError(
            f"{type(model).__name__} lacks model.embed_tokens/layers/norm or lm_head; it is not Llama/Qwen2-shaped"
        )
    for i, layer in enumerate(inner.layers):
        for owner, names in (("self_attn", ATTN_PROJ), ("mlp", MLP_PROJ)):
            sub = getattr(layer, owner, None)
            if sub is None or any(not isinstance(getattr(sub, n, None), torch.nn.Linear) for n in names):
                raise TypeError(f"layer {i} lacks {owner}.{names} linear layers; not Llama/Qwen2-shaped")
        if not hasattr(layer, "input_layernorm") or not hasattr(layer, "post_attention_layernorm"):
            raise TypeError(f"layer {i} lacks input_layernorm/post_attention_layernorm")


def check_rate(rate: float) -> float:
    rate = float(rate)
    if not 0.0 < rate < 1.0:
        raise ValueError(f"pruning rate must be in (0, 1), got {rate}")
    return rate


def calibration_batches(calibration) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Normalise calibration data to (input_ids [B, T], attention_mask [B, T]) pairs.

    Accepts LongTensors of input ids or dicts with ``input_ids`` and optional ``attention_mask``.
    """
    if calibration is None:
        raise ValueError("calibration data is empty")
    batches = []
    for item in calibration:
        if isinstance(item, dict):
            ids, mask = item["input_ids"], item.get("attention_mask")
        else:
            ids, mask = item, None
        ids = torch.as_tensor(ids)
        if ids.dim() == 1:
            ids = ids.unsqueeze(0)
        if ids.dim() != 2 or ids.numel() == 0:
            raise ValueError(
                f"calibration batches must be non-empty [batch, tokens] id tensors, got {tuple(ids.shape)}"
            )
        mask = torch.ones_like(ids) if mask is None else torch.as_tensor(mask).reshape(ids.shape)
        batches.append((ids.long(), mask.long()))
    if not batches:
        raise ValueError("calibration data is empty")
    return batches


def model_device(model) -> torch.device:
    return next(model.parameters()).device


__all__ = ["PruneReport", "check_llama_shaped", "check_rate", "calibration_batches", "count_params"]
