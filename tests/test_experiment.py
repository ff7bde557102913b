import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from p2law import table
from p2law.experiment import plan_runs, run
from p2law.models import toy_family
from p2law.profiles import get_profile

SMOKE = get_profile("smoke")


def test_smoke_sweep_has_every_run_with_valid_rows(smoke_results):
    df = table.read(smoke_results / "checkpoints.csv")
    assert list(df.columns) == list(table.COLUMNS)
    planned = {r.run_id for r in plan_runs(SMOKE)}
    assert set(df.run_id) == planned and len(planned) == 2 * 3 * (2 + 2 + 1 + 1)
    for run_id, g in df.groupby("run_id"):
        assert len(g) == SMOKE.n_checkpoints + 1, run_id
        assert np.all(np.diff(g.tokens.to_numpy()) > 0) and g.tokens.iloc[0] == 0
        assert np.all(np.isfinite(g[["train_loss", "eval_loss"]].to_numpy()))
        r = g.iloc[0]
        assert r.rate == pytest.approx(1 - r.n / r.n0)
        if r.method == "none":
            assert r.rate == 0 and r.n == r.n0
            assert g.eval_loss.iloc[0] == pytest.approx(r.l0, abs=1e-9)  # the control starts at the base
        else:
            assert 0 < r.rate < 1
            assert g.eval_loss.iloc[0] > r.l0  # pruning hurts
            assert g.eval_loss.iloc[-1] < g.eval_loss.iloc[0]  # post-training recovers part of it


def test_manifest_and_reports(smoke_results):
    manifest = json.loads((smoke_results / "manifest.json").read_text())
    assert manifest["corpus"]["sha256"] and manifest["corpus"]["n_bytes"] > 0
    assert manifest["versions"]["torch"] and set(manifest["runs"]) == {r.run_id for r in plan_runs(SMOKE)}
    assert all(v["seconds"] > 0 for v in manifest["runs"].values())
    reports = sorted(p.stem for p in (smoke_results / "prune_reports").glob("*.json"))
    assert len(reports) == 2 * 3 * 5  # every pruned run, not the controls
    rep = json.loads((smoke_results / "prune_reports" / "smoke-llama-l-depth-0.16.json").read_text())
    assert rep["method"] == "depth" and len(rep["scores"]) == 5 and rep["removed"]


def test_rerun_skips_finished_runs(smoke_results, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(smoke_results, out)
    before = json.loads((out / "manifest.json").read_text())["runs"]
    stamp = (out / "checkpoints.csv").stat().st_mtime_ns
    run("smoke", out, progress=False)
    # nothing retrained: no run's record changed and the table was not rewritten
    assert json.loads((out / "manifest.json").read_text())["runs"] == before
    assert (out / "checkpoints.csv").stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(pd.read_csv(out / "checkpoints.csv"), pd.read_csv(smoke_results / "checkpoints.csv"))


def test_killed_sweep_resumes_to_the_same_table(smoke_results, tmp_path):
    """Kill a sweep (SIGKILL) in the middle of post-training, restart it: the same rows as uninterrupted."""
    out = tmp_path / "killed"
    (out / "_cache").mkdir(parents=True)
    for part in ("bases",):  # reuse the pretrained bases; everything after pretraining is redone
        shutil.copytree(smoke_results / "_cache" / part, out / "_cache" / part)
    for tok in (smoke_results / "_cache").glob("tokenizer-*.json"):
        shutil.copy(tok, out / "_cache" / tok.name)
    model = "smoke-qwen2-l"
    cmd = [sys.executable, "-m", "p2law.cli", "run", "--profile", "smoke", "--out", str(out), "--only", model, "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    table_path = out / "checkpoints.csv"
    deadline = time.time() + 300
    while time.time() < deadline:
        if table_path.exists() and len(pd.read_csv(table_path)) >= 10:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = pd.read_csv(table_path)
    assert 10 <= len(partial) < 6 * (SMOKE.n_checkpoints + 1)  # really interrupted
    run("smoke", out, only=[model], progress=False)
    resumed = pd.read_csv(table_path).sort_values(["run_id", "step"]).reset_index(drop=True)
    full = pd.read_csv(smoke_results / "checkpoints.csv")
    expected = full[full.model == model].sort_values(["run_id", "step"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(resumed, expected)


def test_bad_input_is_named(tmp_path):
    with pytest.raises(ValueError, match="unknown profile 'huge'; valid profiles: smoke, toy, paper"):
        run("huge", tmp_path)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    pd.DataFrame({"x": [1]}).to_csv(foreign / "checkpoints.csv", index=False)
    with pytest.raises(ValueError, match="not a p2law checkpoint table"):
        run("smoke", foreign, progress=False)
    assert list(pd.read_csv(foreign / "checkpoints.csv").columns) == ["x"]


def test_paper_profile_dry_run_plans_without_download(capsys):
    plan = run("paper", dry_run=True)
    assert plan["n_runs"] == 6 * 8
    first = plan["runs"][0]
    assert first["hub_id"] == "meta-llama/Llama-3.2-1B" and first["tokens"] == 500_000_000
    assert plan["batch_tokens"] == 128 * 2048
    assert "profile paper: 48 runs" in capsys.readouterr().out


def test_toy_plan_counts_runs_tokens_and_flops():
    """The plan's estimate is its FLOP count over a measured rate (the rate depends on the machine's load,
    so the minutes are printed, not asserted; benchmarks/bench_train.py measures the real throughput)."""
    profile = get_profile("toy")
    plan = run("toy", dry_run=True)
    assert plan["n_runs"] == 48
    n0 = {r["model"]: r["n0"] for r in plan["runs"]}
    assert len(n0) == 6
    eval_tokens = profile.n_eval_blocks * profile.seq_len * (profile.n_checkpoints + 1)
    flops = sum(6 * n * profile.pretrain_tokens_per_param * n for n in n0.values())
    flops += sum(6 * r["n0"] * r["tokens"] + 2 * r["n0"] * eval_tokens for r in plan["runs"])
    assert plan["estimated_flops"] == pytest.approx(flops)
    assert all(r["tokens"] == int(profile.post_tokens_per_param * r["n0"]) for r in plan["runs"])
    assert plan["estimated_seconds"] == pytest.approx(flops / plan["assumed_flops_per_second"])
