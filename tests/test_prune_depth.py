import copy

import pytest
import torch
from prune_fixtures import calibration, probe, same_state, state_snapshot, tiny_model
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, LlamaConfig, Qwen2Config

from p2law import paper
from p2law.lab.models import count_params
from p2law.lab.prune import drop_layers, layer_similarity, layers_for_rate, prune_depth
from p2law.lab.prune.depth import layer_param_count


@pytest.mark.parametrize("family", ["llama", "qwen2"])
@pytest.mark.parametrize("tied", [True, False])
def test_depth_removes_most_similar_layers_and_counts(family, tied):
    model = tiny_model(family, tied=tied, layers=5)
    n0, per_layer = count_params(model), count_params(model.model.layers[0])
    scores = layer_similarity(model, calibration(), progress=False)
    model, report = prune_depth(model, calibration(), n_layers=2, progress=False)
    assert len(model.model.layers) == 3 and model.config.num_hidden_layers == 3
    assert report.removed == sorted(torch.tensor(scores).argsort(descending=True)[:2].tolist())
    assert report.n0 == n0 and report.n == n0 - 2 * per_layer == count_params(model)
    assert report.rate == pytest.approx(2 * per_layer / n0)
    assert [layer.self_attn.layer_idx for layer in model.model.layers] == [0, 1, 2]
    if family == "qwen2":
        assert len(model.config.layer_types) == 3
    assert model(probe()).logits.shape == (2, 12, 96)


def test_similarity_ignores_padding():
    model = tiny_model()
    ids = calibration(1, batch=2, tokens=10)[0]
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    padded = ids.clone()
    padded[1, 6:] = 0
    garbage = padded.clone()
    garbage[1, 6:] = 5  # different padding content must not change the scores
    a = layer_similarity(model, [{"input_ids": padded, "attention_mask": mask}], progress=False)
    b = layer_similarity(model, [{"input_ids": garbage, "attention_mask": mask}], progress=False)
    torch.testing.assert_close(torch.tensor(a), torch.tensor(b))


def test_similarity_uses_raw_last_layer_output():
    """The last entry of output_hidden_states has the final norm applied; Eq. 16 needs the raw output."""
    model = tiny_model(layers=2)
    with torch.no_grad():
        model.model.norm.weight.copy_(torch.rand(64) * 2 + 0.1)  # a norm that turns directions
    ids = calibration(1)[0]
    raw = copy.deepcopy(model)
    raw.model.norm = torch.nn.Identity()  # now the last hidden state is the last layer's raw output
    with torch.no_grad():
        hs_raw = raw(ids, output_hidden_states=True).hidden_states
        hs_normed = model(ids, output_hidden_states=True).hidden_states
    cos = torch.nn.functional.cosine_similarity
    expected = cos(hs_raw[-2].double(), hs_raw[-1].double(), dim=-1).mean().item()
    wrong = cos(hs_normed[-2].double(), hs_normed[-1].double(), dim=-1).mean().item()
    scores = layer_similarity(model, [ids], progress=False)
    assert scores[-1] == pytest.approx(expected, abs=1e-6)
    assert abs(scores[-1] - wrong) > 1e-3


def test_removing_zero_layers_leaves_logits_unchanged():
    model = tiny_model()
    before = model(probe()).logits
    drop_layers(model, [])
    torch.testing.assert_close(model(probe()).logits, before, rtol=0, atol=0)


def test_reloaded_depth_pruned_model_gives_same_logits(tmp_path):
    model, _ = prune_depth(tiny_model("qwen2"), calibration(), n_layers=1, progress=False)
    model.save_pretrained(tmp_path)
    again = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert again.config.num_hidden_layers == 3
    torch.testing.assert_close(again(probe()).logits, model(probe()).logits, rtol=0, atol=0)


def _paper_config(m):
    cls = LlamaConfig if m.family == "llama" else Qwen2Config
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


@pytest.mark.parametrize("model_name", list(paper.PAPER_MODELS))
def test_table1_depth_rates_come_back_on_real_configs(model_name):
    """Counted on the meta device (no weights allocated) from the six real architectures."""
    m = paper.PAPER_MODELS[model_name]
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(_paper_config(m))
    n0, per_layer = count_params(model), layer_param_count(model)
    for row in paper.TABLE1[(paper.TABLE1.model == model_name) & (paper.TABLE1.method == "depth")].itertuples():
        k = layers_for_rate(n0, per_layer, m.n_layers, row.rate)
        assert round(100 * k * per_layer / n0) == round(100 * row.rate), (model_name, row.rate, k)


def test_bad_input_leaves_model_untouched():
    model = tiny_model()
    snap = state_snapshot(model)
    with pytest.raises(ValueError, match=r"rate must be in \(0, 1\)"):
        prune_depth(model, calibration(), rate=1.5, progress=False)
    with pytest.raises(ValueError, match=r"n_layers must be in \[0, 4\)"):
        prune_depth(model, calibration(), n_layers=4, progress=False)
    with pytest.raises(ValueError, match="exactly one of"):
        prune_depth(model, calibration(), progress=False)
    with pytest.raises(ValueError, match="calibration data is empty"):
        prune_depth(model, [], n_layers=1, progress=False)
    assert same_state(model, snap) and model.config.num_hidden_layers == 4
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=50))
    with pytest.raises(TypeError, match="Llama or Qwen2"):
        prune_depth(gpt2, calibration(), n_layers=1, progress=False)


def test_rate_that_would_remove_every_layer_is_refused_not_capped():
    model = tiny_model()  # 4 layers
    n0, per_layer = count_params(model), layer_param_count(model)
    all_four, three = 4 * per_layer / n0, 3 * per_layer / n0
    midpoint = (all_four + three) / 2
    # Just below the midpoint, three layers is the honest nearest answer.
    assert layers_for_rate(n0, per_layer, 4, midpoint - 1e-3) == 3
    snap = state_snapshot(model)
    rate = round(midpoint + 1e-3, 4)  # closer to removing all four than to removing three
    with pytest.raises(ValueError, match=rf"rate {rate} would remove all 4 layers") as err:
        prune_depth(model, calibration(), rate=rate, progress=False)
    assert f"nearest allowed rate is {three:.4f}" in str(err.value)
    assert same_state(model, snap) and model.config.num_hidden_layers == 4
    with pytest.raises(ValueError, match="cannot be depth-pruned"):
        layers_for_rate(n0, per_layer, 1, 0.5)
