"""Corpora, tokenizers, splits and packing.

A corpus is named by a spec string:

* ``"stdlib"``: the Python standard library's own ``.py`` sources (sorted paths, so the same Python
  gives the same corpus everywhere). It needs no download and resembles SlimPajama's code slice.
  ``"stdlib:N"`` keeps the first N files' worth (for quick runs). The size and a SHA-256 fingerprint
  are recorded with every result.
* a local path: a ``.txt`` file or folder of them, ``.jsonl``/``.json`` or ``.parquet`` files with a
  ``text`` column, read through ``datasets``' own ``text``/``json``/``parquet`` builders.
* ``"hub:<id>"``, e.g. ``"hub:cerebras/SlimPajama-627B"``: streamed from the Hugging Face hub (needs
  the network; the paper's setting; never used in tests).

Documents are split (seeded, disjoint, at document level) into calibration, evaluation and training
sets, then tokenized and packed into fixed-length blocks with an end-of-text token between documents.
Toy models get a byte-level BPE tokenizer trained on the training documents with ``tokenizers``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .train import TrainData

EOT = "<|endoftext|>"
SLIMPAJAMA = "cerebras/SlimPajama-627B"


@dataclass
class Corpus:
    documents: list[str]
    source: str
    n_bytes: int
    fingerprint: str  # sha256 over the documents in order

    def info(self) -> dict:
        return {"source": self.source, "n_documents": len(self.documents), "n_bytes": self.n_bytes,
                "sha256": self.fingerprint}


def _fingerprint(docs: list[str]) -> tuple[int, str]:
    h = hashlib.sha256()
    n = 0
    for d in docs:
        b = d.encode("utf-8", errors="replace")
        n += len(b)
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return n, h.hexdigest()


def _stdlib_documents(max_files: int | None) -> list[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py")
                   if "site-packages" not in p.parts and "dist-packages" not in p.parts)
    if max_files is not None:
        files = files[:max_files]
    docs = []
    for p in files:
        text = p.read_bytes().decode("utf-8", errors="replace")
        if text.strip():
            docs.append(text)
    return docs


def _local_documents(path: Path, text_column: str) -> list[str]:
    import datasets

    files = sorted(str(p) for p in path.rglob("*") if p.is_file()) if path.is_dir() else [str(path)]
    suffixes = {Path(f).suffix for f in files}
    if suffixes <= {".txt", ".text", ".md"}:
        # One document per file: the text builder splits lines, so read whole files in order.
        return [Path(f).read_text(encoding="utf-8", errors="replace") for f in files]
    builder = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}.get(next(iter(suffixes)), None)
    if builder is None or len(suffixes) != 1:
        raise ValueError(f"{path}: expected .txt, .jsonl/.json or .parquet files, found {sorted(suffixes)}")
    ds = datasets.load_dataset(builder, data_files=files, split="train")
    if text_column not in ds.column_names:
        raise ValueError(f"{path}: no {text_column!r} column (columns: {ds.column_names})")
    return [t for t in ds[text_column] if t]


def _hub_documents(hub_id: str, max_documents: int, text_column: str) -> list[str]:
    import datasets

    stream = datasets.load_dataset(hub_id, split="train", streaming=True)
    docs = []
    for row in stream:
        docs.append(row[text_column])
        if len(docs) >= max_documents:
            break
    return docs


def load_corpus(spec: str, max_documents: int = 200_000, text_column: str = "text") -> Corpus:
    """Load the documents a spec names (see the module docstring)."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"corpus spec must be a non-empty string, got {spec!r}")
    if spec == "stdlib" or spec.startswith("stdlib:"):
        limit = int(spec.split(":", 1)[1]) if ":" in spec else None
        docs, source = _stdlib_documents(limit), f"python-stdlib-{sysconfig.get_python_version()}"
    elif spec.startswith("hub:"):
        docs, source = _hub_documents(spec[4:], max_documents, text_column), spec
    else:
        path = Path(spec)
        if not path.exists():
            raise FileNotFoundError(f"corpus path {path} does not exist (specs: 'stdlib', 'stdlib:N', "
                                    "a local .txt/.jsonl/.parquet path, or 'hub:<dataset id>')")
        docs, source = _local_documents(path, text_column), str(path.resolve())
    if not docs:
        raise ValueError(f"corpus {spec!r} has no documents")
    n_bytes, fp = _fingerprint(docs)
    return Corpus(docs, source, n_bytes, fp)


@dataclass
class Splits:
    calibration: list[str]
    eval: list[str]
    train: list[str]


def split_documents(docs: list[str], seed: int, calibration_fraction: float = 0.05,
                    eval_fraction: float = 0.05) -> Splits:
    """Seeded, disjoint document-level split into calibration, evaluation and training documents."""
    if len(docs) < 3:
        raise ValueError(f"need at least 3 documents to split, got {len(docs)}")
    order = torch.randperm(len(docs), generator=torch.Generator().manual_seed(seed)).tolist()
    n_cal = max(1, int(calibration_fraction * len(docs)))
    n_eval = max(1, int(eval_fraction * len(docs)))
    pick = lambda idx: [docs[i] for i in idx]  # noqa: E731
    return Splits(pick(order[:n_cal]), pick(order[n_cal:n_cal + n_eval]), pick(order[n_cal + n_eval:]))


def train_tokenizer(docs: list[str], vocab_size: int, cache_dir: Path | None = None):
    """A byte-level BPE tokenizer (``tokenizers``), wrapped for ``transformers``; cached by content."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    _, fp = _fingerprint(docs)
    path = Path(cache_dir) / f"tokenizer-{vocab_size}-{fp[:16]}.json" if cache_dir else None
    if path is not None and path.exists():
        tok = Tokenizer.from_file(str(path))
    else:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOT], show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(docs, trainer=trainer)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # per process: ranks may race here
            tok.save(str(tmp))
            os.replace(tmp, path)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOT)


def pack(docs: list[str], tokenizer, seq_len: int, max_blocks: int | None = None) -> torch.Tensor:
    """Tokenize, join with end-of-text, and cut into [n_blocks, seq_len] (the ragged tail is dropped)."""
    eot = tokenizer.eos_token_id
    ids: list[int] = []
    need = None if max_blocks is None else max_blocks * seq_len
    for d in docs:
        ids.extend(tokenizer(d, add_special_tokens=False)["input_ids"])
        ids.append(eot)
        if need is not None and len(ids) >= need:
            break
    n = len(ids) // seq_len if need is None else min(len(ids) // seq_len, max_blocks)
    if n == 0:
        raise ValueError(f"too little text for one block of {seq_len} tokens")
    return torch.tensor(ids[: n * seq_len], dtype=torch.long).reshape(n, seq_len)


def calibration_batches(blocks: torch.Tensor, n_samples: int, batch_size: int, seed: int = 0) -> list[torch.Tensor]:
    """``n_samples`` seeded blocks as a list of [batch, seq_len] tensors (the pruners' format)."""
    if n_samples > len(blocks):
        raise ValueError(f"asked for {n_samples} calibration samples, only {len(blocks)} blocks available")
    idx = torch.randperm(len(blocks), generator=torch.Generator().manual_seed(seed))[:n_samples]
    chosen = blocks[idx]
    return [chosen[i:i + batch_size] for i in range(0, n_samples, batch_size)]


@dataclass
class DataBundle:
    tokenizer: object
    calibration: torch.Tensor  # [n, seq_len] blocks from the calibration documents
    train_data: TrainData
    corpus: dict = field(default_factory=dict)


def prepare(spec: str, seq_len: int, vocab_size: int | None, seed: int, n_eval_blocks: int,
            n_calibration: int, max_train_blocks: int | None = None, cache_dir=None, tokenizer=None) -> DataBundle:
    """Corpus -> splits -> tokenizer (trained when none is given) -> packed blocks."""
    corpus = load_corpus(spec)
    splits = split_documents(corpus.documents, seed)
    if tokenizer is None:
        if vocab_size is None:
            raise ValueError("give a tokenizer or a vocab_size to train one")
        tokenizer = train_tokenizer(splits.train, vocab_size, cache_dir)
    cal = pack(splits.calibration, tokenizer, seq_len, n_calibration)
    if len(cal) < n_calibration:
        raise ValueError(f"calibration documents give {len(cal)} blocks, {n_calibration} requested")
    ev = pack(splits.eval, tokenizer, seq_len, n_eval_blocks)
    tr = pack(splits.train, tokenizer, seq_len, max_train_blocks)
    info = corpus.info() | {"seq_len": seq_len, "vocab_size": len(tokenizer), "train_blocks": len(tr),
                            "eval_blocks": len(ev), "calibration_blocks": len(cal),
                            "train_tokens_available": int(tr.numel())}
    return DataBundle(tokenizer, cal, TrainData(train=tr, eval=ev), info)


def write_json_atomic(path, obj) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)
