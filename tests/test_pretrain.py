"""A pretrained base is kept beside the results and reused by a later session only if it saw these blocks."""

import json

import torch

from p2law.lab import pretrain
from p2law.lab.models import toy_family
from p2law.lab.train import TrainData


def blocks(seed):
    g = torch.Generator().manual_seed(seed)
    return TrainData(train=torch.randint(0, 64, (64, 16), generator=g), eval=torch.randint(0, 64, (8, 16), generator=g))


def test_a_kept_base_is_reused_on_the_same_blocks_and_retrained_on_others(tmp_path, monkeypatch):
    spec = toy_family("llama", "smoke")[0]
    kw = dict(vocab_size=64, tokens_per_param=0.05, lr=1e-3, batch_size=8, progress=False, n_checkpoints=2)
    model, info = pretrain.pretrain_base(
        spec, blocks(0), cache_dir=tmp_path / "cache1", keep_dir=tmp_path / "kept", **kw
    )
    assert (tmp_path / "kept" / spec.name / "pretrain.json").exists() and info["tokens"] > 0
    calls = []
    real = pretrain.post_train
    monkeypatch.setattr(pretrain, "post_train", lambda *a, **k: calls.append(1) or real(*a, **k))
    again, info2 = pretrain.pretrain_base(
        spec, blocks(0), cache_dir=tmp_path / "fresh", keep_dir=tmp_path / "kept", **kw
    )
    assert not calls and info2 == json.loads(
        json.dumps(info)
    )  # loaded, not trained: a fresh checkout with the kept bases
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    pretrain.pretrain_base(spec, blocks(1), cache_dir=tmp_path / "fresh", keep_dir=tmp_path / "kept", **kw)
    assert calls  # other blocks (another corpus or tokenizer): trained again


def test_a_kept_base_is_retrained_under_another_recipe(tmp_path, monkeypatch):
    """A base annealed to another final rate (or trained longer, or from another seed) is another base."""
    spec = toy_family("llama", "smoke")[0]
    kw = dict(vocab_size=64, tokens_per_param=0.05, lr=1e-3, batch_size=8, progress=False, n_checkpoints=2)
    _, info = pretrain.pretrain_base(
        spec, blocks(0), cache_dir=tmp_path / "c", keep_dir=tmp_path / "kept", min_lr_ratio=0.1, **kw
    )
    assert info["recipe"]["min_lr_ratio"] == 0.1
    calls = []
    real = pretrain.post_train
    monkeypatch.setattr(pretrain, "post_train", lambda *a, **k: calls.append(1) or real(*a, **k))
    _, again = pretrain.pretrain_base(
        spec, blocks(0), cache_dir=tmp_path / "c2", keep_dir=tmp_path / "kept", min_lr_ratio=0.005, **kw
    )
    assert calls and again["recipe"]["min_lr_ratio"] == 0.005
    pretrain.pretrain_base(
        spec, blocks(0), cache_dir=tmp_path / "c3", keep_dir=tmp_path / "kept", min_lr_ratio=0.005, **kw
    )
    assert len(calls) == 1  # the same recipe again: reused


def test_a_base_sees_at_least_its_tokens_per_parameter(tmp_path):
    """The step count rounds up to whole batches: never a batch short of tokens_per_param x N."""
    spec = toy_family("llama", "smoke")[0]
    batch_tokens = 8 * 16
    for tokens_per_param in (0.05, 0.061):
        _, info = pretrain.pretrain_base(
            spec,
            blocks(0),
            vocab_size=64,
            tokens_per_param=tokens_per_param,
            lr=1e-3,
            batch_size=8,
            progress=False,
            n_checkpoints=2,
            cache_dir=tmp_path / str(tokens_per_param),
        )
        wanted = tokens_per_param * info["n_params"]
        assert wanted <= info["tokens"] < wanted + batch_tokens and info["tokens"] % batch_tokens == 0
