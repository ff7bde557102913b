"""Model families and loading.

``count_params`` is the one counting rule the whole project uses: every parameter tensor once
(tied input/output embeddings count once, because ``model.parameters()`` de-duplicates shared
tensors), embeddings included. The paper's Table 1 rates come out this way.
"""

from __future__ import annotations


def count_params(model) -> int:
    """Number of parameters of a torch module, shared (tied) tensors counted once."""
    return sum(p.numel() for p in model.parameters())
