"""The sweep: bases -> prune -> post-train -> rows of the checkpoint table.

``run(profile, out)`` writes ``out/checkpoints.csv`` (one row per evaluation checkpoint, the columns of
DESIGN.md), ``out/prune_reports/<run_id>.json``, ``out/pretrain/<model>.json`` (how each base was made or
where it was loaded from, and its L0) and ``out/manifest.json`` (config, corpus fingerprint, package
versions, git commit, wall time per run). Bulky things (tokenizer, base weights, resumable training
state) live in ``out/_cache`` and are not part of the results.

Every base model gets, at the profile's rates, depth and width pruning, 2:4 pruning, and a ρ = 0
control: the unpruned base post-trained with the same recipe, which separates recovery from plain
continued training. A run is finished when its last checkpoint row is in the table; a restarted sweep
skips finished runs and resumes an interrupted one from its saved state, so no row is lost or
duplicated. Every file is written through a temporary file and ``os.replace``.

Where a base comes from is the one thing profiles differ in. ``smoke`` and ``toy`` pretrain small bases
here, with a BPE tokenizer trained on the corpus. ``paper`` loads the paper's six models
(``p2law.paper.PAPER_MODELS``) by hub id, or from the local folders in ``Profile.model_paths``, and streams
the corpus with each model's own tokenizer into a token store (``p2law.lab.token_store``) holding the whole
post-training budget, each block read once. Loaded weights are kept in float32: AdamW at the paper's LR
of 2e-5 needs full-precision weights (in bf16 most of its updates would round away). For bf16 compute,
start the sweep under ``accelerate launch --mixed_precision bf16`` or with ``ACCELERATE_MIXED_PRECISION=bf16``
(the checkpoints are then evaluated under autocast, L0 in float32). The base stays in host memory; each
run's copy is pruned and trained on the GPU when there is one.
"""

from __future__ import annotations

import copy
import hashlib
import json
import platform
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from filelock import FileLock, Timeout

from .. import table as checkpoint_table
from .data import calibration_batches, prepare, write_json_atomic
from .models import ToySpec, count_params, toy_family
from .profiles import Profile, get_profile


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    model: str
    family: str
    mirrors: str
    method: str  # depth | width | 2:4 | none
    target_rate: float  # 0 for 2:4 (its rate is measured) and for the control
    seed: int = 0  # post-training data order
    amount: int | None = None  # layers (depth) or hidden channels (width) the plan removes
    planned_rate: float | None = None  # ρ that removing ``amount`` gives, counted on the meta device
    note: str = ""  # why the plan moved away from the target, if it did


# Within a family, each rate rank's achieved ρ may differ across sizes by at most this much (the paper's
# own depth rates spread up to 0.06 across its models; width can be matched more closely).
RATE_MATCH = {"depth": 0.05, "width": 0.03}


class RatePlanError(ValueError):
    """The plan cannot give distinct or matched pruning rates."""


@dataclass(frozen=True)
class Base:
    """One unpruned model of a sweep and where it comes from."""

    name: str
    family: str
    mirrors: str  # the paper model whose Table 1 rates it is pruned at
    source: ToySpec | str  # a ToySpec is pretrained here; a str is a local folder or a hub id to load

    @property
    def pretrained_here(self) -> bool:
        return isinstance(self.source, ToySpec)


def base_models(profile: Profile) -> list[Base]:
    """The profile's unpruned models in sweep order (family by family, smallest first)."""
    if profile.scale == "loaded":
        return [Base(c.name, c.family, c.mirrors, c.source) for c in profile.checkpoints]
    if profile.scale != "paper":
        return [
            Base(s.name, family, s.mirrors, s) for family in profile.families for s in toy_family(family, profile.scale)
        ]
    from .. import paper

    return [
        Base(m.name, m.family, m.name, str(profile.model_paths.get(m.name, m.hub_id)))
        for m in paper.PAPER_MODELS.values()
        if m.family in profile.families
    ]


def _meta_model(base: Base, vocab_size: int | None):
    """The base built on the meta device (no weights, no download), to count what pruning would remove."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from .. import paper

    if base.pretrained_here:
        config = base.source.config(vocab_size)
    elif Path(base.source).is_dir():
        config = AutoConfig.from_pretrained(base.source)
    elif base.name in paper.PAPER_MODELS:
        config = paper_config(paper.PAPER_MODELS[base.name])
    else:
        from .hub import load_config

        config = load_config(base.source)  # a GGUF file's metadata, or a cached hub id's config.json
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def _amounts(model, method: str, targets: list[float]) -> list[tuple[float, int, float, str]]:
    """``(target, amount, ρ, note)`` per target rate: whole layers or head-multiples of channels.

    Two targets that round to the same amount would give one curve twice (double-weighted in every fit),
    so a repeat moves to the next amount up and the note says so; when none is left the plan fails.
    """
    from .prune.depth import layer_param_count, layers_for_rate
    from .prune.width import channels_for_rate, params_per_channel

    n0 = count_params(model)
    if method == "depth":
        per, step, limit = layer_param_count(model), 1, len(model.model.layers) - 1
        first = lambda r: layers_for_rate(n0, per, limit + 1, r)  # noqa: E731
    else:
        per, step = params_per_channel(model.config), model.config.num_attention_heads
        limit = model.config.hidden_size - step
        first = lambda r: channels_for_rate(model, r)  # noqa: E731
    out, used = [], set()
    for target in targets:
        amount, note = first(target), ""
        while amount in used:
            amount += step
            note = f"target {target:.3f} rounds to an amount already planned; moved up to {amount}"
        if amount > limit:
            raise RatePlanError(
                f"{method} rates {targets}: no distinct amount left for {target} (at most {limit} can be removed)"
            )
        used.add(amount)
        out.append((target, amount, amount * per / n0, note))
    return out


def plan_runs(profile: Profile) -> list[RunPlan]:
    """Every run of the sweep: per base, each depth and width rate, 2:4 and the ρ = 0 control, per seed.

    Achieved rates are fixed here, on the meta device: distinct within a model (``_amounts``) and, for a
    profile with its own target rates, matched across the sizes of a family to within ``RATE_MATCH``
    (``RatePlanError`` otherwise, before anything runs).
    """
    runs, achieved = [], {}
    for b in base_models(profile):
        meta_model = _meta_model(b, profile.vocab_size)
        for method in ("depth", "width"):
            for rank, (target, amount, rho, note) in enumerate(
                _amounts(meta_model, method, profile.rates(b.mirrors, method))
            ):
                achieved.setdefault((b.family, method, rank), []).append((b.name, rho))
                for seed in profile.seeds_for(b.name):
                    if seed != profile.seeds[0] and not profile.repeated(method, rank + 1):
                        continue
                    runs.append(
                        RunPlan(
                            _run_id(b.name, f"{method}-{rho:.3f}", seed, profile),
                            b.name,
                            b.family,
                            b.mirrors,
                            method,
                            target,
                            seed,
                            amount,
                            rho,
                            note,
                        )
                    )
        for seed in profile.seeds_for(b.name):
            for method, what in (("2:4", "2of4"), ("none", "none")):
                if seed == profile.seeds[0] or profile.repeated(method):
                    runs.append(
                        RunPlan(_run_id(b.name, what, seed, profile), b.name, b.family, b.mirrors, method, 0.0, seed)
                    )
    if profile.depth_rates is not None or profile.width_rates is not None:
        for (family, method, rank), got in achieved.items():
            rhos = [r for _, r in got]
            if max(rhos) - min(rhos) > RATE_MATCH[method] + 1e-9:
                raise RatePlanError(
                    f"{family} {method} rate #{rank + 1}: achieved rho "
                    + ", ".join(f"{n} {r:.3f}" for n, r in got)
                    + f" differ by more than {RATE_MATCH[method]}; choose other layer counts or rates"
                )
    return runs


def _run_id(model: str, what: str, seed: int, profile: Profile) -> str:
    """``<model>-<method>-<rho>`` plus ``-seed<k>`` when the profile repeats runs over seeds."""
    return f"{model}-{what}" + (f"-seed{seed}" if len(profile.seeds) > 1 else "")


def check_model_paths(profile: Profile) -> None:
    """Fail, naming the entry, on a ``model_paths`` override the sweep could not use (nothing is written)."""
    if not profile.model_paths:
        return
    if profile.scale != "paper":
        raise ValueError(
            f"profile {profile.name!r} pretrains its own bases; model_paths "
            f"({sorted(profile.model_paths)}) only points the paper profile's models at local folders"
        )
    from .. import paper

    unknown = sorted(set(profile.model_paths) - set(paper.PAPER_MODELS))
    if unknown:
        raise ValueError(
            f"model_paths names {unknown}, which are not among the paper's models {list(paper.PAPER_MODELS)}"
        )
    for name, path in profile.model_paths.items():
        folder = Path(path)
        if not (folder / "config.json").is_file():
            problem = "does not exist" if not folder.exists() else "has no config.json"
            raise FileNotFoundError(
                f"model path for {name}: {folder} {problem} (expected a folder written by "
                "save_pretrained, holding the model and its tokenizer)"
            )


def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "accelerate", "datasets", "tokenizers", "numpy", "scipy", "pandas"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def _git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _existing_table(table_path: Path) -> pd.DataFrame | None:
    """The table an earlier (possibly killed) sweep left, checked to be ours before we append to it."""
    if not table_path.exists():
        return None
    df = pd.read_csv(table_path)
    if list(df.columns) != list(checkpoint_table.COLUMNS):
        raise ValueError(
            f"{table_path}: columns {list(df.columns)} are not a p2law checkpoint table's "
            f"{list(checkpoint_table.COLUMNS)}; refusing to append to it"
        )
    return df


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


def paper_config(m):
    """A ``transformers`` config with the published architecture of one of the paper's models."""
    from transformers import LlamaConfig, Qwen2Config

    cls = LlamaConfig if m.family == "llama" else Qwen2Config  # Qwen2's q/k/v biases come with the class
    return cls(
        vocab_size=m.vocab_size,
        hidden_size=m.hidden_size,
        intermediate_size=m.intermediate_size,
        num_hidden_layers=m.n_layers,
        num_attention_heads=m.n_heads,
        num_key_value_heads=m.n_kv_heads,
        head_dim=m.head_dim,
        tie_word_embeddings=m.tied_embeddings,
    )


def _n0_on_meta(base: Base, vocab_size: int | None) -> int:
    """N0 of a base without allocating weights or downloading anything.

    A toy spec is counted at ``vocab_size``; a local folder from its own config.json; a hub id from
    ``p2law.paper``'s published architecture.
    """
    return count_params(_meta_model(base, vocab_size))


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


def _post_tokens(profile: Profile, model: str, n0: int | None) -> int:
    """Post-training tokens D of a base's runs: the paper's absolute budget, or a multiple of N0."""
    if profile.post_tokens_per_param is None:
        if model not in profile.post_tokens:
            raise ValueError(f"profile {profile.name!r} gives no post_tokens for {model}")
        return int(profile.post_tokens[model])
    return int(profile.post_tokens_per_param * n0)


# Settings of TrainConfig that change memory and speed but not results (``micro_batch_size``,
# ``gradient_checkpointing``), set by ``p2law run --micro-batch`` / ``--gradient-checkpointing`` through
# ``train_overrides`` for every run of a sweep.
TRAIN_OVERRIDES: dict = {}
OVERRIDABLE = ("micro_batch_size", "gradient_checkpointing")


class train_overrides:
    """``with train_overrides(micro_batch_size=4): run(...)`` sets TRAIN_OVERRIDES for the block."""

    def __init__(self, **settings):
        unknown = sorted(set(settings) - set(OVERRIDABLE))
        if unknown:
            raise ValueError(f"train_overrides: {unknown} are not among {OVERRIDABLE}")
        self.settings = {k: v for k, v in settings.items() if v is not None}

    def __enter__(self):
        self.saved = dict(TRAIN_OVERRIDES)
        TRAIN_OVERRIDES.update(self.settings)
        return self

    def __exit__(self, *exc):
        TRAIN_OVERRIDES.clear()
        TRAIN_OVERRIDES.update(self.saved)


def _post_train_config(profile: Profile, tokens: int, seed: int = 0):
    from .train import TrainConfig

    return TrainConfig(
        total_tokens=tokens,
        lr=profile.lr,
        batch_size=profile.batch_size,
        n_checkpoints=profile.n_checkpoints,
        warmup_fraction=profile.warmup_fraction,
        warmup_steps=profile.warmup_steps,
        schedule=profile.schedule,
        checkpoint_spacing=profile.checkpoint_spacing,
        seed=seed,
        eval_batch_size=profile.eval_batch_size,
        **TRAIN_OVERRIDES,
    )


def _run_config(profile: Profile, base: Base, corpus: PackedCorpus, seed: int = 0):
    """The post-training config of ``base``'s runs. A budget relative to N0 counts N0 at the vocabulary
    the base will have, which for a toy base is the trained tokenizer's (so the corpus is packed first)."""
    n0 = None
    if profile.post_tokens_per_param is not None:
        vocab = len(corpus.for_base(base)[0].tokenizer) if base.pretrained_here else None
        n0 = _n0_on_meta(base, vocab)
    return _post_train_config(profile, _post_tokens(profile, base.name, n0), seed)


def _train_blocks(profile: Profile, base: Base) -> int:
    """Post-training blocks a loaded base's runs consume: steps x batch size (the seed orders them only)."""
    cfg = _run_config(profile, base, None)  # a base not pretrained here needs no corpus for its budget
    return cfg.steps(profile.seq_len) * cfg.batch_size


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
    n0s = {name: _n0_on_meta(b, profile.vocab_size) for name, b in bases.items()}
    for name, b in bases.items():
        if profile.scale == "paper" and not Path(b.source).is_dir():
            check_published_size(name, n0s[name])
    eval_tokens = _eval_tokens(profile)
    runs = _selected(plan_runs(profile), only)
    kept = {r.model for r in runs}
    bases = {name: b for name, b in bases.items() if name in kept}
    n0s = {name: n for name, n in n0s.items() if name in kept}
    flops = sum(6 * n * profile.pretrain_tokens_per_param * n for n in n0s.values())
    rows = []
    for r in runs:
        n0 = n0s[r.model]
        cfg = _post_train_config(profile, _post_tokens(profile, r.model, n0))
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
        config = _meta_model(b, profile.vocab_size).config
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


def check_only(runs: list[RunPlan], only) -> None:
    """Every name in ``only`` must be a planned run id or model name (ValueError listing the valid ones)."""
    if only is None:
        return
    models = list(dict.fromkeys(r.model for r in runs))
    unknown = [name for name in only if name not in models and name not in {r.run_id for r in runs}]
    if unknown or not only:
        raise ValueError(
            f"--only {','.join(unknown) or '(empty)'}: not a model or run id of this profile; "
            f"valid model names: {', '.join(models)}; run ids: {', '.join(r.run_id for r in runs)}"
        )


def _selected(runs: list[RunPlan], only) -> list[RunPlan]:
    return [r for r in runs if only is None or r.run_id in only or r.model in only]


def _print_plan(profile: Profile, plan: dict) -> None:
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


def _own_tokenizer(base: Base):
    """The tokenizer a loaded model was trained with (None for a toy base: ``prepare`` trains one)."""
    if base.pretrained_here:
        return None
    from .hub import load_tokenizer

    tokenizer = load_tokenizer(base.source)
    if tokenizer.eos_token_id is None:
        raise ValueError(
            f"{base.name}: the tokenizer at {base.source} has no end-of-text token, which "
            "packing puts between documents"
        )
    return tokenizer


def _tokenizer_fingerprint(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(text.encode()).hexdigest()


class PackedCorpus:
    """The profile's corpus packed with one tokenizer at a time.

    Toy bases share the tokenizer trained on the corpus; loaded models bring their own (the three Llamas
    share one, the three Qwens another), so the corpus is re-read and re-packed only when it changes.
    A loaded model's post-training blocks come from the token store (``p2law.lab.token_store``): exactly
    the blocks its budget consumes, steps x batch size, each read once; a corpus too small for them is a
    ``CorpusTooSmallError``, never a repeat.
    """

    def __init__(self, profile: Profile, cache_dir: Path):
        self.profile, self.cache_dir = profile, cache_dir
        self.key, self.bundle, self.calibration = None, None, None

    def for_base(self, base: Base):
        """``(DataBundle, calibration batches)`` in the tokens of ``base``'s tokenizer."""
        tokenizer = _own_tokenizer(base)
        train_blocks = None if base.pretrained_here else _train_blocks(self.profile, base)
        key = "trained" if tokenizer is None else (_tokenizer_fingerprint(tokenizer), train_blocks)
        if key != self.key:
            p = self.profile
            self.bundle = prepare(
                p.corpus,
                p.seq_len,
                p.vocab_size,
                p.seed,
                p.n_eval_blocks,
                p.n_calibration,
                cache_dir=self.cache_dir,
                tokenizer=tokenizer,
                post_train_fraction=p.post_train_fraction,
                train_blocks=train_blocks,
            )
            self.calibration = calibration_batches(
                self.bundle.calibration, p.n_calibration, p.calibration_batch, p.seed
            )
            self.key = key
        return self.bundle, self.calibration


def _load_base(profile: Profile, base: Base, bundle, cache: Path, progress: bool):
    """``(model, info)``: a toy base pretrained (or reloaded from the cache), any other loaded in float32."""
    import torch

    from .models import load_model
    from .pretrain import pretrain_base

    if base.pretrained_here:
        return pretrain_base(
            base.source,
            bundle.pretrain_data,
            len(bundle.tokenizer),
            profile.pretrain_tokens_per_param,
            profile.pretrain_lr,
            profile.pretrain_batch_size or profile.batch_size * 2,
            cache / "bases",
            profile.seed,
            progress,
            warmup_steps=profile.pretrain_warmup_steps,
            min_lr_ratio=profile.pretrain_min_lr_ratio,
            keep_dir=cache.parent / "bases",
        )  # committed with the results: reused later
    from . import hub

    t0 = time.perf_counter()
    kind, _, _ = hub.resolve(base.source)
    model = load_model(base.source, dtype=torch.float32) if kind == "folder" else hub.load_model(base.source)
    model.eval()
    rows = model.get_input_embeddings().num_embeddings
    if len(bundle.tokenizer) > rows:
        raise ValueError(
            f"{base.name}: its tokenizer has {len(bundle.tokenizer)} tokens but the model at "
            f"{base.source} embeds only {rows}; are they from the same model?"
        )
    info = {"model": base.name, "source": base.source, "dtype": "float32", "n_params": count_params(model)}
    return model, info | hub.provenance(base.source) | {"load_seconds": time.perf_counter() - t0}


def _write_json(path, obj) -> None:
    """Atomic JSON write by the main process only (under torchrun every process runs the sweep)."""
    from .train import is_main_process

    if is_main_process():
        write_json_atomic(path, obj)


def _device():
    """This process's device: accelerate's ``PartialState`` (set up here, before anything touches a GPU)
    gives rank k of a torchrun / accelerate job ``cuda:<local rank>``, one process alone ``cuda`` or the CPU."""
    from accelerate import PartialState

    return PartialState().device


def _base_loss(base, eval_blocks, batch_size: int, device) -> float:
    """L0 on ``device``; the base goes back to host memory after, where the sweep keeps it."""
    from .train import evaluate

    loss = evaluate(base.to(device), eval_blocks, batch_size)
    base.to("cpu")
    return loss


class SweepBusyError(RuntimeError):
    """Two sweeps must not write one results folder at once: their checkpoint rows and states would mix."""


def sweep_lock(out) -> FileLock:
    """The lock a sweep holds on its results folder (a file in the folder's git-ignored ``_cache``)."""
    cache = Path(out) / "_cache"
    cache.mkdir(parents=True, exist_ok=True)
    return FileLock(cache / "sweep.lock")


def run(
    profile: str | Profile,
    out=None,
    dry_run: bool = False,
    only=None,
    progress: bool = True,
    gpus: int = 4,
    gpu_memory_gb: float = 80,
):
    """Run (or resume) a profile's sweep into ``out``; return the checkpoint table's path.

    ``dry_run=True`` only prints and returns the plan (``plan_sweep``): nothing is downloaded or trained.
    ``only``: run ids or model names to restrict the sweep to (a sweep can run in parts); a name that is
    neither is a ValueError listing the valid ones. ``gpus`` and ``gpu_memory_gb``: what the paper profile's
    dry run estimates per-GPU memory and the micro-batch for.

    The paper profile downloads each model and its tokenizer by hub id, unless ``profile.model_paths``
    maps the model's name (as in ``p2law.paper.PAPER_MODELS``, e.g. ``"Llama-3.2-1B"``) to a local folder
    holding both, as ``save_pretrained`` writes them (or a hub snapshot)::

        profile = dataclasses.replace(get_profile("paper"), model_paths={"Llama-3.2-1B": "/models/llama-1b"})
        run(profile, "results/paper", only=["Llama-3.2-1B"])

    The corpus is the profile's (SlimPajama streamed by hub id for ``paper``) and each run post-trains on
    ``profile.post_tokens[model]`` tokens.
    """
    import torch

    from .train import is_main_process

    profile = get_profile(profile) if isinstance(profile, str) else profile
    check_model_paths(profile)  # before anything is written
    if only is not None:
        check_only(plan_runs(profile), list(only))
    if dry_run:
        done = Path(out or f"results/{profile.name}") / "manifest.json"
        calibration = (
            achieved_flops_per_second(json.loads(done.read_text()), profile, torch.get_num_threads())
            if done.exists()
            else None
        )
        plan = plan_sweep(profile, calibration=calibration, only=only, gpus=gpus, gpu_memory_gb=gpu_memory_gb)
        _print_plan(profile, plan)
        return plan
    out = Path(out or f"results/{profile.name}")
    if not is_main_process():
        # The other ranks of a torchrun / accelerate job run the same sweep beside rank 0, which holds the
        # lock for all of them (only rank 0 writes the table and the manifest).
        return _run_locked(profile, out, only, progress)
    lock = sweep_lock(out)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise SweepBusyError(
            f"another process is already running a sweep into {out} (it holds {lock.lock_file}); "
            "wait for it to finish or choose another --out"
        ) from None
    try:
        return _run_locked(profile, out, only, progress)
    finally:
        lock.release()


def _run_locked(profile: Profile, out: Path, only, progress: bool):
    import torch

    from .prune import prune_2of4, prune_depth, prune_width
    from .train import post_train

    table_path = out / "checkpoints.csv"
    existing = _existing_table(table_path)  # checked before any result is written
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "_cache"
    t_start = time.perf_counter()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    device = _device()

    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest.update(
        {
            "profile": profile.to_dict(),
            "versions": _versions(),
            "git_commit": _git_commit(),
            "machine": {"cpus": torch.get_num_threads(), "platform": platform.platform(), "device": str(device)},
        }
    )
    manifest.setdefault("runs", {})
    manifest.setdefault("pretrain", {})
    # A sweep may run in parts (sessions); each records what it ran, its wall time and its thread count.
    session = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "only": list(only) if only else None,
        "threads": torch.get_num_threads(),
        "git_commit": manifest["git_commit"],
        "wall_seconds": 0.0,
    }
    manifest.setdefault("sessions", []).append(session)

    bases = {b.name: b for b in base_models(profile)}
    corpus = PackedCorpus(profile, cache)
    runs = [r for r in plan_runs(profile) if only is None or r.run_id in only or r.model in only]
    loaded: dict[str, tuple] = {}
    for r in runs:
        base = bases[r.model]
        cfg = _run_config(profile, base, corpus, r.seed)
        last_step = cfg.checkpoint_steps(profile.seq_len)[-1]
        if existing is not None and ((existing.run_id == r.run_id) & (existing.step == last_step)).any():
            # Finished in an earlier sweep: its base need not even be loaded. A sweep stopped between a
            # run's last row and the manifest write left it unrecorded; the book reads the manifest, so say
            # here that its rows are whole (its wall time was lost with the stopped sweep).
            if r.run_id not in manifest["runs"] and r.run_id not in manifest.setdefault("recovered_runs", []):
                manifest["recovered_runs"].append(r.run_id)
            continue
        if r.model not in loaded:
            loaded.clear()  # keep one base in memory at a time
            bundle, calibration = corpus.for_base(base)
            model, info = _load_base(profile, base, bundle, cache, progress)
            l0 = _base_loss(model, bundle.train_data.eval, profile.eval_batch_size, device)
            manifest["corpus"] = bundle.corpus
            manifest["pretrain"][r.model] = {k: v for k, v in info.items() if k != "curve"} | {"l0": l0}
            _write_json(out / "pretrain" / f"{r.model}.json", info | {"l0": l0})
            loaded[r.model] = (model, l0, bundle, calibration)
        base_model, l0, bundle, calibration = loaded[r.model]
        n0 = count_params(base_model)
        t0 = time.perf_counter()
        model = copy.deepcopy(base_model).to(device)
        masks = None
        if r.method == "depth":
            model, report = prune_depth(model, calibration, n_layers=r.amount, progress=progress)
        elif r.method == "width":
            model, report = prune_width(model, calibration, n_channels=r.amount, progress=progress)
        elif r.method == "2:4":
            model, report = prune_2of4(model, calibration, progress=progress)
            masks = report.masks
        else:
            report = None
        n = report.n if report else n0
        rate = report.rate if report else 0.0
        if report:
            _write_json(
                out / "prune_reports" / f"{r.run_id}.json",
                report.to_dict()
                | {"run_id": r.run_id, "model": r.model, "target_rate": r.target_rate, "plan_note": r.note},
            )
        meta = {
            "family": r.family,
            "model": r.model,
            "n0": n0,
            "l0": l0,
            "method": r.method,
            "rate": rate,
            "n": n,
            "seed": r.seed,
            "run_id": r.run_id,
        }
        post_train(
            model,
            bundle.train_data,
            cfg,
            masks=masks,
            rows_meta=meta,
            table_path=table_path,
            state_dir=cache / "state" / r.run_id,
            progress=progress,
        )
        manifest["runs"][r.run_id] = {
            "seconds": time.perf_counter() - t0,
            "tokens": cfg.total_tokens,
            "steps": cfg.steps(profile.seq_len),
            "n0": n0,
            "n": n,
            "rate": rate,
            "threads": torch.get_num_threads(),
            "seed": r.seed,
            "train_config": cfg.__dict__,
        }
        manifest["wall_seconds_this_session"] = session["wall_seconds"] = time.perf_counter() - t_start
        _write_json(manifest_path, manifest)
        existing = pd.read_csv(table_path)
    manifest["wall_seconds_total_runs"] = sum(v["seconds"] for v in manifest["runs"].values())
    manifest["wall_seconds_total_pretrain"] = sum(v.get("seconds", 0) for v in manifest["pretrain"].values())
    manifest["wall_seconds_this_session"] = session["wall_seconds"] = time.perf_counter() - t_start
    _write_json(manifest_path, manifest)
    return table_path
