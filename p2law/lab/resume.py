"""A post-training run's resumable state: weights, AdamW, the 2:4 masks and the rows so far.

Written with ``torch.distributed.checkpoint`` (what accelerate's ``save_state`` uses under FSDP): every
rank writes its own shards of FSDP2's DTensors in parallel, replicated tensors (DDP, one process) are
written once, and nothing is gathered on one rank, so an 8B model's 96 GB of fp32 weights and moments
never pass through rank 0's memory. ``meta.json`` beside it holds the step, the rows and the training
loss accumulated since the last row. The masks are part of the state so that a restarted 2:4 run need not
run SparseGPT again (``saved_mask_names``).

A save goes to ``<state>.tmp`` and is renamed over the previous state only when every rank has written
its part, so a save killed half-way leaves the previous state whole. The folder must be on a filesystem
all ranks share (as the results folder already must be).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

META = "meta.json"


def exists(state_dir) -> bool:
    return state_dir is not None and (Path(state_dir) / META).exists()


def _barrier(accelerator) -> None:
    if accelerator is not None:
        accelerator.wait_for_everyone()


def _no_dist() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized())


def save(state_dir, model, optimizer, masks: dict, meta: dict, accelerator=None, main: bool = True) -> None:
    """Every rank calls this at the same step; ``main``: this rank writes meta.json and renames."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    state_dir = Path(state_dir)
    tmp = state_dir.with_name(state_dir.name + ".tmp")
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    _barrier(accelerator)
    has_moments = bool(optimizer.state)  # before any step AdamW has none; get_state_dict would invent them
    state = {"model": get_model_state_dict(model), "masks": dict(masks)}
    if has_moments:
        state["optimizer"] = get_optimizer_state_dict(model, optimizer)
    dcp.save(state, checkpoint_id=tmp, no_dist=_no_dist())
    _barrier(accelerator)
    if main:
        (tmp / META).write_text(json.dumps(meta | {"has_moments": has_moments}))
        old = state_dir.with_name(state_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if state_dir.exists():
            state_dir.replace(old)
        tmp.replace(state_dir)
        shutil.rmtree(old, ignore_errors=True)
    _barrier(accelerator)


def load(state_dir, model, optimizer, masks: dict) -> dict:
    """Load the state into ``model``, ``optimizer`` and ``masks`` (in place, each tensor as the caller
    holds it: sharded or not) and return meta.json. Every rank calls this."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    state_dir = Path(state_dir)
    meta = json.loads((state_dir / META).read_text())
    state = {"model": get_model_state_dict(model), "masks": masks}
    if meta["has_moments"]:  # a fresh AdamW has no moments to load into: this makes zero ones first
        state["optimizer"] = get_optimizer_state_dict(model, optimizer)
    missing = set(saved_mask_names(state_dir)) ^ set(masks)
    if missing:
        raise ValueError(
            f"the state in {state_dir} holds masks for other weights than this run's "
            f"(differing: {sorted(missing)[:3]}); was it saved by another run?"
        )
    dcp.load(state, checkpoint_id=state_dir, no_dist=_no_dist())
    set_model_state_dict(model, state["model"])
    if meta["has_moments"]:
        set_optimizer_state_dict(model, optimizer, state["optimizer"])
    return meta


def saved_mask_names(state_dir) -> list[str]:
    """The weights a saved state holds masks for (read from the checkpoint's metadata, no tensor loaded)."""
    import torch.distributed.checkpoint as dcp

    keys = dcp.FileSystemReader(str(state_dir)).read_metadata().state_dict_metadata
    return sorted(k[len("masks.") :] for k in keys if k.startswith("masks."))


def saved_masks(state_dir, shapes: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
    """The saved masks, whole (one process): for a restarted 2:4 run, instead of pruning again."""
    import torch.distributed.checkpoint as dcp

    masks = {name: torch.zeros(shapes[name], dtype=torch.bool) for name in saved_mask_names(state_dir)}
    dcp.load({"masks": masks}, checkpoint_id=Path(state_dir), no_dist=True)
    return masks
