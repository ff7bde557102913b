import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from p2law import paper, table
from p2law.cli import main as cli_main
from p2law.lab.costs import achieved_flops_per_second, plan_sweep
from p2law.lab.experiment import run
from p2law.lab.profiles import get_profile
from p2law.lab.schedule import plan_runs

SMOKE = get_profile("smoke")


def test_smoke_sweep_has_every_run_with_valid_rows(smoke_results):
    df = table.read(smoke_results / "checkpoints.csv")
    assert list(df.columns) == list(table.COLUMNS)
    planned = {r.run_id for r in plan_runs(SMOKE)}
    assert set(df.run_id) == planned and len(planned) == 2 * (2 + 1 + 1) * (2 + 2 + 1 + 1)  # small: two seeds
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
            # post-training repairs part of the damage, measured against the control of the same model and seed
            # trained on the same batches (a smoke run is short and noisy: the control itself wanders)
            control = df[(df.model == r.model) & (df.method == "none") & (df.seed == r.seed)].sort_values("step")
            assert g.eval_loss.iloc[-1] - control.eval_loss.iloc[-1] < g.eval_loss.iloc[0] - r.l0, run_id


def test_manifest_and_reports(smoke_results):
    manifest = json.loads((smoke_results / "manifest.json").read_text())
    assert manifest["corpus"]["sha256"] and manifest["corpus"]["n_bytes"] > 0
    assert manifest["versions"]["torch"] and set(manifest["runs"]) == {r.run_id for r in plan_runs(SMOKE)}
    assert all(v["seconds"] > 0 and v["threads"] >= 1 for v in manifest["runs"].values())
    assert all(v["threads"] >= 1 for v in manifest["pretrain"].values())
    session = manifest["sessions"][0]
    assert session["only"] is None and session["wall_seconds"] >= sum(v["seconds"] for v in manifest["runs"].values())
    reports = sorted(p.stem for p in (smoke_results / "prune_reports").glob("*.json"))
    assert len(reports) == 2 * (2 + 1 + 1) * 5  # every pruned run, not the controls
    rep = json.loads((smoke_results / "prune_reports" / "smoke-llama-l-depth-0.136-seed0.json").read_text())
    assert rep["method"] == "depth" and len(rep["scores"]) == 5 and rep["removed"]


def test_rerun_skips_finished_runs(smoke_results, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(smoke_results, out)
    before = json.loads((out / "manifest.json").read_text())["runs"]
    stamp = (out / "checkpoints.csv").stat().st_mtime_ns
    run("smoke", out, progress=False)
    # nothing retrained: no run's record changed and the table was not rewritten; the restart is a session
    after = json.loads((out / "manifest.json").read_text())
    assert after["runs"] == before
    assert len(after["sessions"]) == len(json.loads((smoke_results / "manifest.json").read_text())["sessions"]) + 1
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
    cmd = [
        sys.executable,
        "-m",
        "p2law.cli",
        "run",
        "--profile",
        "smoke",
        "--out",
        str(out),
        "--only",
        model,
        "--quiet",
    ]
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


@pytest.mark.parametrize("method, sharding", [("width", "ddp"), ("2:4", "fsdp2")])
def test_a_sweep_under_torchrun_writes_what_one_process_writes(smoke_results, tmp_path, method, sharding):
    """Two processes (torchrun, gloo) run the same sweep: rank 0 alone writes the reports, the manifest and
    the table, and the rows match the single-process sweep's (same global batch). Under FSDP2 with 2:4 each
    rank prunes with SparseGPT by itself and keeps its shard of its own mask: the rows match only if both
    ranks found the same masks (pruning is deterministic on every rank)."""
    out = tmp_path / "two"
    (out / "_cache").mkdir(parents=True)
    shutil.copytree(smoke_results / "_cache" / "bases", out / "_cache" / "bases")  # post-training only
    for tok in (smoke_results / "_cache").glob("tokenizer-*.json"):
        shutil.copy(tok, out / "_cache" / tok.name)
    run_id = next(r.run_id for r in plan_runs(SMOKE) if r.method == method)
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    from train_fixtures import run_group  # a timeout kills torchrun's workers too

    done = run_group(
        [
            str(torchrun),
            "--nproc_per_node",
            "2",
            "--master_port",
            str(29533 + (sharding == "fsdp2")),
            "-m",
            "p2law.cli",
            "run",
            "--profile",
            "smoke",
            "--out",
            str(out),
            "--only",
            run_id,
            "--sharding",
            sharding,
            "--quiet",
        ],
        env=env,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    two = pd.read_csv(out / "checkpoints.csv")
    one = pd.read_csv(smoke_results / "checkpoints.csv")
    one = one[one.run_id == run_id].reset_index(drop=True)
    assert list(two.run_id.unique()) == [run_id] and list(two.step) == list(one.step)  # one copy of each row
    np.testing.assert_allclose(two.eval_loss, one.eval_loss, atol=2e-3)
    assert two.rate.iloc[0] == pytest.approx(one.rate.iloc[0])
    assert set(json.loads((out / "manifest.json").read_text())["runs"]) == {run_id}
    assert [p.stem for p in (out / "prune_reports").glob("*.json")] == [run_id]
    assert not list(out.rglob("*.tmp"))  # no half-written file left behind by a second writer


def test_bad_input_is_named(tmp_path):
    with pytest.raises(ValueError, match="unknown profile 'huge'; valid profiles: smoke, toy, smollm, paper"):
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
    printed = capsys.readouterr().out
    assert "profile paper: 48 runs" in printed
    # N0 of each model, counted from its published architecture on the meta device and printed
    for name, m in paper.PAPER_MODELS.items():
        assert plan["bases"][name]["n0"] == m.n_params
        assert re.search(rf"base {re.escape(name)} +N0= *{m.n_params:,}  from {m.hub_id}", printed)
    assert plan["bases"]["Llama-3.1-8B"]["n0"] == 8_030_261_248  # the hub's model card says 8.03B
    assert first["steps"] == 500_000_000 // (128 * 2048)


@pytest.mark.parametrize(
    "typo, message",
    [
        ({"hidden_size": 4096}, r"Llama-3.2-1B: its published architecture gives 2\.\d\dB parameters, 2\.\d\dx the 1B"),
        (
            {"qkv_bias": True},
            r"Llama-3.2-1B: a model built from p2law.paper's architecture has 1,235,814,400 parameters",
        ),
    ],
)
def test_paper_dry_run_rejects_a_mistyped_architecture(monkeypatch, typo, message):
    """A wrong width moves the count far from the name's 1B; a wrong bias flag splits the config from the formula."""
    wrong = dataclasses.replace(paper.PAPER_MODELS[PAPER_MODEL], **typo)
    monkeypatch.setitem(paper.PAPER_MODELS, PAPER_MODEL, wrong)
    with pytest.raises(ValueError, match=message):
        run("paper", dry_run=True)


def test_toy_plan_counts_runs_tokens_and_flops():
    """The plan's estimate is its FLOP count over a measured rate (the rate depends on the machine's load,
    so the minutes are printed, not asserted; benchmarks/bench_train.py measures the real throughput)."""
    profile = get_profile("toy")
    plan = run("toy", dry_run=True)
    assert plan["n_runs"] == 2 * (2 + 2 + 2) * 8  # every model with two data-order seeds
    n0 = {r["model"]: r["n0"] for r in plan["runs"]}
    assert len(n0) == 6
    eval_tokens = profile.n_eval_blocks * profile.seq_len * (profile.n_checkpoints + 1)
    flops = sum(6 * n * profile.pretrain_tokens_per_param * n for n in n0.values())
    flops += sum(6 * r["n0"] * r["tokens"] + 2 * r["n0"] * eval_tokens for r in plan["runs"])
    assert plan["estimated_flops"] == pytest.approx(flops)
    assert all(r["tokens"] == int(profile.post_tokens_per_param * r["n0"]) for r in plan["runs"])
    assert plan["estimated_seconds"] == pytest.approx(flops / plan["assumed_flops_per_second"])


def test_a_finished_sweep_calibrates_the_plan():
    """The dry run's estimate uses the FLOP rate an earlier sweep's manifest measured, counted as the plan
    counts FLOPs, and only from entries at the same thread count."""
    toy = get_profile("toy")
    ev = toy.n_eval_blocks * toy.seq_len * (toy.n_checkpoints + 1)
    manifest = {
        "profile": {"name": "toy"},
        "pretrain": {"a": {"n_params": 1000, "tokens": 6000, "seconds": 2.0, "threads": 2}},
        "runs": {
            "a-depth": {"n0": 1000, "tokens": 500, "seconds": 3.0, "threads": 2},
            "b-depth": {"n0": 10**6, "tokens": 10**6, "seconds": 1.0, "threads": 1},
        },
    }
    got = achieved_flops_per_second(manifest, toy, threads=2)
    flops = 6 * 1000 * 6000 + 6 * 1000 * 500 + 2 * 1000 * ev
    assert got == {"flops_per_second": pytest.approx(flops / 5.0), "entries": 2, "seconds": 5.0}
    assert achieved_flops_per_second(manifest, toy, threads=None)["entries"] == 3
    assert achieved_flops_per_second(manifest | {"profile": {"name": "smoke"}}, toy) is None
    assert achieved_flops_per_second({"profile": {"name": "toy"}}, toy) is None
    plan = plan_sweep(toy, calibration=got)
    assert plan["estimated_seconds"] == pytest.approx(plan["estimated_flops"] / got["flops_per_second"])
    assert "2 measured pretrainings and runs" in plan["estimate_basis"]


def test_the_dry_run_reads_the_calibration_from_the_out_folder(tmp_path, capsys):
    toy = get_profile("toy")
    entry = {"n0": 10**6, "tokens": 10**6, "seconds": 60.0, "threads": torch_threads()}
    (tmp_path / "manifest.json").write_text(json.dumps({"profile": toy.to_dict(), "runs": {"r": entry}}))
    plan = run("toy", tmp_path, dry_run=True)
    assert "1 measured pretrainings and runs of an earlier sweep" in capsys.readouterr().out
    assert plan["assumed_flops_per_second"] == pytest.approx(
        (6e12 + 2e6 * toy.n_eval_blocks * toy.seq_len * (toy.n_checkpoints + 1)) / 60.0
    )
    assert not (tmp_path / "checkpoints.csv").exists()  # a dry run writes nothing


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


# ---- the paper profile's real path, on a tiny local stand-in for Llama-3.2-1B (no download) ----------------

PAPER_MODEL = "Llama-3.2-1B"


@pytest.fixture(scope="module")
def local_llama(tmp_path_factory):
    """A folder laid out like a hub snapshot (model + tokenizer via save_pretrained) and a local jsonl corpus.

    The model is a 4-layer, 64-wide Llama, trained for a few seconds rather than left at its random
    initialisation: a random model's loss sits near ln(vocab) whatever is cut from it, so "pruning hurts"
    would not be testable on it (trained, its loss is about 3.2 nats against ln 320 = 5.8).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from p2law.lab.data import load_corpus, prepare, train_tokenizer
    from p2law.lab.train import TrainConfig, post_train

    root = tmp_path_factory.mktemp("local_llama")
    docs = [d[:4000] for d in load_corpus("stdlib:80").documents]
    corpus = root / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    tokenizer = train_tokenizer(docs, 320)
    folder = root / PAPER_MODEL
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
            tie_word_embeddings=True,
            max_position_embeddings=128,
        )
    )
    data = prepare(str(corpus), 32, None, 0, 16, 16, tokenizer=tokenizer).train_data
    post_train(
        model, data, TrainConfig(total_tokens=600 * 16 * 32, lr=5e-3, batch_size=16, n_checkpoints=1), progress=False
    )
    model.save_pretrained(folder)
    return folder, corpus


def tiny_paper_profile(folder, corpus):
    """The paper profile with its model pointed at ``folder`` and everything else shrunk to seconds."""
    return dataclasses.replace(
        get_profile("paper"),
        corpus=str(corpus),
        seq_len=32,
        n_calibration=16,
        calibration_batch=8,
        n_eval_blocks=32,
        eval_batch_size=16,
        batch_size=8,
        post_tokens={PAPER_MODEL: 16 * 8 * 32},
        n_checkpoints=4,
        n_rates=2,
        lr=3e-4,
        model_paths={PAPER_MODEL: str(folder)},
    )


def test_paper_profile_runs_end_to_end_on_a_local_model(local_llama, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from p2law.lab import train
    from p2law.lab.data import prepare
    from p2law.lab.models import count_params
    from p2law.lab.train import evaluate

    folder, corpus = local_llama
    profile = tiny_paper_profile(folder, corpus)
    out = tmp_path / "paper"
    trained, post_train = {}, train.post_train

    def keep_weights(model, *args, **kwargs):  # the sweep deletes a finished run's state: look at the model
        rows = post_train(model, *args, **kwargs)
        trained[kwargs["rows_meta"]["run_id"]] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return rows

    monkeypatch.setattr(train, "post_train", keep_weights)
    run(profile, out, only=[PAPER_MODEL], progress=False)

    df = table.read(out / "checkpoints.csv")
    planned = {r.run_id for r in plan_runs(profile) if r.model == PAPER_MODEL}
    assert set(df.run_id) == planned and len(planned) == 2 + 2 + 1 + 1
    for run_id, g in df.groupby("run_id"):
        assert len(g) == profile.n_checkpoints + 1, run_id
        assert g.tokens.iloc[-1] == profile.post_tokens[PAPER_MODEL]

    # L0 and N0 are the local model's own: its weights, its tokenizer, the held-out blocks of the token store
    tokenizer = AutoTokenizer.from_pretrained(folder)
    budget = 16 * 8  # steps x batch size: the blocks a run reads, each once
    bundle = prepare(
        str(corpus),
        profile.seq_len,
        None,
        profile.seed,
        profile.n_eval_blocks,
        profile.n_calibration,
        tokenizer=tokenizer,
        cache_dir=out / "_cache",
        train_blocks=budget,
    )
    unpruned = AutoModelForCausalLM.from_pretrained(folder)
    l0 = evaluate(unpruned, bundle.train_data.eval, profile.eval_batch_size)
    assert df.l0.to_numpy() == pytest.approx(l0, abs=1e-6)
    assert l0 < 0.8 * np.log(len(tokenizer))  # the trained weights were loaded, not a fresh initialisation
    assert (df.n0 == count_params(unpruned)).all()

    control = df[df.method == "none"]
    assert control.eval_loss.iloc[0] == pytest.approx(l0, abs=1e-6)
    assert (control.rate == 0).all() and (control.n == control.n0).all()
    for run_id, g in df[df.method != "none"].groupby("run_id"):
        assert 0 < g.rate.iloc[0] < 1, run_id
        assert g.eval_loss.iloc[0] > l0, run_id  # pruning hurts
        assert g.eval_loss.iloc[-1] < g.eval_loss.iloc[0], run_id  # and post-training recovers some of it

    # after post-training, every 2:4-pruned matrix still has at least two zeros in each group of four inputs
    weights = trained[f"{PAPER_MODEL}-2of4"]
    pruned = [k for k in weights if re.fullmatch(r"model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.weight", k)]
    assert len(pruned) == 4 * 7
    for name in pruned:
        w = weights[name]
        assert ((w.reshape(w.shape[0], -1, 4) == 0).sum(-1) >= 2).all(), name
    assert not list((out / "_cache" / "state").glob("*/meta.json"))  # finished runs' states are deleted

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["pretrain"][PAPER_MODEL]["source"] == str(folder)
    assert manifest["pretrain"][PAPER_MODEL]["l0"] == pytest.approx(l0, abs=1e-6)
    assert manifest["corpus"]["vocab_size"] == len(tokenizer)

    # the post-training blocks came from the token store, which holds exactly the budget: nothing repeats
    stores = list((out / "_cache" / "token_store").glob("*/index.json"))
    assert len(stores) == 1
    index = json.loads(stores[0].read_text())
    assert index["splits"]["post_train"]["blocks"] == budget and index["repeats"] == 0
    assert manifest["corpus"]["streamed"] and manifest["corpus"]["token_store"] == str(stores[0].parent)
    assert manifest["corpus"]["train_blocks"] == budget

    stamp = (out / "checkpoints.csv").stat().st_mtime_ns
    run(profile, out, only=[PAPER_MODEL], progress=False)  # every run finished: nothing is loaded or retrained
    assert (out / "checkpoints.csv").stat().st_mtime_ns == stamp


def test_paper_budget_beyond_the_corpus_fails_instead_of_repeating(local_llama, tmp_path):
    from transformers import AutoTokenizer

    from p2law.lab.token_store import CorpusTooSmallError

    folder, corpus = local_llama
    tokenizer = AutoTokenizer.from_pretrained(folder)
    texts = [json.loads(line)["text"] for line in corpus.read_text().splitlines()]
    corpus_blocks = sum(len(ids) + 1 for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]) // 32
    steps = corpus_blocks // 8 + 1  # one batch more than the whole corpus, every split together, holds
    profile = tiny_paper_profile(folder, corpus)
    profile = dataclasses.replace(profile, post_tokens={PAPER_MODEL: steps * 8 * 32})
    control = next(r.run_id for r in plan_runs(profile) if r.model == PAPER_MODEL and r.method == "none")
    out = tmp_path / "paper"
    with pytest.raises(
        CorpusTooSmallError,
        match=rf"post_train: [\d,]+ of {steps * 8:,} blocks .*Nothing is "
        "repeated",
    ):
        run(profile, out, only=[control], progress=False)
    assert not (out / "checkpoints.csv").exists()


def test_paper_bad_input_model_path_is_named_before_writing(tmp_path, capsys):
    out = tmp_path / "out"
    missing = tmp_path / "no-such-model"
    profile = dataclasses.replace(get_profile("paper"), model_paths={PAPER_MODEL: str(missing)})
    expected = f"model path for {PAPER_MODEL}: {re.escape(str(missing))} does not exist"
    for dry_run in (False, True):
        with pytest.raises(FileNotFoundError, match=expected):
            run(profile, out, dry_run=dry_run)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty has no config.json"):
        run(dataclasses.replace(profile, model_paths={PAPER_MODEL: str(tmp_path / "empty")}), out)
    with pytest.raises(ValueError, match=r"model_paths names \['Llama-9B'\], which are not among the paper's"):
        run(dataclasses.replace(profile, model_paths={"Llama-9B": str(tmp_path)}), out)
    with pytest.raises(ValueError, match="profile 'smoke' pretrains its own bases"):
        run(dataclasses.replace(SMOKE, model_paths={PAPER_MODEL: str(tmp_path)}), out)

    capsys.readouterr()
    assert cli_main(["run", "--profile", "paper", "--out", str(out), "--model-path", f"{PAPER_MODEL}={missing}"]) == 2
    assert re.search(expected, capsys.readouterr().err)
    assert cli_main(["run", "--profile", "paper", "--out", str(out), "--model-path", str(missing)]) == 2
    assert "--model-path expects NAME=PATH" in capsys.readouterr().err
    assert not out.exists()


def test_a_second_sweep_into_the_same_folder_is_refused(tmp_path, capsys):
    """Two sweeps writing one folder would interleave their rows; the second is stopped before it writes."""
    from p2law.lab.experiment import SweepBusyError, sweep_lock

    out = tmp_path / "out"
    with sweep_lock(out):  # what a sweep under way holds
        with pytest.raises(SweepBusyError, match=f"already running a sweep into {re.escape(str(out))}"):
            run("smoke", out, progress=False)
        assert cli_main(["run", "--profile", "smoke", "--out", str(out), "--quiet"]) == 2
        assert "p2law run: error: another process is already running a sweep" in capsys.readouterr().err
    assert [p.name for p in out.rglob("*") if p.is_file() and p.suffix != ".lock"] == []  # nothing written


def test_a_preempted_sweep_exits_with_the_signal_status_and_one_line(tmp_path, capsys, monkeypatch):
    """``p2law run`` turns post_train's Preempted (state saved, see test_train.py) into 128 + the signal."""
    import signal

    from p2law.lab import experiment
    from p2law.lab.train import Preempted

    def preempted_run(*args, **kwargs):
        raise Preempted(
            "r: stopped by SIGTERM at step 5 of 12 (2 checkpoint rows written); its state is saved "
            "in s; run it again to resume",
            signal.SIGTERM,
            5,
        )

    monkeypatch.setattr(experiment, "run", preempted_run)
    assert cli_main(["run", "--profile", "smoke", "--out", str(tmp_path), "--quiet"]) == 143
    err = capsys.readouterr().err
    assert err.startswith("p2law run: preempted: r: stopped by SIGTERM at step 5") and err.count("\n") == 1


def test_a_signal_while_pruning_stops_at_the_first_step_and_the_restart_skips_sparsegpt(
    local_llama, tmp_path, monkeypatch
):
    """SIGTERM arriving while SparseGPT runs (outside post_train) is caught by the sweep: the run stops at
    its first step with the pruned state (masks included) saved, and the restart takes the masks from it
    instead of pruning again, ending with the rows of an uninterrupted run."""
    from p2law.lab import experiment
    from p2law.lab.train import Preempted

    folder, corpus = local_llama
    profile = tiny_paper_profile(folder, corpus)
    run_id = f"{PAPER_MODEL}-2of4"
    run(profile, tmp_path / "whole", only=[run_id], progress=False)
    whole = pd.read_csv(tmp_path / "whole" / "checkpoints.csv")

    prune = experiment.PRUNERS["2:4"]

    def signalled_while_pruning(*args):
        pruned = prune(*args)
        os.kill(os.getpid(), signal.SIGTERM)  # delivered now, handled by the sweep's handler
        return pruned

    monkeypatch.setitem(experiment.PRUNERS, "2:4", signalled_while_pruning)
    out = tmp_path / "stopped"
    with pytest.raises(Preempted, match=rf"{run_id}: stopped by SIGTERM at step 0") as stopped:
        run(profile, out, only=[run_id], progress=False)
    assert stopped.value.exit_code == 143
    state = out / "_cache" / "state" / run_id
    assert json.loads((state / "meta.json").read_text())["step"] == 0
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the sweep put the default back

    def must_not_prune(*args):
        raise AssertionError("SparseGPT ran again although the state holds the masks")

    monkeypatch.setitem(experiment.PRUNERS, "2:4", must_not_prune)
    run(profile, out, only=[run_id], progress=False)
    resumed = pd.read_csv(out / "checkpoints.csv")
    pd.testing.assert_frame_equal(resumed, whole, check_exact=False, atol=1e-6)
    assert not state.exists()  # finished: its training state is deleted


def test_the_plan_refuses_or_moves_duplicate_rates_and_matches_rates_across_sizes():
    from p2law.lab.schedule import RatePlanError

    toy = get_profile("toy")
    runs = plan_runs(toy)
    for (model, method, seed), group in pd.DataFrame([r.__dict__ for r in runs]).groupby(["model", "method", "seed"]):
        if method in ("depth", "width"):
            assert group.planned_rate.nunique() == len(group) == 3, (model, method)
    # matched across sizes: each rank's achieved rho within 0.05 (depth) / 0.03 (width) in a family
    frame = pd.DataFrame([r.__dict__ for r in runs if r.method in ("depth", "width") and r.seed == 0])
    frame["rank"] = frame.groupby(["model", "method"]).planned_rate.rank()
    spread = frame.groupby(["family", "method", "rank"]).planned_rate.agg(lambda x: x.max() - x.min())
    assert (spread[spread.index.get_level_values("method") == "depth"] <= 0.05).all()
    assert (spread[spread.index.get_level_values("method") == "width"] <= 0.03).all()
    # two targets that round to one layer count: the second moves to the next count and says so
    close = dataclasses.replace(toy, depth_rates=(0.10, 0.11, 0.3))
    moved = [r for r in plan_runs(close) if r.method == "depth" and r.model == "toy-llama-s" and r.seed == 0]
    assert [r.amount for r in moved] == [1, 2, 3] and "moved up" in moved[1].note
    # rates no model can give distinctly, or that cannot be matched across sizes, are refused
    with pytest.raises(RatePlanError, match="no distinct amount left"):
        plan_runs(dataclasses.replace(toy, depth_rates=(0.7, 0.75, 0.8)))
    with pytest.raises(RatePlanError, match="differ by more than"):
        plan_runs(dataclasses.replace(toy, depth_rates=(0.1, 0.2, 0.36)))


def test_a_loaded_profile_sweeps_a_checkpoint_of_your_own_with_a_few_runs_repeated(local_llama, tmp_path):
    """The ``loaded`` scale (the smollm profile's): bases named by Checkpoint, each with its own tokenizer and
    the token store; ``repeats`` gives a second seed to the control only."""
    from p2law.lab.profiles import Checkpoint

    folder, corpus = local_llama
    paper_like = tiny_paper_profile(folder, corpus)
    profile = dataclasses.replace(
        get_profile("smollm"),
        corpus=str(corpus),
        checkpoints=(Checkpoint("mine", "llama", str(folder), "Llama-3.2-1B"),),
        **{
            k: getattr(paper_like, k)
            for k in ("seq_len", "n_calibration", "calibration_batch", "n_eval_blocks", "eval_batch_size", "lr")
        },
        batch_size=8,
        post_tokens={"mine": 6 * 8 * 32},
        n_checkpoints=3,
        warmup_steps=1,
        depth_rates=(0.2, 0.45),
        width_rates=(0.25, 0.5),
        n_rates=2,
        repeats=("none",),
    )
    plan = plan_runs(profile)
    assert [(r.method, r.seed) for r in plan if r.seed == 1] == [("none", 1)]  # only the control is repeated
    assert len(plan) == 2 + 2 + 1 + 1 + 1
    controls = [r.run_id for r in plan if r.method == "none"]
    depth = next(r for r in plan if r.method == "depth")
    out = tmp_path / "mine"
    run(profile, out, only=[*controls, depth.run_id], progress=False)

    df = table.read(out / "checkpoints.csv")
    assert set(df.run_id) == {*controls, depth.run_id}
    assert sorted(df[df.method == "none"].seed.unique()) == [0, 1]
    first, second = (df[df.run_id == c].sort_values("tokens") for c in controls)
    assert first.eval_loss.iloc[0] == second.eval_loss.iloc[0]  # the same model and eval blocks at D = 0
    assert not np.allclose(first.eval_loss.iloc[1:], second.eval_loss.iloc[1:])  # another data order after
    assert df[df.run_id == depth.run_id].rate.iloc[0] == pytest.approx(depth.planned_rate)
    pre = json.loads((out / "manifest.json").read_text())["pretrain"]["mine"]
    assert pre["kind"] == "folder" and pre["source"] == str(folder) and pre["load_seconds"] >= 0


def test_profile_repeats_must_name_runs():
    with pytest.raises(ValueError, match=r"repeats \['width'\] are not"):
        dataclasses.replace(get_profile("smoke"), repeats=("none", "width"))
    smoke = get_profile("smoke")
    only_depth = dataclasses.replace(smoke, repeats=("depth#2",))
    repeated = [r for r in plan_runs(only_depth) if r.seed != smoke.seeds[0]]
    # each repeated run is its model's second-lowest depth rate (Table 1's rates differ by mirrored model)
    assert repeated and all(
        r.method == "depth" and r.target_rate == smoke.rates(r.mirrors, "depth")[1] for r in repeated
    )
    assert len(plan_runs(smoke)) > len(plan_runs(only_depth))  # an empty repeats repeats every run
