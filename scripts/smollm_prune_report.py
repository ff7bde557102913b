"""What pruning does to a real pretrained model, beside a loaded profile's sweep (issue 14).

    python scripts/smollm_prune_report.py                          # the smollm profile -> results/smollm/prune
    python scripts/smollm_prune_report.py --tiny --out /tmp/x      # every code path in a few minutes

The sweep (``p2law run --profile smollm``) prunes and post-trains; this report shows what the paper shows
of its pruners on each base, on exactly the sweep's calibration and evaluation blocks (the profile's token
store) and at the sweep's planned amounts, so each "loss right after pruning" here equals the D = 0 row of
the matching curve. It writes under ``<out>/prune/``, per base folder:

* ``base.json``: the architecture, L0, the per-layer cosine similarity of Eq. 16 (layers ordered from most
  to least redundant) and the channel importance of Eq. 17 (all scores, histograms on a linear and a log
  scale, the top channels), as in App. G / Fig. 19;
* one JSON per pruned model: depth and width at the profile's rates (achieved ρ, the layers or channels
  removed, the loss), 2:4 by SparseGPT and by plain magnitude on the same matrices and the same calibration
  blocks (ρ, loss, per-matrix sparsity, how many keep-decisions the two share);
* ``summary.json``: one row per pruned model.

Nothing is downloaded: the profile's corpus and checkpoints are local (``python-docs``, ``smollm2-135m``).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
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

from p2law.lab import experiment, hub, schedule  # noqa: E402
from p2law.lab.data import write_json_atomic  # noqa: E402
from p2law.lab.models import count_params  # noqa: E402
from p2law.lab.profiles import get_profile  # noqa: E402
from p2law.lab.prune import prune_2of4, prune_2of4_magnitude, prune_depth, prune_width  # noqa: E402
from p2law.lab.train import evaluate  # noqa: E402

ARCHITECTURE = (
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


def histogram(values: np.ndarray, bins: int, log: bool = False) -> dict:
    values = np.asarray(values, dtype=float)
    if log:
        positive = values[values > 0]
        edges = np.geomspace(positive.min(), positive.max(), bins + 1)
        counts, edges = np.histogram(positive, bins=edges)
    else:
        counts, edges = np.histogram(values, bins=bins)
    return {"counts": counts.tolist(), "edges": edges.tolist(), "log_scale": log}


def report_base(profile, base, out: Path, bins: int) -> dict:
    """Prune ``base`` by every planned method on the sweep's data; write its JSONs under ``out``."""
    started = time.perf_counter()
    bundle, calibration = experiment.PackedCorpus(profile, out.parent.parent / "_cache").for_base(base)
    eval_blocks, batch = bundle.train_data.eval, profile.eval_batch_size
    t = time.perf_counter()
    model = hub.load_model(base.source)
    load_seconds = time.perf_counter() - t
    n0, l0 = count_params(model), evaluate(model, eval_blocks, batch)
    print(f"{base.name}: N0={n0:,}, L0={l0:.4f} on {len(eval_blocks)} x {profile.seq_len} eval tokens", flush=True)
    common = {"model": base.name, "source": base.source, "profile": profile.name, "n0": n0, "l0": l0}
    summary = common | {"corpus": bundle.corpus, "load_seconds": load_seconds, "models": []}
    info = common | {"architecture": {k: getattr(model.config, k, None) for k in ARCHITECTURE}}

    def record(name: str, pruned, report, seconds: float, extra: dict) -> None:
        loss = evaluate(pruned, eval_blocks, batch)
        row = {"name": name, "method": report.method, "rate": report.rate, "n": report.n, "loss": loss}
        row |= {"delta_loss": loss - l0, "seconds": seconds} | extra
        write_json_atomic(out / f"{name}.json", common | row | {"report": report.to_dict()})
        summary["models"].append(row)
        print(f"  {name:<16} rho={report.rate:.4f} loss={loss:.4f} (+{loss - l0:.3f}) {seconds:.0f}s", flush=True)

    plans = [r for r in schedule.plan_runs(profile) if r.model == base.name and r.seed == profile.seeds[0]]
    for r in plans:
        if r.method not in ("depth", "width"):
            continue
        t = time.perf_counter()
        if r.method == "depth":
            pruned, report = prune_depth(copy.deepcopy(model), calibration, n_layers=r.amount, progress=False)
            extra = {"layers_removed": report.removed}
            if "layer_similarity" not in info:
                scores = np.asarray(report.scores)
                info["layer_similarity"] = scores.tolist()
                info["layers_most_redundant_first"] = np.argsort(-scores, kind="stable").tolist()
        else:
            pruned, report = prune_width(copy.deepcopy(model), calibration, n_channels=r.amount, progress=False)
            extra = {
                "channels_removed": report.removed,
                "hidden_after": pruned.config.hidden_size,
                "tied": pruned.lm_head.weight is pruned.get_input_embeddings().weight,
            }
            if "channel_importance" not in info:
                scores = np.asarray(report.scores)
                order = np.argsort(-scores, kind="stable")
                info["channel_importance"] = {
                    "scores": scores.tolist(),
                    "histogram": histogram(scores, bins),
                    "histogram_log": histogram(scores, bins, log=True),
                    "top_channels": order[:20].tolist(),
                    "top_scores": scores[order[:20]].tolist(),
                    "quantiles": {str(q): float(np.quantile(scores, q)) for q in (0, 0.01, 0.1, 0.5, 0.9, 0.99, 1)},
                    "norms": report.details.get("norms"),
                }
        extra |= {"run_id": r.run_id, "target_rate": r.target_rate}
        record(f"{r.method}-{r.planned_rate:.3f}", pruned, report, time.perf_counter() - t, extra)
        del pruned

    t = time.perf_counter()
    pruned, sgpt = prune_2of4(copy.deepcopy(model), calibration, progress=False)
    run_id = next((r.run_id for r in plans if r.method == "2:4"), None)
    record("2of4-sparsegpt", pruned, sgpt, time.perf_counter() - t, {"run_id": run_id, "rule": "sparsegpt"})
    del pruned
    t = time.perf_counter()
    pruned, mag = prune_2of4_magnitude(copy.deepcopy(model))
    shared = sum(int((mag.masks[k] == sgpt.masks[k]).sum()) for k in mag.masks)
    agreement = shared / sum(m.numel() for m in mag.masks.values())
    record("2of4-magnitude", pruned, mag, time.perf_counter() - t, {"rule": "magnitude", "mask_agreement": agreement})
    del pruned

    info["seconds_total"] = summary["seconds_total"] = time.perf_counter() - started
    write_json_atomic(out / "base.json", info)
    write_json_atomic(out / "summary.json", summary)
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="smollm", help="a profile whose bases are loaded checkpoints")
    ap.add_argument("--out", help="the sweep's results folder (default results/<profile>)")
    ap.add_argument("--bins", type=int, default=40, help="width importance histogram bins")
    ap.add_argument("--tiny", action="store_true", help="a quick check: 4 + 4 blocks of 64 tokens")
    args = ap.parse_args(argv)
    profile = get_profile(args.profile)
    if profile.scale != "loaded":
        ap.error(f"profile {args.profile!r} pretrains its own bases; this report is for loaded checkpoints")
    if args.tiny:
        profile = dataclasses.replace(profile, seq_len=64, n_calibration=4, calibration_batch=2, n_eval_blocks=4)
    out = Path(args.out or ROOT / "results" / profile.name)
    torch.manual_seed(profile.seed)
    for base in schedule.base_models(profile):
        folder = out / "prune" / base.name
        summary = report_base(profile, base, folder, args.bins)
        print(f"wrote {folder} ({summary['seconds_total']:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
