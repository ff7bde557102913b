"""Every book notebook executes with papermill at the smoke profile and writes what its page shows.

The notebooks are those of the session's one build of the book (``smoke_book`` in conftest.py), on the
session's smoke sweep, with the parameters that only change cost turned down. Each notebook saves its
tables (CSV) and figures (PNG) under ``results_dir/book/<page>``; the checks read those files and the
executed notebook.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = [
    "reproduction",
    "pruning",
    "post_training",
    "fitting",
    "generalization",
    "planning",
    "fitting_method",
    "verdict",
    "real_model",
]
# page -> {table: columns it must have}
TABLES = {
    "reproduction": {
        "models": ["our model", "stands in for", "our N0", "paper N0", "size ratio", "our L0"],
        "recipe": ["paper", "ours (smoke)"],
        "splits": ["split", "documents", "tokens", "sha256 of its blocks"],
        "control_drift": ["model", "seed", "L0", "final − L0", "max |L − L0|", "flat"],
        "rate_matching": ["family", "method", "rank", "rates", "spread", "matched"],
    },
    "pruning": {
        "prune_summary": ["run_id", "model", "method", "achieved rate ρ"],
        "coverage": ["family", "method", "curves"],
        "sparsity": ["model", "min sparsity", "max sparsity"],
    },
    "post_training": {
        "trend1": ["family", "method", "model", "relative drop"],
        "trend2_gamma": ["family", "method", "slope k", "γ (paper's sign)"],
    },
    "fitting": {
        "table2_ours": ["family", "method", "form", "fitter", "r2", "huber", "asd"],
        "table4_ours": ["family", "method", "form", "fitter", "r2"],
        "table5_ours": ["family", "form", "method"],
        "table6_ours": ["family", "form", "method", "ours"],
    },
    "generalization": {"table3_ours": ["family", "protocol", "method", "fitter", "r2", "r2 low", "r2 high"]},
    "planning": {
        "budget_ours": ["family", "method", "model", "budget tokens", "low", "high", "measured flattening"],
        "budget_paper": ["model", "method", "rate ρ", "budget tokens"],
    },
    "fitting_method": {
        "lesson1": ["candidate", "R²", "ASD"],
        "lesson2": ["start", "R²", "objective", "converged"],
        "lesson3": ["alpha (fixed)", "SSE"],
    },
    "verdict": {
        "verdicts": [
            "claim",
            "source",
            "paper",
            "ours",
            "verdict",
            "rule",
            "baseline",
            "baseline_value",
            "noise_floor",
        ],
        "trend2_baselines": [
            "family",
            "method",
            "k vs control",
            "γ (ours) vs control",
            "γ (paper L1)",
            "k vs L0",
            "γ (ours) vs L0",
        ],
        "control_share": ["run_id", "control share", "loss above control at the end"],
        "pretraining": ["model", "pretraining tokens", "tokens per parameter", "loss reached (L0)"],
    },
    "real_model": {
        "checkpoint": ["model", "parameters N0", "L0 (nats/token)"],
        "pruning_cost": ["name", "method", "ρ", "loss after pruning"],
        "control_drift": ["model", "seed", "final − L0", "max |L − L0|", "flat"],
        "trend2": ["family", "method", "k vs control", "k vs L0"],
        "generalization": ["split", "method", "law rmse", "baseline rmse"],
        "verdicts": ["claim", "ours", "verdict", "rule", "baseline", "noise_floor"],
    },
}
FIGURES = {
    "reproduction": ["pretraining", "control_drift"],
    "pruning": ["depth_scores", "width_histogram"],
    "post_training": ["curves", "trend2"],
    "fitting": ["predicted_vs_actual"],
    "generalization": ["held_out", "held_out_curves"],
    "planning": ["slopes"],
    "fitting_method": ["lesson1", "lesson3"],
    "verdict": ["trend2_collapse", "ours_vs_paper_law"],
    "real_model": ["layer_similarity", "channel_importance", "curves"],
}


@pytest.fixture(scope="module")
def executed(smoke_book):
    """{name: executed notebook JSON}, from the session's one build of the book."""
    return {
        name: json.loads((smoke_book / "book" / "_executed" / f"{name}.ipynb").read_text(encoding="utf-8"))
        for name in NOTEBOOKS
    }


def test_every_notebook_is_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    for name in NOTEBOOKS:
        assert f"book/_executed/{name}" in toc


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_outputs(executed, smoke_results, name):
    nb = executed[name]
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # figures reach the notebook as PNG: a glued figure is stored under papermill's record key, a shown one
    # under image/png. The page's tables render as HTML.
    png_keys = ("image/png", "application/papermill.record/image/png")
    assert sum(any(k in o.get("data", {}) for k in png_keys) for o in outputs) >= len(FIGURES[name])
    assert any("text/html" in o.get("data", {}) for o in outputs)
    folder = Path(smoke_results) / "book" / name
    for fig in FIGURES[name]:
        path = folder / f"{fig}.png"
        assert path.exists() and path.stat().st_size > 1000, path
    for table, columns in TABLES[name].items():
        df = pd.read_csv(folder / f"{table}.csv")
        assert len(df) > 0, table
        assert set(columns) <= set(df.columns), (table, set(columns) - set(df.columns))
        for col in df.columns:  # verdict columns (✓/×) are booleans, possibly with gaps: count them as 1/0
            values = df[col].dropna()
            if len(values) and values.map(lambda v: isinstance(v, (bool, np.bool_))).all():
                df[col] = df[col].astype(float)
        numbers = df.select_dtypes("number").to_numpy(float)
        if numbers.size:
            assert np.isfinite(numbers).any(), table  # missing fits are NaN, but not every cell
        else:  # a table of words (the verdicts): every cell filled in
            assert df.notna().all().all() and (df.astype(str).apply(lambda c: c.str.strip()) != "").all().all(), table


def test_fitting_tables_cover_what_the_results_hold(executed, smoke_results):
    from p2law.analysis.grids import coverage
    from p2law.book import load_checkpoints

    cov = coverage(load_checkpoints(smoke_results))
    t2 = pd.read_csv(Path(smoke_results) / "book" / "fitting" / "table2_ours.csv")
    present = {(r.family, r.method) for r in cov.itertuples() if r.curves > 0}
    assert {(r.family, r.method) for r in t2.itertuples()} >= present
    assert set(t2["form"]) == {"L1", "L2", "L3"} and set(t2["fitter"]) == {"lm", "huber-log"}
    fitted = t2.dropna(subset=["r2"])
    assert len(fitted) > 0 and np.isfinite(fitted[["r2", "huber", "asd"]].to_numpy(float)).all()
    # each missing score is explained
    assert (t2.loc[t2["r2"].isna(), "note"].fillna("") != "").all()


def test_verdict_page_judges_every_claim_from_the_saved_tables(executed, smoke_results):
    from p2law.analysis import verdict as v

    folder = Path(smoke_results) / "book"
    table = pd.read_csv(folder / "verdict" / "verdicts.csv")
    assert len(table) == 12 and table["claim"].is_unique
    assert set(table["verdict"]) <= {v.CONFIRMED, v.NOT_CONFIRMED, v.NOT_DISTINGUISHABLE, v.NOT_TESTABLE}
    assert table["baseline"].notna().all() and table["rule"].notna().all()  # every row names what it beat
    # the page's Trend 1 verdict is what the rule gives on the checkpoint table
    df = pd.read_csv(Path(smoke_results) / "checkpoints.csv")
    assert table.loc[table["claim"].str.startswith("Trend 1"), "verdict"].iloc[0] == v.trend1_slopes(df)[0].verdict


def test_the_verdict_page_reads_the_fits_of_the_pages_it_judges_from_the_cache(executed, smoke_results):
    """One cache entry per table: the verdict page asked for the fits with the same parameters as the fitting,
    generalization and planning pages (a second entry would mean it refitted with other settings)."""
    entries = sorted(p.name.split("-")[0] for p in (Path(smoke_results) / "cache").glob("*.pkl"))
    assert entries == ["budgets", "forms_held_out", "table2", "table3", "table4", "table6"]


def test_ensure_results_refuses_expensive_profiles(tmp_path):
    from p2law.book import MissingResultsError, ensure_results

    with pytest.raises(MissingResultsError, match="toy"):
        ensure_results("toy", tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()  # refusing writes nothing


def test_ensure_results_runs_one_sweep_for_notebooks_that_start_together(tmp_path, monkeypatch):
    """The book starts notebooks side by side; on an empty smoke folder exactly one sweep runs and every
    notebook reads the finished table, never the first rows a sweep under way has already written."""
    import threading
    import time

    import p2law.lab.experiment as experiment
    from p2law.book import ensure_results
    from p2law.lab.profiles import get_profile
    from p2law.lab.schedule import plan_runs

    sweeps = []

    planned = [r.run_id for r in plan_runs(get_profile("smoke"))]

    def slow_sweep(profile, out, progress=True):
        with experiment.sweep_lock(out):  # held for the whole sweep, as the real run holds it
            sweeps.append(profile)
            (Path(out) / "checkpoints.csv").write_text("run_id\nfirst rows\n")
            time.sleep(0.3)
            (Path(out) / "checkpoints.csv").write_text("run_id\nwhole table\n")
            (Path(out) / "manifest.json").write_text(json.dumps({"runs": {r: {} for r in planned}}))

    monkeypatch.setattr(experiment, "run", slow_sweep)
    seen = []

    def notebook():
        seen.append((ensure_results("smoke", tmp_path / "r") / "checkpoints.csv").read_text())

    notebooks = [threading.Thread(target=notebook) for _ in range(3)]
    for t in notebooks:
        t.start()
    for t in notebooks:
        t.join()
    assert sweeps == ["smoke"]
    assert seen == ["run_id\nwhole table\n"] * 3


@pytest.mark.slow
def test_a_smoke_sweep_stopped_mid_run_is_resumed_not_rendered(smoke_results, tmp_path):
    """A sweep killed half-way leaves a partial table; the book's next build finishes it first."""
    import shutil

    from p2law.book import ensure_results, unfinished_runs

    out = tmp_path / "results"
    shutil.copytree(smoke_results, out, ignore=shutil.ignore_patterns("book", "state"))
    manifest = json.loads((out / "manifest.json").read_text())
    whole = pd.read_csv(out / "checkpoints.csv")
    last = list(manifest["runs"])[-1]
    del manifest["runs"][last]  # killed during its run: the manifest never recorded it
    (out / "manifest.json").write_text(json.dumps(manifest))
    cut = whole[whole.run_id == last].index[len(whole[whole.run_id == last]) // 2 :]
    whole.drop(cut).to_csv(out / "checkpoints.csv", index=False)
    assert unfinished_runs("smoke", out) == ([last], [last])
    ensure_results("smoke", out)
    assert unfinished_runs("smoke", out) == ([], [])
    again = pd.read_csv(out / "checkpoints.csv")
    mine, theirs = (t[t.run_id == last].sort_values("step").reset_index(drop=True) for t in (again, whole))
    pd.testing.assert_frame_equal(mine, theirs, atol=1e-6)


@pytest.mark.slow
def test_a_run_whose_record_was_lost_is_recovered_not_redone(smoke_results, tmp_path):
    """Stopped between a run's last row and the manifest write: the next sweep finds the rows whole, records
    the run as recovered (without retraining it), and the book then counts it as finished."""
    import shutil

    from p2law.book import ensure_results, unfinished_runs

    out = tmp_path / "results"
    shutil.copytree(smoke_results, out, ignore=shutil.ignore_patterns("book", "state"))
    manifest = json.loads((out / "manifest.json").read_text())
    last = list(manifest["runs"])[-1]
    del manifest["runs"][last]
    (out / "manifest.json").write_text(json.dumps(manifest))
    before = (out / "checkpoints.csv").read_bytes()
    assert unfinished_runs("smoke", out) == ([last], [last])
    ensure_results("smoke", out)
    assert unfinished_runs("smoke", out) == ([], [])
    assert json.loads((out / "manifest.json").read_text())["recovered_runs"] == [last]
    assert (out / "checkpoints.csv").read_bytes() == before  # not trained again


def test_tables_show_without_row_numbers_and_a_pages_styler_is_left_as_it_was():
    from p2law.book import table_html

    df = pd.DataFrame({"a": [1.5, 2.0], "b": ["x", "y"]})
    styler = df.style.format({"a": "{:.1f}"})
    assert "<th>0</th>" not in table_html(df) and 'class="p2law-table"' in table_html(df)
    assert "row_heading" not in table_html(styler) and "1.5" in table_html(styler)
    assert "row_heading" in styler.to_html()  # the index is hidden on a copy, not on the page's Styler
    assert "<th>x</th>" in table_html(df.set_index("b"))  # a meaningful index stays


def test_a_half_written_run_stops_the_book_of_an_expensive_profile(tmp_path):
    from p2law.book import MissingResultsError, ensure_results
    from p2law.lab.profiles import get_profile
    from p2law.lab.schedule import plan_runs

    out = tmp_path / "toy"
    out.mkdir()
    first, second = [r.run_id for r in plan_runs(get_profile("toy"))][:2]
    (out / "checkpoints.csv").write_text(f"run_id,step\n{first},0\n{first},10\n{second},0\n")
    (out / "manifest.json").write_text(json.dumps({"runs": {first: {}}}))
    with pytest.raises(MissingResultsError, match=f"unfinished run.*{second}.*p2law run --profile toy"):
        ensure_results("toy", out)
    (out / "checkpoints.csv").write_text(f"run_id,step\n{first},0\n{first},10\n")
    assert ensure_results("toy", out) == out  # whole runs of a sweep run in parts: fine


def test_fit_grid_in_two_processes_equals_one_after_another():
    """The book's fits run in worker processes; the scores, notes and constants are those of a serial run,
    including the huber-log fits that start from their LM optimum and a cell with no curves."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from law_fixtures import synthetic_table

    from p2law.analysis.grids import fit_grid, parallel_map

    df = pd.concat([synthetic_table(seed=1), synthetic_table(method="2:4", seed=2)], ignore_index=True)
    kw = dict(forms=["L1", "L3"], n_unit=1e9, d_unit=1e6, huber_start="lm")
    serial, serial_fits = fit_grid(df, workers=1, **kw)
    parallel, parallel_fits = fit_grid(df, workers=2, **kw)
    pd.testing.assert_frame_equal(serial, parallel)
    assert list(serial_fits) == list(parallel_fits)
    assert (serial["note"] == "no curves").sum() == 4  # width: 2 forms x 2 fitters
    for key, res in serial_fits.items():
        assert (res is None) == (parallel_fits[key] is None)
        if res is not None:
            assert res.params == parallel_fits[key].params
    assert parallel_map(divmod, [(7, 2), (9, 4)], workers=2) == [(3, 1), (2, 1)]


def test_held_out_scores_fits_scores_and_bootstraps_one_cell():
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from law_fixtures import synthetic_table

    from p2law.analysis.grids import held_out_scores
    from p2law.analysis.protocols import SPLITS

    df = synthetic_table(seed=3)
    options = dict(n_unit=1e9, d_unit=1e6, huber_start="lm", token_fraction=0.8, n_bootstrap=3, seed=0, level=0.9)
    rows, fits = held_out_scores(df, "llama", "depth", "model_size", "L1", ["lm", "huber-log"], options)
    assert [r["fitter"] for r in rows] == ["lm", "huber-log"] and set(fits) == {"lm", "huber-log"}
    res, train, test = fits["lm"]
    train_ref, test_ref = SPLITS["model_size"](df)
    assert len(train) == len(train_ref) and len(test) == len(test_ref) == rows[0]["n_held_out"]
    assert rows[0]["r2"] == pytest.approx(res.score(test)["r2"]) and np.isfinite(rows[0]["r2"])
    assert rows[0]["r2 low"] <= rows[0]["r2 high"] and rows[0]["resamples"] == 3
    assert rows[0]["resamples"] + rows[0]["failed refits"] == options["n_bootstrap"]  # every refit accounted for
    # A fit whose held-out prediction is not finite (the law overflows beyond the fitted range) is a noted
    # row without a score, not an exception that stops the page.
    from p2law.analysis.fit import FitResult

    def overflow(self, table):
        raise ValueError("y and y_hat must be finite (found NaN or inf)")

    original = FitResult.score
    FitResult.score = overflow
    try:
        bad, bad_fits = held_out_scores(df, "llama", "depth", "dataset_size", "L1", ["lm"], options)
    finally:
        FitResult.score = original
    assert bad_fits == {} and bad[0]["note"].startswith("held-out prediction: y and y_hat must be finite")
    assert "r2" not in bad[0]
    # A cell the table has no curves for is a noted row per fitter, not an error.
    empty, none = held_out_scores(df, "llama", "width", "model_size", "L1", ["lm"], options)
    assert none == {} and empty[0]["note"] == "split: no curves"
