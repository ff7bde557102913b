"""Profiles: the papermill/CLI parameter ``profile`` names one of these settings.

* ``smoke``: every code path in a few minutes (tiny models, a few dozen steps).
* ``toy``: the CPU-scale reproduction, sized to finish in about two hours on 2 cores.
* ``paper``: the paper's own settings (§3.1, App. B): Llama-3.2-1B/3B, Llama-3.1-8B,
  Qwen-2.5-0.5B/1.5B/3B, SlimPajama, 1,024 calibration samples, LR 2e-5, 256k-token batches, 0.5B
  tokens for the smaller and 1B for the larger models. Its models come by hub id, or from local folders
  named in ``model_paths``; here it is validated by a dry run and, on a tiny local stand-in, by a test.

The pruning rates are the paper's Table 1 rates, per model (each toy model stands in for one of the
paper's six); smoke keeps two of each to stay quick.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from . import paper

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
    warmup_fraction: float = 0.05
    n_rates: int = 3
    seed: int = 0
    families: tuple = ("llama", "qwen2")
    eval_batch_size: int = 32  # sequences per forward pass when measuring eval loss (memory, not results)
    # paper: model name -> local folder with the model and its tokenizer (save_pretrained), instead of the hub id
    model_paths: dict = field(default_factory=dict)

    def rates(self, mirrors: str, method: str) -> list[float]:
        """Table 1's rates for the paper model that ``mirrors`` names."""
        t = paper.TABLE1
        rates = sorted(t[(t.model == mirrors) & (t.method == method)].rate.tolist())
        if not rates:
            raise ValueError(f"Table 1 has no {method} rates for {mirrors!r}")
        return rates[: self.n_rates]

    def to_dict(self) -> dict:
        return asdict(self)


PROFILES = {
    "smoke": Profile(name="smoke", scale="smoke", corpus="stdlib:120", seq_len=64, vocab_size=512,
                     n_calibration=16, calibration_batch=8, n_eval_blocks=32, pretrain_tokens_per_param=3.0,
                     pretrain_lr=3e-3, post_tokens_per_param=0.15, lr=1e-3, batch_size=8, n_checkpoints=6,
                     n_rates=2),
    "toy": Profile(name="toy", scale="toy", corpus="stdlib", seq_len=128, vocab_size=2048, n_calibration=128,
                   calibration_batch=16, n_eval_blocks=128, pretrain_tokens_per_param=6.0, pretrain_lr=2e-3,
                   post_tokens_per_param=0.5, lr=2e-4, batch_size=16, n_checkpoints=20),
    "paper": Profile(name="paper", scale="paper", corpus="hub:cerebras/SlimPajama-627B",
                     seq_len=2048, vocab_size=None, n_calibration=1024, calibration_batch=8, n_eval_blocks=512,
                     pretrain_tokens_per_param=0.0, pretrain_lr=0.0, post_tokens_per_param=None,
                     post_tokens={name: m.post_training_tokens for name, m in paper.PAPER_MODELS.items()},
                     lr=2e-5, batch_size=128, n_checkpoints=20,  # 128 x 2048 = 256k tokens per batch
                     eval_batch_size=4),  # 4 x 2048 tokens of fp32 logits over a 128k-152k vocabulary ~ 4-5 GB
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILE_NAMES)}")
    return PROFILES[name]
