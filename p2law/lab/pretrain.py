"""Pretraining the toy base models (the paper downloads its bases; we must make ours).

A base is trained with the same loop as post-training (no mask) until it has seen
``tokens_per_param × N`` tokens, then saved with ``save_pretrained`` beside a JSON record of what it
saw and reached. A saved base is reloaded instead of retrained, so a sweep restarted later reuses it.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from pathlib import Path

import torch

from .data import write_json_atomic
from .models import ToySpec, build_model, count_params, load_model
from .train import TrainConfig, TrainData, evaluate, is_main_process, post_train


def pretrain_base(
    spec: ToySpec,
    data: TrainData,
    vocab_size: int,
    tokens_per_param: float,
    lr: float,
    batch_size: int,
    cache_dir,
    seed: int = 0,
    progress: bool = True,
    warmup_steps: int = 0,
    min_lr_ratio: float = 0.1,
    n_checkpoints: int = 20,
    keep_dir=None,
):
    """Return ``(model, info)`` for a pretrained base, training it only if it is not cached.

    ``keep_dir`` (a sweep's ``bases/`` folder, small enough to commit) holds a copy of every finished base:
    a later session, on a fresh checkout without the cache, reuses it instead of pretraining again, as long
    as it was trained on exactly these blocks.

    ``data.train`` must be the pretraining split (never the post-training one). The learning rate warms up
    for ``warmup_steps`` (0: 2% of the run) and then follows a cosine annealed to ``lr * min_lr_ratio``, so
    the base ends at a low rate, as the paper's public bases do; its curve has ``n_checkpoints`` points.
    """
    folder = Path(cache_dir) / spec.name
    data_key = hashlib.sha256(data.train.numpy().tobytes()).hexdigest()  # blocks and tokenizer in one
    recipe = base_recipe(tokens_per_param, lr, batch_size, warmup_steps, min_lr_ratio, seed)
    for place in [folder] + ([Path(keep_dir) / spec.name] if keep_dir else []):
        info_path = place / "pretrain.json"
        if info_path.exists():
            info = json.loads(info_path.read_text())
            if info.get("data_sha256") == data_key and info.get("recipe") == recipe:
                return load_model(place).eval(), info
        # Trained on other blocks (another corpus, split or tokenizer: its embeddings would not even
        # mean the same tokens) or with another recipe (a base annealed elsewhere is another base):
        # trained again rather than reused.
    model = build_model(spec, vocab_size, seed)
    n = count_params(model)
    batch_tokens = batch_size * data.train.shape[1]
    cfg = TrainConfig(
        # up to whole batches, so a base has seen at least tokens_per_param x N tokens (not up to a batch fewer)
        total_tokens=math.ceil(tokens_per_param * n / batch_tokens) * batch_tokens,
        lr=lr,
        batch_size=batch_size,
        n_checkpoints=n_checkpoints,
        warmup_fraction=0.02,
        warmup_steps=warmup_steps or None,
        schedule="cosine",
        min_lr_ratio=min_lr_ratio,
        weight_decay=0.1,
        seed=seed,
    )
    t0 = time.perf_counter()
    rows = post_train(model, data, cfg, rows_meta={"run_id": f"pretrain-{spec.name}"}, progress=progress)
    seconds = time.perf_counter() - t0
    info = {
        "model": spec.name,
        "n_params": n,
        "tokens": rows[-1]["tokens"],
        "tokens_per_param": rows[-1]["tokens"] / n,
        "eval_loss": evaluate(model, data.eval, 32),
        "curve": [(r["tokens"], r["eval_loss"]) for r in rows],
        # which evaluation blocks the curve is on (a reused base keeps its curve when the set changes)
        "curve_eval_sha256": hashlib.sha256(data.eval.numpy().tobytes()).hexdigest(),
        "seconds": seconds,
        "lr": lr,
        "min_lr_ratio": min_lr_ratio,
        "warmup_steps": cfg.warmup(cfg.steps(data.train.shape[1])),
        "epochs": rows[-1]["tokens"] / data.train.numel(),  # passes over the pretraining split
        "batch_size": batch_size,
        "tokens_per_second": rows[-1]["tokens"] / seconds,
        "threads": torch.get_num_threads(),
        "data_sha256": data_key,
        "recipe": recipe,
    }  # wall times are only comparable at equal thread counts
    if not is_main_process():  # every process trained the same weights; one of them saves them
        return model.eval(), info
    for place in [folder] + ([Path(keep_dir) / spec.name] if keep_dir else []):
        save_base(model, info, place)
    return model.eval(), info


def base_recipe(
    tokens_per_param: float, lr: float, batch_size: int, warmup_steps: int, min_lr_ratio: float, seed: int
) -> dict:
    """The settings that make a base what it is; a cached base is reused only under the same ones."""
    return {
        "tokens_per_param": float(tokens_per_param),
        "lr": float(lr),
        "batch_size": int(batch_size),
        "warmup_steps": int(warmup_steps),
        "min_lr_ratio": float(min_lr_ratio),
        "seed": int(seed),
        "token_rounding": "up to whole batches",  # bases floored to whole batches (< 20 tokens/param) differ
    }


def save_base(model, info: dict, folder) -> None:
    """Write a base and its record through a temporary folder and a rename (never half-written)."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    write_json_atomic(tmp / "pretrain.json", info)
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
