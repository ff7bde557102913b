import json
import subprocess
import sys

import pandas as pd
from law_fixtures import synthetic_table

from p2law.cli import main


def test_fit_and_plan_commands(tmp_path, capsys):
    path = tmp_path / "checkpoints.csv"
    df = pd.concat([synthetic_table(seed=0), synthetic_table(seed=0).assign(method="none", rate=0.0, run_id="c")])
    df.to_csv(path, index=False)
    assert main(["fit", str(path), "--form", "L1", "--json", str(tmp_path / "fit.json")]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert "left out 180 rows of the rho = 0 control" in captured.err  # the control is never fitted
    assert len(out) == 1 and out[0]["pruning"] == "depth" and out[0]["r2"] > 0.99
    assert json.loads((tmp_path / "fit.json").read_text()) == out
    assert main(["plan", str(path), "--threshold", "0.01"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 9 and all(r["tokens"] > 0 for r in rows)
    assert (
        main(
            ["plan", str(path), "--threshold", "0.01", "--n0", "2e9", "--rho", "0.3", "--l0", "2.2", "--bootstrap", "5"]
        )
        == 0
    )
    (one,) = json.loads(capsys.readouterr().out)
    assert one["n0"] == 2e9 and one["rate"] == 0.3 and one["tokens_interval"][0] <= one["tokens_interval"][1]
    assert main(["plan", str(path), "--threshold", "0.01", "--n0", "2e9"]) == 2
    assert "--n0, --rho and --l0 go together" in capsys.readouterr().err


def test_cli_errors_are_named(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "nope.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    path = tmp_path / "bad.csv"
    synthetic_table().drop(columns=["eval_loss"]).to_csv(path, index=False)
    assert main(["fit", str(path)]) == 2
    assert "missing columns ['eval_loss']" in capsys.readouterr().err


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "p2law.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "run" in out.stdout and "plan" in out.stdout


def test_only_is_validated_and_applies_to_the_dry_run(capsys):
    assert main(["run", "--profile", "paper", "--dry-run", "--only", "Llama-3.2-1B"]) == 0
    out = capsys.readouterr().out
    runs = [line.split()[0] for line in out.splitlines() if line.startswith("  Llama") or line.startswith("  Qwen")]
    assert runs and all(r.startswith("Llama-3.2-1B-") for r in runs) and "profile paper: 8 runs" in out
    assert main(["run", "--profile", "paper", "--dry-run", "--only", "Llama-3.2-1B-2of4"]) == 0
    assert "profile paper: 1 runs" in capsys.readouterr().out
    for only in ("Llama-3.2-1b", "Llama-3.2-1B,nope", ""):  # misspelt, one unknown, empty: nothing runs
        assert main(["run", "--profile", "paper", "--out", "/tmp/p2law-cli-only", "--only", only]) == 2
        err = capsys.readouterr().err
        assert "not a model or run id of this profile" in err
        assert "valid model names: Llama-3.2-1B, Llama-3.2-3B, Llama-3.1-8B" in err and "Llama-3.2-1B-2of4" in err


def test_paper_dry_run_prints_micro_batch_memory_and_gpu_hours(capsys):
    assert main(["run", "--profile", "paper", "--dry-run", "--only", "Llama-3.2-1B", "--gpus", "4"]) == 0
    out = capsys.readouterr().out
    assert (
        "gpu Llama-3.2-1B   on 4 x 80 GB: micro-batch 8 (largest fitting 90% of 80 GB), 4 accumulation steps; "
        "per GPU DDP 64 GB (weights 4.9, grads 9.9, optimizer 9.9, activations 39.3); FSDP2 45 GB"
    ) in out
    assert "67 GPU-hours" in out and "16 B/param" in out
    assert (
        main(
            [
                "run",
                "--profile",
                "paper",
                "--dry-run",
                "--only",
                "Llama-3.1-8B",
                "--micro-batch",
                "2",
                "--gradient-checkpointing",
            ]
        )
        == 0
    )
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("  gpu Llama-3.1-8B"))
    assert "micro-batch 2 (--micro-batch), 16 accumulation steps, activation checkpointing" in line
    assert "DDP" in line and "DOES NOT FIT" in line  # 8B under DDP: 20 B/param = 160 GB
    assert main(["run", "--profile", "paper", "--dry-run", "--micro-batch", "3"]) == 2
    assert "--micro-batch 3 does not divide the 32 sequences per GPU" in capsys.readouterr().err
    assert main(["run", "--profile", "paper", "--dry-run", "--micro-batch", "0"]) == 2
    assert "--micro-batch must be a positive" in capsys.readouterr().err


def test_micro_batch_reaches_every_run_config(monkeypatch):
    from p2law.lab import experiment, schedule
    from p2law.lab.profiles import get_profile

    seen = {}
    monkeypatch.setattr(
        experiment,
        "run",
        lambda *a, **k: seen.update(cfg=schedule.post_train_config(get_profile("smoke"), 10_000), gpus=k["gpus"]),
    )
    assert (
        main(
            [
                "run",
                "--profile",
                "smoke",
                "--out",
                "/tmp/p2law-cli-mb",
                "--micro-batch",
                "2",
                "--gradient-checkpointing",
                "--gpus",
                "8",
            ]
        )
        == 0
    )
    assert seen["cfg"].micro_batch_size == 2 and seen["cfg"].gradient_checkpointing and seen["gpus"] == 8
    assert schedule.TRAIN_OVERRIDES == {}  # restored after the command
    assert schedule.post_train_config(get_profile("smoke"), 10_000).micro_batch_size is None
