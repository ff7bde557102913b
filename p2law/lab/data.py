"""Corpora, tokenizers, splits and packing.

A corpus is named by a spec string:

* ``"stdlib"``: the Python standard library's own ``.py`` sources (sorted paths, so the same Python
  gives the same corpus everywhere). It needs no download and resembles SlimPajama's code slice.
  ``"stdlib:N"`` keeps the first N files' worth (for quick runs). The size and a SHA-256 fingerprint
  are recorded with every result.
* a local path: a ``.txt`` file or folder of them, ``.jsonl``/``.json`` or ``.parquet`` files with a
  ``text`` column, read through ``datasets``' own ``text``/``json``/``parquet`` builders.
* ``"python-docs"``: the Python documentation's English reStructuredText sources as Debian's
  ``python3-doc`` installs them (``/usr/share/doc/python3*/html/_sources``, ~500 files, ~11 MB of
  prose); ``python_docs_folder`` finds them. Prose for real models, whose own data was mostly prose.
* ``"hub:<id>"``, e.g. ``"hub:cerebras/SlimPajama-627B"``: streamed from the Hugging Face hub (needs
  the network; the paper's setting; never used in tests).

Documents are split (seeded, disjoint, at document level) into four sets that share no document:
pretraining (toy bases are trained on it), post-training (pruned models and the ρ = 0 control recover on
it), calibration (the pruners' inputs) and evaluation (every loss in the checkpoint table). Each set is
tokenized and packed on its own into fixed-length blocks with an end-of-text token between documents, so
no block mixes two sets either. Toy models get a byte-level BPE tokenizer trained on the pretraining
documents with ``tokenizers``. A loaded model (the paper profile) was pretrained elsewhere: its own
pretraining split is simply unused, and the other three stay disjoint.
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
        return {
            "source": self.source,
            "n_documents": len(self.documents),
            "n_bytes": self.n_bytes,
            "sha256": self.fingerprint,
        }


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
    files = sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts and "dist-packages" not in p.parts)
    if max_files is not None:
        files = files[:max_files]
    docs = []
    for p in files:
        text = p.read_bytes().decode("utf-8", errors="replace")
        if text.strip():
            docs.append(text)
    return docs


PYTHON_DOCS = "python-docs"
PYTHON_DOCS_GLOB = "/usr/share/doc/python3*/html/_sources"


def python_docs_folder(pattern: str = PYTHON_DOCS_GLOB) -> Path:
    """The newest installed folder of the Python documentation's ``.txt`` sources (``python3-doc``).

    Debian installs the same files under several names (python3, python3.11, ...); the real folder with
    the highest version wins, so two machines with the same package read the same documents."""
    import glob

    found = sorted({Path(p).resolve() for p in glob.glob(pattern)}, key=lambda p: (len(str(p)), str(p)))
    usable = [p for p in found if any(p.rglob("*.txt")) and not any(p.rglob("*.txt.gz"))]
    if not usable:
        raise FileNotFoundError(
            f"corpus {PYTHON_DOCS!r}: no folder of plain .txt sources matches {pattern}; install Debian's "
            "python3-doc (apt-get install python3-doc) or give the folder's path as the corpus"
        )
    return usable[-1]


def resolve_spec(spec: str) -> str:
    """A named local corpus (``python-docs``) as its folder; any other spec unchanged."""
    return str(python_docs_folder()) if spec == PYTHON_DOCS else spec


COMPRESSIONS = (".zst", ".gz")  # read through datasets' own decompression (zstandard for .zst)


def _format_suffix(name: str) -> str:
    """``.jsonl`` for ``x.jsonl``, ``x.jsonl.zst`` (SlimPajama's files) and ``x.jsonl.gz``."""
    suffixes = Path(name).suffixes
    if len(suffixes) >= 2 and suffixes[-1] in COMPRESSIONS:
        return suffixes[-2]
    return suffixes[-1] if suffixes else ""


def _local_documents(path: Path, text_column: str) -> list[str]:
    import datasets

    files = sorted(str(p) for p in path.rglob("*") if p.is_file()) if path.is_dir() else [str(path)]
    suffixes = {_format_suffix(f) for f in files}
    if any(f.endswith(".zst") for f in files):
        try:
            import zstandard  # noqa: F401
        except ImportError:
            raise ValueError(
                f"{path}: reading .zst files needs the zstandard package (pip install zstandard)"
            ) from None
    if suffixes <= {".txt", ".text", ".md"} and not any(f.endswith(COMPRESSIONS) for f in files):
        # One document per file: the text builder splits lines, so read whole files in order.
        return [Path(f).read_text(encoding="utf-8", errors="replace") for f in files]
    builder = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}.get(next(iter(suffixes)), None)
    if builder is None or len(suffixes) != 1:
        raise ValueError(
            f"{path}: expected .txt, .jsonl/.json (optionally .zst or .gz compressed) or .parquet "
            f"files, found {sorted(suffixes)}"
        )
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
    spec = resolve_spec(spec)
    if spec == "stdlib" or spec.startswith("stdlib:"):
        limit = int(spec.split(":", 1)[1]) if ":" in spec else None
        docs, source = _stdlib_documents(limit), f"python-stdlib-{sysconfig.get_python_version()}"
    elif spec.startswith("hub:"):
        docs, source = _hub_documents(spec[4:], max_documents, text_column), spec
    else:
        path = Path(spec)
        if not path.exists():
            raise FileNotFoundError(
                f"corpus path {path} does not exist (specs: 'stdlib', 'stdlib:N', 'python-docs', "
                "a local .txt/.jsonl/.parquet path, or 'hub:<dataset id>')"
            )
        docs, source = _local_documents(path, text_column), str(path.resolve())
    if not docs:
        raise ValueError(f"corpus {spec!r} has no documents")
    # Exact duplicates (the stdlib has a few identical files) would otherwise land in two splits, and a
    # document "held out" from pretraining would still have been trained on.
    docs = list(dict.fromkeys(docs))
    n_bytes, fp = _fingerprint(docs)
    return Corpus(docs, source, n_bytes, fp)


SPLIT_NAMES = ("pretrain", "post_train", "calibration", "eval")


@dataclass
class Splits:
    """Four document sets with no document in common; ``indices`` are positions in the corpus."""

    pretrain: list[str]
    post_train: list[str]
    calibration: list[str]
    eval: list[str]
    indices: dict = field(default_factory=dict, compare=False)

    def info(self) -> dict:
        """Documents, bytes and a fingerprint per split (recorded in the manifest)."""
        out = {}
        for name in SPLIT_NAMES:
            docs = getattr(self, name)
            n_bytes, fp = _fingerprint(docs)
            out[name] = {"n_documents": len(docs), "n_bytes": n_bytes, "sha256": fp}
        return out


def split_documents(
    docs: list[str],
    seed: int,
    calibration_fraction: float = 0.04,
    eval_fraction: float = 0.04,
    post_train_fraction: float = 0.2,
) -> Splits:
    """Seeded, disjoint document-level split into pretraining, post-training, calibration and evaluation."""
    if len(docs) < 4:
        raise ValueError(f"need at least 4 documents to split four ways, got {len(docs)}")
    if (
        min(calibration_fraction, eval_fraction, post_train_fraction) <= 0
        or calibration_fraction + eval_fraction + post_train_fraction >= 1
    ):
        raise ValueError("split fractions must be positive and leave documents for pretraining")
    order = torch.randperm(len(docs), generator=torch.Generator().manual_seed(seed)).tolist()
    sizes = {"calibration": calibration_fraction, "eval": eval_fraction, "post_train": post_train_fraction}
    indices, start = {}, 0
    for name, frac in sizes.items():
        n = max(1, int(frac * len(docs)))
        indices[name] = order[start : start + n]
        start += n
    indices["pretrain"] = order[start:]
    pick = lambda name: [docs[i] for i in indices[name]]  # noqa: E731
    return Splits(pick("pretrain"), pick("post_train"), pick("calibration"), pick("eval"), indices)


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
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=[EOT],
            show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
        tok.train_from_iterator(docs, trainer=trainer)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # per process: ranks may race here
            tok.save(str(tmp))
            os.replace(tmp, path)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOT)


def pack(docs: list[str], tokenizer, seq_len: int, max_blocks: int | None = None) -> torch.Tensor:
    """Tokenize, join with end-of-text, and cut into [n_blocks, seq_len] (the ragged tail is dropped)."""
    return _pack_with_documents(docs, tokenizer, seq_len, max_blocks)[0]


def _pack_with_documents(
    docs: list[str], tokenizer, seq_len: int, max_blocks: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``pack``, and for each block the index of the document its first token comes from."""
    eot = tokenizer.eos_token_id
    ids: list[int] = []
    doc_starts: list[int] = []  # token offset where each document begins
    need = None if max_blocks is None else max_blocks * seq_len
    for d in docs:
        doc_starts.append(len(ids))
        ids.extend(tokenizer(d, add_special_tokens=False)["input_ids"])
        ids.append(eot)
        if need is not None and len(ids) >= need:
            break
    n = len(ids) // seq_len if need is None else min(len(ids) // seq_len, max_blocks)
    if n == 0:
        raise ValueError(f"too little text for one block of {seq_len} tokens")
    block_starts = torch.arange(n) * seq_len
    doc_of_block = torch.searchsorted(torch.tensor(doc_starts), block_starts, right=True) - 1
    return torch.tensor(ids[: n * seq_len], dtype=torch.long).reshape(n, seq_len), doc_of_block


def spread_blocks(docs: list[str], tokenizer, seq_len: int, n: int, seen: set[bytes]) -> tuple[torch.Tensor, dict]:
    """``n`` blocks evenly spaced over the whole of ``docs`` (blocks in ``seen`` left out), and a record.

    Evaluation and calibration sets are small: taking the first ``n`` blocks would take them from the first
    document or two of the split (the toy's 32 evaluation blocks all came from one file), and a loss on
    one document moves with whatever that document resembles. Spacing them over the split measures the
    split's whole text."""
    blocks, doc_of_block = _pack_with_documents(docs, tokenizer, seq_len)
    fresh = _fresh_indices(blocks, seen)
    chosen = fresh[torch.linspace(0, len(fresh) - 1, n).round().long()] if len(fresh) >= n else fresh
    record = {
        "blocks_dropped_as_seen": len(blocks) - len(fresh),
        "documents_in_blocks": len(set(doc_of_block[chosen].tolist())),
    }
    return blocks[chosen], record


def calibration_batches(blocks: torch.Tensor, n_samples: int, batch_size: int, seed: int = 0) -> list[torch.Tensor]:
    """``n_samples`` seeded blocks as a list of [batch, seq_len] tensors (the pruners' format)."""
    if n_samples > len(blocks):
        raise ValueError(f"asked for {n_samples} calibration samples, only {len(blocks)} blocks available")
    idx = torch.randperm(len(blocks), generator=torch.Generator().manual_seed(seed))[:n_samples]
    chosen = blocks[idx]
    return [chosen[i : i + batch_size] for i in range(0, n_samples, batch_size)]


@dataclass
class DataBundle:
    tokenizer: object
    calibration: torch.Tensor  # [n, seq_len] blocks from the calibration documents
    post_train_data: TrainData  # post-training blocks + the evaluation blocks
    pretrain_data: TrainData | None = None  # pretraining blocks + the same evaluation blocks (toy bases)
    corpus: dict = field(default_factory=dict)

    @property
    def train_data(self) -> TrainData:
        """The data pruned models are post-trained and evaluated on."""
        return self.post_train_data


def _block_keys(blocks: torch.Tensor) -> set[bytes]:
    return {r.numpy().tobytes() for r in blocks}


def _fresh_indices(blocks: torch.Tensor, seen: set[bytes]) -> torch.Tensor:
    """Positions of the blocks whose exact tokens are not in ``seen``."""
    return torch.tensor([i for i, r in enumerate(blocks) if r.numpy().tobytes() not in seen], dtype=torch.long)


def _drop_seen(blocks: torch.Tensor, seen: set[bytes]) -> tuple[torch.Tensor, int]:
    """Blocks whose exact tokens are not in ``seen``, and how many were dropped."""
    fresh = _fresh_indices(blocks, seen)
    return blocks[fresh], len(blocks) - len(fresh)


def _blocks_info(blocks: torch.Tensor) -> dict:
    """Blocks, tokens and a fingerprint of a packed split (what a run actually read)."""
    return {
        "blocks": int(blocks.shape[0]),
        "tokens": int(blocks.numel()),
        "sha256": hashlib.sha256(blocks.numpy().tobytes()).hexdigest(),
    }


def prepare(
    spec: str,
    seq_len: int,
    vocab_size: int | None,
    seed: int,
    n_eval_blocks: int,
    n_calibration: int,
    max_train_blocks: int | None = None,
    cache_dir=None,
    tokenizer=None,
    post_train_fraction: float = 0.2,
    train_blocks: int | None = None,
) -> DataBundle:
    """Corpus -> four disjoint splits -> tokenizer (trained on pretraining text when none is given) -> blocks.

    ``train_blocks`` (a loaded model's tokenizer given; the paper profile) instead streams the corpus into
    the shared token store of ``p2law.lab.token_store`` with exactly that many post-training blocks."""
    if train_blocks is not None:
        from .token_store import prepare_streamed

        return prepare_streamed(spec, seq_len, tokenizer, seed, n_eval_blocks, n_calibration, train_blocks, cache_dir)
    corpus = load_corpus(spec)
    splits = split_documents(corpus.documents, seed, post_train_fraction=post_train_fraction)
    trained_here = tokenizer is None
    if trained_here:
        if vocab_size is None:
            raise ValueError("give a tokenizer or a vocab_size to train one")
        tokenizer = train_tokenizer(splits.pretrain, vocab_size, cache_dir)
    # A loaded model was pretrained elsewhere: its pretraining split is not even tokenized.
    pre = pack(splits.pretrain, tokenizer, seq_len, max_train_blocks) if trained_here else None
    # Different documents can still share a whole block of text (licence headers, copied code): such a
    # block is dropped from every later split, so no block is in two of them.
    seen = _block_keys(pre) if pre is not None else set()
    records = {}
    post, n_dropped = _drop_seen(pack(splits.post_train, tokenizer, seq_len, max_train_blocks), seen)
    records["post_train"] = {"blocks_dropped_as_seen": n_dropped}
    seen |= _block_keys(post)
    ev, records["eval"] = spread_blocks(splits.eval, tokenizer, seq_len, n_eval_blocks, seen)
    if len(ev) < n_eval_blocks:
        raise ValueError(f"evaluation documents give {len(ev)} blocks, {n_eval_blocks} requested")
    seen |= _block_keys(ev)
    cal, records["calibration"] = spread_blocks(splits.calibration, tokenizer, seq_len, n_calibration, seen)
    if len(cal) < n_calibration:
        raise ValueError(f"calibration documents give {len(cal)} blocks, {n_calibration} requested")
    packed = {"post_train": post, "calibration": cal, "eval": ev} | ({"pretrain": pre} if pre is not None else {})
    split_info = splits.info()
    for name, blocks in packed.items():
        split_info[name] |= _blocks_info(blocks) | records.get(name, {"blocks_dropped_as_seen": 0})
    info = corpus.info() | {
        "seq_len": seq_len,
        "vocab_size": len(tokenizer),
        "splits": split_info,
        "train_blocks": len(post),
        "eval_blocks": len(ev),
        "calibration_blocks": len(cal),
        "train_tokens_available": int(post.numel()),
    }
    return DataBundle(
        tokenizer, cal, TrainData(train=post, eval=ev), TrainData(train=pre, eval=ev) if pre is not None else None, info
    )


def write_json_atomic(path, obj) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)
