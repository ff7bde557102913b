"""FSDP2 for post-training: shard a model with torch's ``fully_shard`` and shard the 2:4 masks like it.

Under FSDP2 every weight is a ``DTensor`` whose local part is one rank's rows (``Shard(0)``); a plain
mask cannot multiply it (``aten.mul_.Tensor got mixed torch.Tensor and DTensor``). ``masks_like`` turns
each full mask into a ``DTensor`` with its parameter's mesh and placements. Every rank already holds the
full mask (pruning is deterministic on every rank), so each keeps its own rows and nothing is sent
(``src_data_rank=None``); masks stay ``bool``, one byte per weight, divided by the world size.

Two routes reach a sharded model, and the trainer handles both the same way after it:
- ``accelerate launch --config_file configs/accelerate/fsdp2.yaml``: accelerate's FSDP plugin shards the
  model in ``accelerator.prepare`` (GPUs; accelerate does not offer FSDP on CPU processes);
- ``TrainConfig(sharding="fsdp2")`` (``p2law run --sharding fsdp2``) under ``torchrun``: ``shard_fsdp2``
  below, the same ``fully_shard`` calls (each decoder layer, then the root), on GPUs or on CPU with gloo,
  which is how the tests run it.
"""

from __future__ import annotations

import torch
from torch.distributed.tensor import DTensor, distribute_tensor

SHARDINGS = ("ddp", "fsdp2")


def is_sharded(model) -> bool:
    """Whether ``model``'s parameters are already DTensors (sharded by FSDP2, ours or accelerate's)."""
    return any(isinstance(p, DTensor) for p in model.parameters())


def decoder_layers(model) -> list[torch.nn.Module]:
    """The transformer blocks FSDP2 shards one by one (so only one block's weights are gathered at a time)."""
    layers = [m for m in model.modules() if type(m).__name__.endswith("DecoderLayer")]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no *DecoderLayer modules to shard")
    return layers


def shard_fsdp2(model, device, mixed_precision: str = "no"):
    """Shard ``model`` in place over all ranks of the default process group: ``fully_shard`` on each
    decoder layer, then on the root (embeddings, final norm, head). ``mixed_precision="bf16"``: bf16
    compute, fp32 master weights and fp32 gradient reduction (FSDP2's ``MixedPrecisionPolicy``)."""
    import torch.distributed as dist
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(
            "sharding='fsdp2' needs a process group: launch with torchrun or accelerate launch "
            "(a single process has nothing to shard over; use sharding='ddp')"
        )
    if mixed_precision not in ("no", "bf16"):
        raise ValueError(f"mixed_precision must be 'no' or 'bf16' under FSDP2 (got {mixed_precision!r})")
    policy = (
        MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        if mixed_precision == "bf16"
        else MixedPrecisionPolicy()
    )
    model.to(device)
    for layer in decoder_layers(model):
        fully_shard(layer, mp_policy=policy)
    fully_shard(model, mp_policy=policy)
    return model


def masks_like(params: dict[str, torch.nn.Parameter], masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each full bool mask on its parameter's device, and sharded as its parameter where that is a DTensor."""
    out = {}
    for name, mask in masks.items():
        p = params[name]
        if tuple(mask.shape) != tuple(p.shape):
            raise ValueError(f"the mask of {name} has shape {tuple(mask.shape)}, the weight {tuple(p.shape)}")
        mask = mask.to(device=p.device, dtype=torch.bool)
        if isinstance(p, DTensor):
            mask = distribute_tensor(mask, p.device_mesh, p.placements, src_data_rank=None)
        out[name] = mask
    return out
