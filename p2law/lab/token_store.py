"""The paper profile's data: a corpus streamed once, shuffled, and packed into a memory-mapped token store.

``p2law.lab.data.prepare`` reads a whole corpus into memory, which suits the CPU profiles (their splits and
blocks must stay exactly as they are) but not SlimPajama: the paper post-trains on 0.5B-1B tokens per
model. Here instead

* the corpus (``"hub:<id>"``, or a local copy: ``.jsonl``/``.json`` optionally ``.zst``/``.gz``
  compressed, ``.parquet``, ``.txt`` one document per file, a file or a folder of them) is **streamed**
  through ``datasets`` (``streaming=True``) with its seeded ``IterableDataset.shuffle(seed, buffer_size)``
  (shard order and a buffer of documents);
* each document goes to one split, post-training, evaluation or calibration, by a seeded hash of its text
  (disjoint, and the same document always lands in the same split whatever the stream's order); exact
  duplicate documents and any block of tokens already in the store are skipped and counted. The stream
  is read twice: first for the evaluation and calibration blocks (a few million tokens), then for the
  post-training blocks, so the held-out sets never depend on the budget;
* documents are tokenized in batches with the model's tokenizer, joined with its end-of-text token and cut
  into blocks of ``seq_len`` tokens, each split on its own (no block mixes two splits), until the
  post-training split holds the **whole token budget** (``n_train_blocks``) and the other two their
  blocks. A corpus that runs out first is a ``CorpusTooSmallError`` naming the shortfall: nothing is ever
  repeated, silently or otherwise;
* the blocks are written once to ``<cache>/token_store/<fingerprint>/`` as ``.npy`` files of uint16
  tokens (vocabularies up to 65,536) or uint32, beside ``index.json`` (the fingerprint, the settings it
  covers, block and document counts, a SHA-256 per split). Under torchrun / ``accelerate launch`` the main
  process (rank 0) builds it first, as ``PartialState().main_process_first()`` would, but the others wait
  on the filesystem instead of in a collective that could time out (a file lock keeps a second job from
  building it too), and every rank then memory-maps the same files: nothing is rebuilt per rank or on a
  second run.

The fingerprint covers the corpus (hub id, or file names and sizes), the text column, the tokenizer
(its serialised form and end-of-text id), ``seq_len``, the seed, the buffer size, the split fractions and
the evaluation and calibration sizes, but not the post-training budget: a store is built as a stream
prefix, so a store of N blocks holds exactly the first K blocks a build for K < N would write, and a
smaller budget reuses it (``TokenStore.train_blocks(K)``); a larger one rebuilds it bigger.

The trainer draws each step's blocks from a seeded permutation of the blocks it is given
(``train.batch_indices``) and wraps to a new epoch only past the end, so a run handed exactly the
blocks its budget consumes (steps x batch size) reads every block once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data import resolve_spec

STORE_VERSION = 1
DEFAULT_BUFFER_SIZE = 10_000  # documents in the shuffle buffer (SlimPajama: ~10-20M tokens)
SPLITS = ("post_train", "eval", "calibration")
BATCH_DOCUMENTS = 256  # documents per tokenizer call (fast tokenizers parallelise over a batch)
POLL_SECONDS = 2.0  # how often a waiting rank looks for the main process's store
BUILDS = 0  # stores this process has built (a reused store does not count)


class CorpusTooSmallError(ValueError):
    """The stream ended before every split had its blocks; nothing is repeated to make up the difference."""


# ---- the stream -------------------------------------------------------------------------------------------


def _local_files(path: Path) -> list[str]:
    files = (
        sorted(str(p) for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        if path.is_dir()
        else [str(path)]
    )
    if not files:
        raise ValueError(f"{path}: no files")
    return files


def _builder(files: list[str], path: Path) -> tuple[str, dict]:
    from .data import COMPRESSIONS, _format_suffix

    suffixes = {_format_suffix(f) for f in files}
    if any(f.endswith(".zst") for f in files):
        try:
            import zstandard  # noqa: F401
        except ImportError:
            raise ValueError(
                f"{path}: reading .zst files needs the zstandard package (pip install zstandard)"
            ) from None
    known = {
        ".jsonl": ("json", {}),
        ".json": ("json", {}),
        ".parquet": ("parquet", {}),
        ".txt": ("text", {"sample_by": "document"}),
        ".text": ("text", {"sample_by": "document"}),
        ".md": ("text", {"sample_by": "document"}),
    }
    kinds = {known[s][0] if s in known else None for s in suffixes}
    if None in kinds or len(kinds) != 1 or (kinds == {"parquet"} and any(f.endswith(COMPRESSIONS) for f in files)):
        raise ValueError(
            f"{path}: expected .txt (one document per file), .jsonl/.json (optionally .zst or .gz "
            f"compressed) or .parquet files, found {sorted(suffixes)}"
        )
    return known[next(iter(suffixes))]


def stream_documents(spec: str, seed: int, buffer_size: int = DEFAULT_BUFFER_SIZE, text_column: str = "text"):
    """The corpus ``spec`` names as a ``datasets.IterableDataset``, shuffled (shards and a buffer) by ``seed``."""
    import datasets

    if buffer_size < 1:
        raise ValueError(f"buffer_size must be >= 1 (got {buffer_size})")
    spec = resolve_spec(spec)
    if spec.startswith("hub:"):
        ds = datasets.load_dataset(spec[4:], split="train", streaming=True)
    elif spec == "stdlib" or spec.startswith("stdlib:"):
        from .data import load_corpus

        ds = datasets.Dataset.from_dict({text_column: load_corpus(spec).documents}).to_iterable_dataset()
    else:
        path = Path(spec)
        if not path.exists():
            raise FileNotFoundError(
                f"corpus path {path} does not exist (a local .txt/.jsonl[.zst]/.parquet file "
                "or folder, or 'hub:<dataset id>')"
            )
        files = _local_files(path)
        builder, options = _builder(files, path)
        ds = datasets.load_dataset(builder, data_files=files, split="train", streaming=True, **options)
    return ds.shuffle(seed=seed, buffer_size=buffer_size)


def corpus_identity(spec: str, text_column: str = "text") -> dict:
    """What the store's fingerprint knows of the corpus: the hub id, or each local file's name and size."""
    spec = resolve_spec(spec)
    if spec.startswith("hub:"):
        return {"hub": spec[4:], "text_column": text_column}
    if spec == "stdlib" or spec.startswith("stdlib:"):
        from .data import load_corpus

        return {"stdlib": spec, "sha256": load_corpus(spec).fingerprint, "text_column": text_column}
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"corpus path {path} does not exist")
    root = path if path.is_dir() else path.parent
    return {
        "files": [[os.path.relpath(f, root), os.path.getsize(f)] for f in _local_files(path)],
        "text_column": text_column,
    }


def tokenizer_fingerprint(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(f"{text}\x00{tokenizer.eos_token_id}".encode()).hexdigest()


def _tokenize(tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids of a batch of documents, no special tokens (tests watch this to see a store reused)."""
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


# ---- the store --------------------------------------------------------------------------------------------


class TokenBlocks(torch.Tensor):
    """[n_blocks, seq_len] tokens kept in the store's compact dtype (a read-only memory map); indexing
    returns ordinary int64 blocks, which is what embeddings and the loss take. ``TrainData.train`` accepts
    it as it is, and ``post_train`` then reads from the map only the blocks of each step."""

    @staticmethod
    def __new__(cls, blocks: np.ndarray):
        with warnings.catch_warnings():  # the map is read-only and nothing writes to it
            warnings.simplefilter("ignore", UserWarning)
            base = torch.from_numpy(blocks)
        return torch.Tensor._make_subclass(cls, base)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        with torch._C.DisableTorchFunctionSubclass():
            out = func(*args, **(kwargs or {}))
            if func is torch.Tensor.__getitem__ and isinstance(out, torch.Tensor):
                return out.long()
            return out


@dataclass
class TokenStore:
    path: Path
    index: dict

    @property
    def fingerprint(self) -> str:
        return self.index["fingerprint"]

    def blocks(self, split: str) -> np.ndarray:
        """The split's [n_blocks, seq_len] tokens as a read-only memory map."""
        if split not in SPLITS:
            raise ValueError(f"no split {split!r} (splits: {SPLITS})")
        return np.load(self.path / f"{split}.npy", mmap_mode="r")

    def train_blocks(self, n: int | None = None) -> TokenBlocks:
        """The first ``n`` post-training blocks (all by default), memory-mapped, int64 when indexed."""
        have = self.index["splits"]["post_train"]["blocks"]
        n = have if n is None else n
        if not 0 < n <= have:
            raise ValueError(f"the token store at {self.path} holds {have} post-training blocks, {n} asked for")
        return TokenBlocks(self.blocks("post_train")[:n])

    def tensor(self, split: str) -> torch.Tensor:
        """A small split (evaluation, calibration) read into memory as int64."""
        return torch.from_numpy(np.array(self.blocks(split), dtype=np.int64))

    def verify(self) -> None:
        """Re-hash every split against the index (a ValueError names the first that differs)."""
        for split in SPLITS:
            blocks, h = self.blocks(split), hashlib.sha256()
            for i in range(0, len(blocks), 4096):  # a chunk at a time: a 1B-token split is 2-4 GB
                h.update(np.ascontiguousarray(blocks[i : i + 4096]).tobytes())
            got = h.hexdigest()
            if got != self.index["splits"][split]["sha256"]:
                raise ValueError(f"{self.path}: {split}.npy does not match its index (sha256 {got})")


def _settings(
    spec,
    tokenizer,
    seq_len,
    seed,
    n_eval_blocks,
    n_calibration,
    buffer_size,
    text_column,
    eval_fraction,
    calibration_fraction,
) -> dict:
    return {
        "version": STORE_VERSION,
        "corpus": corpus_identity(spec, text_column),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "eos_token_id": int(tokenizer.eos_token_id),
        "seq_len": int(seq_len),
        "seed": int(seed),
        "buffer_size": int(buffer_size),
        "eval_fraction": float(eval_fraction),
        "calibration_fraction": float(calibration_fraction),
        "n_eval_blocks": int(n_eval_blocks),
        "n_calibration": int(n_calibration),
    }


def _fingerprint(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def _dtype(tokenizer):
    top = max(len(tokenizer), int(tokenizer.eos_token_id) + 1)
    return np.uint16 if top <= 2**16 else np.uint32


def _digest(data: bytes, salt: bytes = b"") -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, salt=salt[:16]).digest(), "little")


def _split_of(u: float, eval_fraction: float, calibration_fraction: float) -> str:
    if u < calibration_fraction:
        return "calibration"
    if u < calibration_fraction + eval_fraction:
        return "eval"
    return "post_train"


def _build(path: Path, settings: dict, streams, tokenizer, quotas: dict, progress: bool) -> dict:
    """Stream, tokenize and pack into ``path`` (written beside it, then renamed into place); the index.

    Two passes over the same seeded stream (``streams()`` gives it afresh): the first fills the evaluation
    and calibration blocks, the second the post-training blocks, skipping any block already written. So the
    held-out sets do not depend on the budget, and a store for a larger budget begins with exactly the
    blocks of a smaller one."""
    global BUILDS
    t0 = time.perf_counter()
    seq_len, eot = settings["seq_len"], int(tokenizer.eos_token_id)
    salt = settings["seed"].to_bytes(8, "little", signed=True)
    dtype = _dtype(tokenizer)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    arrays = {
        s: np.lib.format.open_memmap(tmp / f"{s}.npy", mode="w+", dtype=dtype, shape=(quotas[s], seq_len))
        for s in SPLITS
    }
    filled = dict.fromkeys(SPLITS, 0)
    hashes = {s: hashlib.sha256() for s in SPLITS}
    dropped = dict.fromkeys(SPLITS, 0)
    seen_blocks: set[int] = set()
    column = settings["corpus"]["text_column"]

    def fill(wanted: tuple[str, ...], stream) -> dict:
        pending: dict[str, list[int]] = {s: [] for s in wanted}
        docs = {"read": 0, "empty": 0, "duplicates": 0, "other_split": 0, "skipped_split_full": 0} | {
            s: 0 for s in wanted
        }
        seen_docs: set[int] = set()

        def full() -> bool:
            return all(filled[s] >= quotas[s] for s in wanted)

        def add(split: str, ids: list[int]) -> None:
            buf = pending[split]
            buf.extend(ids)
            buf.append(eot)
            while len(buf) >= seq_len and filled[split] < quotas[split]:
                block = np.asarray(buf[:seq_len], dtype=dtype)
                del buf[:seq_len]
                key = _digest(block.tobytes())
                if key in seen_blocks:  # the same tokens from another document: never twice in the store
                    dropped[split] += 1
                    continue
                seen_blocks.add(key)
                arrays[split][filled[split]] = block
                hashes[split].update(block.tobytes())
                filled[split] += 1
            if filled[split] >= quotas[split]:
                buf.clear()

        def flush(batch: list[tuple[str, str]]) -> None:
            for (split, _), ids in zip(batch, _tokenize(tokenizer, [t for _, t in batch])):
                add(split, ids)

        from tqdm.auto import tqdm

        bar = tqdm(
            total=sum(quotas[s] for s in wanted),
            desc=f"token store: {', '.join(wanted)}",
            disable=not progress,
            leave=False,
        )
        batch: list[tuple[str, str]] = []
        for row in stream:
            docs["read"] += 1
            if docs["read"] == 1 and column not in row:
                raise ValueError(f"the corpus has no {column!r} column (columns: {sorted(row)})")
            text = row[column]
            if not text:
                docs["empty"] += 1
                continue
            key = _digest(text.encode("utf-8", errors="replace"), salt)
            split = _split_of(key / 2**64, settings["eval_fraction"], settings["calibration_fraction"])
            if split not in wanted:
                docs["other_split"] += 1
                continue
            if key in seen_docs:
                docs["duplicates"] += 1
                continue
            seen_docs.add(key)
            if filled[split] >= quotas[split]:
                docs["skipped_split_full"] += 1  # read, but used nowhere
                continue
            docs[split] += 1
            batch.append((split, text))
            if len(batch) >= BATCH_DOCUMENTS:
                before = sum(filled.values())
                flush(batch)
                batch = []
                bar.update(sum(filled.values()) - before)
                if full():
                    break
        if batch and not full():
            flush(batch)
        bar.close()
        if not full():
            shutil.rmtree(tmp, ignore_errors=True)
            short = ", ".join(f"{s}: {filled[s]:,} of {quotas[s]:,} blocks" for s in wanted if filled[s] < quotas[s])
            raise CorpusTooSmallError(
                f"the corpus ran out after {docs['read']:,} documents ({short} of {seq_len} tokens; "
                f"{docs['duplicates']:,} duplicate documents and {sum(dropped.values()):,} repeated blocks "
                "skipped). Nothing is repeated to fill the budget: use a larger corpus or a smaller "
                "post-training budget"
            )
        return docs

    documents = {
        "held_out_pass": fill(("eval", "calibration"), streams()),
        "post_train_pass": fill(("post_train",), streams()),
    }
    for split in SPLITS:  # flushed and released (no memmap left open) before the folder is renamed
        arrays.pop(split).flush()
    index = {
        "fingerprint": _fingerprint(settings),
        "settings": settings,
        "dtype": np.dtype(dtype).name,
        "splits": {
            s: {
                "blocks": filled[s],
                "tokens": filled[s] * seq_len,
                "file": f"{s}.npy",
                "sha256": hashes[s].hexdigest(),
                "blocks_dropped_as_seen": dropped[s],
            }
            for s in SPLITS
        },
        "documents": documents,
        "repeats": 0,
        "seconds": time.perf_counter() - t0,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "built_by": {"pid": os.getpid(), "rank": int(os.environ.get("RANK", "0"))},
    }
    (tmp / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    if path.exists():  # a shorter store of the same stream: replaced by this longer one
        old = path.with_name(f"{path.name}.old-{os.getpid()}")
        os.replace(path, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(tmp, path)
    BUILDS += 1
    return index


def _open(path: Path, fingerprint: str, n_train_blocks: int) -> TokenStore | None:
    """The store at ``path`` if it is whole, has this fingerprint and enough post-training blocks."""
    try:
        index = json.loads((path / "index.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if index.get("fingerprint") != fingerprint or index["splits"]["post_train"]["blocks"] < n_train_blocks:
        return None
    return TokenStore(path, index)


def token_store(
    spec: str,
    tokenizer,
    seq_len: int,
    seed: int,
    n_train_blocks: int,
    n_eval_blocks: int,
    n_calibration: int,
    cache_dir,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    text_column: str = "text",
    eval_fraction: float = 0.04,
    calibration_fraction: float = 0.04,
    build_blocks: int | None = None,
    progress: bool = False,
    wait_seconds: float = 48 * 3600,
) -> TokenStore:
    """The store for these settings: reused if one with at least ``n_train_blocks`` is there, else built.

    The main process (the launcher's rank 0, as ``train.is_main_process`` has it: accelerate's
    ``PartialState()`` is not distributed on a CPU-only machine unless made with ``cpu=True``) goes first
    and alone builds; the other ranks wait, up to ``wait_seconds``, for its files to appear and then open
    them. ``build_blocks`` (>= ``n_train_blocks``) builds a longer store at once, e.g. for the largest
    budget of a sweep."""
    from filelock import FileLock

    from .train import is_main_process

    for name, n in (
        ("n_train_blocks", n_train_blocks),
        ("n_eval_blocks", n_eval_blocks),
        ("n_calibration", n_calibration),
    ):
        if n < 1:
            raise ValueError(f"{name} must be >= 1 (got {n})")
    if min(eval_fraction, calibration_fraction) <= 0 or eval_fraction + calibration_fraction >= 1:
        raise ValueError("eval_fraction and calibration_fraction must be positive and leave documents to train on")
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no end-of-text token, which packing puts between documents")
    build = max(n_train_blocks, build_blocks or 0)
    settings = _settings(
        spec,
        tokenizer,
        seq_len,
        seed,
        n_eval_blocks,
        n_calibration,
        buffer_size,
        text_column,
        eval_fraction,
        calibration_fraction,
    )
    fp = _fingerprint(settings)
    root = Path(cache_dir) / "token_store"
    root.mkdir(parents=True, exist_ok=True)
    path = root / fp[:16]
    if is_main_process():
        with FileLock(str(path) + ".lock"):  # another job building the same store: wait for it, then reuse
            store = _open(path, fp, n_train_blocks)
            if store is None:
                quotas = {"post_train": build, "eval": n_eval_blocks, "calibration": n_calibration}
                streams = lambda: stream_documents(spec, seed, buffer_size, text_column)  # noqa: E731
                store = TokenStore(path, _build(path, settings, streams, tokenizer, quotas, progress))
    else:
        # The main process goes first. The others wait on the filesystem rather than in a collective, whose
        # timeout (10-30 min) a first build of 1B tokens can outlast; if the main process fails, the launcher
        # (torchrun, accelerate launch) stops them.
        deadline = time.monotonic() + wait_seconds
        while (store := _open(path, fp, n_train_blocks)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"rank {os.environ.get('RANK')}: no token store at {path} after "
                    f"{wait_seconds:.0f} s; the main process builds it there, so cache_dir must be "
                    "on a filesystem every rank shares"
                )
            time.sleep(POLL_SECONDS)
    return store


def prepare_streamed(
    spec: str,
    seq_len: int,
    tokenizer,
    seed: int,
    n_eval_blocks: int,
    n_calibration: int,
    train_blocks: int,
    cache_dir,
    build_blocks: int | None = None,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    text_column: str = "text",
    progress: bool = False,
):
    """``data.prepare``'s ``DataBundle`` for a loaded model, from the token store: exactly ``train_blocks``
    post-training blocks (what the run's steps x batch size consume), the evaluation and calibration blocks."""
    from .data import DataBundle
    from .train import TrainData

    if cache_dir is None:
        raise ValueError("the token store needs a cache_dir to live in (every rank must see it)")
    if tokenizer is None:
        raise ValueError("a streamed corpus is tokenized with a loaded model's own tokenizer; none was given")
    store = token_store(
        spec,
        tokenizer,
        seq_len,
        seed,
        train_blocks,
        n_eval_blocks,
        n_calibration,
        cache_dir,
        buffer_size=buffer_size,
        text_column=text_column,
        build_blocks=build_blocks,
        progress=progress,
    )
    ev, cal = store.tensor("eval"), store.tensor("calibration")
    index = store.index
    splits = {s: dict(v) for s, v in index["splits"].items()}
    splits["post_train"]["blocks_used"] = train_blocks
    info = {
        "source": spec,
        "streamed": True,
        "token_store": str(store.path),
        "fingerprint": store.fingerprint,
        "buffer_size": buffer_size,
        "documents": index["documents"],
        "seq_len": seq_len,
        "vocab_size": len(tokenizer),
        "splits": splits,
        "train_blocks": train_blocks,
        "eval_blocks": len(ev),
        "calibration_blocks": len(cal),
        "train_tokens_available": train_blocks * seq_len,
        "repeats": index["repeats"],
    }
    return DataBundle(tokenizer, cal, TrainData(train=store.train_blocks(train_blocks), eval=ev), None, info)
