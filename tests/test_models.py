import pytest
import torch

from p2law.models import FAMILIES, build_model, count_params, load_model, toy_family


@pytest.mark.parametrize("family", FAMILIES)
def test_toy_family_shapes_and_ratios(family):
    specs = toy_family(family)
    with torch.device("meta"):
        sizes = [count_params(build_model(s, 2048)) for s in specs]
    ratios = [n / sizes[0] for n in sizes]
    target = {"llama": (1, 2.6, 6.5), "qwen2": (1, 3.1, 6.3)}[family]  # 1B:3B:8B and 0.5B:1.5B:3B
    assert all(abs(r - t) / t < 0.15 for r, t in zip(ratios, target)), ratios
    for s in specs:
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
