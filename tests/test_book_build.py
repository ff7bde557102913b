"""scripts/build_book.py: the toc drives execution, a raising notebook fails the build, the built book is checked.

The end-to-end test reads the session's one build of the book (conftest.py's ``smoke_book``: the sources
copied to a temporary folder and built there at the smoke profile), so it never touches the working
tree's _build or book/_executed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sphinx_external_toc.parsing import parse_toc_yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "build_book.py"


def _load_build_book():
    spec = importlib.util.spec_from_file_location("build_book", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_book"] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


build_book = _load_build_book()


def _write_book(root: Path, toc: str, notebooks: dict[str, str]) -> None:
    (root / "book").mkdir(parents=True)
    (root / "notebooks").mkdir()
    (root / "_toc.yml").write_text(toc, encoding="utf-8")
    (root / "book" / "intro.md").write_text("# Intro\n", encoding="utf-8")
    for name, source in notebooks.items():
        (root / "notebooks" / f"{name}.py").write_text(source, encoding="utf-8")


TOC = """format: jb-book
root: book/intro
chapters:
  - file: book/_executed/first
  - file: book/other
    sections:
      - file: book/_executed/second.ipynb
"""

NOTEBOOK = """# %% [markdown]
# # A page

# %% tags=["parameters"]
profile = "toy"
results_dir = "results/toy"

# %%
{body}
"""


def test_notebook_jobs_walk_parts_chapters_sections_in_reading_order(tmp_path):
    _write_book(tmp_path, TOC, {"first": "", "second": ""})
    assert build_book.notebook_jobs(tmp_path) == ["first", "second"]
    (tmp_path / "_toc.yml").write_text("chapters: []\n", encoding="utf-8")
    with pytest.raises(build_book.BookBuildError, match="_toc.yml: 'root' key not found"):
        build_book.notebook_jobs(tmp_path)


def test_notebook_jobs_come_from_the_toc_and_need_a_source(tmp_path, capsys):
    _write_book(
        tmp_path,
        TOC,
        {
            "first": NOTEBOOK.format(body="x = 1"),
            "second": NOTEBOOK.format(body="x = 2"),
            "draft": NOTEBOOK.format(body="x = 3"),
        },
    )
    assert build_book.notebook_jobs(tmp_path) == ["first", "second"]
    assert "notebooks/draft.py is not in _toc.yml" in capsys.readouterr().err
    (tmp_path / "notebooks" / "second.py").unlink()
    with pytest.raises(build_book.BookBuildError, match="notebooks/second.py does not exist"):
        build_book.notebook_jobs(tmp_path)


def test_no_notebook_header_orders_the_pages():
    """Pages read no other page's files, so nothing orders them: no jupytext header says what a page needs."""
    for path in (ROOT / "notebooks").glob("*.py"):
        header = path.read_text(encoding="utf-8").split("# ---", 2)[1]
        assert "p2law:" not in header and "needs:" not in header, path.name


def test_run_pages_runs_side_by_side_and_stops_at_the_first_failure(monkeypatch):
    import threading

    together = threading.Barrier(2, timeout=10)  # a and b each wait for the other: they must overlap
    assert build_book.run_pages(["a", "b"], lambda name: together.wait() or len(name), workers=2) == {"a": 1, "b": 1}

    lock, active, log = threading.Lock(), [0], []

    def run_one(name):
        with lock:
            active[0] += 1
            log.append((name, active[0]))
        try:
            if name == "b":
                raise ValueError("b broke")
            return 0.0
        finally:
            with lock:
                active[0] -= 1

    with pytest.raises(ValueError, match="b broke"):
        build_book.run_pages(["a", "b", "c", "d"], run_one, workers=1)
    assert log == [("a", 1), ("b", 1)]  # after b failed, neither c nor d started
    for bad in ("three", "0"):
        monkeypatch.setenv("BOOK_JOBS", bad)
        with pytest.raises(build_book.BookBuildError, match=f"BOOK_JOBS must be a whole number.*got '{bad}'"):
            build_book.book_jobs()
    monkeypatch.setenv("BOOK_JOBS", "3")
    assert build_book.book_jobs() == 3


def test_book_params_reach_only_the_notebooks_they_name(tmp_path):
    _write_book(tmp_path, TOC, {"first": "", "second": ""})
    jobs = build_book.notebook_jobs(tmp_path)
    assert jobs == ["first", "second"]
    assert build_book.notebook_parameters(jobs, None) == {}
    assert build_book.notebook_parameters(jobs, '{"second": {"n_bootstrap": 5}}') == {"second": {"n_bootstrap": 5}}
    # the pages' own defaults (the profile's settings included) are not the build's: it passes only BOOK_PARAMS
    real = build_book.notebook_jobs(ROOT)
    assert build_book.notebook_parameters(real, '{"generalization": {"n_bootstrap": 7}}') == {
        "generalization": {"n_bootstrap": 7}
    }
    with pytest.raises(build_book.BookBuildError, match=r"notebooks the book does not have: \['thrid'\]"):
        build_book.notebook_parameters(jobs, '{"thrid": {"n_bootstrap": 5}}')
    with pytest.raises(build_book.BookBuildError, match="not valid JSON"):
        build_book.notebook_parameters(jobs, "{second: 5}")
    with pytest.raises(build_book.BookBuildError, match="must map notebook names to parameter objects"):
        build_book.notebook_parameters(jobs, '{"second": 5}')
    with pytest.raises(build_book.BookBuildError, match=r"may not set \['profile'\]"):
        build_book.notebook_parameters(jobs, '{"second": {"profile": "toy"}}')


def test_bad_profile_is_rejected(tmp_path):
    _write_book(tmp_path, TOC, {})
    with pytest.raises(build_book.BookBuildError, match="PROFILE must be a plain name"):
        build_book.build(root=tmp_path, profile="../etc")


def test_smoke_results_dir_is_a_fresh_scratch_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("RESULTS_DIR", raising=False)
    stale = tmp_path / "book" / "_executed" / "results-smoke" / "old.csv"
    stale.parent.mkdir(parents=True)
    stale.write_text("x")
    assert build_book.results_dir_for("smoke", tmp_path) == "book/_executed/results-smoke"
    assert not stale.exists()
    assert build_book.results_dir_for("toy", tmp_path) == "results/toy"
    monkeypatch.setenv("RESULTS_DIR", "/data/mine")
    assert build_book.results_dir_for("toy", tmp_path) == "/data/mine"


def test_figures_as_text_are_reported(tmp_path):
    executed = tmp_path / "book" / "_executed"
    executed.mkdir(parents=True)
    (executed / "ok.html").write_text('<img src="../../_images/ok.png">', encoding="utf-8")
    (executed / "text.html").write_text("<pre>&lt;Figure size 640x480 with 1 Axes&gt;</pre>", encoding="utf-8")
    (executed / "old.html").write_text("<pre>&lt;Figure size 640x480 with 1 Axes&gt;</pre>", encoding="utf-8")
    # a page no longer in the toc (left by an older build) is not judged
    assert build_book.figures_as_text(tmp_path, ["ok", "text"]) == [str(executed / "text.html")]


def test_a_missing_image_or_page_fails_the_build(tmp_path):
    """jupyter-book, with warnings as errors, is the check for pages and images the toc and pages name."""
    toc = "format: jb-book\nroot: book/intro\nchapters:\n  - file: book/other\n"
    _write_book(tmp_path, toc, {})
    (tmp_path / "_config.yml").write_text("title: t\nexecute:\n  execute_notebooks: 'off'\n", encoding="utf-8")
    with pytest.raises(build_book.BookBuildError, match="jupyter-book build failed"):
        build_book.build(root=tmp_path, profile="toy")  # book/other.md does not exist
    (tmp_path / "book" / "other.md").write_text("# Other\n\n![a figure](gone.png)\n", encoding="utf-8")
    with pytest.raises(build_book.BookBuildError, match="jupyter-book build failed"):
        build_book.build(root=tmp_path, profile="toy")
    (tmp_path / "book" / "other.md").write_text("# Other\n", encoding="utf-8")
    assert set(build_book.build(root=tmp_path, profile="toy")) == {"jupyter-book build"}


@pytest.mark.slow
def test_a_raising_notebook_fails_the_build_and_names_the_notebook(tmp_path):
    toc = "format: jb-book\nroot: book/intro\nchapters:\n  - file: book/_executed/broken\n"
    body = 'import os\nraise ValueError("profile " + profile + " in " + os.getcwd())'
    _write_book(tmp_path, toc, {"broken": NOTEBOOK.format(body=body)})
    env_before, cwd_before = dict(os.environ), os.getcwd()
    with pytest.raises(build_book.BookBuildError, match=r"notebooks/broken.py raised ValueError: profile smoke") as err:
        build_book.build(root=tmp_path, profile="smoke")
    assert f"in {tmp_path}\n" in str(err.value)  # the kernel ran in the book's root ...
    assert os.getcwd() == cwd_before  # ... without moving this process there
    assert dict(os.environ) == env_before  # the kernelspec path and backend do not leak out
    assert not (tmp_path / "_build").exists()  # stopped before jupyter-book


SLEEPER = """
import os
import time


def record_and_sleep(folder, seconds):
    open(os.path.join(folder, f"worker-{os.getpid()}"), "w").close()
    time.sleep(seconds)
"""

SLEEPING_PAGE = """
import os
import pathlib
import sys

here = pathlib.Path.cwd()
(here / "sleeper.py").write_text(SLEEPER)
sys.path.insert(0, str(here))
import sleeper
from p2law.analysis.grids import parallel_map

open(here / "pids" / f"kernel-{os.getpid()}", "w").close()
parallel_map(sleeper.record_and_sleep, [(str(here / "pids"), 600)] * 2, workers=2)
"""


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").exists(), reason="reads processes from /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_build_leaves_no_process_behind(tmp_path, signum):
    """Stopped mid-page (a timeout's SIGTERM, or SIGKILL), the build takes the kernel and the
    kernel's fit workers down with it: none of them is left burning CPU."""
    toc = "format: jb-book\nroot: book/intro\nchapters:\n  - file: book/_executed/sleeping\n"
    body = f"SLEEPER = {SLEEPER!r}\n{SLEEPING_PAGE}"
    _write_book(tmp_path, toc, {"sleeping": NOTEBOOK.format(body=body)})
    (tmp_path / "pids").mkdir()
    env = {
        **os.environ,
        "PROFILE": "toy",
        "RESULTS_DIR": str(tmp_path / "results"),
        "BOOK_JOBS": "1",
        "PYTHONPATH": str(ROOT),
    }
    (tmp_path / "scripts").mkdir()
    shutil.copy2(SCRIPT, tmp_path / "scripts")  # the script builds the book it lies in
    build = subprocess.Popen(
        [sys.executable, str(tmp_path / "scripts" / SCRIPT.name)],
        cwd=tmp_path,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=tmp_path.joinpath("err").open("w"),
    )
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 180
        while len(list((tmp_path / "pids").glob("worker-*"))) < 2:
            assert build.poll() is None and time.monotonic() < deadline, (tmp_path / "err").read_text()[-2000:]
            time.sleep(0.5)
        pids = [int(p.name.split("-")[1]) for p in (tmp_path / "pids").iterdir()]
        assert len(pids) == 3 and all(_alive(pid) for pid in pids)
        build.send_signal(signum)
        build.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not [pid for pid in pids if _alive(pid)], "processes left running after the build was stopped"
    finally:
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if build.poll() is None:
            os.killpg(build.pid, signal.SIGKILL)


@pytest.mark.slow
def test_the_book_builds_at_smoke_profile(smoke_book):
    """The real book, built end to end with warnings as errors (the session's build, see conftest.py)."""
    copy = smoke_book
    html = copy / "_build" / "html"
    for entry in parse_toc_yaml(copy / "_toc.yml").keys():
        assert (html / f"{re.sub(r'[.]ipynb$', '', entry)}.html").exists(), entry
    assert (html / "index.html").exists()
    page = (html / "book" / "_executed" / "paper_numbers.html").read_text(encoding="utf-8")
    assert page.count("<img") >= 2 and "&lt;Figure size" not in page
    assert 'id="fig-paper-predicted"' in page and 'id="fig-gamma-sign"' in page
    assert page.count("<table") >= 7  # models, Tables 1–6, the gamma check, the findings
    intro = (html / "book" / "intro.html").read_text(encoding="utf-8")
    intro_text = " ".join(re.sub(r"<[^>]+>", " ", intro).split())
    assert "derives 18 of 18 verdicts" in intro_text  # glued across pages from the notebook

    executed = json.loads((copy / "book" / "_executed" / "paper_numbers.ipynb").read_text(encoding="utf-8"))
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and 'profile = "smoke"' in "".join(injected[0]["source"])
    # neither parameters cell reaches the reader; the page shows no pandas row numbers for plain tables
    for cell in [
        c for c in executed["cells"] if {"parameters", "injected-parameters"} & set(c["metadata"].get("tags", []))
    ]:
        assert "remove-cell" in cell["metadata"]["tags"]
    fitting = (html / "book" / "_executed" / "fitting.html").read_text(encoding="utf-8")
    assert 'results_dir = "' not in page and 'results_dir = "' not in fitting and "p2law-table" in fitting
    # MathJax comes with the book, not from a CDN
    method = (html / "book" / "method.html").read_text(encoding="utf-8")
    assert "_static/mathjax/tex-chtml.js" in method and "cdn.jsdelivr" not in method
    assert (html / "_static" / "mathjax" / "tex-chtml.js").exists()

    # the smoke profile's cheap settings and BOOK_PARAMS reached the notebooks they name, and only those
    def injected_source(name):
        nb = json.loads((copy / "book" / "_executed" / f"{name}.ipynb").read_text(encoding="utf-8"))
        cells = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
        return "".join(cells[0]["source"])

    assert "n_points = 10" in injected_source("fitting_method")
    assert "n_points" not in injected_source("fitting") and "n_bootstrap" not in injected_source("verdict")
    assert not [o for c in executed["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert build_book.figures_as_text(html, build_book.notebook_jobs(copy)) == []
    for name in build_book.notebook_jobs(copy):  # no library warning addressed to a developer reaches the reader
        assert "TqdmWarning" not in (html / "book" / "_executed" / f"{name}.html").read_text(encoding="utf-8"), name
