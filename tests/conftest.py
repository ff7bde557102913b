"""One smoke sweep per test session, shared by every test that needs real results."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory) -> Path:
    """A folder with the smoke profile's checkpoints.csv, manifest.json, prune reports and caches."""
    from p2law.experiment import run

    out = tmp_path_factory.mktemp("smoke") / "results"
    run("smoke", out, progress=False)
    return out
