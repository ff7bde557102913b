"""What a sweep would cost before it runs: tokens, FLOPs, seconds on this machine, GPU memory and hours.

``plan_sweep`` is what ``p2law run --dry-run`` prints. Bases pretrained here are timed at a FLOP rate: the
one an earlier sweep achieved (``achieved_flops_per_second`` of its manifest) or a share of this machine's
measured matmul rate. The paper's models are checked against their published sizes and sized for GPUs
(``p2law.lab.gpu_plan``): the micro-batch that fits, accumulation steps, per-GPU memory under DDP and FSDP2.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from .profiles import Profile
from .schedule import (
    TRAIN_OVERRIDES,
    Base,
    base_models,
    meta_model,
    n0_on_meta,
    plan_runs,
    post_tokens,
    post_train_config,
    selected,
)


def matmul_flops_per_second(n: int = 1024, repeats: int = 5) -> float:
    """This machine's measured fp32 matmul rate (the best of a few timed n×n products)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def check_published_size(name: str, n0: int) -> None:
    """The architecture typed into ``p2law.paper`` must give the count it states and roughly the size in
    the model's name. Names round (Llama-3.2-1B has 1.24B parameters), so that check allows 0.75–1.3×; it
    is there to catch a mistyped width or depth, which moves the count by far more."""
    from .. import paper

    m = paper.PAPER_MODELS[name]
    if n0 != m.n_params:
        raise ValueError(
            f"{name}: a model built from p2law.paper's architecture has {n0:,} parameters, "
            f"but p2law.paper counts {m.n_params:,}"
        )
    stated = float(re.search(r"(\d+(?:\.\d+)?)B$", name).group(1)) * 1e9
    if not 0.75 <= n0 / stated <= 1.3:
        raise ValueError(
            f"{name}: its published architecture gives {n0 / 1e9:.2f}B parameters, "
            f"{n0 / stated:.2f}x the {stated / 1e9:g}B in its name; check p2law.paper's entry"
        )


def _source_label(base: Base) -> dict:
    """Where a planned base comes from, for the printed plan (and the hub id of a paper model)."""
    if base.pretrained_here:
        return {"source": "pretrained here"}
    from .. import paper

    if base.name not in paper.PAPER_MODELS:
        return {"source": base.source}
    return {"source": base.source, "hub_id": paper.PAPER_MODELS[base.name].hub_id}


def _eval_tokens(profile: Profile) -> int:
    """Tokens one post-training run evaluates: the held-out blocks at D = 0 and at every checkpoint."""
    return profile.n_eval_blocks * profile.seq_len * (profile.n_checkpoints + 1)


def achieved_flops_per_second(manifest: dict, profile: Profile, threads: int | None = None) -> dict | None:
    """The FLOP rate a sweep achieved on this machine, from the seconds its manifest recorded.

    Counts FLOPs as ``plan_sweep`` does (6·N per trained token, 2·N0 per evaluated one) over the measured
    pretrainings and runs, and divides by their measured seconds, so a plan calibrated on it predicts what
    the same mix of models costs here. Entries recorded at another thread count than ``threads`` are left
    out (entries without one are counted). None when the manifest has no measured entry of ``profile``.
    """
    if manifest.get("profile", {}).get("name") != profile.name:
        return None
    same = lambda e: threads is None or e.get("threads", threads) == threads
    flops = seconds = 0.0
    n = 0
    for e in manifest.get("pretrain", {}).values():
        if e.get("seconds") and same(e):
            flops += 6 * e["n_params"] * e["tokens"]
            seconds += e["seconds"]
            n += 1
    for e in manifest.get("runs", {}).values():
        if e.get("seconds") and same(e):
            flops += 6 * e["n0"] * e["tokens"] + 2 * e["n0"] * _eval_tokens(profile)
            seconds += e["seconds"]
            n += 1
    return {"flops_per_second": flops / seconds, "entries": n, "seconds": seconds} if n else None


def plan_sweep(
    profile: Profile,
    utilisation: float = 0.35,
    calibration: dict | None = None,
    only=None,
    gpus: int = 4,
    gpu_memory_gb: float = 80,
) -> dict:
    """What a sweep would do: bases, runs, token counts, configs and an estimated time; nothing is trained.

    Every base's N0 is counted on the meta device (no weights, no download); the paper's models are
    checked against their stated sizes (``check_published_size``) unless a local folder stands in for
    them. Building each run's post-training config validates it.

    For bases pretrained here the estimate counts 6·N FLOPs per trained token (pretraining and
    post-training) and 2·N per evaluated token, at the rate an earlier sweep achieved here when
    ``calibration`` (``achieved_flops_per_second`` of its manifest) is given, else at ``utilisation`` ×
    this machine's measured matmul rate (benchmarks/bench_train.py measures the real utilisation). The
    paper's sweep is not timed here: it runs on GPUs; ``gpu_estimates`` gives per model the micro-batch
    (``--micro-batch``, or the largest that fits ``gpu_memory_gb``), accumulation steps, per-GPU memory
    under DDP and FSDP2 on ``gpus`` GPUs and GPU-hours (``p2law.lab.gpu_plan``). ``only`` keeps the runs and
    bases it names (run ids or model names).
    """
    bases = {b.name: b for b in base_models(profile)}
    n0s = {name: n0_on_meta(b, profile.vocab_size) for name, b in bases.items()}
    for name, b in bases.items():
        if profile.scale == "paper" and not Path(b.source).is_dir():
            check_published_size(name, n0s[name])
    eval_tokens = _eval_tokens(profile)
    runs = selected(plan_runs(profile), only)
    kept = {r.model for r in runs}
    bases = {name: b for name, b in bases.items() if name in kept}
    n0s = {name: n for name, n in n0s.items() if name in kept}
    flops = sum(6 * n * profile.pretrain_tokens_per_param * n for n in n0s.values())
    rows = []
    for r in runs:
        n0 = n0s[r.model]
        cfg = post_train_config(profile, post_tokens(profile, r.model, n0))
        rows.append(
            r.__dict__
            | _source_label(bases[r.model])
            | {"n0": n0, "tokens": cfg.total_tokens, "steps": cfg.steps(profile.seq_len)}
        )
        flops += 6 * n0 * cfg.total_tokens + 2 * n0 * eval_tokens
    plan = {
        "profile": profile.to_dict(),
        "bases": {name: _source_label(b) | {"n0": n0s[name]} for name, b in bases.items()},
        "n_runs": len(rows),
        "runs": rows,
        "batch_tokens": profile.batch_size * profile.seq_len,
    }
    if profile.scale == "paper":
        return plan | {
            "estimated_seconds": None,
            "gpu_estimates": _gpu_estimates(profile, bases, n0s, rows, eval_tokens, gpus, gpu_memory_gb),
        }
    if calibration:
        rate, basis = (
            calibration["flops_per_second"],
            (
                f"at the {calibration['flops_per_second'] / 1e9:.0f} GFLOP/s "
                f"that {calibration['entries']} measured pretrainings and runs of an "
                "earlier sweep reached here"
            ),
        )
    else:
        peak = matmul_flops_per_second()
        rate, basis = (
            utilisation * peak,
            (
                f"assuming {utilisation:.0%} of this machine's matmul peak "
                f"({peak / 1e9:.0f} GFLOP/s); a finished sweep's folder (--out) "
                "calibrates this"
            ),
        )
    return plan | {
        "estimated_flops": flops,
        "estimated_seconds": flops / rate,
        "assumed_flops_per_second": rate,
        "estimate_basis": basis,
    }


def _gpu_estimates(
    profile: Profile, bases: dict, n0s: dict, rows: list[dict], eval_tokens: int, gpus: int, gpu_memory_gb: float
) -> dict:
    """Per paper model: micro-batch, accumulation steps, per-GPU memory (DDP, FSDP2) and GPU-hours."""
    from . import gpu_plan

    if gpus <= 0 or profile.batch_size % gpus:
        raise ValueError(
            f"--gpus {gpus}: the paper batch of {profile.batch_size} sequences must split evenly over the GPUs"
        )
    share = profile.batch_size // gpus
    checkpointing = bool(TRAIN_OVERRIDES.get("gradient_checkpointing"))
    out = {}
    for name, b in bases.items():
        config = meta_model(b, profile.vocab_size).config
        arch = dict(
            n_params=n0s[name],
            n_layers=config.num_hidden_layers,
            hidden=config.hidden_size,
            vocab=config.vocab_size,
            seq_len=profile.seq_len,
            n_gpus=gpus,
            checkpointing=checkpointing,
        )
        fits = {
            s: (
                lambda m, s=s: (
                    gpu_plan.memory_per_gpu(micro_batch=m, strategy=s, **arch).total
                    <= 0.9 * gpu_memory_gb * gpu_plan.GB
                )
            )
            for s in ("ddp", "fsdp2")
        }
        micro = TRAIN_OVERRIDES.get("micro_batch_size")
        chosen = "--micro-batch"
        if micro is None:
            micro = gpu_plan.choose_micro_batch(share, fits["ddp"]) or gpu_plan.choose_micro_batch(share, fits["fsdp2"])
            chosen = f"largest fitting 90% of {gpu_memory_gb:g} GB" if micro else "none fits; 1 shown"
            micro = micro or 1
        if share % micro:
            raise ValueError(
                f"--micro-batch {micro} does not divide the {share} sequences per GPU "
                f"({profile.batch_size} / {gpus} GPUs)"
            )
        memory = {s: gpu_plan.memory_per_gpu(micro_batch=micro, strategy=s, **arch) for s in ("ddp", "fsdp2")}
        flops = sum(6 * n0s[name] * r["tokens"] + 2 * n0s[name] * eval_tokens for r in rows if r["model"] == name)
        out[name] = {
            "gpus": gpus,
            "gpu_memory_gb": gpu_memory_gb,
            "micro_batch": micro,
            "micro_batch_basis": chosen,
            "accumulation_steps": share // micro,
            "activation_checkpointing": checkpointing,
            "memory_gb": {s: m.gb() for s, m in memory.items()},
            "fits": {s: memory[s].total <= 0.9 * gpu_memory_gb * gpu_plan.GB for s in memory},
            "gpu_hours": gpu_plan.gpu_hours(flops),
            "assumed_peak_flops": gpu_plan.A100_BF16_PEAK,
            "assumed_mfu": gpu_plan.ASSUMED_MFU,
        }
    return out


def print_plan(profile: Profile, plan: dict) -> None:
    for name, b in plan["bases"].items():
        print(f"  base {name:<28} N0={b['n0']:>14,}  from {b['source']}")
    for r in plan["runs"]:
        print(f"  {r['run_id']:<32} n0={r['n0']:>14,} tokens={r['tokens']:>14,} steps={r['steps']:>8,}")
    from . import gpu_plan

    for name, g in (plan.get("gpu_estimates") or {}).items():
        mem = "; ".join(
            f"{s.upper()} {m['total']:.0f} GB (weights {m['weights']:.1f}, grads {m['grads']:.1f}, "
            f"optimizer {m['optimizer']:.1f}, activations {m['activations']:.1f})"
            + ("" if g["fits"][s] else " DOES NOT FIT")
            for s, m in g["memory_gb"].items()
        )
        print(
            f"  gpu {name:<14} on {g['gpus']} x {g['gpu_memory_gb']:g} GB: micro-batch {g['micro_batch']} "
            f"({g['micro_batch_basis']}), {g['accumulation_steps']} accumulation steps"
            + (", activation checkpointing" if g["activation_checkpointing"] else "")
            + f"; per GPU {mem}; {g['gpu_hours']:,.0f} GPU-hours"
        )
    if plan.get("gpu_estimates"):
        print(
            f"  (memory: p2law.lab.gpu_plan.memory_per_gpu, 16 B/param fp32 weights+grads+AdamW, bf16 activations "
            f"{gpu_plan.ACTIVATION_BYTES_PER_TOKEN_LAYER_PER_HIDDEN}·hidden B per token per layer; GPU-hours at "
            f"{gpu_plan.ASSUMED_MFU:.0%} of {gpu_plan.A100_BF16_PEAK / 1e12:.0f} TFLOP/s, A100/A800 bf16)"
        )
    eta = plan["estimated_seconds"]
    print(
        f"profile {profile.name}: {plan['n_runs']} runs"
        + (f", estimated {eta / 60:.0f} min on this machine ({plan['estimate_basis']})" if eta else "")
    )
