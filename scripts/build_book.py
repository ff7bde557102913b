"""Build the Jupyter Book: execute every notebook once with papermill, then render with execution off.

    PROFILE=toy   python scripts/build_book.py    # default: notebooks read the committed results/toy
    PROFILE=smoke python scripts/build_book.py    # notebooks re-run their experiments at smoke scale

Steps
1. Read ``_toc.yml``. Every entry ``book/_executed/<name>`` is a notebook whose source is
   ``notebooks/<name>.py`` (jupytext percent format). Adding a notebook to the book is adding that file
   and that toc entry; nothing else lists notebooks.
2. For each one: jupytext -> ipynb, papermill executes it (cwd = repository root, kernel = this Python)
   with the parameters ``profile`` and ``results_dir`` into ``book/_executed/<name>.ipynb``. A notebook
   that raises stops the build with papermill's error. Notebooks run BOOK_JOBS at a time (default: one
   per CPU), each in its own papermill process; a notebook that reads what earlier pages saved says so
   in its jupytext header (``p2law: {needs: [fitting, generalization]}``) and starts after them. When the
   results folder is still empty (smoke), the first notebook runs alone: it runs the sweep all pages share.
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
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
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
    needs: tuple[str, ...] = ()  # notebooks whose saved outputs this one reads (header: p2law.needs)


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


def notebook_needs(source: Path) -> tuple[str, ...]:
    """The ``p2law: needs:`` list of a jupytext notebook's header (the pages it reads saved tables of)."""
    import jupytext

    needs = jupytext.read(source).metadata.get("p2law", {}).get("needs", [])
    if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
        raise BookBuildError(f"{source}: p2law.needs in its header must be a list of notebook names, got {needs!r}")
    return tuple(needs)


def notebook_jobs(root: Path) -> list[NotebookJob]:
    """The notebooks the toc asks for, each mapped to its jupytext source and what it needs."""
    jobs = []
    for entry in toc_files(root / "_toc.yml"):
        path = Path(entry)
        if path.parent != EXECUTED:
            continue
        source = NOTEBOOKS / f"{path.name}.py"
        if not (root / source).exists():
            raise BookBuildError(f"_toc.yml lists {entry} but its source {source} does not exist")
        needs = notebook_needs(root / source)
        earlier = {job.name for job in jobs}
        if not set(needs) <= earlier:
            # Reading order must stay a valid execution order (BOOK_JOBS=1 runs the toc order as it is).
            raise BookBuildError(
                f"{source} needs {sorted(set(needs) - earlier)}, which the toc does not list before it"
            )
        jobs.append(NotebookJob(path.name, source, EXECUTED / f"{path.name}.ipynb", needs))
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
        raise BookBuildError(
            'BOOK_PARAMS must map notebook names to parameter objects, e.g. {"generalization": {"n_bootstrap": 100}}'
        )
    unknown = sorted(set(params) - {job.name for job in jobs})
    if unknown:
        raise BookBuildError(
            f"BOOK_PARAMS names notebooks the book does not have: {unknown}; "
            f"the book's notebooks: {[job.name for job in jobs]}"
        )
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
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (p2law)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")


def execute(job: NotebookJob, root: Path, parameters: dict) -> float:
    """Execute one notebook in its own papermill process; seconds taken. Raises BookBuildError naming
    the notebook and its exception if it raises."""
    import jupytext

    started = time.perf_counter()
    notebook = jupytext.read(root / job.source)
    # Every notebook runs on this interpreter, whatever kernel its header names (or if it names none).
    notebook.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3 (p2law)", "language": "python"}
    executed = root / job.executed
    executed.parent.mkdir(parents=True, exist_ok=True)
    executed.unlink(missing_ok=True)  # a failure must not be judged on an older copy
    with tempfile.TemporaryDirectory() as tmp:
        unexecuted = Path(tmp) / f"{job.name}.ipynb"
        jupytext.write(notebook, unexecuted)
        parameters_file = Path(tmp) / "parameters.yml"
        parameters_file.write_text(yaml.safe_dump(parameters), encoding="utf-8")
        # A process per notebook (not papermill's API on threads): pages run side by side, each on a core.
        result = CHILDREN.run(
            [
                sys.executable,
                "-m",
                "papermill",
                str(unexecuted),
                str(executed),
                "-f",
                str(parameters_file),
                "-k",
                KERNEL_NAME,
                "--cwd",
                str(root),
                "--no-progress-bar",
                "--no-log-output",
            ]
        )
    if result.returncode != 0:
        error = first_error(executed)
        if error is None:
            raise BookBuildError(
                f"papermill could not execute {job.source} (exit {result.returncode}):\n{result.stderr[-3000:]}"
            )
        raise BookBuildError(
            f"{job.source} raised {error[0]}: {error[1]}\n(executed copy with the traceback: {job.executed})"
        )
    hide_parameter_cells(executed)
    return time.perf_counter() - started


def hide_parameter_cells(executed: Path) -> None:
    """Tag the parameters cell and the one papermill injects ``remove-cell``: the page shows neither (they
    stay in the executed notebook, where a re-runner looks for them)."""
    notebook = json.loads(executed.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if {"parameters", "injected-parameters"} & set(tags) and "remove-cell" not in tags:
            tags.append("remove-cell")
    executed.write_text(json.dumps(notebook, indent=1, ensure_ascii=False), encoding="utf-8")


class Children:
    """The papermill processes under way, each the leader of its own process group, so that a build that is
    stopped (SIGTERM from a timeout, Ctrl-C) takes all of them down with it: papermill, its kernel (which
    exits when its parent does) and the kernel's fit workers (which exit when the kernel does, see
    ``p2law.analysis.grids.die_with_parent``). On Linux a papermill also gets SIGKILL if the build itself is
    killed outright (``PR_SET_PDEATHSIG``)."""

    def __init__(self):
        self.running: set[subprocess.Popen] = set()
        self.lock = threading.Lock()  # between the threads that start notebooks; never taken by a handler

    def run(self, command: list[str], capture: bool = True, **popen) -> subprocess.CompletedProcess:
        pipe = subprocess.PIPE if capture else None
        process = subprocess.Popen(
            command, stdout=pipe, stderr=pipe, text=True, start_new_session=True, preexec_fn=_die_with_parent, **popen
        )
        with self.lock:
            self.running.add(process)
        try:
            stdout, stderr = process.communicate()
        finally:
            with self.lock:
                self.running.discard(process)
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)

    def stop_all(self) -> None:
        """Called from a signal handler: no lock (the interrupted code may hold it), a snapshot of the set
        instead; a process started after the snapshot dies with the build (PR_SET_PDEATHSIG)."""
        for process in list(self.running):
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def _load_prctl():
    """libc's prctl, looked up here in the parent: between fork and exec the child should only call it."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    return ctypes.CDLL(None).prctl


_PRCTL = _load_prctl()


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the build process dies (Linux only; elsewhere a no-op)."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


CHILDREN = Children()


def _stop_on_signal(signum, frame) -> None:
    """SIGTERM / SIGINT: stop every notebook under way, then exit with the shell's 128 + signal status."""
    CHILDREN.stop_all()
    print(f"book build stopped by signal {signum}; notebooks under way were stopped", file=sys.stderr, flush=True)
    os._exit(128 + signum)


def first_error(executed: Path) -> tuple[str, str] | None:
    """(ename, evalue) of the first error output of an executed notebook, if it has one."""
    if not executed.exists():
        return None
    notebook = json.loads(executed.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return output.get("ename", "?"), output.get("evalue", "")
    return None


def run_jobs(jobs: list[NotebookJob], run_one, workers: int) -> dict[str, float]:
    """Call ``run_one(job)`` for every job, up to ``workers`` at once, each after the jobs it needs.

    Jobs start in toc order as workers free up. At the first failure no further job starts; the running
    ones finish and the failure is raised. Returns ``run_one``'s result per job name.
    """
    if workers < 1:
        raise BookBuildError(f"BOOK_JOBS must be at least 1, got {workers}")
    pending, running, done = list(jobs), {}, {}
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while pending or running:
            for job in list(pending):
                if failure is not None or len(running) >= workers:
                    break
                if all(name in done for name in job.needs):
                    pending.remove(job)
                    print(f"executing {job.source} ...", flush=True)
                    running[pool.submit(run_one, job)] = job
            if not running:
                break  # only after a failure: what is pending never starts
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                job = running.pop(future)
                try:
                    done[job.name] = future.result()
                    print(f"  done in {done[job.name]:.1f} s -> {job.executed}", flush=True)
                except BaseException as exc:  # noqa: BLE001 - re-raised below, after the running jobs end
                    failure = failure or exc
    if failure is not None:
        raise failure
    return done


def book_jobs() -> int:
    """How many notebooks run at once: BOOK_JOBS, or one per CPU this process may use."""
    text = os.environ.get("BOOK_JOBS", "")
    if not text:
        from p2law.analysis.grids import available_cpus

        return available_cpus()
    try:
        return int(text)
    except ValueError:
        raise BookBuildError(f"BOOK_JOBS must be a whole number, got {text!r}") from None


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
        if not (root / job.executed).exists():
            problems.append(f"{job.executed} was never executed")
        elif (error := first_error(root / job.executed)) is not None:
            problems.append(f"{job.executed} has an error output: {error[0]}")
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
                workers = book_jobs()
                print(f"executing {len(jobs)} notebooks (profile={profile}), {workers} at a time", flush=True)
                timings |= run_jobs(jobs, lambda job: execute(job, root, parameters | extra.get(job.name, {})), workers)
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
    command = [
        str(jupyter_book) if jupyter_book.exists() else "jupyter-book",
        "build",
        str(root),
        "--nitpick",
        "--warningiserror",
        "--keep-going",
        "--all",
    ]
    print("running", " ".join(command), flush=True)
    result = CHILDREN.run(command, capture=False, cwd=root)
    timings["jupyter-book build"] = time.perf_counter() - started
    if result.returncode != 0:
        raise BookBuildError(f"jupyter-book build failed (exit {result.returncode}); see the warnings above")

    problems = check_built_book(root, root / "_build" / "html", jobs)
    if problems:
        raise BookBuildError("the built book failed its checks:\n  " + "\n  ".join(problems))
    return timings


def main() -> int:
    started = time.perf_counter()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop_on_signal)
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
