import copy

import pytest
import torch
from prune_fixtures import calibration, probe, same_state, state_snapshot, tiny_model
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

from p2law.lab.models import count_params
from p2law.lab.prune import magnitude_mask_2of4, prune_2of4, prune_2of4_magnitude, prune_linear_2of4, sparsegpt


def assert_2of4(weight):
    groups = weight.reshape(weight.shape[0], -1, 4)
    assert bool(((groups == 0).sum(-1) >= 2).all())


def correlated_inputs(n=512, dim=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    basis = torch.randn(8, dim, generator=g, dtype=torch.float64)
    return torch.randn(n, 8, generator=g, dtype=torch.float64) @ basis + 0.05 * torch.randn(
        n, dim, generator=g, dtype=torch.float64
    )


def magnitude_2of4(w):
    return w * magnitude_mask_2of4(w)


def test_sparsegpt_beats_magnitude_on_correlated_inputs():
    x = correlated_inputs()
    w = torch.randn(32, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    new_w, keep = prune_linear_2of4(w, 2 * x.T @ x / len(x), blocksize=16)
    assert_2of4(new_w)
    assert bool((new_w[~keep] == 0).all())
    assert int(keep.sum()) == w.numel() // 2  # exactly 2 of every 4
    err_sgpt = torch.linalg.norm((w - new_w) @ x.T)
    err_mag = torch.linalg.norm((w - magnitude_2of4(w)) @ x.T)
    assert err_sgpt < 0.7 * err_mag


def test_blocksize_does_not_change_the_mask_count_and_rejects_bad_shapes():
    x = correlated_inputs(dim=32)
    w = torch.randn(8, 32, dtype=torch.float64)
    for bs in (4, 8, 128):
        new_w, keep = prune_linear_2of4(w, x.T @ x, blocksize=bs)
        assert_2of4(new_w)
    with pytest.raises(ValueError, match="divisible by 4"):
        prune_linear_2of4(torch.randn(4, 30), torch.eye(30))
    with pytest.raises(ValueError, match="multiple of 4"):
        prune_linear_2of4(w, x.T @ x, blocksize=6)


def test_singular_hessian_gets_more_damping_and_a_warning():
    w = torch.randn(4, 8, dtype=torch.float64)
    h = torch.ones(8, 8, dtype=torch.float64)  # rank 1: the second Cholesky pivot is exactly 0
    with pytest.warns(RuntimeWarning, match="did not factor"):
        new_w, keep = prune_linear_2of4(w, h, percdamp=0.0)
    assert_2of4(new_w)


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_prune_2of4_model_sparsity_report_and_reload(family, tmp_path):
    model = tiny_model(family)
    n0 = count_params(model)
    model, report = prune_2of4(model, calibration(), blocksize=32, progress=False)
    assert len(report.masks) == 4 * 7
    n_zero = 0
    for name, param in model.named_parameters():
        if name in report.masks:
            assert_2of4(param)
            assert bool((param[~report.masks[name]] == 0).all())
            n_zero += int((~report.masks[name]).sum())
    assert report.n0 == n0 and report.n == n0 - n_zero
    assert report.rate == pytest.approx(n_zero / n0)
    assert model.model.embed_tokens.weight.ne(0).all()  # embeddings stay dense
    model.save_pretrained(tmp_path)
    again = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(again(probe()).logits, model(probe()).logits, rtol=0, atol=0)


def test_prune_2of4_bad_input_leaves_model_untouched():
    model = tiny_model(intermediate=98)  # down_proj has 98 in-features
    snap = state_snapshot(model)
    with pytest.raises(ValueError, match="not divisible by 4"):
        prune_2of4(model, calibration(), progress=False)
    with pytest.raises(ValueError, match="calibration data is empty"):
        prune_2of4(tiny_model(), [], progress=False)
    assert same_state(model, snap)


def test_prune_2of4_refuses_a_model_that_is_not_llama_shaped():
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=96, n_positions=32))
    snap = state_snapshot(gpt2)
    with pytest.raises(TypeError, match=r"expected a Llama or Qwen2 causal LM .* model_type='gpt2'"):
        prune_2of4(gpt2, calibration(), progress=False)
    assert same_state(gpt2, snap)


def _q_proj_hessian_of_layer_1(model, batches):
    """2 XᵀX / n for what layer 1's q_proj reads when ``model`` runs on ``batches``."""
    seen = []
    handle = model.model.layers[1].self_attn.q_proj.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].double().reshape(-1, args[0].shape[-1]))
    )
    with torch.no_grad():
        for ids in batches:
            model(ids, use_cache=False)
    handle.remove()
    x = torch.cat(seen)
    return 2 * x.T @ x / len(x)


def test_prune_2of4_calibrates_each_layer_on_the_pruned_layers_before_it(monkeypatch):
    model = tiny_model(layers=2)
    dense = copy.deepcopy(model)
    batches = calibration()
    given = []  # the Hessian of every matrix, in the order prune_2of4 prunes them

    def spy(weight, hessian, *args, **kwargs):
        given.append(hessian.clone())
        return real(weight, hessian, *args, **kwargs)

    real = sparsegpt.prune_linear_2of4
    monkeypatch.setattr(sparsegpt, "prune_linear_2of4", spy)
    prune_2of4(model, batches, blocksize=32, progress=False)
    assert len(given) == 2 * 7
    layer1_q = given[7]  # layer 0's seven matrices come first; q_proj leads layer 1's
    # Layer 1's q_proj input depends only on layer 0 (pruned now) and layer 1's norm (never pruned),
    # so the pruned model reproduces exactly what layer 1 must have been calibrated on.
    on_pruned = _q_proj_hessian_of_layer_1(model, batches)
    on_dense = _q_proj_hessian_of_layer_1(dense, batches)
    torch.testing.assert_close(layer1_q, on_pruned, rtol=1e-5, atol=1e-7)
    assert torch.linalg.norm(on_dense - on_pruned) > 1e-3 * torch.linalg.norm(on_pruned)


def test_prune_2of4_shows_progress_over_calibration_batches_and_layers(capsys):
    prune_2of4(tiny_model(layers=3), calibration(n_batches=2), blocksize=32, progress=True)
    shown = capsys.readouterr().err
    # The batch bar is cleared when done (leave=False); its opening line shows it counts the 2 batches.
    assert "2:4: calibration inputs:   0%|          | 0/2" in shown
    assert "2:4: SparseGPT layers" in shown and "3/3" in shown
    prune_2of4(tiny_model(layers=3), calibration(n_batches=2), blocksize=32, progress=False)
    assert capsys.readouterr().err == ""


PROJECTIONS = (
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
)


def padded_calibration():
    """Three batches as (ids, mask); the last has right-padded rows, whose padding no Hessian may see."""
    batches = [(ids, torch.ones_like(ids)) for ids in calibration()]
    ids = torch.randint(0, 96, (3, 16), generator=torch.Generator().manual_seed(3))
    mask = torch.ones_like(ids)
    mask[1, 10:] = 0
    mask[2, 5:] = 0
    return batches + [(ids, mask)]


@torch.no_grad()
def per_projection_2of4(model, batches, blocksize):
    """Reference: SparseGPT as it was before the sharing, each projection with a float64 Hessian of its own.

    Layer by layer, the whole model (its earlier layers pruned already) runs on the batches, hooks on all
    seven projections of the layer sum X Xᵀ over the real tokens, and then each projection is pruned.
    """
    masks = {}
    for li, layer in enumerate(model.model.layers):
        sums, counts, handles, real = {}, {}, [], {}

        def collect(name):
            def fn(module, args):
                x = args[0].double().reshape(-1, args[0].shape[-1])[real["tokens"]]
                sums[name] = sums.get(name, 0) + x.T @ x
                counts[name] = counts.get(name, 0) + len(x)

            return fn

        for name in PROJECTIONS:
            handles.append(layer.get_submodule(name).register_forward_pre_hook(collect(name)))
        for ids, mask in batches:
            real["tokens"] = mask.reshape(-1) > 0
            model(input_ids=ids, attention_mask=mask, use_cache=False)
        for handle in handles:
            handle.remove()
        for name in PROJECTIONS:
            lin = layer.get_submodule(name)
            new_w, keep = prune_linear_2of4(lin.weight, 2 * sums[name] / counts[name], blocksize)
            lin.weight.copy_(new_w)
            masks[f"model.layers.{li}.{name}.weight"] = keep
    return masks


def assert_exact_2of4(weight, keep):
    assert bool((keep.reshape(-1, 4).sum(-1) == 2).all())  # exactly 2 kept of every 4 inputs
    assert bool((weight[~keep] == 0).all())


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_shared_hessians_prune_as_one_hessian_per_projection_did(family):
    batches = padded_calibration()
    as_dicts = [{"input_ids": ids, "attention_mask": mask} for ids, mask in batches]
    shared, report = prune_2of4(tiny_model(family), as_dicts, blocksize=32, progress=False)
    reference = tiny_model(family)
    ref_masks = per_projection_2of4(reference, batches, blocksize=32)
    assert report.masks.keys() == ref_masks.keys() and len(ref_masks) == 4 * 7
    ref_params = dict(reference.named_parameters())
    for name, param in shared.named_parameters():
        if name in ref_masks:
            assert torch.equal(report.masks[name], ref_masks[name]), name
            torch.testing.assert_close(param, ref_params[name], rtol=0, atol=1e-5)
            assert_exact_2of4(param, report.masks[name])


def test_prune_2of4_sums_one_hessian_per_distinct_input(monkeypatch):
    model = tiny_model(layers=2)
    given = []  # every Hessian handed to the matrix pruner, kept alive so distinct ones stay distinct objects

    def spy(weight, hessian, *args, **kwargs):
        given.append(hessian)
        return real(weight, hessian, *args, **kwargs)

    real = sparsegpt.prune_linear_2of4
    monkeypatch.setattr(sparsegpt, "prune_linear_2of4", spy)
    hooked = []  # per decoder-layer call: its submodules' hooks, i.e. the Hessians being summed

    def count_hooks(layer, args, kwargs):
        hooked.append(sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in layer.modules() if m is not layer))

    for layer in model.model.layers:
        layer.register_forward_pre_hook(count_hooks, with_kwargs=True)
    prune_2of4(model, calibration(), blocksize=32, progress=False)
    assert max(hooked) == 4  # qkv, o, gate/up, down; 7 when each projection had its own
    assert len(given) == 2 * 7
    for li in range(2):
        q, k, v, o, gate, up, down = given[7 * li : 7 * li + 7]
        assert q is k is v and gate is up
        assert len({id(h) for h in (q, o, gate, down)}) == 4


def test_prune_2of4_replaces_each_batchs_layer_input_in_place():
    model = tiny_model(layers=3)
    read_from = []  # where each decoder-layer call finds its hidden states

    def record(layer, args, kwargs):
        read_from.append(args[0].data_ptr())

    for layer in model.model.layers:
        layer.register_forward_pre_hook(record, with_kwargs=True)
    prune_2of4(model, calibration(n_batches=3), blocksize=32, progress=False)
    assert len(read_from) == 3 + 3 * 2 * 3  # layer 0 captured, then each layer calibrated and run on
    # One buffer per batch for the whole run: each layer's output overwrote its input. With a second list
    # for the outputs, layer 1 would read 3 tensors allocated while layer 0's 3 inputs were still held.
    assert len(set(read_from)) == 3


def test_prune_2of4_float32_hessians_bfloat16_offloaded_inputs(monkeypatch):
    batches = calibration()
    hessian_dtypes, layer_inputs = set(), []

    def spy(weight, hessian, *args, **kwargs):
        hessian_dtypes.add(hessian.dtype)
        return real(weight, hessian, *args, **kwargs)

    real = sparsegpt.prune_linear_2of4
    monkeypatch.setattr(sparsegpt, "prune_linear_2of4", spy)
    default_masks = prune_2of4(tiny_model(layers=2), batches, blocksize=32, progress=False)[1].masks
    assert hessian_dtypes == {torch.float64}  # the CPU default, as before, so earlier results reproduce
    hessian_dtypes.clear()
    model = tiny_model(layers=2)
    for layer in model.model.layers:
        layer.register_forward_pre_hook(
            lambda layer, args, kwargs: layer_inputs.append(args[0].clone()), with_kwargs=True
        )
    model, report = prune_2of4(
        model,
        batches,
        blocksize=32,
        progress=False,
        hessian_dtype=torch.float32,
        activation_dtype=torch.bfloat16,
        offload_inputs=True,
    )
    assert hessian_dtypes == {torch.float32}
    # Stored in bfloat16, the inputs reach the (float32) layers cast back: float32 values bfloat16 can hold.
    for x in layer_inputs[len(batches) :]:  # past the capture of layer 0's inputs, which stores them
        assert x.dtype == torch.float32 and torch.equal(x, x.bfloat16().float())
    params = dict(model.named_parameters())
    for name, keep in report.masks.items():
        assert_exact_2of4(params[name], keep)
    agree = sum(int((keep == default_masks[name]).sum()) for name, keep in report.masks.items())
    assert agree / sum(k.numel() for k in report.masks.values()) > 0.9


def test_magnitude_2of4_keeps_the_two_largest_of_every_four_and_matches_sparsegpts_masks():
    w = torch.tensor([[0.1, -3.0, 2.0, 0.5, 4.0, 0.0, -0.2, 1.0]])
    assert magnitude_mask_2of4(w).tolist() == [[False, True, True, False, True, False, False, True]]
    with pytest.raises(ValueError, match="divisible by 4"):
        magnitude_mask_2of4(torch.ones(2, 6))
    model = tiny_model()
    before = state_snapshot(model)
    pruned, report = prune_2of4_magnitude(copy.deepcopy(model))
    _, sgpt = prune_2of4(copy.deepcopy(model), calibration(), progress=False)
    assert set(report.masks) == set(sgpt.masks) and report.n == sgpt.n  # the same matrices, the same ρ
    for name, keep in report.masks.items():
        w = dict(pruned.named_parameters())[name]
        assert int(keep.sum()) == keep.numel() // 2
        assert bool((w[~keep] == 0).all()) and torch.equal(w[keep], before[name][keep])  # kept weights untouched
    for name, p in pruned.named_parameters():
        if name not in report.masks:
            assert torch.equal(p, before[name])  # embeddings, norms, head stay as they were
