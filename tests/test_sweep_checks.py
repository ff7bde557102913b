"""The checks that decide what a sweep can test: each says "no" on data where the property fails."""

import numpy as np
import pandas as pd

from p2law.analysis import sweep_checks as sc


def curve(model, method, rate, seed, l0, losses, n0=1000, family="llama"):
    tokens = np.arange(len(losses)) * 100
    return pd.DataFrame(
        {
            "family": family,
            "model": model,
            "n0": n0,
            "l0": l0,
            "method": method,
            "rate": rate,
            "n": int(n0 * (1 - rate)),
            "tokens": tokens,
            "step": np.arange(len(losses)),
            "train_loss": losses,
            "eval_loss": losses,
            "seed": seed,
            "run_id": f"{model}-{method}-{rate}-seed{seed}",
        }
    )


def test_control_drift_flags_a_base_that_keeps_improving():
    flat = curve("a", "none", 0.0, 0, 3.0, [3.0, 3.002, 2.997, 2.995])
    falling = curve("b", "none", 0.0, 0, 3.0, [3.0, 2.99, 2.98, 2.95], n0=5000)
    got = sc.control_drift(pd.concat([flat, falling]))
    assert list(got["model"]) == ["a", "b"] and list(got["flat"]) == [True, False]
    assert got.loc[1, "final − L0"] == np.float64(2.95 - 3.0)
    assert got.loc[0, "max |L − L0|"] == np.float64(abs(2.995 - 3.0))


def test_rate_matching_flags_spread_and_duplicates():
    rows = [curve("toy-s", "depth", r, 0, 3, [4, 3.5], n0=100) for r in (0.10, 0.20, 0.30)]
    rows += [curve("toy-m", "depth", r, 0, 3, [4, 3.5], n0=200) for r in (0.11, 0.21, 0.37)]
    rows += [curve("toy-s", "depth", 0.10, 1, 3, [4, 3.5], n0=100)]  # a repeat seed is not a duplicate
    got = sc.rate_matching(pd.concat(rows))
    assert list(got["matched"]) == [True, True, False]  # 0.30 vs 0.37 differ by more than 0.05
    dup = [curve("toy-s", "width", r, 0, 3, [4, 3.5], n0=100) for r in (0.125, 0.125, 0.25)]
    dup += [curve("toy-m", "width", r, 0, 3, [4, 3.5], n0=200) for r in (0.125, 0.25, 0.375)]
    for i, d in enumerate(dup[:2]):
        d["run_id"] = f"dup{i}"
    got = sc.rate_matching(pd.concat(dup))
    assert not got["distinct"].any() and not got["matched"].any()


def test_split_table_and_pretrain_curves_read_the_manifest():
    info = {
        "splits": {
            "pretrain": {
                "n_documents": 10,
                "n_bytes": 2e6,
                "blocks": 5,
                "tokens": 640,
                "sha256": "ab" * 32,
                "blocks_dropped_as_seen": 0,
            }
        }
    }
    t = sc.split_table(info)
    assert t.loc[0, "split"] == "pretrain" and t.loc[0, "MB"] == 2.0 and t.loc[0, "tokens"] == 640
    streamed = {  # a token store's record: documents counted per pass of the stream, no bytes
        "documents": {
            "held_out_pass": {"read": 50, "eval": 3, "calibration": 2},
            "post_train_pass": {"post_train": 40},
        },
        "splits": {s: {"blocks": 4, "tokens": 512, "sha256": "cd" * 32} for s in ("post_train", "eval", "calibration")},
    }
    t = sc.split_table(streamed).set_index("split")
    assert t["documents"].to_dict() == {"post_train": 40, "eval": 3, "calibration": 2}
    assert t["MB"].isna().all()
    c = sc.pretrain_curves({"m": {"n_params": 10, "curve": [[0, 6.0], [200, 4.0]]}})
    assert list(c["tokens per parameter"]) == [0.0, 20.0]
