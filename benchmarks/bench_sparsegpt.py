"""SparseGPT 2:4 seconds per matrix and peak memory: p2law's ``prune_linear_2of4`` vs a plain loop.

The baseline is the reference algorithm (Frantar & Alistarh, 2023) written out plainly, as one function
with no helpers: damp H, take the upper Cholesky factor U of H⁻¹, then walk the columns in blocks of 128.
Inside a block a Python loop visits each column; every 4 columns it picks, per row, the 2 weights with
the smallest w² / U_jj², zeroes them, and spreads the column's error over the rest of the block; after
the block the collected errors update all columns to its right in one matrix product. Both factor H in
float32 (p2law falls back to float64, then to more damping, only when that fails).

Each (method, size) runs in a fresh spawned process that builds its own inputs, so no other measurement
shares its memory high-water mark. After the inputs are built the kernel's peak-RSS counter is reset
(/proc/self/clear_refs), so the peak printed is the pruning step's own, not the input construction's.
The inputs: W [out, in] Gaussian, H = 2·(BᵀB/r + 0.01·I) with B [r = in/8, in] Gaussian, the expected
Hessian of correlated inputs x = zB + 0.1ε. Reconstruction error is ||(W − W')X|| / ||WX|| under that
covariance, computed from B without forming H again.

Run: OMP_NUM_THREADS=1 python benchmarks/bench_sparsegpt.py [--quick]
"""

import argparse
import multiprocessing as mp
import os
import re
import resource
import time

import torch

from p2law.lab.prune.magnitude import magnitude_mask_2of4
from p2law.lab.prune.sparsegpt import prune_linear_2of4

NOISE = 0.01  # variance of the isotropic part of the inputs (0.1²)


def plain_loop(weight, hessian, blocksize=128, percdamp=0.01):
    """The reference algorithm's loop, plainly: blocked lazy OBS updates, 2:4 chosen every 4 columns."""
    w = weight.clone().float()
    h = hessian.clone().float()
    n_out, n_in = w.shape
    silent = torch.diag(h) == 0  # inputs that never fire: any weight on them is free to drop
    h[silent, silent] = 1.0
    w[:, silent] = 0.0
    h.diagonal().add_(percdamp * torch.mean(torch.diag(h)))
    u = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    del h
    dropped = torch.zeros(n_out, n_in, dtype=torch.bool)
    for b0 in range(0, n_in, blocksize):
        b1 = min(b0 + blocksize, n_in)
        wb = w[:, b0:b1].clone()
        ub = u[b0:b1, b0:b1]
        errs = torch.zeros_like(wb)
        for j in range(b1 - b0):
            if j % 4 == 0:
                saliency = wb[:, j : j + 4] ** 2 / torch.diag(ub)[j : j + 4] ** 2
                lowest = torch.topk(saliency, 2, dim=1, largest=False).indices
                dropped[:, b0 + j : b0 + j + 4].scatter_(1, lowest, True)
            kept = wb[:, j].masked_fill(dropped[:, b0 + j], 0.0)
            errs[:, j] = (wb[:, j] - kept) / ub[j, j]
            wb[:, j:] -= errs[:, j : j + 1] * ub[j : j + 1, j:]  # later columns of the block absorb the loss
            wb[:, j] = kept
        w[:, b0:b1] = wb
        w[:, b1:] -= errs @ u[b0:b1, b1:]  # and everything right of the block, all at once
    w[dropped] = 0.0
    return w, ~dropped


def magnitude_2of4(w):
    return w * magnitude_mask_2of4(w)


def rel_error(w, new_w, b):
    """||(W − W')X|| / ||WX|| for inputs with covariance BᵀB/r + NOISE·I."""

    def energy(m):
        return (torch.linalg.norm(m @ b.T) ** 2 / b.shape[0] + NOISE * torch.linalg.norm(m) ** 2).item()

    return (energy(w - new_w) / energy(w)) ** 0.5


def _status_mib(field):
    return int(re.search(rf"{field}:\s+(\d+)", open("/proc/self/status").read()).group(1)) / 1024


def _reset_peak():
    """Restart the kernel's peak-RSS counter; False where /proc/self/clear_refs is not writable."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _child(method, rows, cols, queue):
    g = torch.Generator().manual_seed(0)
    b = torch.randn(cols // 8, cols, generator=g)
    w = torch.randn(rows, cols, generator=g)
    bd = b.double()
    h = bd.T @ bd  # float64, as prune_2of4 accumulates it on CPU (float32 on CUDA)
    del bd
    h.div_(b.shape[0]).diagonal().add_(NOISE)
    h.mul_(2)
    reset = _reset_peak()
    inputs = _status_mib("VmRSS")
    fn = prune_linear_2of4 if method == "p2law" else plain_loop
    t = time.perf_counter()
    new_w, keep = fn(w, h)
    seconds = time.perf_counter() - t
    peak = _status_mib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    del h
    queue.put(
        {
            "seconds": seconds,
            "inputs": inputs,
            "peak": peak,
            "reset": reset,
            "threads": torch.get_num_threads(),
            "error": rel_error(w, new_w, b),
            "magnitude_error": rel_error(w, magnitude_2of4(w), b),
            "keep": keep.numpy(),
        }
    )


def measure(method, rows, cols):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(method, rows, cols, queue))
    proc.start()
    out = queue.get()  # before join: a child blocks on exit until its queued data is read
    proc.join()
    if proc.exitcode:
        raise RuntimeError(f"{method} {rows}x{cols} child exited with code {proc.exitcode}")
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller matrices (for a fast check)")
    args = parser.parse_args()
    shapes = [(256, 256), (256, 1024)] if args.quick else [(2048, 2048), (2048, 8192)]
    omp = os.environ.get("OMP_NUM_THREADS")
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs; "
        + (f"threads limited by OMP_NUM_THREADS={omp}" if omp else "threads not limited")
    )
    print("blocksize 128, percdamp 0.01; each cell in a fresh process; peak = highest RSS while pruning")
    for rows, cols in shapes:
        ours, plain = measure("p2law", rows, cols), measure("plain", rows, cols)
        print(f"\n{rows}x{cols} weight, {cols}x{cols} Hessian ({ours['threads']} torch thread(s)):")
        for name, r in (("p2law prune_linear_2of4", ours), ("plain reference loop", plain)):
            how = "" if r["reset"] else " (peak counter not resettable: ru_maxrss, includes input build)"
            print(
                f"  {name:24s} {r['seconds']:7.2f} s/matrix  peak RSS {r['peak']:6.0f} MiB "
                f"(+{r['peak'] - r['inputs']:.0f} MiB over the {r['inputs']:.0f} MiB of inputs){how}  "
                f"rel. reconstruction error {r['error']:.4f}"
            )
        agree = float((ours["keep"] == plain["keep"]).mean())
        print(
            f"  speed: plain / p2law = {plain['seconds'] / ours['seconds']:.2f}x; masks agree on {agree:.2%}; "
            f"error p2law / plain = {ours['error'] / plain['error']:.4f}; "
            f"magnitude 2:4 error for scale {ours['magnitude_error']:.4f}"
        )


if __name__ == "__main__":
    main()
