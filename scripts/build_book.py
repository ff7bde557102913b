"""Build the Jupyter Book: papermill executes each page, jupyter-book renders the book, then we check it.

    PROFILE=toy   python scripts/build_book.py    # default: the pages read the committed results/toy
    PROFILE=smoke python scripts/build_book.py    # the pages re-run their experiments at smoke scale

The toc's ``book/_executed/<name>`` is the page of ``notebooks/<name>.py``. Pages run side by side (none reads
another's files). Environment: PROFILE, RESULTS_DIR (default results/<profile>; smoke: a fresh scratch folder),
BOOK_JOBS (pages at once; default one per CPU), BOOK_PARAMS (JSON {page: {parameter: value}} over
PROFILE_PARAMS), BOOK_SKIP_EXECUTE=1.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote, urlparse

import jupytext
import yaml
from sphinx_external_toc.parsing import MalformedError, parse_toc_yaml

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = Path("book/_executed")
# Smoke turns down what only changes cost; the verdict page asks for the same fits as the pages it judges.
SMOKE_FITS = {"huber_start": "lm"}
PROFILE_PARAMS = {
    "smoke": {
        "fitting": SMOKE_FITS,
        "generalization": SMOKE_FITS | {"n_bootstrap": 3},
        "planning": {"n_bootstrap": 3},
        "verdict": SMOKE_FITS | {"n_bootstrap": 3},
    }
}
# Every child is SIGKILLed when this build dies (Linux's PR_SET_PDEATHSIG = 1); a papermill's kernel then
# sees its parent gone and exits, and the kernel's fit workers die with it (p2law.analysis.grids).
PRCTL = ctypes.CDLL(None).prctl if sys.platform.startswith("linux") else None  # looked up before any fork


class BookBuildError(RuntimeError):
    """The book could not be built, or the built book failed a check."""


def toc_files(toc_path: Path) -> list[str]:
    """Every file of a jupyter-book toc in reading order, root first, without .md/.ipynb suffixes."""
    try:
        return [re.sub(r"\.(md|ipynb)$", "", doc) for doc in parse_toc_yaml(toc_path).keys()]
    except MalformedError as exc:
        raise BookBuildError(f"{toc_path}: {exc}") from None


def notebook_jobs(root: Path) -> list[str]:
    """The notebook pages the toc lists, each checked to have its source notebooks/<name>.py."""
    names = [Path(f).name for f in toc_files(root / "_toc.yml") if Path(f).parent == EXECUTED]
    if missing := [n for n in names if not (root / "notebooks" / f"{n}.py").exists()]:
        raise BookBuildError(f"_toc.yml lists {EXECUTED / missing[0]} but notebooks/{missing[0]}.py does not exist")
    for orphan in sorted({p.stem for p in (root / "notebooks").glob("*.py")} - set(names)):
        print(f"note: notebooks/{orphan}.py is not in _toc.yml and is not built", file=sys.stderr)
    return names


def notebook_parameters(names: list[str], text: str | None, profile: str = "toy") -> dict[str, dict]:
    """Per-page papermill parameters: the profile's PROFILE_PARAMS updated by BOOK_PARAMS' JSON."""
    merged = {n: dict(p) for n, p in PROFILE_PARAMS.get(profile, {}).items() if n in names}
    try:
        params = json.loads(text) if text else {}
    except json.JSONDecodeError as exc:
        raise BookBuildError(f"BOOK_PARAMS is not valid JSON: {exc}") from None
    if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
        raise BookBuildError('BOOK_PARAMS must map notebook names to parameter objects, e.g. {"planning": {"seed": 1}}')
    if unknown := sorted(set(params) - set(names)):
        raise BookBuildError(f"BOOK_PARAMS names notebooks the book does not have: {unknown}; the book's: {names}")
    if reserved := sorted({k for v in params.values() for k in v} & {"profile", "results_dir"}):
        raise BookBuildError(f"BOOK_PARAMS may not set {reserved}: use PROFILE and RESULTS_DIR")
    return merged | {n: merged.get(n, {}) | p for n, p in params.items()}


def results_dir_for(profile: str, root: Path) -> str:
    """RESULTS_DIR, else the committed results/<profile>; for smoke a scratch folder emptied first."""
    if os.environ.get("RESULTS_DIR") or profile != "smoke":
        return os.environ.get("RESULTS_DIR") or f"results/{profile}"
    shutil.rmtree(root / EXECUTED / "results-smoke", ignore_errors=True)
    return str(EXECUTED / "results-smoke")


def run(command: list[str], capture: bool = True, **popen) -> subprocess.CompletedProcess:
    """A child in its own process group, SIGKILLed if this build dies (see PRCTL)."""
    pipe = subprocess.PIPE if capture else None
    die = (lambda: PRCTL(1, signal.SIGKILL)) if PRCTL else None
    return subprocess.run(command, stdout=pipe, stderr=pipe, text=True, start_new_session=True, preexec_fn=die, **popen)


def first_error(executed: Path) -> tuple[str, str] | None:
    """(ename, evalue) of an executed notebook's first error output, if any."""
    cells = json.loads(executed.read_text(encoding="utf-8"))["cells"] if executed.exists() else []
    errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    return (errors[0].get("ename", "?"), errors[0].get("evalue", "")) if errors else None


def execute(name: str, root: Path, parameters: dict) -> float:
    """Run one page with papermill into book/_executed/<name>.ipynb, its parameter cells tagged remove-cell."""
    print(f"executing notebooks/{name}.py ...", flush=True)
    started, executed = time.perf_counter(), root / EXECUTED / f"{name}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    executed.unlink(missing_ok=True)  # a failure must not be judged on an older copy
    with tempfile.TemporaryDirectory() as tmp:
        jupytext.write(jupytext.read(root / "notebooks" / f"{name}.py"), Path(tmp) / "in.ipynb")
        Path(tmp, "p.yml").write_text(yaml.safe_dump(parameters), encoding="utf-8")
        # kernel python3 from this environment's own kernelspecs: jupyter_client starts it with this interpreter
        args = [f"{tmp}/in.ipynb", executed, "-f", f"{tmp}/p.yml", "-k", "python3", "--language", "python"]
        env = os.environ | {"JUPYTER_PREFER_ENV_PATH": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
        quiet = ["--cwd", str(root), "--no-progress-bar", "--no-log-output"]
        result = run([sys.executable, "-m", "papermill", *map(str, args), *quiet], env=env)
    if result.returncode != 0:
        if (error := first_error(executed)) is None:
            raise BookBuildError(f"papermill could not execute notebooks/{name}.py:\n{result.stderr[-3000:]}")
        raise BookBuildError(f"notebooks/{name}.py raised {error[0]}: {error[1]}\n(traceback in {executed})")
    nb = json.loads(executed.read_text(encoding="utf-8"))
    for cell in nb["cells"]:  # the parameter cells stay in the notebook (for re-runners), off the page
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        tags += ["remove-cell"] if {"parameters", "injected-parameters"} & set(tags) else []
    executed.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")
    return time.perf_counter() - started


def book_jobs() -> int:
    """How many pages run at once: BOOK_JOBS, or one per CPU this process may use."""
    text = os.environ.get("BOOK_JOBS") or str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    if not text.isdigit() or int(text) < 1:
        raise BookBuildError(f"BOOK_JOBS must be a whole number of at least 1, got {text!r}")
    return int(text)


def run_pages(names: list[str], run_one, workers: int) -> dict[str, float]:
    """``run_one(name)`` for each, ``workers`` at a time, in order; after a failure none starts, it is raised."""
    failed = threading.Event()

    def guarded(name):
        try:
            return None if failed.is_set() else run_one(name)
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(workers) as pool:  # the pages under way finish before the failure is raised
        futures = {name: pool.submit(guarded, name) for name in names}
    return {name: future.result() for name, future in futures.items()}


def check_built_book(root: Path, html: Path, names: list[str]) -> list[str]:
    """Problems of the built book: missing pages, figures as text, missing images, notebooks with errors."""
    problems = []
    for page in (html / f"{entry}.html" for entry in toc_files(root / "_toc.yml")):
        text = page.read_text(encoding="utf-8") if page.exists() else None
        if text is None:
            problems.append(f"page missing: {page.relative_to(root)}")
        elif "&lt;Figure size" in text:
            problems.append(f"{page.relative_to(root)} shows a figure as text instead of an image")
        for src in re.findall(r"<img\b[^>]*?\bsrc=\"([^\"]+)\"", text or ""):
            url = urlparse(src)
            if url.scheme not in {"http", "https", "data"} and not (page.parent / unquote(url.path)).exists():
                problems.append(f"{page.relative_to(root)} references a missing image {src}")
    for executed in (EXECUTED / f"{name}.ipynb" for name in names):
        if not (root / executed).exists():
            problems.append(f"{executed} was never executed")
        elif error := first_error(root / executed):
            problems.append(f"{executed} has an error output: {error[0]}")
    return problems


def build(root: Path = ROOT, profile: str | None = None, execute_notebooks: bool = True) -> dict:
    profile = profile or os.environ.get("PROFILE", "toy")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", profile):
        raise BookBuildError(f"PROFILE must be a plain name like toy or smoke, got {profile!r}")
    names, timings = notebook_jobs(root), {}
    if execute_notebooks:
        extra = notebook_parameters(names, os.environ.get("BOOK_PARAMS"), profile)
        base = {"profile": profile, "results_dir": results_dir_for(profile, root)}
        print(f"executing {len(names)} notebooks (profile={profile}), {book_jobs()} at a time", flush=True)
        timings = run_pages(names, lambda name: execute(name, root, base | extra.get(name, {})), book_jobs())
    elif missing := [n for n in names if not (root / EXECUTED / f"{n}.ipynb").exists()]:
        raise BookBuildError(f"BOOK_SKIP_EXECUTE is set but these notebooks were never executed: {missing}")
    started = time.perf_counter()
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book) if jupyter_book.exists() else "jupyter-book", "build", str(root)]
    result = run([*command, "--nitpick", "--warningiserror", "--keep-going", "--all"], capture=False, cwd=root)
    timings["jupyter-book build"] = time.perf_counter() - started
    if result.returncode != 0:
        raise BookBuildError(f"jupyter-book build failed (exit {result.returncode}); see the warnings above")
    if problems := check_built_book(root, root / "_build" / "html", names):
        raise BookBuildError("the built book failed its checks:\n  " + "\n  ".join(problems))
    return timings


def stop(signum, frame) -> None:
    """SIGTERM/SIGINT: exit at once; the children die with this process (PRCTL), their kernels after them."""
    print(f"book build stopped by signal {signum}", file=sys.stderr, flush=True)
    os._exit(128 + signum)


def main() -> int:
    started = time.perf_counter()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    try:
        timings = build(execute_notebooks=os.environ.get("BOOK_SKIP_EXECUTE", "") not in {"1", "true", "yes"})
    except BookBuildError as exc:
        print(f"book build failed: {exc}", file=sys.stderr)
        return 1
    print("\n".join(f"{step:>30s}: {seconds:6.1f} s" for step, seconds in timings.items()))
    print(f"book built in {time.perf_counter() - started:.1f} s: open {ROOT / '_build/html/index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
