"""Profiles: the papermill/CLI parameter ``profile`` names one of these settings.

* ``smoke``: every code path in a few minutes (tiny models, a few dozen steps).
* ``toy``: the CPU-scale reproduction, sized to finish in about two hours on 2 cores.
* ``paper``: the paper's own settings (§3.1, App. B): Llama-3.2-1B/3B, Llama-3.1-8B,
  Qwen-2.5-0.5B/1.5B/3B, SlimPajama, 1,024 calibration samples, LR 2e-5, 256k-token batches, 0.5B
  tokens for the smaller and 1B for the larger models. Its models come by hub id, or from local folders
  named in ``model_paths``; here it is validated by a dry run and, on a tiny local stand-in, by a test.

The paper profile prunes at the paper's Table 1 rates, per model. The toy profile prunes every size of a
family at the same target rates (``depth_rates``, ``width_rates``), so that Trend 1 compares models at
nearly the same achieved ρ; the sweep's plan checks that the achieved rates are distinct within a model
and matched across sizes (``experiment.plan_runs``). Smoke keeps two of each to stay quick.

Post-training uses the same optimisation per token for every run: a fixed warm-up of ``warmup_steps``
steps, then a constant learning rate (``schedule``), so a checkpoint at D tokens has seen the same learning
rates whatever the size of its model or the length of its run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .. import paper

PROFILE_NAMES = ("smoke", "toy", "paper")


@dataclass(frozen=True)
class Profile:
    name: str
    scale: str  # which model family sizes: "smoke" | "toy" | "paper"
    corpus: str
    seq_len: int
    vocab_size: int | None  # None: the model's own tokenizer
    n_calibration: int
    calibration_batch: int
    n_eval_blocks: int
    pretrain_tokens_per_param: float  # toy/smoke bases are pretrained here; paper bases are downloaded
    pretrain_lr: float
    post_tokens_per_param: float | None  # post-training budget D relative to N0 (toy/smoke)
    post_tokens: dict = field(default_factory=dict)  # paper: absolute tokens per model
    lr: float = 2e-4
    batch_size: int = 16
    n_checkpoints: int = 20
    warmup_fraction: float = 0.05  # only where warmup_steps is None
    n_rates: int = 3
    seed: int = 0  # corpus split, tokenizer, calibration sample, base initialisation and pretraining order
    warmup_steps: int | None = None  # post-training warm-up, the same for every run
    schedule: str = "cosine"  # post-training schedule after warm-up: "constant" or "cosine"
    checkpoint_spacing: str = "linear"
    seeds: tuple = (0,)  # post-training data-order seeds (repeats of every run give the noise floor)
    single_seed_sizes: tuple = ()  # model sizes ("l") that get only seeds[0], to fit the budget
    depth_rates: tuple | None = None  # None: Table 1's rates for the mirrored paper model
    width_rates: tuple | None = None
    post_train_fraction: float = 0.2  # share of the corpus's documents kept for post-training
    pretrain_batch_size: int | None = None  # None: 2 x batch_size
    pretrain_warmup_steps: int = 0  # 0: 2% of the pretraining run
    pretrain_min_lr_ratio: float = 0.1  # the pretraining cosine anneals to pretrain_lr x this
    families: tuple = ("llama", "qwen2")
    eval_batch_size: int = 32  # sequences per forward pass when measuring eval loss (memory, not results)
    # paper: model name -> local folder with the model and its tokenizer (save_pretrained), instead of the hub id
    model_paths: dict = field(default_factory=dict)

    def rates(self, mirrors: str, method: str) -> list[float]:
        """The profile's target rates, or Table 1's rates for the paper model that ``mirrors`` names."""
        own = {"depth": self.depth_rates, "width": self.width_rates}.get(method)
        if own is not None:
            return sorted(own)[: self.n_rates]
        t = paper.TABLE1
        rates = sorted(t[(t.model == mirrors) & (t.method == method)].rate.tolist())
        if not rates:
            raise ValueError(f"Table 1 has no {method} rates for {mirrors!r}")
        return rates[: self.n_rates]

    def seeds_for(self, model_name: str) -> tuple:
        """Data-order seeds of a base's runs (``single_seed_sizes`` by the name's last part, e.g. ``-l``)."""
        size = model_name.rsplit("-", 1)[-1]
        return self.seeds[:1] if size in self.single_seed_sizes else tuple(self.seeds)

    def to_dict(self) -> dict:
        return asdict(self)


PROFILES = {
    "smoke": Profile(
        name="smoke",
        scale="smoke",
        corpus="stdlib:120",
        seq_len=64,
        vocab_size=512,
        n_calibration=16,
        calibration_batch=8,
        n_eval_blocks=32,
        pretrain_tokens_per_param=3.0,
        pretrain_lr=3e-3,
        post_tokens_per_param=0.15,
        lr=5e-4,
        batch_size=8,
        n_checkpoints=6,
        n_rates=2,
        warmup_steps=2,
        schedule="constant",
        checkpoint_spacing="log+linear",
        seeds=(0, 1),
        single_seed_sizes=("m", "l"),
        post_train_fraction=0.25,
    ),
    # Bases pretrained to 20 tokens per parameter with a cosine annealed to 1/20 of the peak (1.5e-4);
    # post-training at a constant 2e-5 (the paper's rate) on documents no base has seen. Pilots on the
    # controls' drift (2026-12-01/02): 1e-4 -> 0.017 nats, 4e-5 -> 0.009-0.016, 2e-5 -> 8 of 10 within 0.01.
    # Neither annealing ten times lower, nor post-training with weight decay 0.1, nor 30 tokens per
    # parameter (a whole sweep: 5 of 10 within 0.01) flattened the rest: the reproduction page has the numbers.
    "toy": Profile(
        name="toy",
        scale="toy",
        corpus="stdlib",
        seq_len=128,
        vocab_size=512,
        n_calibration=128,
        calibration_batch=16,
        n_eval_blocks=32,
        pretrain_tokens_per_param=20.0,
        pretrain_lr=3e-3,
        post_tokens_per_param=1.5,
        lr=2e-5,
        batch_size=16,
        n_checkpoints=31,
        warmup_steps=10,
        schedule="constant",
        checkpoint_spacing="log+linear",
        seeds=(0, 1),
        single_seed_sizes=("l",),
        depth_rates=(0.1, 0.2, 0.3),
        width_rates=(0.125, 0.25, 0.375),
        pretrain_batch_size=32,
        pretrain_warmup_steps=50,
        pretrain_min_lr_ratio=0.05,
    ),
    "paper": Profile(
        name="paper",
        scale="paper",
        corpus="hub:cerebras/SlimPajama-627B",
        seq_len=2048,
        vocab_size=None,
        n_calibration=1024,
        calibration_batch=8,
        n_eval_blocks=512,
        pretrain_tokens_per_param=0.0,
        pretrain_lr=0.0,
        post_tokens_per_param=None,
        post_tokens={name: m.post_training_tokens for name, m in paper.PAPER_MODELS.items()},
        lr=2e-5,
        batch_size=128,
        n_checkpoints=20,  # 128 x 2048 = 256k tokens per batch
        eval_batch_size=4,
    ),  # 4 x 2048 tokens of fp32 logits over a 128k-152k vocabulary ~ 4-5 GB
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILE_NAMES)}")
    return PROFILES[name]
