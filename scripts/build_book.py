"""Build the Jupyter Book: execute every notebook once with papermill, then render with execution off.

    PROFILE=toy   python scripts/build_book.py    # default: notebooks read the committed results/toy
    PROFILE=smoke python scripts/build_book.py    # notebooks re-run their experiments at smoke scale

Steps
1. Read ``_toc.yml``. Every entry ``book/_executed/<name>`` is a notebook whose source is
   ``notebooks/<name>.py`` (jupytext percent format). Adding a notebook to the book is adding that file
   and that toc entry; nothing else lists notebooks.
2. For each one: jupytext -> ipynb, papermill executes it (cwd = repository root, kernel = this Python)
   with the parameters ``profile`` and ``results_dir`` into ``book/_executed/<name>.ipynb``. A notebook
   that raises stops the build with papermill's error.
3. ``jupyter-book build . -n -W --keep-going`` (nitpicky, warnings are errors; ``_config.yml`` sets
   execution off, so nothing runs twice).
4. Checks on the result: every toc page exists in ``_build/html``, every image a page references exists,
   no executed notebook holds an error output.

Environment: PROFILE (default toy), RESULTS_DIR (default results/<profile>; for smoke a scratch folder
under book/_executed that is wiped first, so smoke always starts from scratch), BOOK_SKIP_EXECUTE=1 to
render the already executed notebooks again without running them, BOOK_PARAMS to change a notebook's
parameters (a JSON object keyed by notebook name, e.g. ``{"generalization": {"n_bootstrap": 100}}``;
at the smoke profile it updates PROFILE_PARAMS["smoke"], which turns down what only changes cost).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = Path("book/_executed")  # relative to the book root; read by _toc.yml, not named _build
NOTEBOOKS = Path("notebooks")
KERNEL_NAME = "p2law"


# The smoke profile is for trying every code path in minutes, so its build turns down the parameters that
# only change cost (few bootstrap refits, huber-log started from the LM optimum instead of the whole
# grid). BOOK_PARAMS overrides these; the toy and paper builds use the notebooks' own defaults.
PROFILE_PARAMS = {
    "smoke": {
        "fitting": {"huber_start": "lm"},
        "generalization": {"huber_start": "lm", "n_bootstrap": 3},
        "planning": {"n_bootstrap": 3},
    },
}


class BookBuildError(RuntimeError):
    """The book could not be built, or the built book failed a check."""


@dataclass(frozen=True)
class NotebookJob:
    name: str
    source: Path  # notebooks/<name>.py
    executed: Path  # book/_executed/<name>.ipynb


# --- the table of contents ------------------------------------------------------------------------------

def toc_files(toc_path: Path) -> list[str]:
    """All ``file:`` entries of a jupyter-book toc (root first), in reading order."""
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    if not isinstance(toc, dict) or "root" not in toc:
        raise BookBuildError(f"{toc_path}: no 'root' entry")
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                walk(node.get(key, []))

    walk(toc)
    return [str(Path(f).with_suffix("")) if Path(f).suffix in {".md", ".ipynb"} else f for f in files]


def notebook_jobs(root: Path) -> list[NotebookJob]:
    """The notebooks the toc asks for, each mapped to its jupytext source."""
    jobs = []
    for entry in toc_files(root / "_toc.yml"):
        path = Path(entry)
        if path.parent != EXECUTED:
            continue
        source = NOTEBOOKS / f"{path.name}.py"
        if not (root / source).exists():
            raise BookBuildError(f"_toc.yml lists {entry} but its source {source} does not exist")
        jobs.append(NotebookJob(path.name, source, EXECUTED / f"{path.name}.ipynb"))
    listed = {job.source for job in jobs}
    for orphan in sorted(set((root / NOTEBOOKS).glob("*.py")) - {root / s for s in listed}):
        print(f"note: {orphan.relative_to(root)} is not in _toc.yml and is not built", file=sys.stderr)
    return jobs


# --- execution ------------------------------------------------------------------------------------------

def results_dir_for(profile: str, root: Path) -> str:
    """Where the notebooks read (toy: committed results) or write (smoke: a fresh scratch folder)."""
    if os.environ.get("RESULTS_DIR"):
        return os.environ["RESULTS_DIR"]
    if profile == "smoke":
        scratch = EXECUTED / "results-smoke"
        shutil.rmtree(root / scratch, ignore_errors=True)
        return str(scratch)
    return f"results/{profile}"


def notebook_parameters(jobs: list[NotebookJob], text: str | None, profile: str = "toy") -> dict[str, dict]:
    """Per-notebook papermill parameters: the profile's (PROFILE_PARAMS), updated by BOOK_PARAMS
    (JSON: {notebook name: {parameter: value}})."""
    names = {job.name for job in jobs}
    merged = {name: dict(p) for name, p in PROFILE_PARAMS.get(profile, {}).items() if name in names}
    if not text:
        return merged
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BookBuildError(f"BOOK_PARAMS is not valid JSON: {exc}") from None
    if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
        raise BookBuildError('BOOK_PARAMS must map notebook names to parameter objects, '
                             'e.g. {"generalization": {"n_bootstrap": 100}}')
    unknown = sorted(set(params) - {job.name for job in jobs})
    if unknown:
        raise BookBuildError(f"BOOK_PARAMS names notebooks the book does not have: {unknown}; "
                             f"the book's notebooks: {[job.name for job in jobs]}")
    reserved = sorted({key for v in params.values() for key in v} & {"profile", "results_dir"})
    if reserved:
        raise BookBuildError(f"BOOK_PARAMS may not set {reserved}: use PROFILE and RESULTS_DIR")
    for name, p in params.items():
        merged[name] = merged.get(name, {}) | p
    return merged


def write_kernelspec(folder: Path) -> None:
    """A kernelspec named p2law that runs this very interpreter (the venv's), whatever is on PATH."""
    spec_dir = folder / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (p2law)", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")


def execute(job: NotebookJob, root: Path, parameters: dict) -> float:
    import jupytext
    import papermill

    started = time.perf_counter()
    notebook = jupytext.read(root / job.source)
    # Every notebook runs on this interpreter, whatever kernel its header names (or if it names none).
    notebook.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3 (p2law)", "language": "python"}
    (root / job.executed).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        unexecuted = Path(tmp) / f"{job.name}.ipynb"
        jupytext.write(notebook, unexecuted)
        try:
            papermill.execute_notebook(
                str(unexecuted), str(root / job.executed), parameters=parameters, kernel_name=KERNEL_NAME,
                cwd=str(root), progress_bar=False, log_output=False,
            )
        except papermill.PapermillExecutionError as exc:
            raise BookBuildError(f"{job.source} raised {exc.ename}: {exc.evalue}\n"
                                 f"(executed copy with the traceback: {job.executed})") from None
    return time.perf_counter() - started


# --- checks of the built book ---------------------------------------------------------------------------

class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.extend(value for name, value in attrs if name == "src" and value)


def check_built_book(root: Path, html: Path, jobs: list[NotebookJob]) -> list[str]:
    """Problems found in the built book (empty list = fine)."""
    problems = []
    for entry in toc_files(root / "_toc.yml"):
        page = html / f"{entry}.html"
        if not page.exists():
            problems.append(f"page missing: {page.relative_to(root)}")
            continue
        text = page.read_text(encoding="utf-8")
        if "&lt;Figure size" in text:
            problems.append(f"{page.relative_to(root)} shows a figure as text instead of an image")
        parser = _Images()
        parser.feed(text)
        for src in parser.sources:
            parsed = urlparse(src)
            if parsed.scheme in {"http", "https", "data"}:
                continue
            if not (page.parent / unquote(parsed.path)).resolve().exists():
                problems.append(f"{page.relative_to(root)} references a missing image {src}")
    for job in jobs:
        notebook = json.loads((root / job.executed).read_text(encoding="utf-8"))
        for cell in notebook["cells"]:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    problems.append(f"{job.executed} has an error output: {output.get('ename')}")
    return problems


# --- the whole build ------------------------------------------------------------------------------------

def build(root: Path = ROOT, profile: str | None = None, execute_notebooks: bool = True) -> dict:
    profile = profile or os.environ.get("PROFILE", "toy")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", profile):
        raise BookBuildError(f"PROFILE must be a plain name like toy or smoke, got {profile!r}")
    timings: dict[str, float] = {}
    jobs = notebook_jobs(root)
    if execute_notebooks:
        extra = notebook_parameters(jobs, os.environ.get("BOOK_PARAMS"), profile)
        parameters = {"profile": profile, "results_dir": results_dir_for(profile, root)}
        saved = {key: os.environ.get(key) for key in ("JUPYTER_PATH", "MPLBACKEND")}
        try:
            with tempfile.TemporaryDirectory() as jupyter_dir:
                write_kernelspec(Path(jupyter_dir))
                os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [jupyter_dir, saved["JUPYTER_PATH"]]))
                # Figures must reach the notebook as images: the kernel draws with the inline backend even
                # when the caller (CI) exported MPLBACKEND=Agg, which would leave only "<Figure ...>" text.
                os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
                for job in jobs:
                    print(f"executing {job.source} (profile={profile}) ...", flush=True)
                    timings[job.name] = execute(job, root, parameters | extra.get(job.name, {}))
                    print(f"  done in {timings[job.name]:.1f} s -> {job.executed}", flush=True)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    else:
        missing = [str(job.executed) for job in jobs if not (root / job.executed).exists()]
        if missing:
            raise BookBuildError(f"BOOK_SKIP_EXECUTE is set but these notebooks were never executed: {missing}")

    started = time.perf_counter()
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book) if jupyter_book.exists() else "jupyter-book",
               "build", str(root), "--nitpick", "--warningiserror", "--keep-going", "--all"]
    print("running", " ".join(command), flush=True)
    result = subprocess.run(command, cwd=root)
    timings["jupyter-book build"] = time.perf_counter() - started
    if result.returncode != 0:
        raise BookBuildError(f"jupyter-book build failed (exit {result.returncode}); see the warnings above")

    problems = check_built_book(root, root / "_build" / "html", jobs)
    if problems:
        raise BookBuildError("the built book failed its checks:\n  " + "\n  ".join(problems))
    return timings


def main() -> int:
    started = time.perf_counter()
    try:
        timings = build(execute_notebooks=os.environ.get("BOOK_SKIP_EXECUTE", "") not in {"1", "true", "yes"})
    except BookBuildError as exc:
        print(f"book build failed: {exc}", file=sys.stderr)
        return 1
    for step, seconds in timings.items():
        print(f"{step:>30s}: {seconds:6.1f} s")
    print(f"book built in {time.perf_counter() - started:.1f} s: open {ROOT / '_build/html/index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
