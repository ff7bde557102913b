"""One device per rank, and resume states loaded wherever they were saved (CPU-only checks)."""

import torch
from prune_fixtures import tiny_model
from train_fixtures import pattern_data

from p2law.lab import experiment
from p2law.lab.train import TrainConfig, post_train


def test_device_is_this_ranks_partial_state_device(monkeypatch):
    import accelerate

    made_with = {}

    class Rank1:
        device = torch.device("cuda", 1)  # what PartialState gives local rank 1 of a GPU job

        def __init__(self, **kwargs):
            made_with.update(kwargs)

    monkeypatch.setattr(accelerate, "PartialState", Rank1)
    assert experiment._device() == torch.device("cuda", 1)
    # the process group it sets up waits longer than NCCL's 10 minutes (rank 0 pruning, first tokenisation)
    assert made_with["timeout"] == experiment.PROCESS_GROUP_TIMEOUT
    monkeypatch.undo()
    assert experiment._device() == accelerate.PartialState().device


def test_resume_state_is_loaded_onto_the_cpu(tmp_path, monkeypatch):
    cfg = TrainConfig(total_tokens=32 * 16 * 12, lr=3e-3, batch_size=16, n_checkpoints=4, seed=1)
    post_train(
        tiny_model(),
        pattern_data(),
        cfg,
        rows_meta={"run_id": "r"},
        state_dir=tmp_path / "s",
        stop_after_checkpoints=1,
        progress=False,
    )
    calls, load = [], torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: (calls.append(k), load(*a, **k))[1])
    post_train(tiny_model(), pattern_data(), cfg, rows_meta={"run_id": "r"}, state_dir=tmp_path / "s", progress=False)
    assert calls and calls[0].get("map_location") == "cpu"  # a state saved from cuda:0 loads on any rank
