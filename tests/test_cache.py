"""p2law.analysis.cache: slow tables are computed once per (table, function, parameters, analysis code), and
no page reads another page's files (the verdict page asks the library for the fits instead)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from p2law.analysis import cache

ROOT = Path(__file__).resolve().parents[1]
CALLS: list[dict] = []


@cache.cached
def slow_mean(table, column="loss", scale=1.0, cache_dir=None):
    CALLS.append({"column": column, "scale": scale})
    return table[column].mean() * scale, table.copy()


@pytest.fixture
def table():
    CALLS.clear()
    return pd.DataFrame({"run_id": ["a", "a", "b"], "tokens": [1, 2, 3], "loss": [3.0, 2.5, 2.25]})


def test_same_table_and_parameters_hit_the_cache(table, tmp_path):
    first = slow_mean(table, scale=2.0, cache_dir=tmp_path)
    again = slow_mean(table.copy(), scale=2, cache_dir=tmp_path)  # 2 == 2.0; a copy has the same rows
    assert len(CALLS) == 1 and again[0] == first[0] == 2 * table["loss"].mean()
    pd.testing.assert_frame_equal(again[1], table)  # lossless: dtypes and every digit kept
    assert slow_mean(table, column="loss", scale=1.0, cache_dir=tmp_path)[0] == slow_mean(table, cache_dir=tmp_path)[0]
    assert len(CALLS) == 2  # defaults spelled out or left out: one entry
    assert len(list(tmp_path.glob("slow_mean-*.pkl"))) == 2
    slow_mean(table, scale=3.0)  # no cache folder: computed every time, nothing written
    slow_mean(table, scale=3.0)
    assert len(CALLS) == 4 and len(list(tmp_path.glob("*.pkl"))) == 2


def test_a_changed_row_parameter_or_analysis_code_misses(table, tmp_path, monkeypatch):
    slow_mean(table, cache_dir=tmp_path)
    changed = table.copy()
    changed.loc[2, "loss"] = 2.26
    assert slow_mean(changed, cache_dir=tmp_path)[0] == changed["loss"].mean()
    slow_mean(table, scale=0.5, cache_dir=tmp_path)
    slow_mean(table, column="tokens", cache_dir=tmp_path)
    assert len(CALLS) == 4
    monkeypatch.setattr(cache, "code_version", lambda: "other code")
    slow_mean(table, cache_dir=tmp_path)
    assert len(CALLS) == 5
    # the code version covers the analysis side and the table contract
    assert {"cache.py", "results.py", "grids.py", "fit.py", "table.py"} <= {p.name for p in cache._CODE}


def test_the_fingerprint_sees_rows_and_dtypes_not_the_index(table):
    assert cache.fingerprint(table) == cache.fingerprint(table.set_axis([7, 8, 9]))
    assert cache.fingerprint(table) != cache.fingerprint(table.iloc[::-1].reset_index(drop=True))
    assert cache.fingerprint(table) != cache.fingerprint(table.astype({"tokens": float}))


def test_a_corrupt_entry_is_computed_again(table, tmp_path):
    slow_mean(table, cache_dir=tmp_path)
    (entry,) = tmp_path.glob("slow_mean-*.pkl")
    entry.write_bytes(entry.read_bytes()[:20])  # a truncated write, or a file from elsewhere
    assert slow_mean(table, cache_dir=tmp_path)[0] == table["loss"].mean()
    assert len(CALLS) == 2
    slow_mean(table, cache_dir=tmp_path)  # and the entry is whole again
    assert len(CALLS) == 2 and not list(tmp_path.glob("*.tmp"))


TWO_PAGES = """
import sys, time
from pathlib import Path
import pandas as pd
from p2law.analysis.cache import cached

@cached
def slow(table, cache_dir=None):
    with open(sys.argv[2], "a") as log:
        log.write("computed\\n")
    time.sleep(2)
    return table["x"].sum()

print(slow(pd.DataFrame({"x": [1, 2, 3]}), cache_dir=Path(sys.argv[1])))
"""


def test_two_processes_needing_one_entry_compute_it_once(tmp_path):
    script = tmp_path / "page.py"
    script.write_text(textwrap.dedent(TWO_PAGES))
    log = tmp_path / "log"
    env_path = str(Path(cache.__file__).parents[2])  # the p2law under test
    pages = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "cache"), str(log)],
            stdout=subprocess.PIPE,
            text=True,
            env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60)[0].strip() for p in pages]
    assert [p.returncode for p in pages] == [0, 0]
    assert outputs == ["6", "6"]
    assert log.read_text() == "computed\n"  # the second waited on the entry's lock and read it


def _page_folder_reads(source: str, page: str) -> list[str]:
    """Calls in a page's source that name a page folder other than its own (``PAGE``) or read a saved book file."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        page_arg = {"book_dir": 1, "save_table": 2, "save_figure": 2}.get(func)
        if page_arg is not None and len(node.args) > page_arg:
            arg = node.args[page_arg]
            if not (
                isinstance(arg, ast.Name) and arg.id == "PAGE" or isinstance(arg, ast.Constant) and arg.value == page
            ):
                found.append(ast.get_source_segment(source, node))
        if func.startswith("read_") and "book" in "".join(ast.get_source_segment(source, a) for a in node.args):
            found.append(ast.get_source_segment(source, node))
    return found


def test_no_page_reads_another_pages_files():
    """A page reads the checkpoint table and asks the library (p2law.analysis.results, cached); it never
    opens what another page saved, which would need that page to have run first."""
    for path in sorted((ROOT / "notebooks").glob("*.py")):
        assert _page_folder_reads(path.read_text(encoding="utf-8"), path.stem) == [], path.name
    # what the verdict page used to do is caught
    old = 'def saved(page, name):\n    return pd.read_csv(bs.book_dir(out, page) / f"{name}.csv")\n'
    assert len(_page_folder_reads(old, "verdict")) == 2
    assert _page_folder_reads('pd.read_csv(out / "book" / "fitting" / "table2_ours.csv")', "verdict")


def test_the_verdict_page_asks_for_the_fits_with_the_parameters_of_the_pages_it_judges():
    """Same library call, same parameters: the verdict page reads the other pages' fits from the cache
    instead of fitting them again (at every profile: the pages' cost settings default to the profile's)."""
    from p2law.lab.profiles import PROFILE_NAMES, get_profile

    def parameters(page: str, profile: str) -> dict:
        """The page's parameters cell run at ``profile``, then its lines that fill in the profile's defaults."""
        source = (ROOT / "notebooks" / f"{page}.py").read_text(encoding="utf-8")
        cell = source.split('# %% tags=["parameters"]\n', 1)[1].split("# %%", 1)[0]
        values = {"get_profile": get_profile}
        exec(cell + f"profile = {profile!r}\n", values)
        defaults = [
            line for line in source.splitlines() if re.match(r"(huber_start|n_bootstrap) = .*get_profile", line)
        ]
        assert len(defaults) == ("huber_start" in values) + ("n_bootstrap" in values), page  # each resolved once
        exec("\n".join(defaults), values)
        return values

    assert get_profile("smoke").huber_start == "lm" and get_profile("smoke").n_bootstrap == 3  # smoke: cheap fits
    for profile in PROFILE_NAMES:
        verdict = parameters("verdict", profile)
        fitting, general, planning = (parameters(p, profile) for p in ("fitting", "generalization", "planning"))
        for name in ("huber_start", "max_starts"):
            assert verdict[name] == fitting[name] == general[name], (profile, name)
        assert verdict["n_bootstrap"] == general["n_bootstrap"] == planning["n_bootstrap"], profile
        assert verdict["token_fraction"] == general["token_fraction"], profile
        assert verdict["form_max_starts"] == general["form_max_starts"], profile
        assert verdict["plan_threshold"] == planning["threshold"], profile
        for page in (fitting, general, planning):  # the rest: the library's defaults, which the verdict page uses
            assert page["n_unit"] == page["d_unit"] == 1e6 and page["seed"] == 0 and page.get("level", 0.9) == 0.9
            assert page.get("form", "L1") == "L1" and list(page.get("fitters", ["lm", "huber-log"])) == [
                "lm",
                "huber-log",
            ]
        assert fitting["curve_fitter"] == planning["fitter"] == "lm"
        assert (verdict["huber_start"], verdict["n_bootstrap"]) == (
            get_profile(profile).huber_start,
            get_profile(profile).n_bootstrap,
        )


def test_the_code_version_covers_every_module_the_cached_results_import():
    """Importing p2law.analysis.results in a fresh interpreter loads exactly the modules _CODE hashes: a
    new import (a result computed by a module outside the hash) fails here, as does a stale entry."""
    import subprocess
    import sys

    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, p2law.analysis.results; "
            "print('\\n'.join(sorted(m.__file__ for n, m in sys.modules.items() if n.startswith('p2law'))))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert sorted(Path(f).resolve() for f in loaded) == sorted(p.resolve() for p in cache._CODE)
    assert not [p for p in cache._CODE if "verdict" in p.parts]  # the rules read results; editing them refits nothing
