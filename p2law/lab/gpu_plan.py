"""Plain arithmetic for running a profile on GPUs: micro-batch, per-GPU memory, GPU-hours.

Nothing here touches a GPU; the dry run of the paper profile prints these estimates per model. They are
estimates from stated assumptions, not measurements; the assumptions are the module constants below.
"""

from __future__ import annotations

from dataclasses import dataclass

# fp32 master weights (4 B) + fp32 gradients (4 B) + AdamW's two fp32 moments (8 B) per parameter.
STATE_BYTES_PER_PARAM = 16
# DDP keeps its own fp32 gradient buckets beside .grad (gradient_as_bucket_view=False, torch's default).
DDP_BUCKET_BYTES_PER_PARAM = 4
# Activations a transformer layer saves for backward, bytes per token, in units of the hidden size, under
# bf16 autocast: 34·h (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
# Models", Eq. 1, s·b·h·(34 + 5·a·s/h)) without the 5·a·s/h attention-score term, which SDPA's flash /
# memory-efficient kernels do not store on GPUs.
ACTIVATION_BYTES_PER_TOKEN_LAYER_PER_HIDDEN = 34
# Under activation checkpointing a layer keeps only its bf16 input (2·h bytes per token); one layer's full
# activations are rebuilt at a time in backward.
CHECKPOINTED_BYTES_PER_TOKEN_LAYER_PER_HIDDEN = 2
# The LM head's output per token and vocabulary entry: bf16 logits (2 B), the fp32 copy our loss takes
# (4 B) and its fp32 gradient (4 B).
LOGIT_BYTES_PER_TOKEN_PER_VOCAB = 10
# A100 / A800 dense bf16 peak, FLOP/s (NVIDIA A100 datasheet), and the model-FLOPs utilisation assumed.
A100_BF16_PEAK = 312e12
ASSUMED_MFU = 0.40
GB = 1e9


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per GPU, by part."""

    weights: float
    grads: float
    optimizer: float
    activations: float

    @property
    def total(self) -> float:
        return self.weights + self.grads + self.optimizer + self.activations

    def gb(self) -> dict:
        return {
            k: round(v / GB, 1)
            for k, v in dict(
                weights=self.weights,
                grads=self.grads,
                optimizer=self.optimizer,
                activations=self.activations,
                total=self.total,
            ).items()
        }


def memory_per_gpu(
    n_params: int,
    n_layers: int,
    hidden: int,
    vocab: int,
    seq_len: int,
    micro_batch: int,
    n_gpus: int,
    strategy: str,
    checkpointing: bool = False,
) -> MemoryEstimate:
    """Estimated per-GPU memory of post-training with AdamW, fp32 master weights and bf16 autocast.

    With T = micro_batch · seq_len tokens per forward/backward and L layers of hidden size h::

        weights + grads + optimizer = 16 · N bytes            (4 + 4 + 8: fp32 weights, grads, AdamW m and v)
            DDP:   all of it on every GPU, plus 4 · N bytes of DDP gradient buckets (counted with grads)
            FSDP2: divided by the GPU count (full sharding), plus two layers' fp32 weights and grads
                   gathered at a time (the current one and the prefetched one): 2 · 8 · N/L bytes
        activations = T · (L · c · h + 10 · V) bytes
            c = 34 (bf16, Korthikanti et al. 2022 without the attention scores SDPA does not keep);
            under activation checkpointing c = 2 per layer plus 34 · h · T for the one layer rebuilt;
            10 · V: bf16 logits, their fp32 copy in the loss and its gradient.

    Allocator fragmentation, CUDA context (~0.5–1 GB) and NCCL buffers are not counted.
    """
    if strategy not in ("ddp", "fsdp2"):
        raise ValueError(f"strategy must be 'ddp' or 'fsdp2' (got {strategy!r})")
    if min(n_params, n_layers, hidden, vocab, seq_len, micro_batch, n_gpus) <= 0:
        raise ValueError("memory_per_gpu needs positive sizes")
    tokens = micro_batch * seq_len
    if strategy == "ddp":
        weights, grads, optimizer = 4 * n_params, (4 + DDP_BUCKET_BYTES_PER_PARAM) * n_params, 8 * n_params
    else:
        gathered = 2 * n_params / n_layers
        weights, grads, optimizer = (
            4 * n_params / n_gpus + 4 * gathered,
            4 * n_params / n_gpus + 4 * gathered,
            8 * n_params / n_gpus,
        )
    if checkpointing:
        per_layer = (
            n_layers * CHECKPOINTED_BYTES_PER_TOKEN_LAYER_PER_HIDDEN + ACTIVATION_BYTES_PER_TOKEN_LAYER_PER_HIDDEN
        ) * hidden
    else:
        per_layer = n_layers * ACTIVATION_BYTES_PER_TOKEN_LAYER_PER_HIDDEN * hidden
    activations = tokens * (per_layer + LOGIT_BYTES_PER_TOKEN_PER_VOCAB * vocab)
    return MemoryEstimate(weights, grads, optimizer, activations)


def choose_micro_batch(share: int, fits) -> int | None:
    """The largest divisor of ``share`` (a process's sequences per step) for which ``fits(micro)`` holds."""
    for micro in sorted((d for d in range(1, share + 1) if share % d == 0), reverse=True):
        if fits(micro):
            return micro
    return None


def gpu_hours(flops: float, peak: float = A100_BF16_PEAK, mfu: float = ASSUMED_MFU) -> float:
    """GPU-hours of ``flops`` at ``mfu`` of ``peak`` FLOP/s per GPU."""
    return flops / (peak * mfu) / 3600
