"""SlimPajama's local files are .jsonl.zst: read like plain jsonl."""

import json

import pytest
import zstandard

from p2law.lab.data import load_corpus

DOCS = [f"document {i}: " + "text " * (i % 7 + 1) for i in range(40)]


def test_jsonl_zst_corpus_reads_the_documents_of_the_plain_jsonl(tmp_path):
    lines = "".join(json.dumps({"text": d, "meta": {"i": i}}) + "\n" for i, d in enumerate(DOCS)).encode()
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "chunk_0.jsonl").write_bytes(lines)
    (tmp_path / "zst").mkdir()
    (tmp_path / "zst" / "chunk_0.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines))
    plain, packed = load_corpus(str(tmp_path / "plain")), load_corpus(str(tmp_path / "zst"))
    assert packed.documents == plain.documents == DOCS
    assert packed.fingerprint == plain.fingerprint
    assert load_corpus(str(tmp_path / "zst" / "chunk_0.jsonl.zst")).documents == DOCS  # one file too


def test_mixed_formats_are_named(tmp_path):
    (tmp_path / "a.jsonl").write_text(json.dumps({"text": "x"}) + "\n")
    (tmp_path / "b.parquet.zst").write_bytes(zstandard.ZstdCompressor().compress(b"x"))
    with pytest.raises(ValueError, match=r"optionally \.zst or \.gz compressed.*found \['\.jsonl', '\.parquet'\]"):
        load_corpus(str(tmp_path))


def test_run_corpus_option_replaces_the_profiles_corpus(tmp_path, monkeypatch, capsys):
    from p2law.cli import main
    from p2law.lab import experiment

    (tmp_path / "chunk_0.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(b'{"text": "x"}\n'))
    seen = []
    monkeypatch.setattr(experiment, "run", lambda profile, *a, **k: seen.append(profile))
    assert main(["run", "--profile", "paper", "--dry-run", "--corpus", str(tmp_path)]) == 0
    assert seen[-1].corpus == str(tmp_path.resolve()) and seen[-1].name == "paper"
    assert main(["run", "--profile", "paper", "--dry-run", "--corpus", "hub:someone/slimpajama-mirror"]) == 0
    assert seen[-1].corpus == "hub:someone/slimpajama-mirror"
    assert main(["run", "--profile", "paper", "--dry-run"]) == 0
    assert seen[-1].corpus == "hub:cerebras/SlimPajama-627B"  # the profile's own
    assert main(["run", "--profile", "paper", "--dry-run", "--corpus", str(tmp_path / "missing")]) == 2
    assert "--corpus" in capsys.readouterr().err and len(seen) == 3
