"""Prune a real pretrained Llama (SmolLM2-135M by default) by every method and report what went (issue 14).

    python scripts/smollm_prune_report.py                       # full: 64 calibration + 64 eval blocks of 256
    python scripts/smollm_prune_report.py --tiny --out /tmp/x   # every code path in a few minutes
    python scripts/smollm_prune_report.py --source HuggingFaceTB/SmolLM2-360M --out results/smollm360/prune

What it writes under ``--out`` (default ``results/smollm/prune/``), one JSON file per pruned model plus
``base.json`` and ``summary.json``:

* depth at about 15/25/30% of all parameters (embeddings included): achieved ρ, the layers removed, the
  loss right after pruning, and (``base.json``) the per-layer cosine similarity of Eq. 16 with the layers
  ordered from most to least redundant;
* width at 15/25/35%: achieved ρ, the hidden channels removed, the loss, and the channel importance of
  Eq. 17 (all scores, a histogram on a linear and on a log scale, the top channels) as in App. G / Fig. 19;
* 2:4 by SparseGPT and by plain magnitude (keep the 2 largest |w| of every 4 inputs) on the same matrices
  and the same calibration blocks: ρ, loss, per-matrix sparsity.

Calibration and evaluation blocks come from disjoint documents (``p2law.lab.data.prepare``: documents split
by a seed, then no 128-token block shared). The corpus is the Python documentation's English sources
(Debian's ``python3-doc``) when they are installed, else the standard library's sources (p2law's
``stdlib`` corpus), or any p2law corpus spec given with ``--corpus``. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import copy
import glob
import gzip
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p2law.lab import hub  # noqa: E402
from p2law.lab.data import calibration_batches, prepare, write_json_atomic  # noqa: E402
from p2law.lab.models import count_params  # noqa: E402
from p2law.lab.prune import prune_2of4, prune_depth, prune_width  # noqa: E402
from p2law.lab.prune.common import ATTN_PROJ, MLP_PROJ  # noqa: E402
from p2law.lab.prune.depth import layer_param_count, layers_for_rate  # noqa: E402
from p2law.lab.prune.width import channels_for_rate  # noqa: E402
from p2law.lab.train import evaluate  # noqa: E402

DOC_SOURCES = "/usr/share/doc/python3*/html/_sources"


def python_doc_corpus(cache: Path) -> str | None:
    """A folder of the Python documentation's English ``.txt`` sources, or None when python3-doc is absent.

    Debian may compress some of them (``.txt.gz``); those are unpacked once into ``cache`` so that p2law's
    local-folder reader (one document per ``.txt`` file) can read the lot.
    """
    roots = sorted(glob.glob(DOC_SOURCES))
    if not roots:
        return None
    root = Path(roots[-1])
    plain = sorted(root.rglob("*.txt"))
    packed = sorted(root.rglob("*.txt.gz"))
    if not packed:
        return str(root) if plain and all(p.suffix == ".txt" for p in root.rglob("*") if p.is_file()) else None
    out = cache / "python3-doc"
    if not out.exists():
        tmp = cache / f"python3-doc.{os.getpid()}.tmp"
        for p in plain + packed:
            rel = p.relative_to(root)
            target = tmp / (str(rel)[:-3] if p.suffix == ".gz" else str(rel))
            target.parent.mkdir(parents=True, exist_ok=True)
            data = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
            target.write_bytes(data)
        os.replace(tmp, out)
    return str(out)


def magnitude_2of4(model) -> dict[str, torch.Tensor]:
    """Plain magnitude 2:4 on the matrices SparseGPT prunes: in every 4 consecutive inputs of every row, the
    2 weights of largest |w| stay. Returns the keep-masks (True = kept), named as SparseGPT names them."""
    masks = {}
    with torch.no_grad():
        for li, layer in enumerate(model.model.layers):
            for owner, names in (("self_attn", ATTN_PROJ), ("mlp", MLP_PROJ)):
                for name in names:
                    w = getattr(getattr(layer, owner), name).weight
                    groups = w.detach().abs().reshape(w.shape[0], -1, 4)
                    drop = groups.topk(2, dim=-1, largest=False).indices
                    keep = torch.ones_like(groups, dtype=torch.bool).scatter_(-1, drop, False).reshape(w.shape)
                    w.mul_(keep)
                    masks[f"model.layers.{li}.{owner}.{name}.weight"] = keep
    return masks


def histogram(values: np.ndarray, bins: int, log: bool = False) -> dict:
    values = np.asarray(values, dtype=float)
    if log:
        positive = values[values > 0]
        edges = np.geomspace(positive.min(), positive.max(), bins + 1)
        counts, edges = np.histogram(positive, bins=edges)
    else:
        counts, edges = np.histogram(values, bins=bins)
    return {"counts": counts.tolist(), "edges": edges.tolist(), "log_scale": log}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", default="smollm2-135m", help="short name, .gguf path, folder or cached hub id")
    ap.add_argument(
        "--corpus", default="auto", help="'auto' (python3-doc if installed, else stdlib) or a p2law corpus spec"
    )
    ap.add_argument("--out", default=str(ROOT / "results" / "smollm" / "prune"))
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--n-calibration", type=int, default=64, help="calibration blocks")
    ap.add_argument("--n-eval", type=int, default=64, help="evaluation blocks")
    ap.add_argument("--batch", type=int, default=8, help="calibration and evaluation batch size")
    ap.add_argument("--depth-rates", type=float, nargs="*", default=[0.15, 0.25, 0.30])
    ap.add_argument("--width-rates", type=float, nargs="*", default=[0.15, 0.25, 0.35])
    ap.add_argument("--no-2of4", action="store_true", help="skip SparseGPT and magnitude 2:4")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bins", type=int, default=40, help="width importance histogram bins")
    ap.add_argument("--tiny", action="store_true", help="a quick check: 4+4 blocks of 64 tokens, one rate each")
    args = ap.parse_args(argv)
    if args.tiny:
        args.seq_len, args.n_calibration, args.n_eval, args.batch = 64, 4, 4, 2
        args.depth_rates, args.width_rates = args.depth_rates[:1], args.width_rates[:1]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "_cache"
    started = time.perf_counter()
    t = time.perf_counter()
    base, tokenizer = hub.load_pretrained(args.source)
    load_seconds = time.perf_counter() - t

    spec = args.corpus
    if spec == "auto":
        spec = python_doc_corpus(cache) or "stdlib"
    t = time.perf_counter()
    bundle = prepare(
        spec, args.seq_len, None, args.seed, args.n_eval, args.n_calibration, max_train_blocks=1, tokenizer=tokenizer
    )
    calibration = calibration_batches(bundle.calibration, args.n_calibration, args.batch, args.seed)
    eval_blocks = bundle.post_train_data.eval
    n0, l0 = count_params(base), evaluate(base, eval_blocks, args.batch)
    data_seconds = time.perf_counter() - t
    print(
        f"{args.source}: N0={n0:,}, L0={l0:.4f} on {len(eval_blocks)} x {args.seq_len} eval tokens "
        f"(load {load_seconds:.0f}s, data {data_seconds:.0f}s)",
        flush=True,
    )
    common = {
        "source": args.source,
        "corpus_spec": spec,
        "seq_len": args.seq_len,
        "n_calibration": args.n_calibration,
        "n_eval": int(len(eval_blocks)),
        "seed": args.seed,
        "n0": n0,
        "l0": l0,
    }
    summary = {**common, "corpus": bundle.corpus, "load_seconds": load_seconds, "models": []}
    base_info = {
        **common,
        "architecture": {
            k: getattr(base.config, k)
            for k in (
                "model_type",
                "num_hidden_layers",
                "hidden_size",
                "num_attention_heads",
                "num_key_value_heads",
                "head_dim",
                "intermediate_size",
                "vocab_size",
                "tie_word_embeddings",
            )
        },
    }

    def record(name: str, model, report, seconds: float, extra: dict | None = None) -> dict:
        loss = evaluate(model, eval_blocks, args.batch)
        row = {
            "name": name,
            "method": report.method,
            "rate": report.rate,
            "n": report.n,
            "loss": loss,
            "delta_loss": loss - l0,
            "seconds": seconds,
            **(extra or {}),
        }
        write_json_atomic(out / f"{name}.json", {**common, **row, "report": report.to_dict()})
        summary["models"].append(row)
        print(f"  {name:<14} rho={report.rate:.4f} loss={loss:.4f} (+{loss - l0:.3f}) {seconds:.0f}s", flush=True)
        return row

    per_layer = layer_param_count(base)
    for rate in args.depth_rates:
        k = layers_for_rate(n0, per_layer, len(base.model.layers), rate)
        model, t = copy.deepcopy(base), time.perf_counter()
        model, report = prune_depth(model, calibration, n_layers=k, progress=False)
        record(
            f"depth-{round(rate * 100)}",
            model,
            report,
            time.perf_counter() - t,
            {"target_rate": rate, "layers_removed": report.removed},
        )
        if "layer_similarity" not in base_info:
            scores = np.asarray(report.scores)
            base_info["layer_similarity"] = scores.tolist()
            base_info["layers_most_redundant_first"] = np.argsort(-scores, kind="stable").tolist()
        del model

    for rate in args.width_rates:
        k = channels_for_rate(base, rate)
        model, t = copy.deepcopy(base), time.perf_counter()
        model, report = prune_width(model, calibration, n_channels=k, progress=False)
        record(
            f"width-{round(rate * 100)}",
            model,
            report,
            time.perf_counter() - t,
            {
                "target_rate": rate,
                "channels_removed": report.removed,
                "hidden_after": model.config.hidden_size,
                "tied": model.lm_head.weight is model.model.embed_tokens.weight,
            },
        )
        if "channel_importance" not in base_info:
            scores = np.asarray(report.scores)
            order = np.argsort(-scores, kind="stable")
            base_info["channel_importance"] = {
                "scores": scores.tolist(),
                "histogram": histogram(scores, args.bins),
                "histogram_log": histogram(scores, args.bins, log=True),
                "top_channels": order[:20].tolist(),
                "top_scores": scores[order[:20]].tolist(),
                "quantiles": {str(q): float(np.quantile(scores, q)) for q in (0, 0.01, 0.1, 0.5, 0.9, 0.99, 1)},
                "norms": report.details.get("norms"),
            }
        del model

    if not args.no_2of4:
        model, t = copy.deepcopy(base), time.perf_counter()
        model, report = prune_2of4(model, calibration, progress=False)
        record("2of4-sparsegpt", model, report, time.perf_counter() - t)
        sgpt_masks = report.masks
        del model
        model, t = copy.deepcopy(base), time.perf_counter()
        masks = magnitude_2of4(model)
        from p2law.lab.prune import PruneReport

        n_zero = sum(int((~m).sum()) for m in masks.values())
        sparsity = {k: float(1 - m.float().mean()) for k, m in masks.items()}
        magnitude = PruneReport(
            "2:4",
            list(sparsity.values()),
            sparsity,
            n0,
            n0 - n_zero,
            details={"matrices": "q,k,v,o,gate,up,down of every block", "rule": "magnitude"},
        )
        agree = sum(int((masks[k] == sgpt_masks[k]).sum()) for k in masks) / sum(m.numel() for m in masks.values())
        record("2of4-magnitude", model, magnitude, time.perf_counter() - t, {"mask_agreement_with_sparsegpt": agree})
        del model

    base_info["seconds_total"] = summary["seconds_total"] = time.perf_counter() - started
    write_json_atomic(out / "base.json", base_info)
    write_json_atomic(out / "summary.json", summary)
    print(f"wrote {out} ({summary['seconds_total']:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
