"""Post-training with the sparsity mask kept (§2.2, App. B.3).

A plain loop on ``accelerate``: AdamW, a linear warm-up of a fixed number of steps, then the schedule the
config names (constant by default, so the learning rate a model sees at a given token does not depend on
how long its run is; cosine decay for pretraining), gradient clipping, and for
2:4-pruned models the mask applied after every optimizer step, W_t = W_{t−1} + M ⊙ ΔW_t (Eq. 19), so
a pruned weight stays exactly zero. The masked gradients are zeroed too, so AdamW's moments never
see them and the clipping norm counts only trainable weights.

Evaluation loss on a fixed held-out set is taken at checkpoints (the first at D = 0, the loss right
after pruning), evenly spaced in tokens or, with ``checkpoint_spacing="log+linear"``, half of them
log-spaced from the first steps (the early drop) and half evenly spaced (the second half, where ASD
samples). Each checkpoint becomes one row of the checkpoint table, written
atomically as it happens, and the training state (weights, AdamW, masks, rows) is saved beside it with
``torch.distributed.checkpoint`` (``p2law.lab.resume``: each rank writes its own part), so a killed run
resumes from its last checkpoint and produces the same rows as an uninterrupted one. Data order depends
only on the seed and the step, which is what makes resuming exact.

Preemption: while it runs (in the main thread), SIGTERM and SIGUSR1 (what cluster schedulers send before a
kill; Slurm's ``--signal``) only set a flag. At the next optimizer-step boundary the run saves the same
resume state a checkpoint saves, plus the training loss accumulated since the last checkpoint, so the
restarted run's rows are exactly an uninterrupted run's; then it raises ``Preempted``, whose ``exit_code``
(128 + the signal number: 143 for SIGTERM, 138 for SIGUSR1) ``p2law run`` exits with. Under torchrun every
rank agrees at each step boundary whether any of them was signalled, so all stop at the same step
(torchrun forwards SIGTERM to its workers, and SIGUSR1 with ``--signals-to-handle SIGTERM,SIGUSR1``, then
kills them after ``--shutdown-timeout`` seconds, 30 by default: make that cover a step and a save). The
previous handlers are back when ``post_train`` returns or raises.

With ``torchrun``/``accelerate launch`` each process takes an equal share of every global batch;
gradients are averaged across processes, so the loss curve matches one process with the same batch.
Under DDP every rank holds the whole model; under FSDP2 (``sharding="fsdp2"``, or accelerate's FSDP plugin)
weights, gradients, AdamW moments and masks are sharded (``p2law.lab.sharding``) and the loop is the same.

Gradient accumulation: with ``micro_batch_size`` set, each process's share is run as several
forward/backward passes of that many sequences inside ``accelerator.accumulate(model)`` (accelerate
divides each micro-batch's mean loss by the accumulation count and skips DDP's all-reduce until the last
one); the 2:4 gradient mask, clipping, the optimizer step and the weight mask happen only when
``accelerator.sync_gradients``. Micro-batches hold equal token counts, so the accumulated gradient and the
logged loss are those of the whole global batch. ``gradient_checkpointing`` recomputes activations in the
backward pass (``model.gradient_checkpointing_enable``), trading compute for memory; results are unchanged.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import table as checkpoint_table
from . import resume
from .sharding import SHARDINGS, is_sharded, masks_like, shard_fsdp2


def mixed_precision() -> str:
    """The compute precision of post-training: what ``accelerate launch --mixed_precision`` (or the
    ``ACCELERATE_MIXED_PRECISION`` variable) says; otherwise bf16 autocast on a GPU that supports it (fp32
    master weights and AdamW either way), and fp32 on CPUs, whose bf16 is slow or emulated."""
    chosen = os.environ.get("ACCELERATE_MIXED_PRECISION")
    if chosen:
        return chosen
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def is_main_process() -> bool:
    """True in a single process, and in rank 0 of a torchrun / accelerate launch job (both set RANK).

    Files shared by all processes (base weights, reports, the manifest) are written by this one only;
    the others hold identical models and tables after each synchronised training run.
    """
    return int(os.environ.get("RANK", "0")) == 0


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; rows logged before it are kept."""


PREEMPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preempted(RuntimeError):
    """A preemption signal stopped the run at a step boundary, its resume state saved (given a state_dir).

    ``exit_code`` is 128 + the signal number, the status of a process that signal kills outright, so a job
    script that requeues on 143 (or 138) treats a clean stop and a kill alike."""

    def __init__(self, message: str, signum: int, step: int):
        super().__init__(message)
        self.signum, self.step, self.exit_code = signum, step, 128 + signum


def _catch_preemption() -> tuple[list[int], Callable[[], None]]:
    """``(caught, restore)``: the preemption signals received from now on, and the call that puts the
    previous handlers back. Python runs handlers in the main thread only, so elsewhere nothing is caught."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        return caught, lambda: None
    # a handler installed outside Python reads as None and cannot be reinstalled; the default stands in
    previous = {s: signal.getsignal(s) or signal.SIG_DFL for s in PREEMPT_SIGNALS}
    for s in PREEMPT_SIGNALS:
        signal.signal(s, lambda signum, frame: caught.append(signum))

    def restore() -> None:
        for s, handler in previous.items():
            signal.signal(s, handler)

    return caught, restore


@dataclass
class TrainData:
    """Packed token blocks: ``train`` [n_blocks, seq_len] and a fixed held-out ``eval`` set."""

    train: torch.Tensor
    eval: torch.Tensor

    def __post_init__(self):
        for name in ("train", "eval"):
            t = getattr(self, name)
            if not isinstance(t, torch.Tensor) or t.dim() != 2 or t.shape[0] == 0:
                raise ValueError(f"TrainData.{name} must be a non-empty [n_blocks, seq_len] tensor")
        if self.train.shape[1] != self.eval.shape[1]:
            raise ValueError("train and eval blocks must have the same length")


@dataclass
class TrainConfig:
    total_tokens: int
    lr: float = 2e-4
    batch_size: int = 16  # global, in sequences per optimizer step
    n_checkpoints: int = 20  # evaluations after D = 0
    warmup_fraction: float = 0.05  # used when warmup_steps is None: a share of the run (length-dependent)
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int | None = None  # a fixed warm-up, the same for every run whatever its length
    schedule: str = "cosine"  # after warm-up: "cosine" (to lr * min_lr_ratio) or "constant"
    checkpoint_spacing: str = "linear"  # "linear" or "log+linear"
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    seed: int = 0
    eval_batch_size: int = 32
    micro_batch_size: int | None = None  # per process, sequences per forward/backward; None: the whole share
    gradient_checkpointing: bool = False  # recompute activations in backward (memory, not results)
    sharding: str = "ddp"  # "ddp" (every rank holds the model) or "fsdp2" (sharded: p2law.lab.sharding)

    def __post_init__(self):
        problems = []
        if self.total_tokens <= 0:
            problems.append(f"total_tokens must be positive (got {self.total_tokens})")
        if self.lr <= 0 or not math.isfinite(self.lr):
            problems.append(f"lr must be positive and finite (got {self.lr})")
        if self.batch_size <= 0:
            problems.append(f"batch_size must be positive (got {self.batch_size})")
        if self.n_checkpoints < 1:
            problems.append(f"n_checkpoints must be >= 1 (got {self.n_checkpoints})")
        if not 0 <= self.warmup_fraction < 1:
            problems.append(f"warmup_fraction must be in [0, 1) (got {self.warmup_fraction})")
        if not 0 <= self.min_lr_ratio <= 1:
            problems.append(f"min_lr_ratio must be in [0, 1] (got {self.min_lr_ratio})")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            problems.append(f"warmup_steps must be >= 0 (got {self.warmup_steps})")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {SCHEDULES} (got {self.schedule!r})")
        if self.checkpoint_spacing not in SPACINGS:
            problems.append(f"checkpoint_spacing must be one of {SPACINGS} (got {self.checkpoint_spacing!r})")
        if self.sharding not in SHARDINGS:
            problems.append(f"sharding must be one of {SHARDINGS} (got {self.sharding!r})")
        if self.micro_batch_size is not None and self.micro_batch_size <= 0:
            problems.append(f"micro_batch_size must be positive or None (got {self.micro_batch_size})")
        if problems:
            raise ValueError("bad TrainConfig: " + "; ".join(problems))

    def accumulation_steps(self, world: int = 1) -> int:
        """Forward/backward passes per optimizer step in each of ``world`` processes (ValueError if the
        global batch does not split evenly into processes and micro-batches)."""
        if self.batch_size % world:
            raise ValueError(f"batch_size {self.batch_size} is not divisible by the {world} processes")
        share = self.batch_size // world
        micro = self.micro_batch_size or share
        if share % micro:
            raise ValueError(
                f"micro_batch_size {micro} does not divide each process's share of the batch "
                f"({self.batch_size} sequences / {world} processes = {share})"
            )
        return share // micro

    def steps(self, seq_len: int) -> int:
        return max(1, self.total_tokens // (self.batch_size * seq_len))

    def checkpoint_steps(self, seq_len: int) -> list[int]:
        """Step 0 and ``n_checkpoints`` distinct later steps (fewer only if the run has fewer steps)."""
        return checkpoint_steps(self.steps(seq_len), self.n_checkpoints, self.checkpoint_spacing)

    def warmup(self, total: int) -> int:
        return self.warmup_steps if self.warmup_steps is not None else int(self.warmup_fraction * total)


SCHEDULES = ("cosine", "constant")
SPACINGS = ("linear", "log+linear")


def checkpoint_steps(total: int, n: int, spacing: str = "linear") -> list[int]:
    """Step 0 and ``min(n, total)`` distinct steps in (0, total], the last one ``total``.

    ``"log+linear"``: half the steps on a log grid from step 1 (where the loss falls fastest after pruning)
    and half evenly spaced; where the two grids collide, the log grid gets more points until ``n`` are
    distinct, so the count does not depend on the run's length.
    """
    n = min(n, total)
    if spacing == "linear":
        return sorted({round(i * total / n) for i in range(n + 1)})
    n_lin = n - n // 2
    linear = {round(i * total / n_lin) for i in range(1, n_lin + 1)}
    steps = set(linear)
    n_log = n // 2
    while len(steps) < n:
        grid = {int(round(x)) for x in _geomspace(1, total, n_log)}
        steps = linear | grid
        n_log += 1
    # the log grid's extra points can overshoot by a few; drop the largest log-only ones
    extra = sorted(steps - linear, reverse=True)
    for s in extra[: max(0, len(steps) - n)]:
        steps.discard(s)
    return [0] + sorted(steps)


def _geomspace(a: float, b: float, n: int) -> list[float]:
    if n <= 1:
        return [a]
    return [a * (b / a) ** (i / (n - 1)) for i in range(n)]


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then the config's schedule (constant, or cosine decay to ``lr * min_lr_ratio``)."""
    warm = cfg.warmup(total)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    if cfg.schedule == "constant":
        return cfg.lr
    progress = (step - warm) / max(1, total - warm)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def batch_indices(step: int, batch_size: int, n_blocks: int, seed: int) -> torch.Tensor:
    """Block indices of global batch ``step``: epochs of seeded permutations, a function of (seed, step)."""
    start = step * batch_size
    out = []
    while len(out) < batch_size:
        epoch, offset = divmod(start + len(out), n_blocks)
        perm = torch.randperm(n_blocks, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        out.extend(perm[offset : offset + batch_size - len(out)].tolist())
    return torch.tensor(out)


def lm_loss_sum(model, ids: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Summed next-token cross-entropy over a batch of blocks, and the number of predicted tokens."""
    logits = model(input_ids=ids, use_cache=False).logits[:, :-1]
    targets = ids[:, 1:]
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), reduction="sum"
    ), targets.numel()


@torch.no_grad()
def evaluate(model, eval_blocks: torch.Tensor, batch_size: int, accelerator=None) -> float:
    """Mean token loss on the held-out blocks (each process takes a share; the sums are reduced)."""
    was_training = model.training
    model.eval()
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    device = next(model.parameters()).device
    total = torch.zeros(2, dtype=torch.float64, device=device)
    mine = eval_blocks[rank::world]
    # Every rank runs the same number of forward passes (under FSDP2 each one gathers weights from all
    # ranks); a rank whose share ran out runs one block and does not count it.
    for i in range(0, -(-len(eval_blocks) // world), batch_size):
        batch, weight = mine[i : i + batch_size], 1.0
        if len(batch) == 0:
            batch, weight = eval_blocks[:1], 0.0
        s, n = lm_loss_sum(model, batch.to(device))
        total += weight * torch.tensor([s.item(), n], dtype=torch.float64, device=device)
    if accelerator is not None and world > 1:
        total = accelerator.reduce(total, reduction="sum")
    model.train(was_training)
    return float(total[0] / total[1])


def _apply_masks(params: dict[str, torch.nn.Parameter], masks: dict[str, torch.Tensor], grads: bool) -> None:
    with torch.no_grad():
        for name, mask in masks.items():
            p = params[name]
            if grads:
                if p.grad is not None:
                    p.grad.mul_(mask)
            else:
                p.mul_(mask)


def _checkpointing_on(model) -> bool:
    for name in ("is_activation_checkpointing", "is_gradient_checkpointing"):  # transformers >= 5 renamed it
        if name in dir(type(model)):
            return bool(getattr(model, name))
    return False


def _set_checkpointing(model, on: bool) -> None:
    """Activation checkpointing on or off (non-reentrant; ``activation_*`` in transformers >= 5, else
    ``gradient_checkpointing_*``)."""
    renamed = hasattr(model, "activation_checkpointing_enable")
    prefix = "activation_checkpointing" if renamed else "gradient_checkpointing"
    if on:
        getattr(model, prefix + "_enable")(**{prefix + "_kwargs": {"use_reentrant": False}})
    else:
        getattr(model, prefix + "_disable")()


def _global_mean(value: torch.Tensor, accelerator) -> torch.Tensor:
    value = value.detach().float().reshape(1)
    if accelerator.num_processes > 1:
        value = accelerator.reduce(value, reduction="mean")
    return value[0]


def post_train(
    model,
    data: TrainData,
    cfg: TrainConfig,
    masks: dict[str, torch.Tensor] | None = None,
    rows_meta: dict | None = None,
    table_path=None,
    state_dir=None,
    progress: bool = True,
    stop_after_checkpoints: int | None = None,
    accelerator=None,
    signalled: list[int] | None = None,
) -> list[dict]:
    """Post-train ``model`` on ``data``; return the checkpoint rows (and write them to ``table_path``).

    ``masks`` (parameter name -> bool, True = may train) are kept exactly. ``rows_meta`` fills the
    table's descriptive columns (family, model, n0, l0, method, rate, n, seed, run_id). With
    ``state_dir`` the run resumes from its last checkpoint, or from the step a preemption signal stopped
    it at (``Preempted``, see the module docstring). ``stop_after_checkpoints`` ends the run early after
    that many checkpoints (a stand-in for a kill, used by tests). ``signalled``: preemption signals
    caught before this call (by the sweep, while it pruned); they stop the run at its first step.
    """
    from accelerate import Accelerator

    seq_len = data.train.shape[1]
    meta = dict(rows_meta or {})
    meta.setdefault("run_id", "run")
    if accelerator is not None and str(accelerator.distributed_type).rsplit(".", 1)[-1] == "DEEPSPEED":
        raise NotImplementedError(
            "post_train under DeepSpeed: not supported (its optimizer steps inside backward, before the "
            "2:4 gradient mask, and ZeRO's fp32 master weights are never masked); use DDP or FSDP2 "
            "(configs/accelerate/ddp.yaml, configs/accelerate/fsdp2.yaml)"
        )
    if accelerator is None:
        from accelerate import PartialState

        world = PartialState().num_processes
        accum = cfg.accumulation_steps(world)
        accelerator = Accelerator(
            cpu=not torch.cuda.is_available(), gradient_accumulation_steps=accum, mixed_precision=mixed_precision()
        )
        if accelerator.distributed_type.name == "DEEPSPEED":  # from accelerate launch's config
            return post_train(
                model, data, cfg, masks, rows_meta, table_path, state_dir, progress, stop_after_checkpoints, accelerator
            )  # refused above, with the message
    else:
        world = accelerator.num_processes
        accum = cfg.accumulation_steps(world)
        if accelerator.gradient_accumulation_steps != accum:
            raise ValueError(
                f"the Accelerator passed in accumulates over {accelerator.gradient_accumulation_steps} "
                f"micro-batches, but this config needs {accum} (batch_size {cfg.batch_size} / "
                f"{world} processes / micro_batch_size {cfg.micro_batch_size}); create it with "
                f"Accelerator(gradient_accumulation_steps={accum})"
            )
        if accelerator.step % accum:
            raise ValueError(
                f"the Accelerator passed in is {accelerator.step % accum} micro-batches into an "
                "accumulation cycle; pass a fresh one (or one whose last run finished its step)"
            )
    masks = {k: v.bool() for k, v in (masks or {}).items()}
    params = dict(model.named_parameters())
    unknown = sorted(set(masks) - set(params))
    if unknown:
        raise ValueError(f"masks name parameters the model does not have: {unknown[:3]}")
    # FSDP2: accelerate's plugin shards in prepare() (accelerate launch with configs/accelerate/fsdp2.yaml);
    # otherwise sharding="fsdp2" shards here, before the optimizer is made over the sharded parameters.
    by_accelerate = accelerator.distributed_type.name == "FSDP"
    if cfg.sharding == "fsdp2" and not by_accelerate and not is_sharded(model):
        model = shard_fsdp2(model, accelerator.device, accelerator.mixed_precision)
    ours = is_sharded(model) and not by_accelerate
    params = dict(model.named_parameters())
    checkpointing = cfg.gradient_checkpointing and not _checkpointing_on(model)
    if checkpointing:
        _set_checkpointing(model, True)

    torch.manual_seed(cfg.seed)
    decay = [p for n, p in params.items() if p.dim() >= 2]
    no_decay = [p for n, p in params.items() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=cfg.betas,
    )
    total = cfg.steps(seq_len)
    checkpoints = cfg.checkpoint_steps(seq_len)
    rows: list[dict] = []
    step = 0
    running, n_running = 0.0, 0
    state_dir = Path(state_dir) if state_dir else None
    if state_dir and (state_dir / "state.pt").exists() and not resume.exists(state_dir):
        raise ValueError(
            f"{state_dir} holds a resume state in the format of p2law before sharded checkpoints "
            "(state.pt); delete the folder to run this run again from its start"
        )
    if not ours:  # DDP, one process, or accelerate's FSDP2: accelerate wraps (and shards) the model
        model, optimizer = accelerator.prepare(model, optimizer)
    raw = accelerator.unwrap_model(model) if not ours else model
    params = dict(raw.named_parameters())
    masks = masks_like(params, masks)  # sharded like their weights under FSDP2
    if resume.exists(state_dir):
        saved = resume.load(state_dir, raw, optimizer, masks)
        step, rows = saved["step"], saved["rows"]
        running, n_running = saved["running"]
    _apply_masks(params, masks, grads=False)  # a resumed or freshly pruned model starts exactly masked
    main = accelerator.is_main_process and is_main_process()  # accelerate's rank and the launcher's agree

    def save_state(at_step: int, since_row: tuple[float, int] = (0.0, 0)) -> None:
        meta_now = {"step": at_step, "rows": rows, "running": list(since_row)}
        resume.save(state_dir, raw, optimizer, masks, meta_now, accelerator, main)  # every rank writes its part

    per_process = cfg.batch_size // world
    micro = per_process // accum
    tokens_per_step = cfg.batch_size * seq_len
    device = accelerator.device
    bar = tqdm(
        total=total,
        initial=step,
        desc=f"post-train {meta['run_id']}",
        disable=not (progress and accelerator.is_main_process),
        leave=False,
    )
    t0, tokens_done = time.perf_counter(), 0

    def checkpoint(at_step: int, train_loss: float) -> None:
        row = {
            **meta,
            "tokens": at_step * tokens_per_step,
            "step": at_step,
            "train_loss": train_loss,
            "eval_loss": evaluate(model, data.eval, cfg.eval_batch_size, accelerator),
        }
        rows.append(row)
        if main and table_path is not None:
            checkpoint_table.replace_run_rows(table_path, meta["run_id"], rows)
        if state_dir is not None:
            save_state(at_step)
        accelerator.wait_for_everyone()

    def my_share(at_step: int) -> torch.Tensor:
        idx = batch_indices(at_step, cfg.batch_size, len(data.train), cfg.seed)
        return data.train[idx[accelerator.process_index * per_process : (accelerator.process_index + 1) * per_process]]

    caught, restore_handlers = _catch_preemption()
    caught.extend(signalled or [])

    def preempted() -> bool:
        """Whether any process was signalled (all ask at the same step boundary, so all agree)."""
        if accelerator.num_processes == 1:
            return bool(caught)
        flag = torch.tensor([float(bool(caught))], device=device)
        return bool(accelerator.reduce(flag, reduction="sum").item())

    def stop(at_step: int, save: bool) -> Preempted:
        """The exception ending a signalled run; ``save``: write the state at ``at_step`` first (False
        when the checkpoint just taken saved it)."""
        if save and state_dir is not None:
            save_state(at_step, (running, n_running))
        accelerator.wait_for_everyone()
        signum = caught[0] if caught else signal.SIGTERM  # a rank not signalled itself stops with the rest
        saved = (
            f"its state is saved in {state_dir}; run it again to resume"
            if state_dir is not None
            else "no state_dir was given, so nothing was saved to resume from"
        )
        return Preempted(
            f"{meta['run_id']}: stopped by {signal.Signals(signum).name} at step {at_step} of "
            f"{total} ({len(rows)} checkpoint rows written); {saved}",
            signum,
            at_step,
        )

    try:
        model.train()
        if step == 0 and not rows:
            with torch.no_grad():
                ids = my_share(0)
                s = sum(lm_loss_sum(model, ids[i : i + micro].to(device))[0] for i in range(0, per_process, micro))
            checkpoint(0, float(_global_mean(s / (ids.shape[0] * (seq_len - 1)), accelerator)))
        n_done = sum(1 for r in rows if r["step"] > 0)
        while step < total:
            if preempted():
                raise stop(step, save=True)  # the first check comes after the D = 0 row, state saved
            ids = my_share(step)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, total, cfg)
            local = torch.zeros((), dtype=torch.float64, device=device)
            for k in range(accum):
                with accelerator.accumulate(model):
                    s, n = lm_loss_sum(model, ids[k * micro : (k + 1) * micro].to(device))
                    loss = s / n
                    local += loss.detach().double() / accum  # equal token counts: the share's mean token loss
                    if k == accum - 1:
                        if not accelerator.sync_gradients:
                            raise RuntimeError("accelerate did not mark the last micro-batch of a step as a sync step")
                        logged = _global_mean(local, accelerator)  # every process: the global batch's loss
                        if not torch.isfinite(logged):
                            raise NonFiniteLossError(
                                f"{meta['run_id']}: training loss became "
                                f"{logged.item()} at step {step}; {len(rows)} "
                                "checkpoint rows were kept"
                            )
                    accelerator.backward(loss)  # divided by accum by accelerate
                    if accelerator.sync_gradients:
                        _apply_masks(params, masks, grads=True)
                        if cfg.grad_clip:
                            accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                        optimizer.step()
                        optimizer.zero_grad(set_to_none=True)
                        _apply_masks(params, masks, grads=False)  # Eq. 19: pruned weights stay exactly zero
            step += 1
            running += logged.item()
            n_running += 1
            tokens_done += tokens_per_step
            bar.update(1)
            bar.set_postfix(loss=f"{logged.item():.3f}", tok_s=f"{tokens_done / (time.perf_counter() - t0):.0f}")
            if step in checkpoints:
                checkpoint(step, running / n_running)
                running, n_running = 0.0, 0
                n_done += 1
                if stop_after_checkpoints is not None and n_done >= stop_after_checkpoints and step < total:
                    break
        if preempted():  # signalled during the last steps: the run is whole, but the caller must stop too
            raise stop(step, save=False)
    finally:
        restore_handlers()
        bar.close()
    if checkpointing:
        _set_checkpointing(raw, False)
    return rows
