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
    assert main(["plan", str(path), "--threshold", "0.01", "--n0", "2e9", "--rho", "0.3", "--l0", "2.2",
                 "--bootstrap", "5"]) == 0
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
