"""Re-measure the committed toy bases' pretraining curves on the sweep's current evaluation blocks.

A base is reused while its pretraining blocks and recipe are unchanged, so its recorded curve can predate a
change of the evaluation set (issue 11: v2's 32 blocks came from one file). This re-runs each base's
pretraining with the same blocks, recipe and seed into a scratch folder, evaluates its curve on the sweep's
evaluation blocks, and writes that curve into the committed records (results/toy/pretrain/<model>.json,
results/toy/bases/<model>/pretrain.json, the manifest). The committed weights, and so every post-training
run, are kept; ``curve_remeasured`` records how far the re-run's weights and final loss are from them, and
the old curve.

    python scripts/remeasure_pretrain_curves.py [--results results/toy] [--only toy-llama-s ...]
"""

import argparse
import hashlib
import json
import tempfile
from datetime import date
from pathlib import Path

import torch
from safetensors.torch import load_file

from p2law.lab.data import write_json_atomic
from p2law.lab.experiment import PackedCorpus, _load_base
from p2law.lab.profiles import get_profile
from p2law.lab.schedule import base_models


def remeasure(base, bundle, profile, results: Path, scratch: Path, eval_sha256: str) -> tuple[dict, dict]:
    """``(new, note)``: the re-run's curve fields, and how far the re-run lands from the committed base."""
    record = json.loads((results / "pretrain" / f"{base.name}.json").read_text())
    data = bundle.pretrain_data
    # checked before the run: a curve is only worth re-measuring for the base these blocks made
    if hashlib.sha256(data.train.numpy().tobytes()).hexdigest() != record["data_sha256"]:
        raise SystemExit(f"{base.name}: the committed base was trained on other blocks: nothing written")
    if hashlib.sha256(data.eval.numpy().tobytes()).hexdigest() != eval_sha256:
        raise SystemExit("the profile's evaluation blocks are not the committed sweep's: nothing written")
    # the sweep's own call, with the profile's recipe, into an empty scratch cache: it trains afresh
    model, info = _load_base(profile, base, bundle, scratch / "_cache", progress=False)
    if info["recipe"] != record["recipe"]:
        raise SystemExit(f"{base.name}: the committed base was trained with another recipe: nothing written")
    old = record.get("curve_remeasured", {})
    committed, rerun = load_file(results / "bases" / base.name / "model.safetensors"), model.state_dict()
    note = {
        "date": date.today().isoformat(),
        "how": "the base's pretraining re-run with the same blocks, recipe and seed, its curve evaluated on the "
        "sweep's evaluation blocks; the committed weights are kept. The re-run need not be bit-identical (other "
        "code or libraries may have trained the base), so its weights and final loss differ by the amounts below",
        "max_abs_weight_difference": max(float((committed[k] - rerun[k]).abs().max()) for k in committed),
        "weights_identical": all(torch.equal(committed[k], rerun[k]) for k in committed),
        "final_loss_minus_l0": info["curve"][-1][1] - record["l0"],
        "seconds": info["seconds"],
        "threads": info["threads"],
        # the curve before the first re-measurement (a second run keeps it)
        "old_curve_eval_sha256": old.get("old_curve_eval_sha256", record.get("curve_eval_sha256")),
        "old_final_eval_loss": old.get("old_final_eval_loss", record["eval_loss"]),
        "old_curve": old.get("old_curve", record["curve"]),
    }
    return {k: info[k] for k in ("curve", "curve_eval_sha256", "eval_loss")}, note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results/toy"))
    parser.add_argument("--only", nargs="*", default=None, help="base names (default: every base)")
    args = parser.parse_args()
    manifest_path = args.results / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    profile = get_profile(manifest["profile"]["name"])
    corpus = PackedCorpus(profile, args.results / "_cache")
    with tempfile.TemporaryDirectory() as scratch:
        for base in base_models(profile):
            if args.only and base.name not in args.only:
                continue
            bundle, _ = corpus.for_base(base)
            if base.name not in manifest["pretrain"]:
                raise SystemExit(f"{base.name} is not in {manifest_path}'s pretraining records")
            eval_sha256 = manifest["corpus"]["splits"]["eval"]["sha256"]
            new, note = remeasure(base, bundle, profile, args.results, Path(scratch), eval_sha256)
            for path in (
                args.results / "pretrain" / f"{base.name}.json",
                args.results / "bases" / base.name / "pretrain.json",
            ):
                write_json_atomic(path, json.loads(path.read_text()) | new | {"curve_remeasured": note})
            short = {k: v for k, v in note.items() if k not in ("how", "old_curve")}
            manifest["pretrain"][base.name] |= {k: new[k] for k in ("curve_eval_sha256", "eval_loss")}
            manifest["pretrain"][base.name]["curve_remeasured"] = short
            write_json_atomic(manifest_path, manifest)  # after each base: a stopped run loses one base at most
            print(f"{base.name}: max |dw| {note['max_abs_weight_difference']:.1e}, final - L0 "
                  f"{note['final_loss_minus_l0']:+.1e} nats, {note['seconds']:.0f} s", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
