import pytest
import torch

from p2law.lab.models import build_model, count_params, load_model, toy_family
from p2law.paper import FAMILIES


@pytest.mark.parametrize("family", FAMILIES)
def test_toy_family_shapes_and_ratios(family):
    """Three sizes spanning at least 5x in N0 (the paper's: 6.5x Llama, 6.2x Qwen) at the toy vocabulary;
    eight layers and a head size of 8 in every model, so depth and width rates can match across sizes."""
    from p2law.lab.profiles import get_profile

    vocab = get_profile("toy").vocab_size
    specs = toy_family(family)
    with torch.device("meta"):
        sizes = [count_params(build_model(s, vocab)) for s in specs]
    assert sizes == sorted(sizes) and 5 <= sizes[-1] / sizes[0] <= 7, sizes
    for s in specs:
        assert s.num_hidden_layers == 8 and s.hidden_size // s.num_attention_heads == 8
        cfg = s.config(2048)
        assert cfg.num_key_value_heads < cfg.num_attention_heads  # GQA
        assert cfg.hidden_size % 4 == 0 and cfg.intermediate_size % 4 == 0  # 2:4 applies everywhere
    tied = [s.tie_word_embeddings for s in specs]
    assert tied == ([True, True, False] if family == "llama" else [True, True, True])
    if family == "qwen2":
        m = build_model(specs[0], 128)
        assert m.model.layers[0].self_attn.q_proj.bias is not None


def test_build_is_seeded_and_load_model_reads_paths(tmp_path):
    spec = toy_family("llama", "smoke")[0]
    a, b = build_model(spec, 64, seed=3), build_model(spec, 64, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    a.save_pretrained(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), again.parameters()))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "missing")
    with pytest.raises(ValueError, match="unknown family"):
        toy_family("gpt2")
