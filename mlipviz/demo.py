"""Run the lab notebooks headless and collect the results into one browsable page.

Usage::

    python -m mlipviz.demo                      # every notebooks/0*.ipynb, in order
    python -m mlipviz.demo --smoke --only 01 03 # quick run of two notebooks
    python -m mlipviz.demo --out /tmp/report --timeout 600

Each notebook is executed with nbclient in a fresh ``python3`` kernel whose working
directory is the notebooks folder, so relative paths behave exactly as in JupyterLab.
The output folder (``build/`` by default) receives::

    build/notebooks/<name>.ipynb   executed copies (partially executed if a cell failed)
    build/figures/<stem>_<n>.png   every image/png output, numbered from 1 per notebook
    build/index.html               a self-contained summary page linking all of the above

A failing notebook does not stop the run: the next one is executed and the command
exits non-zero at the end, listing the failures.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import html
import importlib
import importlib.metadata
import os
import platform
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from tqdm import tqdm

from .runmode import SMOKE_VARIABLE, smoke_mode

DEFAULT_NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
"""The repository's ``notebooks/`` folder (this package's parent directory)."""

DEFAULT_TIMEOUT = 3600
"""Seconds a single cell may run before the notebook is marked failed."""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class NotebookResult:
    """What happened to one notebook.

    Attributes:
        source: The notebook that was executed.
        executed: Where the executed (or partially executed) copy was written.
        title: The first ``# `` heading of its first markdown cells, or the file stem.
        seconds: Wall time, kernel start-up included.
        error_name: Exception name (e.g. ``ValueError``) if it failed, else ``None``.
        error_value: Exception message if it failed, else ``""``.
        figures: PNG files extracted from its outputs, in output order.
    """

    source: Path
    executed: Path
    title: str
    seconds: float = 0.0
    error_name: str | None = None
    error_value: str = ""
    figures: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every cell ran without raising."""
        return self.error_name is None


def find_notebooks(notebooks_dir: Path, only: Sequence[str] | None = None) -> list[Path]:
    """List the numbered notebooks (``0*.ipynb``) in execution order.

    Args:
        notebooks_dir: Folder holding the notebooks.
        only: Optional selectors; a notebook is kept when its name starts with one of
            them (``"01"``, ``"03_molecular"``) or its stem equals one.

    Returns:
        The selected notebooks, sorted by file name.

    Raises:
        FileNotFoundError: if the folder does not exist or a selector matches nothing.
    """
    if not notebooks_dir.is_dir():
        raise FileNotFoundError(f"notebooks folder {notebooks_dir} does not exist")
    found = sorted(notebooks_dir.glob("0*.ipynb"))
    if not only:
        return found
    unmatched = [s for s in only if not any(p.name.startswith(s) or p.stem == s for p in found)]
    if unmatched:
        names = ", ".join(p.name for p in found) or "none"
        raise FileNotFoundError(f"--only {' '.join(unmatched)} matched no notebook (found: {names})")
    return [p for p in found if any(p.name.startswith(s) or p.stem == s for s in only)]


def notebook_title(nb: nbformat.NotebookNode, default: str) -> str:
    """Return the text of the first markdown ``# `` heading, or ``default``."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return default


def kernel_env(smoke: bool) -> dict[str, str]:
    """Build the environment the notebook kernels start with.

    ``MPLBACKEND`` is dropped so that matplotlib uses the kernel's inline backend and
    figures end up as ``image/png`` outputs even where a CI job sets ``MPLBACKEND=Agg``.

    Args:
        smoke: Export ``MLIPVIZ_SMOKE=1`` so notebooks shrink their workload.

    Returns:
        A copy of this process's environment with those changes.
    """
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)
    if smoke:
        env[SMOKE_VARIABLE] = "1"
    return env


def extract_figures(nb: nbformat.NotebookNode, stem: str, figures_dir: Path) -> list[Path]:
    """Write every ``image/png`` output of ``nb`` to ``figures_dir/<stem>_<n>.png``.

    Figures left over from an earlier run of the same notebook are removed first, so
    the folder always mirrors the latest execution.

    Args:
        nb: An executed notebook.
        stem: File stem of the notebook, used as the figure name prefix.
        figures_dir: Destination folder (created if needed).

    Returns:
        The written files, in output order.
    """
    figures_dir.mkdir(parents=True, exist_ok=True)
    stale = re.compile(rf"{re.escape(stem)}_\d+\.png")
    for old in figures_dir.glob(f"{stem}_*.png"):
        if stale.fullmatch(old.name):
            old.unlink()
    written: list[Path] = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if not png:
                continue
            path = figures_dir / f"{stem}_{len(written) + 1}.png"
            path.write_bytes(base64.b64decode("".join(png) if isinstance(png, list) else png))
            written.append(path)
    return written


def run_notebook(source: Path, out_dir: Path, *, timeout: int | None, smoke: bool) -> NotebookResult:
    """Execute one notebook, save the executed copy and its figures.

    Args:
        source: Notebook to run; its folder becomes the kernel's working directory.
        out_dir: Report folder; writes ``notebooks/`` and ``figures/`` below it.
        timeout: Seconds per cell, or ``None`` for no limit.
        smoke: Export ``MLIPVIZ_SMOKE=1`` into the kernel.

    Returns:
        The outcome. Execution errors are caught and recorded, never raised.
    """
    nb = nbformat.read(source, as_version=4)
    executed = out_dir / "notebooks" / source.name
    result = NotebookResult(source=source, executed=executed, title=notebook_title(nb, source.stem))
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(source.parent)}},
    )
    start = time.perf_counter()
    try:
        client.execute(env=kernel_env(smoke))
    except CellExecutionError as err:
        result.error_name, result.error_value = err.ename, _ANSI.sub("", str(err.evalue))
        tqdm.write(f"\n{source.name} failed:\n{_ANSI.sub('', str(err))}", file=sys.stderr)
    except Exception as err:  # timeouts, dead kernels, missing kernelspec ...
        result.error_name, result.error_value = type(err).__name__, _ANSI.sub("", str(err))
        tqdm.write(f"\n{source.name} failed: {result.error_name}: {result.error_value}", file=sys.stderr)
    result.seconds = time.perf_counter() - start
    executed.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, executed)
    result.figures = extract_figures(nb, source.stem, out_dir / "figures")
    return result


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, str]:
    """Describe the machine without naming it: CPUs, torch device and key versions."""
    try:
        torch = importlib.import_module("torch")
        device = "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        device = "unavailable (torch not installed)"
    return {
        "CPUs": str(os.cpu_count()),
        "torch device": device,
        "Python": platform.python_version(),
        **{name: _version(name) for name in ("torch", "schnetpack", "pyscf", "mlipviz")},
    }


def _href(path: Path, root: Path) -> str:
    return quote(path.relative_to(root).as_posix())


def _duration(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes)} min {secs:04.1f} s" if minutes else f"{secs:.1f} s"


_CSS = """
body{font:15px/1.5 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0} td,th{padding:.2em .8em;text-align:left;border-bottom:1px solid #eee}
.ok{color:#176f2c;font-weight:600} .failed{color:#b00020;font-weight:600}
.meta{color:#555} figure{margin:1em 0} img{max-width:100%;border:1px solid #eee}
code{background:#f4f4f4;padding:0 .3em;border-radius:3px}
"""


def render_index(results: Sequence[NotebookResult], out_dir: Path, *, smoke: bool) -> str:
    """Render the summary page.

    Args:
        results: One entry per executed notebook, in run order.
        out_dir: Report folder; every link is relative to it.
        smoke: Whether the run was a smoke run (shown in the header).

    Returns:
        A complete, self-contained HTML document.
    """
    esc = html.escape
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    mode = "smoke (MLIPVIZ_SMOKE=1, reduced workloads)" if smoke else "full"
    machine = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in machine_info().items())

    def status(r: NotebookResult) -> str:
        if r.ok:
            return '<span class="ok">ok</span>'
        return f'<span class="failed">failed: {esc(r.error_name or "")}</span>'

    rows = "".join(
        f'<tr><td><a href="#{esc(r.source.stem)}">{esc(r.title)}</a></td>'
        f"<td>{_duration(r.seconds)}</td><td>{status(r)}</td><td>{len(r.figures)}</td></tr>"
        for r in results
    )
    sections = []
    for r in results:
        error = ""
        if not r.ok:
            error = f"<p class='failed'><code>{esc(r.error_name or '')}: {esc(r.error_value)}</code></p>"
        figures = (
            "".join(
                f'<figure><img src="{_href(f, out_dir)}" alt="{esc(r.title)}, figure {i}" loading="lazy">'
                f"<figcaption class='meta'>{esc(f.name)}</figcaption></figure>"
                for i, f in enumerate(r.figures, 1)
            )
            or "<p class='meta'>No figures.</p>"
        )
        sections.append(
            f'<section id="{esc(r.source.stem)}"><h2>{esc(r.title)}</h2>'
            f"<p class='meta'><code>{esc(r.source.name)}</code> &middot; {_duration(r.seconds)} &middot; "
            f'{status(r)} &middot; <a href="{_href(r.executed, out_dir)}">executed notebook</a></p>'
            f"{error}{figures}</section>"
        )
    failed = sum(not r.ok for r in results)
    verdict = f"{len(results) - failed} of {len(results)} notebooks ran cleanly"
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>mlipviz demo run</title><style>{_CSS}</style></head><body>"
        f"<h1>mlipviz demo run</h1><p class='meta'>{esc(now)} &middot; mode: {esc(mode)} &middot; {verdict}</p>"
        f"<h2>Machine</h2><table>{machine}</table>"
        "<h2>Notebooks</h2><table><tr><th>notebook</th><th>wall time</th><th>status</th><th>figures</th></tr>"
        f"{rows}</table>{''.join(sections)}</body></html>\n"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m mlipviz.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=Path, default=DEFAULT_NOTEBOOKS, help="folder holding 0*.ipynb")
    parser.add_argument("--out", type=Path, default=Path("build"), help="report folder (default: ./build)")
    parser.add_argument(
        "--smoke", action="store_true", help="export MLIPVIZ_SMOKE=1 to the kernels (default: on if already set)"
    )
    parser.add_argument("--only", nargs="+", metavar="NN", help="run only notebooks whose name starts with NN")
    parser.add_argument(
        "--timeout",
        type=int,
        default=DEFAULT_TIMEOUT,
        help=f"seconds per cell, 0 = no limit (default {DEFAULT_TIMEOUT})",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo.

    Args:
        argv: Command-line arguments without the program name; ``None`` reads ``sys.argv``.

    Returns:
        0 when every notebook ran cleanly, 1 when at least one failed, 2 when there was
        nothing to run.
    """
    args = parse_args(argv)
    smoke = args.smoke or smoke_mode()
    out_dir = args.out.resolve()
    try:
        notebooks = find_notebooks(args.notebooks.resolve(), args.only)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not notebooks:
        print(f"error: no 0*.ipynb notebooks in {args.notebooks}", file=sys.stderr)
        return 2

    timeout = args.timeout if args.timeout > 0 else None
    results: list[NotebookResult] = []
    with tqdm(notebooks, desc="notebooks", unit="nb", file=sys.stderr) as bar:
        for source in bar:
            bar.set_postfix_str(source.name)
            results.append(run_notebook(source, out_dir, timeout=timeout, smoke=smoke))

    index = out_dir / "index.html"
    index.write_text(render_index(results, out_dir, smoke=smoke), encoding="utf-8")
    print(f"report: {index}")
    failures = [r for r in results if not r.ok]
    if failures:
        print(f"{len(failures)} notebook(s) failed:", file=sys.stderr)
        for r in failures:
            print(f"  {r.source.name}: {r.error_name}: {r.error_value}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
