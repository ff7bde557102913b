import json
import re

import pytest
import torch

from p2law.lab import data


def test_stdlib_corpus_is_deterministic_and_fingerprinted():
    a, b = data.load_corpus("stdlib:30"), data.load_corpus("stdlib:30")
    assert a.fingerprint == b.fingerprint and a.n_bytes == sum(len(d.encode()) for d in a.documents)
    assert len(a.documents) <= 30 and a.source.startswith("python-stdlib")


def test_splits_are_disjoint_seeded_and_cover_everything():
    docs = [f"doc {i}" for i in range(100)]
    s = data.split_documents(docs, seed=1)
    parts = [s.pretrain, s.post_train, s.calibration, s.eval]
    assert sorted(sum(parts, [])) == sorted(docs)
    for i, a in enumerate(parts):
        for b in parts[i + 1 :]:
            assert not set(a) & set(b)
    assert len(s.post_train) == 20 and len(s.calibration) == len(s.eval) == 4
    assert data.split_documents(docs, seed=1) == s and data.split_documents(docs, seed=2) != s
    with pytest.raises(ValueError, match="leave documents for pretraining"):
        data.split_documents(docs, seed=1, post_train_fraction=0.95)


def test_duplicate_documents_are_dropped_so_splits_share_no_text(tmp_path):
    for i, text in enumerate(["a = 1\n", "b = 2\n", "a = 1\n", "c = 3\n"]):
        (tmp_path / f"{i}.txt").write_text(text)
    assert data.load_corpus(str(tmp_path)).documents == ["a = 1\n", "b = 2\n", "c = 3\n"]


def test_pretraining_and_post_training_streams_share_no_document_or_block(tmp_path):
    bundle = data.prepare("stdlib:150", 32, 400, seed=0, n_eval_blocks=16, n_calibration=16, cache_dir=tmp_path)
    pre, post = bundle.pretrain_data.train, bundle.post_train_data.train
    ev, cal = bundle.post_train_data.eval, bundle.calibration
    assert bundle.pretrain_data.eval is ev  # one evaluation set for bases and their pruned models
    rows = lambda t: {bytes(r.numpy().tobytes()) for r in t}  # noqa: E731
    assert not rows(pre) & rows(post) and not rows(pre) & rows(ev) and not rows(post) & rows(ev)
    assert not rows(cal) & (rows(pre) | rows(post) | rows(ev))
    docs = data.load_corpus("stdlib:150").documents
    splits = data.split_documents(docs, 0)
    names = ("pretrain", "post_train", "calibration", "eval")
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not set(splits.indices[a]) & set(splits.indices[b]), (a, b)
    info = bundle.corpus["splits"]
    assert set(info) == set(names)
    assert info["pretrain"]["tokens"] == pre.numel() and info["post_train"]["tokens"] == post.numel()
    assert all(v["n_documents"] > 0 and len(v["sha256"]) == 64 for v in info.values())
    # The same holds for a loaded model's data path: no pretraining split is packed, the other three
    # stay disjoint.
    own = data.prepare("stdlib:150", 32, None, seed=0, n_eval_blocks=16, n_calibration=16, tokenizer=bundle.tokenizer)
    assert (
        own.pretrain_data is None
        and "pretrain" not in own.corpus["splits"]
        or "tokens" not in own.corpus["splits"]["pretrain"]
    )
    o_post, o_ev, o_cal = own.post_train_data.train, own.post_train_data.eval, own.calibration
    assert not rows(o_post) & rows(o_ev) and not rows(o_cal) & (rows(o_post) | rows(o_ev))
    assert bundle.corpus["splits"]["post_train"]["blocks_dropped_as_seen"] >= 0


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


def test_python_docs_corpus_names_the_installed_folder_or_says_how_to_install_it(tmp_path):
    from p2law.lab.data import python_docs_folder, resolve_spec

    pattern = str(tmp_path / "python3*" / "html" / "_sources")
    with pytest.raises(FileNotFoundError, match="apt-get install python3-doc"):
        python_docs_folder(pattern)
    for version in ("python3.11", "python3.12"):
        (tmp_path / version / "html" / "_sources" / "library").mkdir(parents=True)
        (tmp_path / version / "html" / "_sources" / "library" / "os.rst.txt").write_text(f"os in {version}")
    (tmp_path / "python3").symlink_to(tmp_path / "python3.12")  # Debian's unversioned name for the same files
    assert python_docs_folder(pattern) == (tmp_path / "python3.12" / "html" / "_sources").resolve()
    (tmp_path / "python3.12" / "html" / "_sources" / "library" / "sys.rst.txt.gz").write_bytes(b"")
    assert python_docs_folder(pattern) == (tmp_path / "python3.11" / "html" / "_sources").resolve()  # not readable
    assert resolve_spec("stdlib:3") == "stdlib:3"  # other specs pass through


def test_evaluation_and_calibration_blocks_are_spread_over_their_whole_split(tmp_path):
    """Each document is one repeated marker word, long enough for many blocks: the evaluation and
    calibration sets take their blocks from every document of their split, not from the first one."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(100):
        (corpus / f"{i:03d}.txt").write_text(f"w{i}x " * 400)
    bundle = data.prepare(str(corpus), 32, 300, seed=0, n_eval_blocks=8, n_calibration=8, cache_dir=tmp_path)
    splits = data.split_documents(data.load_corpus(str(corpus)).documents, 0)
    decode = bundle.tokenizer.decode
    for name, blocks in (("eval", bundle.post_train_data.eval), ("calibration", bundle.calibration)):
        markers = [{int(m) for m in re.findall(r"w(\d+)x", decode(b.tolist()))} for b in blocks]
        docs_seen = set().union(*markers)
        expected = {int(re.search(r"w(\d+)x", d).group(1)) for d in getattr(splits, name)}
        assert docs_seen == expected, name  # all 4 documents of the split, none from elsewhere
        assert bundle.corpus["splits"][name]["documents_in_blocks"] == len(expected) == 4
    with pytest.raises(ValueError, match="evaluation documents give .* blocks, 10000 requested"):
        data.prepare(str(corpus), 32, 300, seed=0, n_eval_blocks=10000, n_calibration=8, cache_dir=tmp_path)


def test_pretraining_curves_on_another_evaluation_set_are_named():
    from p2law.analysis.sweep_checks import curves_on_other_eval

    corpus = {"splits": {"eval": {"sha256": "new"}}}
    pretrain = {
        "a": {"curve": [(1, 2.0)], "curve_eval_sha256": "new"},  # measured on the sweep's blocks
        "b": {"curve": [(1, 2.0)], "curve_eval_sha256": "old"},  # the set changed after it was trained
        "c": {"curve": [(1, 2.0)]},  # recorded before the fingerprint existed
        "d": {},  # no curve to caveat
    }
    assert curves_on_other_eval(pretrain, corpus) == ["b", "c"]
