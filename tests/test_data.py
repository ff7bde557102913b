import json

import pytest
import torch

from p2law import data


def test_stdlib_corpus_is_deterministic_and_fingerprinted():
    a, b = data.load_corpus("stdlib:30"), data.load_corpus("stdlib:30")
    assert a.fingerprint == b.fingerprint and a.n_bytes == sum(len(d.encode()) for d in a.documents)
    assert len(a.documents) <= 30 and a.source.startswith("python-stdlib")


def test_splits_are_disjoint_seeded_and_cover_everything():
    docs = [f"doc {i}" for i in range(100)]
    s = data.split_documents(docs, seed=1)
    assert sorted(s.calibration + s.eval + s.train) == sorted(docs)
    assert not set(s.calibration) & set(s.eval) and not set(s.eval) & set(s.train)
    assert data.split_documents(docs, seed=1) == s and data.split_documents(docs, seed=2) != s


def test_local_jsonl_and_text_corpora(tmp_path):
    rows = [{"text": f"def f{i}(x):\n    return x + {i}\n"} for i in range(20)]
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    c = data.load_corpus(str(tmp_path / "c.jsonl"))
    assert c.documents == [r["text"] for r in rows]
    (tmp_path / "txt").mkdir()
    for i in range(3):
        (tmp_path / "txt" / f"{i}.txt").write_text(f"line one {i}\nline two\n")
    assert data.load_corpus(str(tmp_path / "txt")).documents[1] == "line one 1\nline two\n"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_corpus(str(tmp_path / "nope.jsonl"))
    (tmp_path / "bad.jsonl").write_text(json.dumps({"content": "x"}))
    with pytest.raises(ValueError, match="no 'text' column"):
        data.load_corpus(str(tmp_path / "bad.jsonl"))


def test_tokenizer_packing_and_calibration(tmp_path):
    docs = data.load_corpus("stdlib:40").documents
    tok = data.train_tokenizer(docs, 300, tmp_path)
    assert len(tok) == 300 and tok.decode(tok("import os")["input_ids"]) == "import os"
    again = data.train_tokenizer(docs, 300, tmp_path)  # from the cache
    assert again("x = 1")["input_ids"] == tok("x = 1")["input_ids"]
    blocks = data.pack(docs, tok, 32, max_blocks=50)
    assert blocks.shape == (50, 32) and blocks.dtype == torch.long
    short = data.pack(["x = 1\n", "y = 2\n"] * 20, tok, 16)
    assert (short == tok.eos_token_id).sum() >= 30  # documents are separated by end-of-text
    cal = data.calibration_batches(blocks, 20, 8, seed=0)
    assert [b.shape[0] for b in cal] == [8, 8, 4]
    with pytest.raises(ValueError, match="only 50 blocks"):
        data.calibration_batches(blocks, 60, 8)
