"""Command line: ``p2law run``, ``p2law fit``, ``p2law plan``.

``run`` needs torch and imports the experiment code only when called; ``fit`` and ``plan`` work on a
checkpoint table alone.
"""

from __future__ import annotations

import argparse
import json
import sys

UNITS_HELP = "divide raw counts by this before fitting (paper: 1e9 for N, 1e6 for D)"


def _add_fit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("table", help="checkpoint table (CSV or parquet)")
    p.add_argument("--form", default="L1", help="L1..L5 (L1-L3 become Eqs. 13-15 for 2:4)")
    # --method: the earlier name of --fitter, still accepted
    p.add_argument("--fitter", "--method", dest="fitter", default="lm", choices=["lm", "huber-log"])
    p.add_argument("--pruning", default=None, help="depth | width | 2:4 (default: every method in the table)")
    p.add_argument("--family", default=None, help="fit one family (default: every family in the table)")
    p.add_argument("--n-unit", type=float, default=1e9, help=UNITS_HELP)
    p.add_argument("--d-unit", type=float, default=1e6, help=UNITS_HELP)


def _fits(args):
    from . import table
    from .analysis import fit

    df = table.read(args.table)
    families = [args.family] if args.family else sorted(df["family"].unique())
    methods = [args.pruning] if args.pruning else sorted(set(df["method"]) - {"none"})
    for family in families:
        for method in methods:
            rows = table.fit_rows(df, method=method, family=family)
            print(f"p2law: {family} {method}: {rows.attrs['note']}", file=sys.stderr)
            yield family, method, rows, fit.fit(rows, args.form, args.fitter, args.n_unit, args.d_unit)


def cmd_fit(args) -> int:
    out = []
    for family, method, _, res in _fits(args):
        out.append(
            {
                "family": family,
                "pruning": method,
                "form": res.form.name,
                "fitter": res.fitter,
                "params": res.params,
                "r2": res.r2,
                "huber": res.huber,
                "asd": res.asd,
                "n_points": res.n_points,
                "n_starts": res.n_starts,
                "n_reached_best": res.n_reached_best,
                "converged": res.converged,
                "message": res.message,
            }
        )
    text = json.dumps(out, indent=2)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text + "\n")
    print(text)
    return 0


def cmd_plan(args) -> int:
    from .analysis import budget

    asked = [args.n0, args.rho, args.l0]
    if any(a is not None for a in asked) and not all(a is not None for a in asked):
        raise ValueError("--n0, --rho and --l0 go together (a model to plan for); give all three or none")
    out = []
    for family, method, rows, res in _fits(args):
        if args.bootstrap:
            res = res.bootstrap(rows, n_resamples=args.bootstrap, seed=args.seed)
        if args.n0 is not None:
            targets = [("(given)", args.n0, args.rho, args.l0)]
        else:  # every curve of the table
            curves = rows.groupby(["model", "rate"], as_index=False).agg(n0=("n0", "first"), l0=("l0", "first"))
            targets = [(c.model, c.n0, c.rate, c.l0) for c in curves.itertuples()]
        for model, n0, rho, l0 in targets:
            b = budget.token_budget(res, n0, rho, l0, args.threshold, per=args.per)
            out.append(
                {
                    "family": family,
                    "pruning": method,
                    "model": model,
                    "n0": n0,
                    "rate": rho,
                    "tokens": b.tokens,
                    "compute": b.compute,
                    "loss_at_budget": b.loss_at_budget,
                    "tokens_interval": b.tokens_interval,
                    "compute_interval": b.compute_interval,
                }
            )
    print(json.dumps(out, indent=2))
    return 0


def _model_paths(pairs: list[str]) -> dict[str, str]:
    """``--model-path NAME=PATH`` options as the profile's ``model_paths`` mapping."""
    paths = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not (sep and name and path):
            raise ValueError(f"--model-path expects NAME=PATH (e.g. Llama-3.2-1B=/models/llama-3.2-1b), got {pair!r}")
        paths[name] = path
    return paths


def _corpus_spec(value: str) -> str:
    """``--corpus``: a local copy of the corpus (a file or folder), ``hub:<id>``, or ``stdlib[:N]``."""
    if value.startswith("hub:") or value == "stdlib" or value.startswith("stdlib:"):
        return value
    from pathlib import Path

    path = Path(value).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"--corpus {value}: no such file or folder (a local .jsonl/.jsonl.zst/.parquet/.txt "
            "file or folder of them, hub:<dataset id>, or stdlib)"
        )
    return str(path.resolve())


def cmd_run(args) -> int:
    import dataclasses

    from .lab import experiment, schedule  # torch side, imported only here
    from .lab.profiles import get_profile
    from .lab.train import Preempted

    profile = get_profile(args.profile)
    if args.model_path:
        profile = dataclasses.replace(profile, model_paths=_model_paths(args.model_path))
    if args.corpus is not None:
        profile = dataclasses.replace(profile, corpus=_corpus_spec(args.corpus))
    only = [name for name in args.only.split(",") if name] if args.only is not None else None
    if args.micro_batch is not None and args.micro_batch <= 0:
        raise ValueError(f"--micro-batch must be a positive number of sequences (got {args.micro_batch})")
    try:
        with schedule.train_overrides(
            micro_batch_size=args.micro_batch,
            gradient_checkpointing=args.gradient_checkpointing or None,
            sharding=args.sharding,
        ):
            experiment.run(
                profile,
                args.out,
                dry_run=args.dry_run,
                only=only,
                progress=not args.quiet,
                gpus=args.gpus,
                gpu_memory_gb=args.gpu_memory,
            )
    except experiment.SweepBusyError as err:
        print(f"p2law run: error: {err}", file=sys.stderr)
        return 2
    except Preempted as err:  # a scheduler's SIGTERM/SIGUSR1: the run saved its state and stopped cleanly
        print(f"p2law run: preempted: {err}", file=sys.stderr)
        return err.exit_code
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="p2law", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="prune and post-train at a profile's settings; write the checkpoint table")
    run.add_argument("--profile", required=True, help="smoke | toy | paper")
    run.add_argument("--out", default=None, help="results folder (default results/<profile>)")
    run.add_argument("--dry-run", action="store_true", help="print the plan only")
    run.add_argument(
        "--only",
        default=None,
        help="comma-separated run ids or model names (run in parts; "
        "applies to --dry-run too; an unknown name is an error listing the valid ones)",
    )
    run.add_argument(
        "--micro-batch",
        type=int,
        default=None,
        metavar="N",
        help="sequences per forward/backward in each process; the rest of the process's share of "
        "the batch is accumulated (default: the whole share at once). Changes memory, not results",
    )
    run.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        help="recompute activations in the backward pass (less memory, ~30%% more compute)",
    )
    run.add_argument(
        "--sharding",
        choices=("ddp", "fsdp2"),
        default=None,
        help="under torchrun: ddp (every rank holds the model; the default) or fsdp2 (weights, gradients, "
        "AdamW and 2:4 masks sharded over the ranks). Under accelerate launch the config file decides "
        "(configs/accelerate/fsdp2.yaml). Changes memory, not results",
    )
    run.add_argument(
        "--gpus",
        type=int,
        default=4,
        help="paper --dry-run: GPUs to estimate memory and the micro-batch for (default 4)",
    )
    run.add_argument(
        "--gpu-memory",
        type=float,
        default=80,
        metavar="GB",
        help="paper --dry-run: memory per GPU in GB (default 80, an A100/A800/H100)",
    )
    run.add_argument(
        "--corpus",
        default=None,
        metavar="PATH",
        help="the corpus instead of the profile's: a local copy (a .jsonl, .jsonl.zst, .parquet or "
        ".txt file, or a folder of them, e.g. SlimPajama's train/ chunks) or hub:<dataset id>",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument(
        "--model-path",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="paper profile: load model NAME (e.g. Llama-3.2-1B) and its tokenizer from a local "
        "folder instead of the hub (repeatable)",
    )
    run.set_defaults(func=cmd_run)

    f = sub.add_parser("fit", help="fit a law to a checkpoint table, one per (family, pruning method)")
    _add_fit_args(f)
    f.add_argument("--json", default=None, help="also write the results to this file")
    f.set_defaults(func=cmd_fit)

    p = sub.add_parser("plan", help="post-training tokens at which each curve's predicted slope flattens")
    _add_fit_args(p)
    p.add_argument("--threshold", type=float, required=True, help="slope size at which the curve counts as flat")
    p.add_argument("--per", default="decade", choices=["decade", "token"])
    p.add_argument("--bootstrap", type=int, default=0, help="bootstrap refits for an interval (0: none)")
    p.add_argument("--n0", type=float, default=None, help="plan for this unpruned size (raw parameter count) ...")
    p.add_argument("--rho", type=float, default=None, help="... at this pruning rate ...")
    p.add_argument("--l0", type=float, default=None, help="... and this base loss (default: every curve of the table)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_plan)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "out", "x") is None:
        args.out = f"results/{args.profile}"
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, NotImplementedError) as err:
        print(f"p2law {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
