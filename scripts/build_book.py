"""Build the Jupyter Book (book/building.md): papermill runs each page, side by side; jupyter-book renders."""

import json
import os
import re
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest import mock

import jupytext
import nbformat
import papermill
from jupyter_book.cli.main import main as jupyter_book
from sphinx_external_toc.parsing import MalformedError, parse_toc_yaml

ROOT, EXECUTED = Path(__file__).resolve().parents[1], Path("book/_executed")
# The kernels: this environment's python3, figures inline as images whatever MPLBACKEND says, and no tqdm.auto
# warning that ipywidgets is missing (the book shows no progress bars).
KERNEL_ENV = {"JUPYTER_PREFER_ENV_PATH": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
KERNEL_ENV["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), "ignore:IProgress not found"]))


class BookBuildError(RuntimeError):
    """The book could not be built: bad settings, a page that raised, or Sphinx warnings."""


def notebook_jobs(root: Path) -> list[str]:
    """The pages the toc lists under book/_executed, in reading order, each with its notebooks/<name>.py."""
    try:
        names = [Path(f).stem for f in parse_toc_yaml(root / "_toc.yml").keys() if Path(f).parent == EXECUTED]
    except MalformedError as exc:
        raise BookBuildError(f"{root / '_toc.yml'}: {exc}") from None
    if missing := [n for n in names if not (root / "notebooks" / f"{n}.py").exists()]:
        raise BookBuildError(f"_toc.yml lists {EXECUTED / missing[0]} but notebooks/{missing[0]}.py does not exist")
    for orphan in sorted({p.stem for p in (root / "notebooks").glob("*.py")} - set(names)):
        print(f"note: notebooks/{orphan}.py is not in _toc.yml and is not built", file=sys.stderr)
    return names


def notebook_parameters(names: list[str], text: str | None) -> dict[str, dict]:
    """BOOK_PARAMS' JSON, checked: {page: {parameter: value}} for pages of the book."""
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
    return params


def results_dir_for(profile: str, root: Path) -> str:
    """RESULTS_DIR, else the committed results/<profile>; for smoke a scratch folder emptied first."""
    if os.environ.get("RESULTS_DIR") or profile != "smoke":
        return os.environ.get("RESULTS_DIR") or f"results/{profile}"
    shutil.rmtree(root / EXECUTED / "results-smoke", ignore_errors=True)
    return str(EXECUTED / "results-smoke")


def book_jobs() -> int:
    """How many pages run at once: BOOK_JOBS, or one per CPU this process may use."""
    text = os.environ.get("BOOK_JOBS") or str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    if not text.isdigit() or int(text) < 1:
        raise BookBuildError(f"BOOK_JOBS must be a whole number of at least 1, got {text!r}")
    return int(text)


def execute(name: str, root: Path, parameters: dict) -> float:
    """Run one page into book/_executed/<name>.ipynb, its parameter cells tagged remove-cell; its seconds."""
    print(f"executing notebooks/{name}.py ...", flush=True)
    executed = root / EXECUTED / f"{name}.ipynb"
    executed.unlink(missing_ok=True)  # a failure must not be judged on an older copy
    # The kernel starts in root (nbclient's resources path), not papermill's cwd=: that one chdirs this whole
    # process, a race between pages side by side. Kernel start-up chatter stays off the console.
    kernel = {"resources": {"metadata": {"path": str(root)}}, "extra_arguments": ["--IPKernelApp.log_level=ERROR"]}
    try:
        page = jupytext.read(root / "notebooks" / f"{name}.py")
        nb = papermill.execute_notebook(
            page, executed, parameters, kernel_name="python3", language="python", progress_bar=False, **kernel
        )
    except papermill.PapermillExecutionError as exc:
        raise BookBuildError(
            f"notebooks/{name}.py raised {exc.ename}: {exc.evalue}\n(traceback in {executed})"
        ) from None
    except Exception as exc:  # no such kernel, a kernel that died, a page jupytext could not read
        raise BookBuildError(f"papermill could not execute notebooks/{name}.py: {exc!r}") from exc
    nb.metadata.papermill["input_path"] = f"notebooks/{name}.py"  # not a copy of the whole page
    for cell in nb.cells:
        if {"parameters", "injected-parameters"} & set(cell.metadata.get("tags", [])):
            cell.metadata.tags.append("remove-cell")
    nbformat.write(nb, executed)
    return nb.metadata.papermill["duration"]


def run_pages(names: list[str], run_one, workers: int) -> dict[str, float]:
    """``run_one(name)`` for each, ``workers`` at a time; after a failure none starts, then it is raised."""
    failed = threading.Event()

    def guarded(name):
        try:
            return None if failed.is_set() else run_one(name)
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(workers) as pool:
        return dict(zip(names, pool.map(guarded, names)))


def figures_as_text(html: Path, names: list[str]) -> list[str]:
    """The executed pages that show a figure as text (a non-inline backend): jupyter-book lets them pass."""
    pages = [html / EXECUTED / f"{name}.html" for name in names]
    return [str(page) for page in pages if "&lt;Figure size" in page.read_text("utf-8")]


def build(root: Path = ROOT, profile: str | None = None) -> dict[str, float]:
    """Run every page, render the book with warnings as errors, check it; seconds per step."""
    profile = profile or os.environ.get("PROFILE", "toy")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", profile):
        raise BookBuildError(f"PROFILE must be a plain name like toy or smoke, got {profile!r}")
    names, workers = notebook_jobs(root), book_jobs()  # every setting checked before the smoke folder is emptied
    extra = notebook_parameters(names, os.environ.get("BOOK_PARAMS"))
    base = {"profile": profile, "results_dir": results_dir_for(profile, root)}
    print(f"executing {len(names)} notebooks (profile={profile}), {workers} at a time", flush=True)
    (root / EXECUTED).mkdir(parents=True, exist_ok=True)
    with mock.patch.dict(os.environ, KERNEL_ENV):  # the kernels' environment; this process's is restored after
        timings = run_pages(names, lambda name: execute(name, root, base | extra.get(name, {})), workers)
    started = time.perf_counter()
    try:  # execution is off in _config.yml: this renders the executed pages
        args = ["build", str(root), "--all", "--nitpick", "--warningiserror", "--keep-going"]
        jupyter_book(args, standalone_mode=False)
    except (SystemExit, RuntimeError) as exc:  # Sphinx warnings (an exit code), or an exception inside Sphinx
        raise BookBuildError(f"jupyter-book build failed ({exc}); see the messages above") from None
    timings["jupyter-book build"] = time.perf_counter() - started
    if pages := figures_as_text(root / "_build" / "html", names):
        raise BookBuildError(f"these pages show a figure as text instead of an image: {pages}")
    return timings


def main() -> int:
    started = time.perf_counter()
    for signum in (signal.SIGTERM, signal.SIGINT):  # stop at once: the kernels and their workers follow
        signal.signal(signum, lambda signum, frame: os._exit(128 + signum))
    try:
        timings = build()
    except BookBuildError as exc:
        print(f"book build failed: {exc}", file=sys.stderr)
        return 1
    print("\n".join(f"{step:>30s}: {seconds:6.1f} s" for step, seconds in timings.items()))
    print(f"book built in {time.perf_counter() - started:.1f} s: open {ROOT / '_build/html/index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
