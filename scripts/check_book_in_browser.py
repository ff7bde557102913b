"""Open the built book in headless Chromium and check that pages load and show their tables.

    python scripts/check_book_in_browser.py [_build/html] [--browser /usr/bin/chromium]

The HTML is served on localhost (as a reader's browser would get it, not as file:// paths), each page is
loaded by Chromium with ``--dump-dom`` (the DOM after scripts ran), and the DOM is checked: the index shows
the book's title and links every chapter; the fitting page shows its tables (Table 2 ours beside the
paper's) and its figure, with no error output; the method page's equations are typeset by the MathJax the
book bundles (no network), with no raw TeX left. Exit status 1 names every problem found.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

# Flags the machine's closed network needs: without the background-networking ones Chromium keeps trying
# to reach Google's hosts at start-up.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=5000",
]

# page -> what its DOM must contain (regexes)
CHECKS = {
    # index.html redirects to the first page (book/intro.html): the DOM is the intro's, links relative to it
    "index.html": [
        r"P² Law|P<sup>2</sup>|P2 Law",
        r'href="_executed/fitting\.html"',
        r'href="_executed/verdict\.html"',
    ],
    "book/_executed/fitting.html": [r"<table", r"Table 2", r"<img[^>]+predicted_vs_actual|<img[^>]+\.png"],
    "book/_executed/verdict.html": [r"<table", r"confirmed"],
    # equations typeset by the bundled MathJax (its output elements), none left as raw TeX
    "book/method.html": [r"<mjx-container"],
}
FORBIDDEN = [r"Traceback \(most recent call last\)", r"&lt;Figure size", r"404 Not Found"]


def find_browser(explicit: str | None) -> str:
    for name in [explicit] if explicit else ["chromium", "chromium-browser", "google-chrome"]:
        path = shutil.which(name) if name else None
        if path:
            return path
    raise SystemExit("no Chromium found: install Debian's `chromium` package (apt-get install chromium)")


def dump_dom(browser: str, url: str, timeout: float = 90) -> str:
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    if result.returncode != 0:
        raise RuntimeError(f"chromium exited {result.returncode} on {url}: {result.stderr[-800:]}")
    return result.stdout


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # one line per asset would bury the result
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # Chromium drops connections it no longer needs
        pass


def check(html_dir: Path, browser: str) -> list[str]:
    server = _QuietServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(html_dir)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    problems = []
    try:
        for page, patterns in CHECKS.items():
            if not (html_dir / page).exists():
                problems.append(f"{page}: not built")
                continue
            url = f"http://127.0.0.1:{server.server_address[1]}/{page}"
            dom = dump_dom(browser, url)
            if len(dom) < 1000:
                problems.append(f"{page}: Chromium returned only {len(dom)} characters")
            problems += [f"{page}: no match for {p!r}" for p in patterns if not re.search(p, dom)]
            problems += [f"{page}: shows {p!r}" for p in FORBIDDEN if re.search(p, dom)]
            text = re.sub(r"<script.*?</script>", "", dom, flags=re.S)
            if re.search(r"\\mathcal|\\frac\{", text):
                problems.append(f"{page}: shows raw TeX (MathJax did not typeset it)")
            print(f"{page}: loaded in Chromium, {len(dom):,} characters of DOM, {dom.count('<table')} tables")
    finally:
        server.shutdown()
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", nargs="?", default="_build/html")
    parser.add_argument("--browser", default=None)
    args = parser.parse_args(argv)
    problems = check(Path(args.html), find_browser(args.browser))
    for p in problems:
        print("FAIL", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
