"""The sweep: bases -> prune -> post-train -> rows of the checkpoint table.

Its parts: ``schedule`` decides the runs (bases, pruning amounts, seeds, training config), ``costs`` what they
would cost (``--dry-run``), ``manifest`` records where results came from; this module runs them, with one
row per pruning method in ``PRUNERS``.

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
of 2e-5 needs full-precision weights (in bf16 most of its updates would round away). Compute is bf16
autocast on GPUs that support it (``train.mixed_precision``; ``ACCELERATE_MIXED_PRECISION`` or
``accelerate launch --mixed_precision`` overrides it), fp32 on CPUs, and L0 is measured under the same
precision as the checkpoints. The base stays in host memory; each run's copy is pruned and trained on the
GPU when there is one.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import signal
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
from filelock import FileLock, Timeout

from . import resume
from .costs import achieved_flops_per_second, plan_sweep, print_plan
from .data import calibration_batches, prepare
from .manifest import add_totals, existing_table, open_manifest, write_json
from .models import count_params
from .profiles import Profile, get_profile
from .prune import prune_2of4, prune_depth, prune_width
from .schedule import (
    Base,
    base_models,
    check_model_paths,
    check_only,
    n0_on_meta,
    plan_runs,
    post_tokens,
    post_train_config,
)


def _run_config(profile: Profile, base: Base, corpus: PackedCorpus, seed: int = 0):
    """The post-training config of ``base``'s runs. A budget relative to N0 counts N0 at the vocabulary
    the base will have, which for a toy base is the trained tokenizer's (so the corpus is packed first)."""
    n0 = None
    if profile.post_tokens_per_param is not None:
        vocab = len(corpus.for_base(base)[0].tokenizer) if base.pretrained_here else None
        n0 = n0_on_meta(base, vocab)
    return post_train_config(profile, post_tokens(profile, base.name, n0), seed)


def _train_blocks(profile: Profile, base: Base) -> int:
    """Post-training blocks a loaded base's runs consume: steps x batch size (the seed orders them only)."""
    cfg = _run_config(profile, base, None)  # a base not pretrained here needs no corpus for its budget
    return cfg.steps(profile.seq_len) * cfg.batch_size


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


# How long a collective may wait before the job fails. NCCL's default (10 min) is shorter than rank 0
# pruning an 8B model with SparseGPT or a first tokenisation of the corpus, while the others wait.
PROCESS_GROUP_TIMEOUT = timedelta(hours=2)


def _device():
    """This process's device: accelerate's ``PartialState`` (set up here, before anything touches a GPU)
    gives rank k of a torchrun / accelerate job ``cuda:<local rank>``, one process alone ``cuda`` or the CPU.
    The first call sets up the process group, with ``PROCESS_GROUP_TIMEOUT``."""
    from accelerate import PartialState
    from accelerate.utils import InitProcessGroupKwargs

    return PartialState(**InitProcessGroupKwargs(timeout=PROCESS_GROUP_TIMEOUT).to_kwargs()).device


def _base_loss(base, eval_blocks, batch_size: int, device) -> float:
    """L0 on ``device``, under the precision the checkpoints are evaluated in (bf16 autocast on GPUs, by
    default); the base goes back to host memory after, where the sweep keeps it."""
    import torch

    from .train import evaluate, mixed_precision

    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=mixed_precision() == "bf16"):
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
        print_plan(profile, plan)
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


# Each pruning method, as the sweep calls it: (model, calibration, plan, progress) -> (model, PruneReport or
# None). Adding a method means adding a row here (and its amounts to ``schedule.plan_runs``).
def _no_pruning(model, calibration, plan, progress):
    return model, None


PRUNERS = {
    "depth": lambda model, cal, plan, progress: prune_depth(model, cal, n_layers=plan.amount, progress=progress),
    "width": lambda model, cal, plan, progress: prune_width(model, cal, n_channels=plan.amount, progress=progress),
    "2:4": lambda model, cal, plan, progress: prune_2of4(model, cal, progress=progress),
    "none": _no_pruning,
}


def _run_locked(profile: Profile, out: Path, only, progress: bool):
    """The sweep, with SIGTERM/SIGUSR1 caught from its first step: a signal while a base loads, the corpus
    is packed or a model is pruned is acted on at the next run's first step boundary (its pruned state is
    saved, so SparseGPT does not run again), not by dying mid-write."""
    from .train import _catch_preemption

    caught, restore = _catch_preemption()
    try:
        return _sweep(profile, out, only, progress, caught)
    finally:
        restore()


def _pruned(r, base_model, calibration, device, state_dir: Path, report_path: Path, progress: bool):
    """``(model, masks, n, rate)`` of run ``r``. A 2:4 run stopped mid-way has its masks in its saved state
    and its report on disk: it takes both instead of running SparseGPT again (post_train then loads the
    trained weights). Every other method prunes (depth and width are cheap, and change the shapes the
    state is loaded into)."""
    model = copy.deepcopy(base_model).to(device)
    if r.method == "2:4" and resume.exists(state_dir) and report_path.exists():
        saved = json.loads(report_path.read_text())
        masks = resume.saved_masks(state_dir, {k: p.shape for k, p in model.named_parameters()})
        return model, masks, saved["n"], saved["rate"]
    model, report = PRUNERS[r.method](model, calibration, r, progress)
    if report is None:
        return model, None, count_params(base_model), 0.0
    write_json(
        report_path,
        report.to_dict() | {"run_id": r.run_id, "model": r.model, "target_rate": r.target_rate, "plan_note": r.note},
    )
    return model, report.masks, report.n, report.rate


def _sweep(profile: Profile, out: Path, only, progress: bool, caught: list[int]):
    import torch

    from .train import Preempted, is_main_process, post_train

    table_path = out / "checkpoints.csv"
    existing = existing_table(table_path)  # checked before any result is written
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "_cache"
    t_start = time.perf_counter()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    device = _device()
    manifest_path = out / "manifest.json"
    # A sweep may run in parts (sessions); each records what it ran, its wall time and its thread count.
    manifest, session = open_manifest(manifest_path, profile, device, only, torch.get_num_threads())

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
            write_json(out / "pretrain" / f"{r.model}.json", info | {"l0": l0})
            loaded[r.model] = (model, l0, bundle, calibration)
        base_model, l0, bundle, calibration = loaded[r.model]
        n0 = count_params(base_model)
        t0 = time.perf_counter()
        if caught and not torch.distributed.is_initialized():  # one process: stop before pruning
            raise Preempted(
                f"stopped by {signal.Signals(caught[0]).name} before run {r.run_id}; the finished runs are "
                f"in {table_path}; run the same command again to go on",
                caught[0],
                0,
            )
        state_dir = cache / "state" / r.run_id
        report_path = out / "prune_reports" / f"{r.run_id}.json"
        model, masks, n, rate = _pruned(r, base_model, calibration, device, state_dir, report_path, progress)
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
            masks=masks,  # 2:4 only: the mask is kept exactly
            rows_meta=meta,
            table_path=table_path,
            state_dir=state_dir,
            progress=progress,
            signalled=caught,  # a signal caught before training stops the run at its first step
        )
        if is_main_process():  # the run is whole in the table; its training state is dead weight (GBs)
            shutil.rmtree(state_dir, ignore_errors=True)
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
        write_json(manifest_path, manifest)
        existing = pd.read_csv(table_path)
    add_totals(manifest)
    manifest["wall_seconds_this_session"] = session["wall_seconds"] = time.perf_counter() - t_start
    write_json(manifest_path, manifest)
    return table_path
