"""The paper's three pruners for Hugging Face Llama/Qwen2 models (App. B).

Each takes a model and calibration batches and returns ``(pruned model, PruneReport)``.
"""

from .common import PruneReport
from .depth import drop_layers, layer_similarity, layers_for_rate, prune_depth
from .magnitude import magnitude_mask_2of4, prune_2of4_magnitude
from .sparsegpt import prune_2of4, prune_linear_2of4
from .width import channel_importance, channels_for_rate, keep_hidden_channels, prune_width

__all__ = [
    "PruneReport",
    "prune_depth",
    "prune_width",
    "prune_2of4",
    "prune_2of4_magnitude",
    "magnitude_mask_2of4",
    "prune_linear_2of4",
    "drop_layers",
    "keep_hidden_channels",
    "layer_similarity",
    "channel_importance",
    "layers_for_rate",
    "channels_for_rate",
]
