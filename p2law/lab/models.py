"""Model families and loading.

``count_params`` is the one counting rule the whole project uses: every parameter tensor once
(tied input/output embeddings count once, because ``model.parameters()`` de-duplicates shared
tensors), embeddings included. The paper's Table 1 rates come out this way.

The toy families are built from ``transformers``' own ``LlamaConfig`` and ``Qwen2Config``, so the
pruners and the trainer see exactly the classes Llama-3.x and Qwen-2.5 load into. Three sizes each,
whose parameter ratios echo the paper's (Llama 1B : 3B : 8B and Qwen 0.5B : 1.5B : 3B), keeping what
the pruners care about: grouped-query attention, tied embeddings (Llama-3.2 1B/3B and the Qwen-2.5
models tie, Llama-3.1-8B does not), and Qwen's q/k/v biases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..paper import FAMILIES  # the two model families, defined once beside the paper's numbers


def count_params(model) -> int:
    """Number of parameters of a torch module, shared (tied) tensors counted once."""
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class ToySpec:
    """One toy model: a name, its family and the architecture fields of its config."""

    name: str
    family: str  # "llama" | "qwen2"
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    tie_word_embeddings: bool
    mirrors: str  # the paper's model this one stands in for
    extra: dict = field(default_factory=dict)

    def config(self, vocab_size: int, max_position_embeddings: int = 512):
        from transformers import LlamaConfig, Qwen2Config

        cls = LlamaConfig if self.family == "llama" else Qwen2Config
        return cls(
            vocab_size=vocab_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads,
            intermediate_size=self.intermediate_size,
            tie_word_embeddings=self.tie_word_embeddings,
            max_position_embeddings=max_position_embeddings,
            rope_theta=10000.0,
            **self.extra,
        )


# (hidden, layers, heads, kv_heads, intermediate, tied, mirrors)
_FAMILIES = {
    # Sized for bases pretrained to >= 20 tokens per parameter on 2 cores: eight layers in every model (so
    # one layer is about the same share of N0 at every size and depth rates match across sizes) and a
    # head size of 8 (so width pruning, which keeps whole heads' worth of channels, removes multiples of
    # 1/8 of the hidden size at every size and width rates match exactly). N0 spans >= 5x in each family.
    "toy": {
        "llama": [
            (24, 8, 3, 1, 64, True, "Llama-3.2-1B"),
            (40, 8, 5, 1, 112, True, "Llama-3.2-3B"),
            (56, 8, 7, 1, 152, False, "Llama-3.1-8B"),
        ],
        "qwen2": [
            (24, 8, 3, 1, 64, True, "Qwen-2.5-0.5B"),
            (40, 8, 5, 1, 112, True, "Qwen-2.5-1.5B"),
            (56, 8, 7, 1, 168, True, "Qwen-2.5-3B"),
        ],
    },
    "smoke": {
        "llama": [
            (32, 3, 4, 2, 64, True, "Llama-3.2-1B"),
            (40, 4, 4, 2, 80, True, "Llama-3.2-3B"),
            (48, 5, 4, 2, 96, False, "Llama-3.1-8B"),
        ],
        "qwen2": [
            (32, 3, 4, 2, 64, True, "Qwen-2.5-0.5B"),
            (40, 4, 4, 2, 80, True, "Qwen-2.5-1.5B"),
            (48, 5, 4, 2, 96, True, "Qwen-2.5-3B"),
        ],
    },
}


def toy_family(name: str, scale: str = "toy") -> list[ToySpec]:
    """The three toy models of a family (``scale="smoke"`` gives smaller ones for quick runs)."""
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; known: {FAMILIES}")
    if scale not in _FAMILIES:
        raise ValueError(f"unknown scale {scale!r}; known: {sorted(_FAMILIES)}")
    sizes = ("s", "m", "l")
    return [
        ToySpec(f"{scale}-{name}-{s}", name, h, L, nh, kv, inter, tied, mirrors)
        for s, (h, L, nh, kv, inter, tied, mirrors) in zip(sizes, _FAMILIES[scale][name])
    ]


def build_model(spec: ToySpec, vocab_size: int, seed: int = 0):
    """A freshly initialised model for a toy spec (seeded)."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(spec.config(vocab_size))


def load_model(spec, vocab_size: int | None = None, seed: int = 0, dtype=None):
    """A ToySpec (fresh, seeded), a local folder saved with ``save_pretrained``, or a hub id."""
    from transformers import AutoModelForCausalLM

    if isinstance(spec, ToySpec):
        if vocab_size is None:
            raise ValueError("a ToySpec needs vocab_size (the tokenizer's)")
        return build_model(spec, vocab_size, seed)
    if not isinstance(spec, (str, Path)):
        raise TypeError(f"expected a ToySpec, a path or a hub id, got {type(spec).__name__}")
    path = Path(spec)
    if path.exists():
        return AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    if str(spec).startswith((".", "/")) or path.suffix:
        raise FileNotFoundError(f"model path {spec} does not exist")
    return AutoModelForCausalLM.from_pretrained(str(spec), dtype=dtype)  # hub id: needs the network
