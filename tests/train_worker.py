"""Post-training workers for test_train.py, run in processes of their own.

torchrun --nproc_per_node 2 tests/train_worker.py OUT.json [MICRO_BATCH_SIZE]
    a short post-training under torchrun; rank 0 writes its rows as JSON.
torchrun --nproc_per_node 2 tests/train_worker.py --masked OUT.json SHARDING STATE_DIR STOP_AFTER [SLOW]
    a 2:4-masked post-training (magnitude masks) under ``sharding`` ("ddp" or "fsdp2"); with STOP_AFTER > 0
    it stops after that many checkpoints, leaving its state in STATE_DIR; SLOW seconds are added to every
    training forward pass (so a test can kill it mid-run). Rank 0 writes the rows and how many training
    forward passes it ran ("forwards"), and every rank checks that its pruned weights are exactly zero.
python tests/train_worker.py --preemptible TABLE STATE_DIR
    one process, slowed down so that a test's signal lands mid-run; exits as ``p2law run`` does when
    preempted (the status ``Preempted.exit_code``, one line on stderr).
"""

import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from prune_fixtures import tiny_model  # noqa: E402
from train_fixtures import pattern_data  # noqa: E402

from p2law.lab.train import Preempted, TrainConfig, post_train  # noqa: E402

CONFIG = dict(total_tokens=32 * 16 * 12, lr=3e-3, batch_size=16, n_checkpoints=4, seed=3)
PREEMPTIBLE_CONFIG = dict(total_tokens=32 * 16 * 40, lr=3e-3, batch_size=16, n_checkpoints=4, seed=3)
STEP_SECONDS = 0.1  # added to every training forward pass; the rows do not depend on it


def main(out, micro=None):
    torch.set_num_threads(1)
    cfg = TrainConfig(**CONFIG, micro_batch_size=int(micro) if micro else None)
    rows = post_train(tiny_model(seed=5), pattern_data(), cfg, rows_meta={"run_id": "dist"}, progress=False)
    if int(__import__("os").environ.get("RANK", "0")) == 0:
        Path(out).write_text(json.dumps(rows))


def masked_model():
    """The tiny model with a magnitude 2:4 mask on every decoder weight matrix, applied; and the masks."""
    from p2law.lab.prune.magnitude import magnitude_mask_2of4

    model = tiny_model(seed=5)
    masks = {
        name: magnitude_mask_2of4(p) for name, p in model.named_parameters() if ".layers." in name and p.dim() == 2
    }
    return model, masks


def masked(out, sharding, state_dir, stop_after, slow="0"):
    torch.set_num_threads(1)
    model, masks = masked_model()
    forwards = []

    def count_and_wait(module, args):  # a hook, so it runs however DDP / accelerate wrap the forward
        if module.training:
            forwards.append(1)
            time.sleep(float(slow))

    model.register_forward_pre_hook(count_and_wait)
    cfg = TrainConfig(**CONFIG, sharding=sharding)
    rows = post_train(
        model,
        pattern_data(),
        cfg,
        masks=masks,
        rows_meta={"run_id": "masked"},
        state_dir=state_dir if state_dir != "-" else None,
        stop_after_checkpoints=int(stop_after) or None,
        progress=False,
    )
    zero = True
    for name, p in model.named_parameters():
        if name in masks:
            local = p.to_local() if hasattr(p, "to_local") else p  # this rank's rows under FSDP2
            full = p.full_tensor() if hasattr(p, "full_tensor") else p
            zero &= bool((full.detach()[~masks[name]] == 0).all()) and local.numel() <= p.numel()
    sharded = any(hasattr(p, "to_local") for p in model.parameters())
    if int(__import__("os").environ.get("RANK", "0")) == 0:
        Path(out).write_text(
            json.dumps({"rows": rows, "masked_zero": zero, "sharded": sharded, "forwards": len(forwards)})
        )
    elif not zero:
        sys.exit(3)


def preemptible(table, state_dir):
    torch.set_num_threads(1)
    model = tiny_model(seed=5)
    forward = model.forward

    def slow_forward(*args, **kwargs):
        if model.training:
            time.sleep(STEP_SECONDS)
        return forward(*args, **kwargs)

    model.forward = slow_forward
    try:
        post_train(
            model,
            pattern_data(),
            TrainConfig(**PREEMPTIBLE_CONFIG),
            rows_meta={"run_id": "preempt"},
            table_path=table,
            state_dir=state_dir,
            progress=False,
        )
    except Preempted as err:
        print(f"preempted: {err}", file=sys.stderr)
        sys.exit(err.exit_code)


if __name__ == "__main__":
    if sys.argv[1] == "--preemptible":
        preemptible(*sys.argv[2:4])
    elif sys.argv[1] == "--masked":
        masked(*sys.argv[2:7])
    else:
        main(*sys.argv[1:3])
