"""The runs of a sweep: which bases, which pruning amounts, which seeds, and each run's training config.

``plan_runs(profile)`` turns a profile into ``RunPlan`` rows before anything is loaded: every base (pretrained
here, one of the paper's six, or a checkpoint a ``loaded`` profile names) gets its depth and width rates, 2:4
and a ρ = 0 control, per data-order seed. Achieved rates are counted on the meta device (no weights, no
download): distinct within a model and, for a profile with its own rates, matched across the sizes of a
family. ``post_train_config`` is the ``TrainConfig`` every run of a profile shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .models import ToySpec, count_params, toy_family
from .profiles import Profile


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    model: str
    family: str
    mirrors: str
    method: str  # depth | width | 2:4 | none
    target_rate: float  # 0 for 2:4 (its rate is measured) and for the control
    seed: int = 0  # post-training data order
    amount: int | None = None  # layers (depth) or hidden channels (width) the plan removes
    planned_rate: float | None = None  # ρ that removing ``amount`` gives, counted on the meta device
    note: str = ""  # why the plan moved away from the target, if it did


# Within a family, each rate rank's achieved ρ may differ across sizes by at most this much (the paper's
# own depth rates spread up to 0.06 across its models; width can be matched more closely).
RATE_MATCH = {"depth": 0.05, "width": 0.03}


class RatePlanError(ValueError):
    """The plan cannot give distinct or matched pruning rates."""


@dataclass(frozen=True)
class Base:
    """One unpruned model of a sweep and where it comes from."""

    name: str
    family: str
    mirrors: str  # the paper model whose Table 1 rates it is pruned at
    source: ToySpec | str  # a ToySpec is pretrained here; a str is a local folder or a hub id to load

    @property
    def pretrained_here(self) -> bool:
        return isinstance(self.source, ToySpec)


def base_models(profile: Profile) -> list[Base]:
    """The profile's unpruned models in sweep order (family by family, smallest first)."""
    if profile.scale == "loaded":
        return [Base(c.name, c.family, c.mirrors, c.source) for c in profile.checkpoints]
    if profile.scale != "paper":
        return [
            Base(s.name, family, s.mirrors, s) for family in profile.families for s in toy_family(family, profile.scale)
        ]
    from .. import paper

    return [
        Base(m.name, m.family, m.name, str(profile.model_paths.get(m.name, m.hub_id)))
        for m in paper.PAPER_MODELS.values()
        if m.family in profile.families
    ]


def meta_model(base: Base, vocab_size: int | None):
    """The base built on the meta device (no weights, no download), to count what pruning would remove."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from .. import paper

    if base.pretrained_here:
        config = base.source.config(vocab_size)
    elif Path(base.source).is_dir():
        config = AutoConfig.from_pretrained(base.source)
    elif base.name in paper.PAPER_MODELS:
        config = paper_config(paper.PAPER_MODELS[base.name])
    else:
        from .hub import load_config

        config = load_config(base.source)  # a GGUF file's metadata, or a cached hub id's config.json
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def paper_config(m):
    """A ``transformers`` config with the published architecture of one of the paper's models."""
    from transformers import LlamaConfig, Qwen2Config

    cls = LlamaConfig if m.family == "llama" else Qwen2Config  # Qwen2's q/k/v biases come with the class
    return cls(
        vocab_size=m.vocab_size,
        hidden_size=m.hidden_size,
        intermediate_size=m.intermediate_size,
        num_hidden_layers=m.n_layers,
        num_attention_heads=m.n_heads,
        num_key_value_heads=m.n_kv_heads,
        head_dim=m.head_dim,
        tie_word_embeddings=m.tied_embeddings,
    )


def n0_on_meta(base: Base, vocab_size: int | None) -> int:
    """N0 of a base without allocating weights or downloading anything.

    A toy spec is counted at ``vocab_size``; a local folder from its own config.json; a hub id from
    ``p2law.paper``'s published architecture.
    """
    return count_params(meta_model(base, vocab_size))


def _amounts(model, method: str, targets: list[float]) -> list[tuple[float, int, float, str]]:
    """``(target, amount, ρ, note)`` per target rate: whole layers or head-multiples of channels.

    Two targets that round to the same amount would give one curve twice (double-weighted in every fit),
    so a repeat moves to the next amount up and the note says so; when none is left the plan fails.
    """
    from .prune.depth import layer_param_count, layers_for_rate
    from .prune.width import channels_for_rate, params_per_channel

    n0 = count_params(model)
    if method == "depth":
        per, step, limit = layer_param_count(model), 1, len(model.model.layers) - 1
        first = lambda r: layers_for_rate(n0, per, limit + 1, r)  # noqa: E731
    else:
        per, step = params_per_channel(model.config), model.config.num_attention_heads
        limit = model.config.hidden_size - step
        first = lambda r: channels_for_rate(model, r)  # noqa: E731
    out, used = [], set()
    for target in targets:
        amount, note = first(target), ""
        while amount in used:
            amount += step
            note = f"target {target:.3f} rounds to an amount already planned; moved up to {amount}"
        if amount > limit:
            raise RatePlanError(
                f"{method} rates {targets}: no distinct amount left for {target} (at most {limit} can be removed)"
            )
        used.add(amount)
        out.append((target, amount, amount * per / n0, note))
    return out


def plan_runs(profile: Profile) -> list[RunPlan]:
    """Every run of the sweep: per base, each depth and width rate, 2:4 and the ρ = 0 control, per seed.

    Achieved rates are fixed here, on the meta device: distinct within a model (``_amounts``) and, for a
    profile with its own target rates, matched across the sizes of a family to within ``RATE_MATCH``
    (``RatePlanError`` otherwise, before anything runs).
    """
    runs, achieved = [], {}
    for b in base_models(profile):
        on_meta = meta_model(b, profile.vocab_size)
        for method in ("depth", "width"):
            for rank, (target, amount, rho, note) in enumerate(
                _amounts(on_meta, method, profile.rates(b.mirrors, method))
            ):
                achieved.setdefault((b.family, method, rank), []).append((b.name, rho))
                for seed in profile.seeds_for(b.name):
                    if seed != profile.seeds[0] and not profile.repeated(method, rank + 1):
                        continue
                    runs.append(
                        RunPlan(
                            _run_id(b.name, f"{method}-{rho:.3f}", seed, profile),
                            b.name,
                            b.family,
                            b.mirrors,
                            method,
                            target,
                            seed,
                            amount,
                            rho,
                            note,
                        )
                    )
        for seed in profile.seeds_for(b.name):
            for method, what in (("2:4", "2of4"), ("none", "none")):
                if seed == profile.seeds[0] or profile.repeated(method):
                    runs.append(
                        RunPlan(_run_id(b.name, what, seed, profile), b.name, b.family, b.mirrors, method, 0.0, seed)
                    )
    if profile.depth_rates is not None or profile.width_rates is not None:
        for (family, method, rank), got in achieved.items():
            rhos = [r for _, r in got]
            if max(rhos) - min(rhos) > RATE_MATCH[method] + 1e-9:
                raise RatePlanError(
                    f"{family} {method} rate #{rank + 1}: achieved rho "
                    + ", ".join(f"{n} {r:.3f}" for n, r in got)
                    + f" differ by more than {RATE_MATCH[method]}; choose other layer counts or rates"
                )
    return runs


def _run_id(model: str, what: str, seed: int, profile: Profile) -> str:
    """``<model>-<method>-<rho>`` plus ``-seed<k>`` when the profile repeats runs over seeds."""
    return f"{model}-{what}" + (f"-seed{seed}" if len(profile.seeds) > 1 else "")


def check_model_paths(profile: Profile) -> None:
    """Fail, naming the entry, on a ``model_paths`` override the sweep could not use (nothing is written)."""
    if not profile.model_paths:
        return
    if profile.scale != "paper":
        raise ValueError(
            f"profile {profile.name!r} pretrains its own bases; model_paths "
            f"({sorted(profile.model_paths)}) only points the paper profile's models at local folders"
        )
    from .. import paper

    unknown = sorted(set(profile.model_paths) - set(paper.PAPER_MODELS))
    if unknown:
        raise ValueError(
            f"model_paths names {unknown}, which are not among the paper's models {list(paper.PAPER_MODELS)}"
        )
    for name, path in profile.model_paths.items():
        folder = Path(path)
        if not (folder / "config.json").is_file():
            problem = "does not exist" if not folder.exists() else "has no config.json"
            raise FileNotFoundError(
                f"model path for {name}: {folder} {problem} (expected a folder written by "
                "save_pretrained, holding the model and its tokenizer)"
            )


def check_only(runs: list[RunPlan], only) -> None:
    """Every name in ``only`` must be a planned run id or model name (ValueError listing the valid ones)."""
    if only is None:
        return
    models = list(dict.fromkeys(r.model for r in runs))
    unknown = [name for name in only if name not in models and name not in {r.run_id for r in runs}]
    if unknown or not only:
        raise ValueError(
            f"--only {','.join(unknown) or '(empty)'}: not a model or run id of this profile; "
            f"valid model names: {', '.join(models)}; run ids: {', '.join(r.run_id for r in runs)}"
        )


def selected(runs: list[RunPlan], only) -> list[RunPlan]:
    return [r for r in runs if only is None or r.run_id in only or r.model in only]


def post_tokens(profile: Profile, model: str, n0: int | None) -> int:
    """Post-training tokens D of a base's runs: the paper's absolute budget, or a multiple of N0."""
    if profile.post_tokens_per_param is None:
        if model not in profile.post_tokens:
            raise ValueError(f"profile {profile.name!r} gives no post_tokens for {model}")
        return int(profile.post_tokens[model])
    return int(profile.post_tokens_per_param * n0)


# Settings of TrainConfig that change memory and speed but not results (``micro_batch_size``,
# ``gradient_checkpointing``, ``sharding``), set by ``p2law run --micro-batch`` / ``--gradient-checkpointing``
# / ``--sharding`` through ``train_overrides`` for every run of a sweep.
TRAIN_OVERRIDES: dict = {}


OVERRIDABLE = ("micro_batch_size", "gradient_checkpointing", "sharding")


class train_overrides:
    """``with train_overrides(micro_batch_size=4): run(...)`` sets TRAIN_OVERRIDES for the block."""

    def __init__(self, **settings):
        unknown = sorted(set(settings) - set(OVERRIDABLE))
        if unknown:
            raise ValueError(f"train_overrides: {unknown} are not among {OVERRIDABLE}")
        self.settings = {k: v for k, v in settings.items() if v is not None}

    def __enter__(self):
        self.saved = dict(TRAIN_OVERRIDES)
        TRAIN_OVERRIDES.update(self.settings)
        return self

    def __exit__(self, *exc):
        TRAIN_OVERRIDES.clear()
        TRAIN_OVERRIDES.update(self.saved)


def post_train_config(profile: Profile, tokens: int, seed: int = 0):
    from .train import TrainConfig

    return TrainConfig(
        total_tokens=tokens,
        lr=profile.lr,
        batch_size=profile.batch_size,
        n_checkpoints=profile.n_checkpoints,
        warmup_fraction=profile.warmup_fraction,
        warmup_steps=profile.warmup_steps,
        schedule=profile.schedule,
        checkpoint_spacing=profile.checkpoint_spacing,
        seed=seed,
        eval_batch_size=profile.eval_batch_size,
        **TRAIN_OVERRIDES,
    )
