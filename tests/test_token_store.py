"""The paper profile's data path: a corpus streamed (seeded shuffle buffer), packed once into a memory-mapped
token store that every rank shares, with the whole budget and no repeats (p2law.lab.token_store)."""

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import zstandard

from p2law.lab import token_store
from p2law.lab.token_store import CorpusTooSmallError, TokenBlocks, stream_documents

SEQ = 8
N_DOCS = 300


def doc_tokens(i: int) -> list[str]:
    """Document i's words: every word in the corpus is its own, so a token names its document and place."""
    return [f"t{i}_{j}" for j in range(4 + i % 11)]


DOCS = [" ".join(doc_tokens(i)) for i in range(N_DOCS)]


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<eot>": 0, "<unk>": 1}
    for i in range(N_DOCS):
        for w in doc_tokens(i):
            vocab[w] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eot>", unk_token="<unk>")


def write_zst_corpus(folder: Path, docs=DOCS, shards=3) -> Path:
    """SlimPajama's layout: jsonl.zst chunks with a text and a meta column."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(shards):
        lines = "".join(json.dumps({"text": d, "meta": {"i": i}}) + "\n" for i, d in enumerate(docs) if i % shards == k)
        (folder / f"chunk_{k}.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines.encode()))
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_zst_corpus(tmp_path_factory.mktemp("zst") / "corpus")


def build(corpus, tokenizer, cache, n_train, seed=0, **kw):
    kw = {
        "n_eval_blocks": 6,
        "n_calibration": 6,
        "buffer_size": 64,
        "eval_fraction": 0.1,
        "calibration_fraction": 0.1,
    } | kw
    return token_store.token_store(str(corpus), tokenizer, SEQ, seed, n_train, cache_dir=cache, **kw)


def doc_of(token_id: int, tokenizer) -> int:
    return int(tokenizer.convert_ids_to_tokens(int(token_id))[1:].split("_")[0])


def segments(blocks: np.ndarray, tokenizer) -> list[list[str]]:
    """The packed tokens cut at end-of-text: one list of words per document, in stream order."""
    flat = tokenizer.convert_ids_to_tokens(blocks.reshape(-1).tolist())
    out, cur = [], []
    for w in flat:
        if w == "<eot>":
            out.append(cur)
            cur = []
        else:
            cur.append(w)
    return out + ([cur] if cur else [])


def test_stream_is_shuffled_by_its_seed(corpus):
    def order(seed):
        return [r["text"] for r in stream_documents(str(corpus), seed, buffer_size=32)]

    a, b, c = order(0), order(0), order(1)
    assert a == b  # same seed, same order
    assert a != c  # another seed, another order
    assert sorted(a) == sorted(c) == sorted(DOCS)  # every document once, whatever the order
    file_order = [d for k in range(3) for i, d in enumerate(DOCS) if i % 3 == k]
    assert a != file_order and a != DOCS


def test_store_packs_the_whole_budget_without_repeating_a_document(corpus, tokenizer, tmp_path):
    n_train = 120  # 960 tokens of ~2,700 in the post-training documents
    store = build(corpus, tokenizer, tmp_path, n_train)
    post = store.blocks("post_train")
    assert post.shape == (n_train, SEQ) and post.dtype == np.uint16
    assert store.index["splits"]["post_train"]["tokens"] == n_train * SEQ  # the whole budget, no shortfall
    assert store.index["repeats"] == 0

    # every document is whole and in order inside the packed stream, and appears once
    segs = segments(post, tokenizer)
    ids = [int(s[0][1:].split("_")[0]) for s in segs]
    assert len(ids) == len(set(ids)), "a document was packed twice"
    for s, i in zip(segs[:-1], ids):
        assert s == doc_tokens(i)
    assert segs[-1] == doc_tokens(ids[-1])[: len(segs[-1])]  # the last one cut where the budget ends
    assert ids != sorted(ids)  # the stream's shuffled order, not the files'

    # the three splits share no document
    held = {s: {doc_of(t, tokenizer) for t in store.blocks(s).reshape(-1) if t != 0} for s in ("eval", "calibration")}
    assert not (held["eval"] & held["calibration"]) and not (set(ids) & (held["eval"] | held["calibration"]))
    assert store.blocks("eval").shape == (6, SEQ) and store.blocks("calibration").shape == (6, SEQ)

    # seeded: the same seed gives the same store, another seed another order
    again = build(corpus, tokenizer, tmp_path / "again", n_train)
    other = build(corpus, tokenizer, tmp_path / "other", n_train, seed=1)
    assert np.array_equal(again.blocks("post_train"), post)
    other_ids = [int(s[0][1:].split("_")[0]) for s in segments(other.blocks("post_train"), tokenizer)]
    assert other_ids[:20] != ids[:20]


def test_duplicate_documents_are_counted_and_packed_once(tokenizer, tmp_path):
    corpus = write_zst_corpus(tmp_path / "dup", DOCS + DOCS[:30], shards=2)
    store = build(corpus, tokenizer, tmp_path / "cache", 200)
    docs = store.index["documents"]
    assert docs["held_out_pass"]["duplicates"] + docs["post_train_pass"]["duplicates"] == 30
    ids = [int(s[0][1:].split("_")[0]) for s in segments(store.blocks("post_train"), tokenizer)]
    assert len(ids) == len(set(ids))


def test_a_budget_beyond_the_corpus_is_an_error_not_a_repeat(corpus, tokenizer, tmp_path):
    # the post-training documents hold ~2,700 tokens (~340 blocks of 8): 1,000 blocks would repeat each ~3x
    with pytest.raises(
        CorpusTooSmallError,
        match=r"ran out after .*post_train: \d+ of 1,000 blocks.*Nothing is "
        r"repeated",
    ):
        build(corpus, tokenizer, tmp_path, 1000)
    left = list((tmp_path / "token_store").iterdir())
    assert not any(p.is_dir() for p in left), left  # no half-written store is left to be reused
    with pytest.raises(CorpusTooSmallError, match=r"eval: \d+ of 500 blocks"):
        build(corpus, tokenizer, tmp_path, 10, n_eval_blocks=500)


def test_store_is_built_once_and_reused(corpus, tokenizer, tmp_path, monkeypatch):
    builds = token_store.BUILDS
    first = build(corpus, tokenizer, tmp_path, 150)
    assert token_store.BUILDS == builds + 1
    stamp = (first.path / "index.json").stat().st_mtime_ns

    def no_tokenizing(*a, **k):
        raise AssertionError("a reused store was tokenized again")

    with monkeypatch.context() as m:
        m.setattr(token_store, "_tokenize", no_tokenizing)
        second = build(corpus, tokenizer, tmp_path, 150)
        smaller = build(corpus, tokenizer, tmp_path, 40)  # a smaller budget reads the first 40 blocks
    assert token_store.BUILDS == builds + 1
    assert (second.path / "index.json").stat().st_mtime_ns == stamp and second.path == first.path
    assert np.array_equal(smaller.train_blocks(40).numpy(), first.blocks("post_train")[:40])

    # a store built for 40 blocks is exactly the first 40 of the longer one (the stream's prefix), and the
    # held-out blocks do not depend on the budget
    fresh = build(corpus, tokenizer, tmp_path / "fresh", 40)
    assert np.array_equal(fresh.blocks("post_train"), first.blocks("post_train")[:40])
    for split in ("eval", "calibration"):
        assert np.array_equal(fresh.blocks(split), first.blocks(split))

    # a larger budget rebuilds it longer, beginning with the same blocks
    longer = build(corpus, tokenizer, tmp_path / "fresh", 150)
    assert token_store.BUILDS == builds + 3
    assert np.array_equal(longer.blocks("post_train"), first.blocks("post_train"))
    longer.verify()

    # another tokenizer, seq_len, seed or corpus is another store
    assert build(corpus, tokenizer, tmp_path, 150, seed=1).path != first.path
    assert token_store.BUILDS == builds + 4


def test_local_formats_stream_the_same_documents(corpus, tmp_path):
    import pandas as pd

    pd.DataFrame({"text": DOCS, "id": range(N_DOCS)}).to_parquet(tmp_path / "c.parquet")
    (tmp_path / "txt").mkdir()
    for i, d in enumerate(DOCS):
        (tmp_path / "txt" / f"{i:04d}.txt").write_text(d)
    (tmp_path / "c.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in DOCS))
    for spec in (corpus, tmp_path / "c.parquet", tmp_path / "txt", tmp_path / "c.jsonl"):
        texts = [r["text"] for r in stream_documents(str(spec), 0, buffer_size=16)]
        assert sorted(texts) == sorted(DOCS), spec
    with pytest.raises(ValueError, match="found"):
        stream_documents(str(tmp_path), 0)  # mixed formats


def test_token_blocks_index_to_int64_and_train_like_a_tensor(tmp_path):
    from prune_fixtures import tiny_model
    from train_fixtures import pattern_data

    from p2law.lab.train import TrainConfig, TrainData, post_train

    data = pattern_data()
    np.save(tmp_path / "t.npy", data.train.numpy().astype(np.uint16))
    blocks = TokenBlocks(np.load(tmp_path / "t.npy", mmap_mode="r"))
    got = blocks[torch.tensor([3, 0, 7])]
    assert type(got) is torch.Tensor and got.dtype == torch.int64
    assert torch.equal(got, data.train[[3, 0, 7]]) and len(blocks) == len(data.train)
    cfg = TrainConfig(total_tokens=32 * 16 * 6, lr=3e-3, batch_size=16, n_checkpoints=2, seed=1)
    mapped = post_train(tiny_model(seed=5), TrainData(train=blocks, eval=data.eval), cfg, progress=False)
    plain = post_train(tiny_model(seed=5), data, cfg, progress=False)
    assert [r["eval_loss"] for r in mapped] == [r["eval_loss"] for r in plain]


def test_prepare_with_train_blocks_reads_the_store(corpus, tokenizer, tmp_path):
    from p2law.lab.data import prepare

    bundle = prepare(str(corpus), SEQ, None, 0, 6, 6, cache_dir=tmp_path, tokenizer=tokenizer, train_blocks=50)
    assert isinstance(bundle.train_data.train, TokenBlocks) and bundle.train_data.train.shape == (50, SEQ)
    assert bundle.pretrain_data is None and bundle.calibration.dtype == torch.int64
    assert bundle.corpus["streamed"] and bundle.corpus["train_tokens_available"] == 50 * SEQ
    with pytest.raises(ValueError, match="own tokenizer"):
        prepare(str(corpus), SEQ, None, 0, 6, 6, cache_dir=tmp_path, train_blocks=50)


# Derived by running p2law.lab.data.prepare on the smoke profile (sha256 over each packed tensor's shape and
# bytes: pretraining, post-training, evaluation and calibration blocks). First pinned at commit cea5686;
# re-pinned at 59b7bc6, where the evaluation and calibration blocks became spread over their whole split
# (pretraining and post-training blocks unchanged: the committed toy bases are still reused by them).
SMOKE_BLOCKS_SHA256 = "2a5f15a4adf0dcb179efcf3a410936b7d82ccffaeec373842765af003bf2c80c"


def test_smoke_profile_blocks_are_unchanged(tmp_path):
    from p2law.lab.data import prepare
    from p2law.lab.profiles import get_profile

    p = get_profile("smoke")
    b = prepare(
        p.corpus,
        p.seq_len,
        p.vocab_size,
        p.seed,
        p.n_eval_blocks,
        p.n_calibration,
        cache_dir=tmp_path,
        post_train_fraction=p.post_train_fraction,
    )
    h = hashlib.sha256()
    for t in (b.pretrain_data.train, b.post_train_data.train, b.post_train_data.eval, b.calibration):
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    assert h.hexdigest() == SMOKE_BLOCKS_SHA256


WORKER = """
import json, os, sys, time
from pathlib import Path
from transformers import AutoTokenizer
from p2law.lab import token_store

corpus, folder, cache, out = sys.argv[1:5]
rank = int(os.environ["RANK"])
if rank == 0:
    time.sleep(3)  # rank 1 reaches the store first: only main-process-first ordering makes rank 0 build
tok = AutoTokenizer.from_pretrained(folder)
kw = dict(n_eval_blocks=6, n_calibration=6, buffer_size=64, eval_fraction=0.1, calibration_fraction=0.1)
store = token_store.token_store(corpus, tok, 8, 0, 100, cache_dir=cache, **kw)
again = token_store.token_store(corpus, tok, 8, 0, 100, cache_dir=cache, **kw)
blocks = store.train_blocks(100)
Path(out, f"rank{rank}.json").write_text(json.dumps({
    "builds": token_store.BUILDS, "path": str(store.path), "again": str(again.path),
    "built_by": store.index["built_by"], "sha": __import__("hashlib").sha256(blocks.numpy().tobytes()).hexdigest(),
    "first": blocks[0].tolist()}))
"""


@pytest.mark.slow
def test_two_ranks_share_one_store_built_by_rank_0(corpus, tokenizer, tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from train_fixtures import run_group  # a timeout kills torchrun's workers too

    folder = tmp_path / "tok"
    tokenizer.save_pretrained(folder)
    (tmp_path / "worker.py").write_text(WORKER)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    torchrun = Path(sys.executable).with_name("torchrun")
    done = run_group(
        [
            str(torchrun),
            "--nproc_per_node",
            "2",
            "--master_port",
            "29541",
            str(tmp_path / "worker.py"),
            str(corpus),
            str(folder),
            str(tmp_path / "cache"),
            str(out),
        ],
        env=env,
        timeout=600,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    r0, r1 = (json.loads((out / f"rank{k}.json").read_text()) for k in (0, 1))
    assert r0["builds"] == 1 and r1["builds"] == 0  # rank 0 built it; rank 1 only opened it, twice
    assert r0["built_by"]["rank"] == 0
    assert r0["path"] == r1["path"] == r0["again"] == r1["again"]
    assert r0["sha"] == r1["sha"] and r0["first"] == r1["first"]
    assert len([p for p in (tmp_path / "cache" / "token_store").iterdir() if p.is_dir()]) == 1
