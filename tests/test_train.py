import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from prune_fixtures import tiny_model
from train_fixtures import kill_tree, pattern_data, run_group
from train_worker import CONFIG, PREEMPTIBLE_CONFIG

from p2law.lab.prune import prune_2of4
from p2law.lab.train import NonFiniteLossError, Preempted, TrainConfig, TrainData, post_train

META = dict(family="llama", model="tiny", n0=1, l0=4.6, method="2:4", rate=0.4, n=1, seed=0, run_id="r")


def short_cfg(**over):
    return TrainConfig(**{**dict(total_tokens=32 * 16 * 12, lr=3e-3, batch_size=16, n_checkpoints=4, seed=1), **over})


def test_masked_weights_stay_exactly_zero_and_loss_falls():
    data = pattern_data()
    model, report = prune_2of4(tiny_model(), [data.train[:8]], progress=False)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    rows = post_train(model, data, short_cfg(weight_decay=0.1), masks=report.masks, rows_meta=META, progress=False)
    for name, p in model.named_parameters():
        if name in report.masks:
            assert bool((p[~report.masks[name]] == 0).all()), name
            assert not torch.equal(p[report.masks[name]], before[name][report.masks[name]])  # the rest trained
    assert [r["step"] for r in rows] == [0, 3, 6, 9, 12]
    assert [r["tokens"] for r in rows] == [0, 1536, 3072, 4608, 6144]
    assert rows[-1]["eval_loss"] < rows[0]["eval_loss"] - 0.3


def test_same_seed_same_rows():
    a = post_train(tiny_model(), pattern_data(), short_cfg(), rows_meta=META, progress=False)
    b = post_train(tiny_model(), pattern_data(), short_cfg(), rows_meta=META, progress=False)
    assert a == b
    c = post_train(tiny_model(), pattern_data(), short_cfg(seed=2), rows_meta=META, progress=False)
    assert a != c


def test_resume_after_interruption_gives_the_same_table(tmp_path):
    full = post_train(
        tiny_model(), pattern_data(), short_cfg(), rows_meta=META, table_path=tmp_path / "full.csv", progress=False
    )
    cut = post_train(
        tiny_model(),
        pattern_data(),
        short_cfg(),
        rows_meta=META,
        table_path=tmp_path / "t.csv",
        state_dir=tmp_path / "state",
        stop_after_checkpoints=2,
        progress=False,
    )
    assert len(cut) == 3 and len(pd.read_csv(tmp_path / "t.csv")) == 3
    resumed = post_train(
        tiny_model(seed=9),
        pattern_data(),
        short_cfg(),
        rows_meta=META,
        table_path=tmp_path / "t.csv",
        state_dir=tmp_path / "state",
        progress=False,
    )
    assert resumed == full
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "t.csv"), pd.read_csv(tmp_path / "full.csv"))


def test_nan_loss_stops_with_clear_error_and_keeps_rows(tmp_path):
    table = tmp_path / "t.csv"
    with pytest.raises(NonFiniteLossError, match=r"training loss became (nan|inf) at step \d+"):
        post_train(
            tiny_model(),
            pattern_data(),
            short_cfg(lr=1e12, grad_clip=0.0, warmup_fraction=0.0, total_tokens=32 * 16 * 40, n_checkpoints=40),
            rows_meta=META,
            table_path=table,
            progress=False,
        )
    kept = pd.read_csv(table)
    assert len(kept) >= 1 and kept.loc[0, "step"] == 0


def test_bad_config_and_data_are_named():
    with pytest.raises(ValueError, match="total_tokens must be positive"):
        TrainConfig(total_tokens=0)
    with pytest.raises(ValueError, match="lr must be positive"):
        TrainConfig(total_tokens=10, lr=-1)
    with pytest.raises(ValueError, match="non-empty"):
        TrainData(train=torch.zeros(0, 8, dtype=torch.long), eval=torch.zeros(2, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="masks name parameters the model does not have"):
        post_train(tiny_model(), pattern_data(), short_cfg(), masks={"nope.weight": torch.ones(2)}, progress=False)


def test_foreign_table_is_not_extended(tmp_path):
    table = tmp_path / "t.csv"
    pd.DataFrame({"a": [1], "b": [2]}).to_csv(table, index=False)
    with pytest.raises(ValueError, match="not a p2law checkpoint table"):
        post_train(tiny_model(), pattern_data(), short_cfg(), rows_meta=META, table_path=table, progress=False)
    assert list(pd.read_csv(table).columns) == ["a", "b"]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    """torchrun --nproc_per_node 2 (gloo, CPU) gives the loss curve of one process with the same global batch."""
    out = tmp_path / "rows.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    torchrun = Path(sys.executable).with_name("torchrun")
    done = run_group(
        [
            str(torchrun),
            "--nproc_per_node",
            "2",
            "--master_port",
            "29531",
            str(Path(__file__).with_name("train_worker.py")),
            str(out),
        ],
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    two = json.loads(out.read_text())
    one = post_train(
        tiny_model(seed=5), pattern_data(), TrainConfig(**CONFIG), rows_meta={"run_id": "dist"}, progress=False
    )
    assert [r["step"] for r in two] == [r["step"] for r in one]
    for a, b in zip(two, one):
        assert a["eval_loss"] == pytest.approx(b["eval_loss"], abs=2e-3)
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=2e-3)


def test_warmup_is_a_fixed_number_of_steps_and_the_rate_then_constant():
    from p2law.lab.train import lr_at

    short = TrainConfig(total_tokens=100 * 16 * 32, lr=1e-3, batch_size=16, warmup_steps=10, schedule="constant")
    long = TrainConfig(total_tokens=900 * 16 * 32, lr=1e-3, batch_size=16, warmup_steps=10, schedule="constant")
    a = [lr_at(s, short.steps(32), short) for s in range(100)]
    b = [lr_at(s, long.steps(32), long) for s in range(900)]
    assert a == b[:100]  # the same rate at the same step, whatever the run's length
    assert a[9] == 1e-3 and a[0] == pytest.approx(1e-4) and set(b[10:]) == {1e-3}
    # the length-dependent default (a share of the run) is what the fixed warm-up replaces
    frac = TrainConfig(total_tokens=900 * 16 * 32, lr=1e-3, batch_size=16, warmup_fraction=0.05)
    assert frac.warmup(900) == 45 and short.warmup(100) == long.warmup(900) == 10
    with pytest.raises(ValueError, match="schedule must be one of"):
        TrainConfig(total_tokens=100, schedule="linear")


def test_log_plus_linear_checkpoints_resolve_both_ends():
    from p2law.lab.train import checkpoint_steps

    for total in (40, 61, 305, 2000):
        steps = checkpoint_steps(total, 31, "log+linear")
        assert len(steps) == 32 and steps[0] == 0 and steps[-1] == total and len(set(steps)) == 32
        assert steps[1:4] == [1, 2, 3] or total < 40  # the first steps after pruning are measured
        second_half = [s for s in steps if s >= total / 2]
        assert len(second_half) >= 8  # where ASD samples
    assert checkpoint_steps(12, 4, "linear") == [0, 3, 6, 9, 12]


def _assert_same_rows(a, b, tol=1e-5):
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for x, y in zip(a, b):
        assert x["train_loss"] == pytest.approx(y["train_loss"], abs=tol)
        assert x["eval_loss"] == pytest.approx(y["eval_loss"], abs=tol)


def test_accumulated_micro_batches_give_the_rows_of_one_big_batch():
    """16 sequences as 4 micro-batches of 4 (4 accumulation steps) train exactly as one batch of 16."""
    assert short_cfg(micro_batch_size=4).accumulation_steps() == 4
    big = post_train(tiny_model(), pattern_data(), short_cfg(), rows_meta=META, progress=False)
    acc = post_train(tiny_model(), pattern_data(), short_cfg(micro_batch_size=4), rows_meta=META, progress=False)
    _assert_same_rows(acc, big)
    assert acc[-1]["eval_loss"] < acc[0]["eval_loss"] - 0.3  # it trained (the rows are not all at D = 0)
    # a batch trained 4 x 4 is not the same as 4 optimizer steps of 4: accumulation really happened
    small = post_train(
        tiny_model(), pattern_data(), short_cfg(batch_size=4, total_tokens=32 * 4 * 12), rows_meta=META, progress=False
    )
    assert abs(small[1]["eval_loss"] - big[1]["eval_loss"]) > 1e-3


def test_accumulation_keeps_masked_weights_exactly_zero_and_matches_one_batch():
    data = pattern_data()
    model, report = prune_2of4(tiny_model(), [data.train[:8]], progress=False)
    twin = __import__("copy").deepcopy(model)
    cfg = dict(weight_decay=0.1)
    acc = post_train(
        model, data, short_cfg(micro_batch_size=2, **cfg), masks=report.masks, rows_meta=META, progress=False
    )
    big = post_train(twin, data, short_cfg(**cfg), masks=report.masks, rows_meta=META, progress=False)
    _assert_same_rows(acc, big)
    for name, p in model.named_parameters():
        if name in report.masks:
            assert bool((p[~report.masks[name]] == 0).all()), name


def test_micro_batch_must_divide_the_share_and_a_passed_accelerator_must_agree():
    from accelerate import Accelerator

    with pytest.raises(ValueError, match="micro_batch_size 5 does not divide each process's share"):
        post_train(tiny_model(), pattern_data(), short_cfg(micro_batch_size=5), rows_meta=META, progress=False)
    with pytest.raises(ValueError, match="micro_batch_size must be positive"):
        short_cfg(micro_batch_size=0)
    with pytest.raises(ValueError, match=r"accumulates over 1 micro-batches, but this config needs 4"):
        post_train(
            tiny_model(),
            pattern_data(),
            short_cfg(micro_batch_size=4),
            rows_meta=META,
            progress=False,
            accelerator=Accelerator(cpu=True),
        )
    rows = post_train(
        tiny_model(),
        pattern_data(),
        short_cfg(micro_batch_size=4),
        rows_meta=META,
        progress=False,
        accelerator=Accelerator(cpu=True, gradient_accumulation_steps=4),
    )
    big = post_train(tiny_model(), pattern_data(), short_cfg(), rows_meta=META, progress=False)
    _assert_same_rows(rows, big)


def test_gradient_checkpointing_leaves_the_rows_unchanged():
    """With checkpointing each layer's forward runs again in the backward pass; the rows do not change."""
    from p2law.lab.train import _checkpointing_on

    def run(**over):
        model, calls = tiny_model(), []
        mlp = model.model.layers[0].mlp  # counted in forward itself: hooks do not fire when it is recomputed
        mlp.forward = (lambda f: lambda *a, **k: (calls.append(1), f(*a, **k))[1])(mlp.forward)
        rows = post_train(model, pattern_data(), short_cfg(**over), rows_meta=META, progress=False)
        assert not _checkpointing_on(model)  # switched off again after the run
        return rows, len(calls)

    plain, n_plain = run()
    ckpt, n_ckpt = run(gradient_checkpointing=True)
    assert n_ckpt == n_plain + 12  # one recomputation per training step
    _assert_same_rows(ckpt, plain)


@pytest.mark.slow
def test_two_processes_with_accumulation_match_one_big_batch(tmp_path):
    """torchrun 2 processes x 2 micro-batches of 4 = the rows of one process with the batch of 16 at once."""
    out = tmp_path / "rows.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = run_group(
        [
            str(torchrun),
            "--nproc_per_node",
            "2",
            "--master_port",
            "29533",
            str(Path(__file__).with_name("train_worker.py")),
            str(out),
            "4",
        ],
        env=env,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = json.loads(out.read_text())
    one = post_train(
        tiny_model(seed=5), pattern_data(), TrainConfig(**CONFIG), rows_meta={"run_id": "dist"}, progress=False
    )
    _assert_same_rows(two, one, tol=1e-5)


def test_deepspeed_is_refused_and_fsdp2_needs_a_process_group():
    from types import SimpleNamespace

    from accelerate.utils import DistributedType

    with pytest.raises(NotImplementedError, match="DeepSpeed: not supported.*DDP or FSDP2"):
        post_train(
            tiny_model(),
            pattern_data(),
            short_cfg(),
            rows_meta=META,
            progress=False,
            accelerator=SimpleNamespace(distributed_type=DistributedType.DEEPSPEED),
        )
    with pytest.raises(RuntimeError, match="sharding='fsdp2' needs a process group"):
        post_train(tiny_model(), pattern_data(), short_cfg(sharding="fsdp2"), rows_meta=META, progress=False)
    with pytest.raises(ValueError, match="sharding must be one of"):
        short_cfg(sharding="zero3")


def _masked_under_torchrun(tmp_path, sharding, state_dir="-", stop_after=0, port=29541, name="rows.json"):
    out = tmp_path / name
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    worker = str(Path(__file__).with_name("train_worker.py"))
    cmd = [str(Path(sys.executable).with_name("torchrun")), "--nproc_per_node", "2", "--master_port", str(port)]
    proc = run_group(
        cmd + [worker, "--masked", str(out), sharding, str(state_dir), str(stop_after)], env=env, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def _masked_in_one_process():
    from train_worker import CONFIG, masked_model

    model, masks = masked_model()
    return post_train(
        model, pattern_data(), TrainConfig(**CONFIG), masks=masks, rows_meta={"run_id": "masked"}, progress=False
    )


@pytest.mark.slow
@pytest.mark.parametrize("sharding", ["ddp", "fsdp2"])
def test_two_processes_keep_the_2of4_zeros_and_match_one(tmp_path, sharding):
    """DDP and FSDP2 (torch's fully_shard, gloo): every pruned weight exactly zero on every rank, and the
    rows of one process with the same global batch."""
    two = _masked_under_torchrun(tmp_path, sharding, port=29541 + (sharding == "fsdp2"))
    assert two["masked_zero"]
    assert two["sharded"] == (sharding == "fsdp2")  # FSDP2 really sharded the weights (DTensors)
    _assert_same_rows(two["rows"], _masked_in_one_process(), tol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("sharding", ["ddp", "fsdp2"])
def test_a_two_process_run_killed_midway_resumes_to_the_uninterrupted_rows(tmp_path, sharding):
    """SIGKILL to the whole job once 2 of 4 checkpoints are saved: the state on disk is whole, one file per
    rank holding one copy in all (FSDP2: each rank's shards; DDP: the replicas written once, split between
    the ranks), masks and AdamW included; the restarted job trains only the remaining steps and ends with
    the rows of an uninterrupted run."""
    import subprocess

    import torch.distributed.checkpoint as dcp

    from p2law.lab import resume

    state, port = tmp_path / "state", 29543 + 2 * (sharding == "fsdp2")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    cmd = [str(Path(sys.executable).with_name("torchrun")), "--nproc_per_node", "2", "--master_port", str(port)]
    worker = [str(Path(__file__).with_name("train_worker.py")), "--masked", str(tmp_path / "killed.json")]
    job = subprocess.Popen(
        cmd + worker + [sharding, str(state), "0", "0.3"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    try:
        while not (resume.exists(state) and json.loads((state / "meta.json").read_text())["step"] >= 6):
            assert job.poll() is None and time.time() < deadline, "the job ended or stalled before step 6"
            time.sleep(0.2)
    finally:
        kill_tree(job.pid)  # torchrun and both workers, as a node failure or scancel would
        job.wait()
    time.sleep(2)  # were a worker still alive, it would go on writing the state now
    assert not (tmp_path / "killed.json").exists()  # killed before its end
    saved_step = json.loads((state / "meta.json").read_text())["step"]
    assert 6 <= saved_step < 12
    shards = sorted(state.glob("*.distcp"))
    assert [f.name for f in shards] == ["__0_0.distcp", "__1_0.distcp"]  # each rank wrote its part
    from train_worker import masked_model

    model, masks = masked_model()
    one_copy = 3 * 4 * sum(p.numel() for p in model.parameters()) + sum(m.numel() for m in masks.values())
    written = sum(f.stat().st_size for f in shards)
    # weights + 2 AdamW moments + masks, once (not once per replica: that would be >= 2x); the rest is
    # the per-tensor framing of a model this small
    assert one_copy <= written < 1.6 * one_copy
    assert resume.saved_mask_names(state) == sorted(masks)
    saved = resume.saved_masks(state, {k: m.shape for k, m in masks.items()})
    assert all(torch.equal(saved[k], masks[k]) for k in masks)
    assert "optimizer.state.model.layers.0.mlp.up_proj.weight.exp_avg" in (
        dcp.FileSystemReader(str(state)).read_metadata().state_dict_metadata
    )
    second = _masked_under_torchrun(tmp_path, sharding, state, port=port + 1, name="second.json")
    assert second["masked_zero"]
    assert second["forwards"] == 12 - saved_step  # resumed at the saved step, not from the start
    _assert_same_rows(second["rows"], _masked_in_one_process(), tol=1e-5)


def test_a_signal_stops_the_run_at_the_next_step_and_resuming_is_exact(tmp_path):
    """SIGUSR1 during step 4 (between the checkpoints at 3 and 6): the run saves its state at step 5, with
    the loss of steps 4-5 toward the next row, raises Preempted, and puts the previous handler back."""
    full = post_train(tiny_model(), pattern_data(), short_cfg(), rows_meta=META, progress=False)
    model, forwards = tiny_model(), []

    def signal_in_step_4(module, args):
        if torch.is_grad_enabled():  # a training step's forward, not the loss at D = 0 or an evaluation
            forwards.append(1)
            if len(forwards) == 5:
                os.kill(os.getpid(), signal.SIGUSR1)

    model.register_forward_pre_hook(signal_in_step_4)
    sigterm = signal.getsignal(signal.SIGTERM)
    previous = signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # a handler of the caller's, to be restored
    message = (
        r"r: stopped by SIGUSR1 at step 5 of 12 \(2 checkpoint rows written\); its state is saved in "
        r".*state; run it again to resume"
    )
    try:
        with pytest.raises(Preempted, match=message) as stopped:
            post_train(
                model,
                pattern_data(),
                short_cfg(),
                rows_meta=META,
                table_path=tmp_path / "t.csv",
                state_dir=tmp_path / "state",
                progress=False,
            )
        assert signal.getsignal(signal.SIGUSR1) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is sigterm
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert stopped.value.exit_code == 138 and stopped.value.step == 5
    state = json.loads((tmp_path / "state" / "meta.json").read_text())
    assert state["step"] == 5 and len(state["rows"]) == 2 and state["running"][1] == 2
    resumed = post_train(
        tiny_model(seed=9),
        pattern_data(),
        short_cfg(),
        rows_meta=META,
        table_path=tmp_path / "t.csv",
        state_dir=tmp_path / "state",
        progress=False,
    )
    assert resumed == full  # train_loss of the row at step 6 included steps 4-5 from before the stop


def test_outside_the_main_thread_no_handler_is_installed():
    """Python lets only the main thread set signal handlers; a run in another thread trains without them."""
    got, sigterm = {}, signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(
        target=lambda: got.update(rows=post_train(tiny_model(), pattern_data(), short_cfg(), progress=False)),
        daemon=True,
    )  # a hung run does not keep pytest from exiting
    thread.start()
    thread.join(timeout=300)
    assert len(got["rows"]) == 5  # no ValueError from signal.signal in a thread
    assert signal.getsignal(signal.SIGTERM) is sigterm


def test_sigterm_saves_the_state_exits_143_and_the_restart_gives_the_uninterrupted_rows(tmp_path):
    """A worker process gets SIGTERM after its first checkpoint: it stops at the next step with status 143
    and its state saved, leaving only whole checkpoint rows; run again, it ends with the rows of a run that
    was never interrupted (both in worker processes: the same threads, so exactly the same numbers)."""
    worker = [sys.executable, str(Path(__file__).with_name("train_worker.py")), "--preemptible"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    table, state = tmp_path / "t.csv", tmp_path / "state"
    proc = subprocess.Popen(
        worker + [str(table), str(state)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (table.exists() and len(pd.read_csv(table)) >= 2):  # D = 0 and the first checkpoint
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no checkpoint row within 120 s"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # a failed or timed-out test leaves no worker behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 143, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("preempted: preempt: stopped by SIGTERM at step ")
    saved = json.loads((state / "meta.json").read_text())
    total = PREEMPTIBLE_CONFIG["total_tokens"] // (16 * 32)
    assert 10 <= saved["step"] < total  # really interrupted, after the first checkpoint (step 10)
    written = pd.read_csv(table)  # whole rows only, the ones the state holds
    assert list(written.eval_loss) == [r["eval_loss"] for r in saved["rows"]] and len(written) >= 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state", "t.csv"]  # nothing half-written

    resumed = run_group(worker + [str(table), str(state)], env=env, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    whole = run_group(
        worker + [str(tmp_path / "full.csv"), str(tmp_path / "full_state")], env=env, text=True, timeout=300
    )
    assert whole.returncode == 0, whole.stderr[-3000:]
    after, expected = pd.read_csv(table), pd.read_csv(tmp_path / "full.csv")
    assert list(after.step) == [0, 10, 20, 30, 40]
    pd.testing.assert_frame_equal(after, expected, check_exact=True)


def test_bf16_autocast_is_the_default_on_gpus_and_the_launcher_can_say_otherwise(monkeypatch):
    from p2law.lab.train import mixed_precision

    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert mixed_precision() == "no"  # CPUs: fp32
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert mixed_precision() == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # e.g. a V100
    assert mixed_precision() == "no"
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")  # accelerate launch --mixed_precision fp16
    assert mixed_precision() == "fp16"
