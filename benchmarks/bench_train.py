"""Post-training throughput, model-FLOPs utilisation, and the cost of keeping the 2:4 mask.

Prints, measured in one run: this machine's fp32 matmul peak; for each toy model, post-training
tokens/s and MFU = 6·N·(tokens/s) / peak; and the overhead of mask re-application, twice: as the ratio
of whole step times with and without masks (same model, same steps; noisy, since the difference is
smaller than the machine's jitter), and directly, as the time of the two mask products a step does
(gradients before the optimizer step, weights after it) divided by the time of a plain step.
Then, on the largest toy model, the throughput knobs the experiment issue asked about, each against the
sweep's own setting (eager, 16 sequences a step, foreach AdamW) in the same run: larger batches, fused AdamW,
torch.compile. MFU is printed twice: over 6·N FLOPs per token, and with attention's score and value
products added (12·layers·seq·width per token, which 6·N leaves out and which is large at width 56).
With --breakdown, where a sweep step's time goes on that model (torch.profiler, self time per operation
group): the attention kernels against the matrix products that 6·N counts.
Run: python benchmarks/bench_train.py [--steps 20] [--repeats 3] [--scale toy] [--knobs-only] [--breakdown]
"""

import argparse
import time

import torch

from p2law.lab.costs import matmul_flops_per_second
from p2law.lab.models import build_model, count_params, toy_family
from p2law.lab.train import TrainConfig, TrainData, _apply_masks, evaluate, post_train


def two_of_four_masks(model):
    """Masks with the 2:4 pattern (two kept of every four inputs) on every projection, as prune_2of4 makes."""
    masks = {}
    for name, p in model.named_parameters():
        if name.endswith("proj.weight"):
            keep = torch.zeros_like(p, dtype=torch.bool).reshape(p.shape[0], -1, 4)
            keep[..., :2] = True
            masks[name] = keep.reshape(p.shape)
    return masks


def time_steps(spec, vocab, seq_len, batch, steps, masks):
    model = build_model(spec, vocab, seed=0)
    g = torch.Generator().manual_seed(0)
    data = TrainData(
        train=torch.randint(0, vocab, (batch * (steps + 2), seq_len), generator=g),
        eval=torch.randint(0, vocab, (batch, seq_len), generator=g),
    )
    cfg = TrainConfig(total_tokens=batch * seq_len * steps, batch_size=batch, n_checkpoints=1, lr=1e-4)
    m = two_of_four_masks(model) if masks else None
    t = time.perf_counter()
    post_train(model, data, cfg, masks=m, progress=False)
    seconds = time.perf_counter() - t
    # post_train evaluates twice (at D = 0 and at the end): time one evaluation and take both out, so the
    # figure is training steps only
    t = time.perf_counter()
    evaluate(model, data.eval, cfg.eval_batch_size)
    return count_params(model), seconds - 2 * (time.perf_counter() - t)


def mask_seconds_per_step(spec, vocab, repeats: int = 50) -> float:
    """Seconds of the mask re-application one post-training step does, timed alone (best of 5 rounds)."""
    model = build_model(spec, vocab, seed=0)
    params = dict(model.named_parameters())
    masks = {k: v.to(params[k].dtype) for k, v in two_of_four_masks(model).items()}
    for p in params.values():
        p.grad = torch.ones_like(p)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(repeats):
            _apply_masks(params, masks, grads=True)
            _apply_masks(params, masks, grads=False)
        best = min(best, (time.perf_counter() - t) / repeats)
    return best


def knob_tokens_per_second(spec, vocab, seq_len, batch, steps, fused, compiled) -> float:
    """Tokens/s of plain training steps (forward, backward, clipping, AdamW) under one setting, after 3 warm-up
    steps (compilation happens there)."""
    model = build_model(spec, vocab, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused or None)
    ids = torch.randint(0, vocab, (batch, seq_len), generator=torch.Generator().manual_seed(0))
    loss_of = torch.compile(lambda x: model(input_ids=x, labels=x).loss) if compiled else None
    for i in range(3 + steps):
        if i == 3:
            started = time.perf_counter()
        loss = loss_of(ids) if compiled else model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return batch * seq_len * steps / (time.perf_counter() - started)


def knobs(spec, vocab, seq_len, steps, peak) -> None:
    n = count_params(build_model(spec, vocab, seed=0))
    attention = 12 * spec.num_hidden_layers * seq_len * spec.hidden_size  # per token, forward and backward
    settings = [  # (label, batch, fused AdamW, torch.compile); the first is what the toy sweep runs
        ("sweep: eager, batch 16", 16, False, False),
        ("batch 64", 64, False, False),
        ("batch 64, fused AdamW", 64, True, False),
        ("batch 16, compiled", 16, False, True),
        ("batch 64, fused, compiled", 64, True, True),
    ]
    shape = f"width {spec.hidden_size}, {spec.num_hidden_layers} layers, seq {seq_len}"
    print(f"throughput knobs on {spec.name} (N={n:,}, {shape}):")
    base = None
    for label, batch, fused, compiled in settings:
        tps = knob_tokens_per_second(spec, vocab, seq_len, batch, steps, fused, compiled)
        base = base or tps
        print(
            f"  {label:<28} {tps:>8,.0f} tokens/s  x{tps / base:4.2f}  MFU(6N) {6 * n * tps / peak:6.1%}  "
            f"MFU(6N+attention) {(6 * n + attention) * tps / peak:6.1%}"
        )


def breakdown(spec, vocab, seq_len, batch, steps) -> None:
    """Self CPU time of sweep-setting steps, grouped: attention, matrix products, the rest."""
    from torch.profiler import ProfilerActivity, profile

    model = build_model(spec, vocab, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, vocab, (batch, seq_len), generator=torch.Generator().manual_seed(0))

    def step():
        model(input_ids=ids, labels=ids).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    groups = {"attention (sdpa / bmm / softmax)": 0.0, "matrix products (aten::mm)": 0.0, "everything else": 0.0}
    for event in prof.key_averages():
        name = event.key
        group = (
            "attention (sdpa / bmm / softmax)"
            if "scaled_dot_product" in name or name in {"aten::bmm", "aten::_softmax", "aten::_softmax_backward_data"}
            else "matrix products (aten::mm)"
            if name in {"aten::mm", "aten::addmm"}
            else "everything else"
        )
        groups[group] += event.self_cpu_time_total
    total = sum(groups.values())
    heads = spec.config(vocab).num_attention_heads
    print(
        f"where a step's time goes on {spec.name} ({heads} heads of {spec.hidden_size // heads} dims, {steps} steps):"
    )
    for group, us in groups.items():
        print(f"  {group:<34} {us / total:6.1%}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scale", default="toy")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=512)  # the toy profile's tokenizer
    parser.add_argument("--knobs-only", action="store_true", help="only the throughput knobs")
    parser.add_argument("--breakdown", action="store_true", help="also profile where a step's time goes")
    args = parser.parse_args()
    peak = matmul_flops_per_second(2048)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; fp32 matmul peak {peak / 1e9:.1f} GFLOP/s")
    tokens = args.steps * args.batch * args.seq_len
    for family in () if args.knobs_only else ("llama", "qwen2"):
        for spec in toy_family(family, args.scale):
            # Best of --repeats, plain and masked interleaved, so a slow moment of the machine hits neither
            # side alone (a single 20-step pair moved the overhead by ±5%).
            times = {False: [], True: []}
            for _ in range(args.repeats):
                for masks in (False, True):
                    n, seconds = time_steps(spec, args.vocab, args.seq_len, args.batch, args.steps, masks=masks)
                    times[masks].append(seconds)
            plain, masked = min(times[False]), min(times[True])
            tps = tokens / plain
            direct = mask_seconds_per_step(spec, args.vocab) / (plain / args.steps)
            print(
                f"{spec.name:<16} N={n:>9,}  {tps:>8,.0f} tokens/s  MFU {6 * n * tps / peak:6.1%}  "
                f"mask overhead: whole steps {masked / plain - 1:+.1%}, timed alone {direct:+.2%}"
            )
    largest = toy_family("llama", args.scale)[-1]
    knobs(largest, args.vocab, args.seq_len, args.steps, peak)
    if args.breakdown:
        breakdown(largest, args.vocab, args.seq_len, args.batch, min(args.steps, 5))


if __name__ == "__main__":
    main()
