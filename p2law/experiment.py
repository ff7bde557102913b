"""The sweep: bases -> prune -> post-train -> rows of the checkpoint table.

``run(profile, out)`` writes ``out/checkpoints.csv`` (one row per evaluation checkpoint, the columns of
DESIGN.md), ``out/prune_reports/<run_id>.json``, ``out/pretrain/<model>.json`` and
``out/manifest.json`` (config, corpus fingerprint, package versions, git commit, wall time per run).
Bulky things (tokenizer, base weights, resumable training state) live in ``out/_cache`` and are not
part of the results.

Every base model gets, at the profile's rates, depth and width pruning, 2:4 pruning, and a ρ = 0
control: the unpruned base post-trained with the same recipe, which separates recovery from plain
continued training. A run is finished when its last checkpoint row is in the table; a restarted sweep
skips finished runs and resumes an interrupted one from its saved state, so no row is lost or
duplicated. Every file is written through a temporary file and ``os.replace``.
"""

from __future__ import annotations

import copy
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import table as checkpoint_table
from .data import calibration_batches, prepare, write_json_atomic
from .models import count_params, toy_family
from .profiles import Profile, get_profile


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    model: str
    family: str
    mirrors: str
    method: str  # depth | width | 2:4 | none
    target_rate: float  # 0 for 2:4 (its rate is measured) and for the control


def plan_runs(profile: Profile) -> list[RunPlan]:
    runs = []
    for family in profile.families:
        for spec in toy_family(family, profile.scale):
            for method in ("depth", "width"):
                for rate in profile.rates(spec.mirrors, method):
                    runs.append(RunPlan(f"{spec.name}-{method}-{rate:.2f}", spec.name, family, spec.mirrors,
                                        method, rate))
            runs.append(RunPlan(f"{spec.name}-2of4", spec.name, family, spec.mirrors, "2:4", 0.0))
            runs.append(RunPlan(f"{spec.name}-none", spec.name, family, spec.mirrors, "none", 0.0))
    return runs


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
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _existing_table(table_path: Path) -> pd.DataFrame | None:
    """The table an earlier (possibly killed) sweep left, checked to be ours before we append to it."""
    if not table_path.exists():
        return None
    df = pd.read_csv(table_path)
    if list(df.columns) != list(checkpoint_table.COLUMNS):
        raise ValueError(f"{table_path}: columns {list(df.columns)} are not a p2law checkpoint table's "
                         f"{list(checkpoint_table.COLUMNS)}; refusing to append to it")
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


def plan_sweep(profile: Profile, utilisation: float = 0.35) -> dict:
    """What a sweep would do: models, runs, token counts and an estimated time; nothing is trained.

    The estimate counts 6·N FLOPs per trained token (pretraining and post-training) and 2·N per
    evaluated token, at ``utilisation`` × this machine's measured matmul rate (benchmarks/bench_train.py
    measures the real utilisation).
    """
    rows = []
    if profile.scale == "paper":
        from . import paper

        for name, m in paper.PAPER_MODELS.items():
            tokens = profile.post_tokens[name]
            for method in ("depth", "width"):
                for rate in profile.rates(name, method):
                    rows.append({"run_id": f"{name}-{method}-{rate:.2f}", "model": name, "hub_id": m.hub_id,
                                 "method": method, "rate": rate, "n0": m.n_params, "tokens": tokens})
            for method in ("2:4", "none"):
                rows.append({"run_id": f"{name}-{method.replace(':', 'of')}", "model": name, "hub_id": m.hub_id,
                             "method": method, "rate": 0.0, "n0": m.n_params, "tokens": tokens})
        return {"profile": profile.to_dict(), "n_runs": len(rows), "runs": rows,
                "batch_tokens": profile.batch_size * profile.seq_len, "estimated_seconds": None}
    flops = 0.0
    n0s = {}
    for family in profile.families:
        for spec in toy_family(family, profile.scale):
            n0s[spec.name] = _count_params_on_meta(spec, profile.vocab_size)
            flops += 6 * n0s[spec.name] * profile.pretrain_tokens_per_param * n0s[spec.name]
    eval_tokens = profile.n_eval_blocks * profile.seq_len * (profile.n_checkpoints + 1)
    for r in plan_runs(profile):
        tokens = int(profile.post_tokens_per_param * n0s[r.model])
        rows.append(r.__dict__ | {"n0": n0s[r.model], "tokens": tokens})
        flops += 6 * n0s[r.model] * tokens + 2 * n0s[r.model] * eval_tokens
    rate = utilisation * matmul_flops_per_second()
    return {"profile": profile.to_dict(), "n_runs": len(rows), "runs": rows, "estimated_flops": flops,
            "estimated_seconds": flops / rate, "assumed_flops_per_second": rate}


def _count_params_on_meta(spec, vocab_size: int) -> int:
    """N0 of a toy base without allocating (or training) it."""
    import torch

    from .models import build_model

    with torch.device("meta"):
        return count_params(build_model(spec, vocab_size))


def _post_train_config(profile: Profile, n0: int):
    from .train import TrainConfig

    return TrainConfig(total_tokens=int(profile.post_tokens_per_param * n0), lr=profile.lr,
                       batch_size=profile.batch_size, n_checkpoints=profile.n_checkpoints,
                       warmup_fraction=profile.warmup_fraction, seed=profile.seed)


def run(profile: str | Profile, out=None, dry_run: bool = False, only=None, progress: bool = True):
    """Run (or resume) a profile's sweep into ``out``; return the checkpoint table's path.

    ``dry_run=True`` only prints and returns the plan (``plan_sweep``): nothing is downloaded or trained.
    ``only``: run ids or model names to restrict the sweep to (a sweep can run in parts).
    """
    import torch

    from .pretrain import pretrain_base
    from .prune import prune_2of4, prune_depth, prune_width
    from .train import evaluate, post_train

    profile = get_profile(profile) if isinstance(profile, str) else profile
    if dry_run:
        plan = plan_sweep(profile)
        for r in plan["runs"]:
            print(f"  {r['run_id']:<32} n0={r['n0']:>12,} tokens={r['tokens']:>14,}")
        eta = plan["estimated_seconds"]
        print(f"profile {profile.name}: {plan['n_runs']} runs"
              + (f", estimated {eta / 60:.0f} min on this machine" if eta else ""))
        return plan
    if profile.scale == "paper":
        raise NotImplementedError("the paper profile downloads 0.5B-8B models and SlimPajama and needs GPUs; "
                                  "use dry_run=True here, or adapt experiment.run on a GPU machine")
    out = Path(out or f"results/{profile.name}")
    out.mkdir(parents=True, exist_ok=True)
    table_path = out / "checkpoints.csv"
    existing = _existing_table(table_path)  # checked before anything is written
    cache = out / "_cache"
    t_start = time.perf_counter()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    bundle = prepare(profile.corpus, profile.seq_len, profile.vocab_size, profile.seed, profile.n_eval_blocks,
                     profile.n_calibration, cache_dir=cache)
    vocab = len(bundle.tokenizer)
    calibration = calibration_batches(bundle.calibration, profile.n_calibration, profile.calibration_batch,
                                      profile.seed)
    manifest_path = out / "manifest.json"
    import json

    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest.update({"profile": profile.to_dict(), "corpus": bundle.corpus, "versions": _versions(),
                     "git_commit": _git_commit(), "machine": {"cpus": torch.get_num_threads(),
                                                             "platform": platform.platform()}})
    manifest.setdefault("runs", {})
    manifest.setdefault("pretrain", {})

    runs = [r for r in plan_runs(profile) if only is None or r.run_id in only or r.model in only]
    bases: dict[str, tuple] = {}
    for r in runs:
        spec = next(s for s in toy_family(r.family, profile.scale) if s.name == r.model)
        cfg = _post_train_config(profile, _count_params_on_meta(spec, vocab))
        last_step = cfg.checkpoint_steps(profile.seq_len)[-1]
        if existing is not None and ((existing.run_id == r.run_id) & (existing.step == last_step)).any():
            continue  # finished in an earlier sweep: its base need not even be loaded
        if r.model not in bases:
            base, info = pretrain_base(spec, bundle.train_data, vocab, profile.pretrain_tokens_per_param,
                                       profile.pretrain_lr, profile.batch_size * 2, cache / "bases", profile.seed,
                                       progress)
            l0 = evaluate(base, bundle.train_data.eval, 32)
            manifest["pretrain"][r.model] = {k: v for k, v in info.items() if k != "curve"} | {"l0": l0}
            write_json_atomic(out / "pretrain" / f"{r.model}.json", info | {"l0": l0})
            bases = {r.model: (base, l0)}  # keep one base in memory at a time
        base, l0 = bases[r.model]
        n0 = count_params(base)
        t0 = time.perf_counter()
        model = copy.deepcopy(base)
        masks = None
        if r.method == "depth":
            model, report = prune_depth(model, calibration, rate=r.target_rate, progress=progress)
        elif r.method == "width":
            model, report = prune_width(model, calibration, rate=r.target_rate, progress=progress)
        elif r.method == "2:4":
            model, report = prune_2of4(model, calibration, progress=progress)
            masks = report.masks
        else:
            report = None
        n = report.n if report else n0
        rate = report.rate if report else 0.0
        if report:
            write_json_atomic(out / "prune_reports" / f"{r.run_id}.json",
                              report.to_dict() | {"run_id": r.run_id, "model": r.model, "target_rate": r.target_rate})
        meta = {"family": r.family, "model": r.model, "n0": n0, "l0": l0, "method": r.method, "rate": rate,
                "n": n, "seed": profile.seed, "run_id": r.run_id}
        post_train(model, bundle.train_data, cfg, masks=masks, rows_meta=meta, table_path=table_path,
                   state_dir=cache / "state" / r.run_id, progress=progress)
        manifest["runs"][r.run_id] = {"seconds": time.perf_counter() - t0, "tokens": cfg.total_tokens,
                                      "steps": cfg.steps(profile.seq_len), "n0": n0, "n": n, "rate": rate,
                                      "train_config": cfg.__dict__}
        manifest["wall_seconds_this_session"] = time.perf_counter() - t_start
        write_json_atomic(manifest_path, manifest)
        existing = pd.read_csv(table_path)
    manifest["wall_seconds_total_runs"] = sum(v["seconds"] for v in manifest["runs"].values())
    manifest["wall_seconds_total_pretrain"] = sum(v.get("seconds", 0) for v in manifest["pretrain"].values())
    write_json_atomic(manifest_path, manifest)
    return table_path
