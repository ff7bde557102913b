"""2:4 semi-structured pruning with SparseGPT (App. B.3; Frantar & Alistarh, 2023).

For one linear layer y = W x with calibration inputs X, SparseGPT removes weights column by column and
lets the not-yet-processed columns absorb the error, using the inverse Hessian H⁻¹ of the layer-wise
least-squares problem (H = 2 X Xᵀ / n). Every 4 input columns it chooses, per output row, the 2 weights
whose removal costs least (w² / [H⁻¹]_jj²), so each group of 4 consecutive inputs keeps exactly 2.
The updates are applied lazily in blocks of ``blocksize`` columns, which is where the speed comes from.

``prune_2of4`` runs it over a whole model, one decoder layer at a time, each layer calibrated on the
outputs of the already-pruned layers before it. Pruned: all seven linear layers of every block
(q, k, v, o, gate, up, down), the paper's setting; the embedding and LM head stay dense. Projections
that read the same input (q, k, v; gate, up) are pruned with one shared Hessian, so a layer sums four.
"""

from __future__ import annotations

import warnings

import torch
from tqdm.auto import tqdm

from .common import PruneReport, calibration_batches, check_llama_shaped, count_params, model_device


def _inverse_hessian_cholesky(hessian: torch.Tensor, percdamp: float, max_tries: int = 8) -> torch.Tensor:
    """Upper Cholesky factor of (H + λI)⁻¹ with λ = percdamp·mean(diag H), as float32.

    Factored in float32 as the reference does (an 8192² float64 factorisation cost twice the time and
    memory of the whole pruning step); if that fails, in float64 at the same damping; only then does λ
    grow ×10, with a warning, until it factors.
    """
    scale = torch.mean(torch.diag(hessian).abs()).clamp_min(1e-12)
    damp = percdamp * scale

    def factor(dtype):
        # One n×n buffer at a time where possible: the damping goes onto the copy's diagonal in place (no
        # identity matrix), and each intermediate is dropped as soon as the next one exists.
        damped = hessian.to(dtype=dtype, copy=True)
        damped.diagonal().add_(damp.to(dtype))
        lower, info = torch.linalg.cholesky_ex(damped)
        del damped
        if info != 0:
            return None
        inverse = torch.cholesky_inverse(lower)
        del lower
        upper, info = torch.linalg.cholesky_ex(inverse, upper=True)
        return upper.float() if info == 0 else None

    upper = factor(torch.float32)
    for attempt in range(max_tries):
        upper = upper if upper is not None else factor(torch.float64)
        if upper is not None:
            return upper
        warnings.warn(
            f"Hessian did not factor with damping {float(damp):.3g}; retrying with 10x more",
            RuntimeWarning,
            stacklevel=3,
        )
        damp = torch.maximum(damp * 10, 1e-6 * scale)  # grows even from percdamp = 0
    raise RuntimeError(f"Hessian did not factor even with damping {float(damp):.3g}")


@torch.no_grad()
def prune_linear_2of4(
    weight: torch.Tensor, hessian: torch.Tensor, blocksize: int = 128, percdamp: float = 0.01
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prune one weight matrix [out, in] to 2:4 along its inputs; return (new weight, keep mask).

    ``hessian`` is the [in, in] matrix X Xᵀ (any positive scale) of the layer's calibration inputs.
    """
    rows, cols = weight.shape
    if cols % 4:
        raise ValueError(f"2:4 pruning needs in-features divisible by 4, got {cols}")
    if hessian.shape != (cols, cols):
        raise ValueError(f"hessian must be [{cols}, {cols}], got {tuple(hessian.shape)}")
    if blocksize % 4:
        raise ValueError(f"blocksize must be a multiple of 4, got {blocksize}")
    # Work in float32 as the reference does; the factorisation falls back to float64 when float32 fails.
    w = weight.detach().clone().float()
    h = hessian.detach().to(device=w.device, dtype=torch.float32, copy=True)
    dead = torch.diag(h) == 0  # inputs never active: their weights are free to zero
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    hinv = _inverse_hessian_cholesky(h, percdamp)

    pruned = torch.zeros(rows, cols, dtype=torch.bool, device=w.device)
    for start in range(0, cols, blocksize):
        end = min(start + blocksize, cols)
        block = w[:, start:end].clone()
        errors = torch.zeros_like(block)
        hinv_block = hinv[start:end, start:end]
        for i in range(end - start):
            if i % 4 == 0:
                cost = block[:, i : i + 4] ** 2 / torch.diag(hinv_block)[i : i + 4].reshape(1, -1) ** 2
                drop = torch.topk(cost, 2, dim=1, largest=False).indices
                pruned[:, start + i : start + i + 4].scatter_(1, drop, True)
            col = block[:, i]
            q = torch.where(pruned[:, start + i], torch.zeros_like(col), col)
            err = (col - q) / hinv_block[i, i]
            # The remaining columns of the block compensate for what column i lost.
            block[:, i:] -= err.unsqueeze(1) * hinv_block[i, i:].unsqueeze(0)
            block[:, i] = q
            errors[:, i] = err
        w[:, start:end] = block
        w[:, end:] -= errors @ hinv[start:end, end:]  # lazy update of everything right of the block
    w[pruned] = 0.0
    return w.to(weight.dtype), ~pruned


# Projections that read the same input share one Hessian: q, k and v all read the attention norm's output,
# gate and up the MLP norm's; o and down read inputs of their own. Listed in pruning order.
_GROUPS = (
    ("self_attn", ("q_proj", "k_proj", "v_proj")),
    ("self_attn", ("o_proj",)),
    ("mlp", ("gate_proj", "up_proj")),
    ("mlp", ("down_proj",)),
)


def _linears(layer):
    for owner, names in _GROUPS:
        for name in names:
            yield f"{owner}.{name}", getattr(getattr(layer, owner), name)


@torch.no_grad()
def _layer_inputs(model, batches, progress, dtype, device):
    """Run the model up to layer 0 and keep what layer 0 is called with, batch by batch.

    Returns the hidden states, stored as ``dtype`` on ``device`` (None: as produced), the other arguments
    of each call, and the dtype and device the layers compute in.
    """
    hidden, rest, compute = [], [], []

    class _Stop(Exception):
        pass

    def grab(module, args, kwargs):
        x = args[0]
        compute[:] = [x.dtype, x.device]
        # Converted here, batch by batch, so the unconverted copies never pile up on the device.
        hidden.append(x.to(device=device or x.device, dtype=dtype or x.dtype))
        rest.append((args[1:], kwargs))
        raise _Stop

    handle = model.model.layers[0].register_forward_pre_hook(grab, with_kwargs=True)
    where = model_device(model)
    try:
        for ids, mask in tqdm(batches, desc="2:4: calibration inputs", disable=not progress, leave=False):
            try:
                model(input_ids=ids.to(where), attention_mask=mask.to(where), use_cache=False)
            except _Stop:
                pass
    finally:
        handle.remove()
    return hidden, rest, compute[0], compute[1]


@torch.no_grad()
def _prune_layers(
    model, batches, blocksize, percdamp, progress, masks, sparsity, hessian_dtype, activation_dtype, offload_inputs
) -> None:
    """SparseGPT over the decoder layers in order; fills ``masks`` and ``sparsity`` as it goes."""
    hidden, rest, dtype, device = _layer_inputs(
        model, batches, progress, activation_dtype, torch.device("cpu") if offload_inputs else None
    )
    real_tokens = [mask.reshape(-1) > 0 for _, mask in batches]  # padding says nothing about the layer
    for li, layer in enumerate(tqdm(model.model.layers, desc="2:4: SparseGPT layers", disable=not progress)):
        hessians, counts, handles, current = {}, {}, [], {}

        def collect(group):
            def fn(module, args):
                x = args[0].reshape(-1, args[0].shape[-1])[current["real"].to(args[0].device)]
                x = x.to(hessian_dtype)
                hessians[group] += x.T @ x
                counts[group] += x.shape[0]

            return fn

        for group, (owner, names) in enumerate(_GROUPS):
            first = getattr(getattr(layer, owner), names[0])
            hessians[group] = torch.zeros(
                first.in_features, first.in_features, dtype=hessian_dtype, device=first.weight.device
            )
            counts[group] = 0
            handles.append(first.register_forward_pre_hook(collect(group)))
        try:
            for x, (args, kwargs), real in zip(hidden, rest, real_tokens):
                current["real"] = real
                layer(x.to(device=device, dtype=dtype), *args, **kwargs)
        finally:
            for h in handles:
                h.remove()
        for group, (owner, names) in enumerate(_GROUPS):
            h = 2 * hessians.pop(group) / max(counts[group], 1)
            for name in names:
                lin = getattr(getattr(layer, owner), name)
                new_w, keep = prune_linear_2of4(lin.weight.data, h, blocksize, percdamp)
                lin.weight.data.copy_(new_w)
                full = f"model.layers.{li}.{owner}.{name}.weight"
                masks[full] = keep.cpu()
                sparsity[full] = float(1 - keep.float().mean())
            del h  # before the next group's is formed
        # The next layer is calibrated on what this (now pruned) layer produces. Each batch's output
        # overwrites its input in place, so the layer inputs of all batches are held once, not twice.
        for x, (args, kwargs) in zip(hidden, rest):
            out = layer(x.to(device=device, dtype=dtype), *args, **kwargs)
            x.copy_(out[0] if isinstance(out, tuple) else out)


def prune_2of4(
    model,
    calibration,
    blocksize: int = 128,
    percdamp: float = 0.01,
    progress: bool = True,
    hessian_dtype: torch.dtype | None = None,
    activation_dtype: torch.dtype | None = None,
    offload_inputs: bool = False,
):
    """SparseGPT 2:4 on every linear layer of every decoder block, layer by layer in order.

    Returns ``(model, PruneReport)``; ``report.masks`` maps parameter names to keep-masks (True = the
    weight may train) for the mask-preserving post-trainer.

    ``hessian_dtype`` is what the Hessians X Xᵀ are summed in: by default float64 on CPU, as before, so
    earlier results reproduce bit for bit, and float32 on CUDA, as in the reference SparseGPT. On a GPU
    float32 halves the Hessians (down_proj's is 14336², 0.8 GB in float32, for Llama-3.1-8B) and the copies
    of each batch's inputs made to sum them, and most GPUs run float64 matmuls many times slower.
    ``activation_dtype`` is what the hidden states of all calibration batches are held in between layers:
    by default bfloat16 on CUDA (half of float32, and what an 8B model computes in anyway), elsewhere
    the dtype the layers produce, so CPU results are unchanged; each call casts them back to the layers'
    dtype. ``offload_inputs`` holds them in CPU memory; the other arguments of each layer call (position
    embeddings, attention mask) stay on the model's device either way.
    """
    check_llama_shaped(model)
    batches = calibration_batches(calibration)
    for li, layer in enumerate(model.model.layers):
        for name, lin in _linears(layer):
            if lin.in_features % 4:
                raise ValueError(f"layers.{li}.{name} has {lin.in_features} in-features, not divisible by 4")
    on_cuda = model_device(model).type == "cuda"  # the defaults differ there: see the docstring for why
    if hessian_dtype is None:
        hessian_dtype = torch.float32 if on_cuda else torch.float64
    if activation_dtype is None and on_cuda:
        activation_dtype = torch.bfloat16
    n0 = count_params(model)
    was_training = model.training
    model.eval()
    masks, sparsity = {}, {}
    try:
        _prune_layers(
            model,
            batches,
            blocksize,
            percdamp,
            progress,
            masks,
            sparsity,
            hessian_dtype,
            activation_dtype,
            offload_inputs,
        )
    finally:
        model.train(was_training)
    n_zero = sum(int((~m).sum()) for m in masks.values())
    report = PruneReport(
        "2:4",
        list(sparsity.values()),
        sparsity,
        n0,
        n0 - n_zero,
        details={"matrices": "q,k,v,o,gate,up,down of every block", "blocksize": blocksize, "percdamp": percdamp},
        masks=masks,
    )
    return model, report
