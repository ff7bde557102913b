"""A disk cache for slow analysis: one pickle per (function, checkpoint table, parameters, analysis code).

An entry's key hashes the rows of the table the function is given (``fingerprint``), the function's name,
its parameters (defaults filled in) and the source of the code that computes it (``results`` and the
modules it imports: ``_CODE``), so a changed row, parameter or line of that code computes afresh. Entries
are written atomically (a temporary file, then ``os.replace``) under a file lock of their own: two pages
that need one entry at the same time compute it once, the second waits and reads it. An entry that cannot
be read is computed again. Deleting the folder recomputes everything.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock

# The code the cached results are computed by: ``results`` and every p2law module it imports (a test
# checks this list against what importing ``results`` loads). The verdict rules and the sweep checks only
# read these results, so changing them does not refit the book's tables.
_CODE = [
    *(Path(__file__).parent / f"{m}.py" for m in ("results", "cache", "grids", "fit", "law", "metrics", "protocols")),
    Path(__file__).parent / "budget.py",
    *(Path(__file__).parents[1] / n for n in ("table.py", "paper.py", "__init__.py")),
    Path(__file__).parent / "__init__.py",
]


@functools.cache
def code_version() -> str:
    """A hash of the analysis code's source: results computed by other code are not reused."""
    digest = hashlib.sha256()
    for path in _CODE:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def fingerprint(table: pd.DataFrame) -> str:
    """A hash of a table's rows, column names and dtypes (not its index)."""
    digest = hashlib.sha256(repr([(str(c), str(t)) for c, t in table.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _plain(value):
    """A parameter as JSON that does not depend on how it was spelled (1e6 == 1000000, tuple == list)."""
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    return repr(value)


_MISSING = object()


def _load(path: Path):
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception:  # noqa: BLE001 - missing, truncated or foreign: computed again, whatever the fault
        return _MISSING


def _store(path: Path, value) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached(func):
    """Cache ``func(table, **parameters)`` in the folder given as its keyword ``cache_dir`` (None: no cache).

    ``func`` takes the checkpoint table first; ``cache_dir`` is passed on to it (for the cached functions
    it calls) but is not part of the key.
    """
    signature = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(table: pd.DataFrame, *args, cache_dir=None, **kwargs):
        if cache_dir is None:
            return func(table, *args, cache_dir=None, **kwargs)
        bound = signature.bind(table, *args, cache_dir=cache_dir, **kwargs)
        bound.apply_defaults()
        params = {k: _plain(v) for k, v in list(bound.arguments.items())[1:] if k != "cache_dir"}
        name = f"{func.__module__}.{func.__qualname__}"
        key = json.dumps([name, fingerprint(table), params, code_version()], sort_keys=True)
        folder = Path(cache_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{func.__name__}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.pkl"
        value = _load(path)
        if value is _MISSING:
            with FileLock(str(path) + ".lock"):
                value = _load(path)  # a page running beside this one may have written it meanwhile
                if value is _MISSING:
                    value = func(table, *args, cache_dir=cache_dir, **kwargs)
                    _store(path, value)
        return value

    return wrapper
