import pytest
import torch
from prune_fixtures import calibration, probe, same_state, state_snapshot, tiny_model
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

from p2law.lab.models import count_params
from p2law.lab.prune import channel_importance, keep_hidden_channels, prune_width
from p2law.lab.prune.width import params_per_channel


@pytest.mark.parametrize("family", ["llama", "qwen2"])
@pytest.mark.parametrize("tied", [True, False])
def test_width_shapes_counts_and_heads(family, tied):
    model = tiny_model(family, tied=tied)
    n0, per = count_params(model), params_per_channel(model.config)
    model, report = prune_width(model, calibration(), rate=0.25, progress=False)
    h = model.config.hidden_size
    removed = 64 - h
    assert len(report.removed) == removed and h % 4 == 0  # whole heads' multiple (4 heads)
    assert report.n == count_params(model) == n0 - removed * per
    assert abs(report.rate - 0.25) <= 4 * per / n0  # within one step of whole-head multiples
    assert model.config.head_dim == 16  # explicit, unchanged
    attn, mlp = model.model.layers[0].self_attn, model.model.layers[0].mlp
    assert attn.q_proj.weight.shape == (4 * 16, h) and attn.k_proj.weight.shape == (2 * 16, h)  # GQA intact
    assert attn.o_proj.weight.shape == (h, 64) and mlp.down_proj.weight.shape == (h, 96)
    assert model.model.embed_tokens.weight.shape == (96, h) and model.lm_head.weight.shape == (96, h)
    assert (model.lm_head.weight is model.model.embed_tokens.weight) == tied
    if family == "qwen2":
        assert attn.q_proj.bias.shape == (64,)
    assert model(probe()).logits.shape == (2, 12, 96)


def test_width_removes_lowest_importance_channels():
    model = tiny_model()
    scores = channel_importance(model, calibration(), progress=False)
    _, report = prune_width(model, calibration(), rate=0.2, progress=False)
    lowest = sorted(torch.tensor(scores).argsort()[: len(report.removed)].tolist())
    assert report.removed == lowest


def test_channel_importance_is_eq17_summed_over_norms():
    model = tiny_model(layers=1)
    ids = calibration(1)[0]
    seen = []
    handles = [
        n.register_forward_hook(lambda m, a, o: seen.append(o.detach().double().abs()))
        for n in (
            model.model.layers[0].input_layernorm,
            model.model.layers[0].post_attention_layernorm,
            model.model.norm,
        )
    ]
    with torch.no_grad():
        model(ids)
    for h in handles:
        h.remove()
    expected = sum(o.mean(dim=1).mean(dim=0) for o in seen)  # per sample over tokens, then over samples
    torch.testing.assert_close(torch.tensor(channel_importance(model, [ids], progress=False)), expected)


def test_keeping_all_channels_leaves_logits_unchanged():
    model = tiny_model("qwen2", tied=False)
    before = model(probe()).logits
    keep_hidden_channels(model, range(64))
    torch.testing.assert_close(model(probe()).logits, before, rtol=0, atol=0)


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_reloaded_width_pruned_model_gives_same_logits(tmp_path, family):
    model, _ = prune_width(tiny_model(family), calibration(), rate=0.2, progress=False)
    model.save_pretrained(tmp_path)
    again = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert again.config.hidden_size == model.config.hidden_size and again.config.head_dim == 16
    torch.testing.assert_close(again(probe()).logits, model(probe()).logits, rtol=0, atol=0)


def test_width_bad_input_leaves_model_untouched():
    model = tiny_model()
    snap = state_snapshot(model)
    for rate, message in (
        (0.0, r"rate must be in \(0, 1\)"),
        (1.0, r"rate must be in \(0, 1\)"),
        (0.99, "remove all 64 hidden channels"),
    ):
        with pytest.raises(ValueError, match=message):
            prune_width(model, calibration(), rate=rate, progress=False)
    with pytest.raises(ValueError, match="calibration data is empty"):
        prune_width(model, [], rate=0.2, progress=False)
    assert same_state(model, snap) and model.config.hidden_size == 64


def test_width_refuses_a_model_that_is_not_llama_shaped():
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=96, n_positions=32))
    snap = state_snapshot(gpt2)
    with pytest.raises(TypeError, match=r"expected a Llama or Qwen2 causal LM .* model_type='gpt2'"):
        prune_width(gpt2, calibration(), rate=0.25, progress=False)
    assert same_state(gpt2, snap) and gpt2.config.n_embd == 32
