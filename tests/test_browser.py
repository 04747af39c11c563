"""End-to-end browser test: run every notebook that shows a widget in real JupyterLab and Chromium.

For each such notebook, the test starts (once) JupyterLab as a subprocess, opens the notebook in headless
Chromium through Playwright, runs all cells, and then checks that

* every code cell executed without an error output or traceback,
* the browser logged no JavaScript error (widget errors in particular),
* the page shows no "Error displaying widget" / "not registered" text,
* an nglview canvas actually drew something (its pixels are not uniform), and
* where the notebook shows a dataset explorer, a click on a point of its scatter plot selects that structure:
  the explorer's label names it and the 3D view beside the plot draws something else.

Screenshots land in ``build/screenshots/`` for a human to look at (``explorer.png`` is the README's picture).

Environment variables:
    MLIPVIZ_BROWSER_NOTEBOOK: Test only this notebook, relative to the repository root (default: every
        notebook whose code shows a widget, see :func:`widget_notebooks`).
    MLIPVIZ_CHROMIUM: Chromium executable (default: ``/usr/bin/chromium``).

The test is skipped only when Chromium or Playwright is missing; ``make test``
installs both, so in CI it always runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# Skipped (not failed) where Playwright is not installed; `make test` installs it.
sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="playwright is not installed (`make test` installs it)",
)

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ENV = "MLIPVIZ_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM = os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM
# Skipped before any server starts; `make test` installs Chromium (`make system`).
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(
        f"Chromium not found at {CHROMIUM} (set {CHROMIUM_ENV}; `make test` installs it)",
        allow_module_level=True,
    )

NOTEBOOK_ENV = "MLIPVIZ_BROWSER_NOTEBOOK"
# A notebook whose code holds one of these shows a widget, and is run in the browser.
WIDGET_MARKERS = ("view_structure", "view_pair_values", "md_player", "mlipviz.widgets", "nglview", "ipywidgets")
SCREENSHOT_DIR = REPO_ROOT / "build" / "screenshots"

# These flags make headless Chromium draw WebGL with software rendering (SwiftShader).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--enable-unsafe-swiftshader",
    "--use-angle=swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 1000}

# Bounded waits, in seconds (the test machine may have only 2 CPU cores).
SERVER_START_TIMEOUT_S = 120.0
SERVER_STOP_TIMEOUT_S = 30.0
BROWSER_LAUNCH_TIMEOUT_S = 60.0
PAGE_LOAD_TIMEOUT_S = 120.0
KERNEL_READY_TIMEOUT_S = 120.0
RUN_ALL_TIMEOUT_S = 240.0
CANVAS_TIMEOUT_S = 60.0
RENDER_SETTLE_S = 3.0
POLL_INTERVAL_S = 0.5

# A blank or uniformly filled canvas has a pixel standard deviation of ~0; a
# drawn molecule on a plain background is far above this.
MIN_CANVAS_STD = 5.0

# nglview draws with three.js into a <canvas> inside the cell's output area.
# Its elements carry no distinctive class, and ipywidgets' output panels no
# MIME type, so any output canvas counts (matplotlib inline output is <img>).
CANVAS_SELECTOR = ".jp-OutputArea-output canvas"

# User settings for the temporary JupyterLab settings dir.
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    # No "receive official Jupyter news?" toast and no update check.
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    # Never write executed outputs back into the notebook under test.
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    # The extension manager would query PyPI; this machine may be offline.
    "@jupyterlab/extensionmanager-extension/plugin": {"enabled": False},
}

# Browser console errors that are known to be harmless. Keep this list short:
# every entry hides a class of messages from the test.
CONSOLE_ALLOWLIST = [
    # The browser asks for /favicon.ico, which jupyter_server may not serve.
    re.compile(r"favicon", re.IGNORECASE),
    # Fetches of the news feed / extension manager / update check, which have
    # no network here (disabled above, kept in case a plugin still tries).
    re.compile(r"lab/api/(news|extensions)", re.IGNORECASE),
]

# Patterns that mark a console *warning* as a widget failure too (errors are
# always failures unless allow-listed).
WIDGET_WARNING_PATTERNS = re.compile(
    r"nglview|not registered|Class \S+ not found|Error displaying widget",
    re.IGNORECASE,
)

# Text that must never appear in any output area: ipywidgets' messages for a
# widget that failed to load or render.
BAD_OUTPUT_TEXT = (
    "Error displaying widget",
    "not registered",
    "Click to show javascript error",
)


@dataclasses.dataclass
class LabServer:
    """A running JupyterLab server started by the test.

    Attributes:
        process: The server process (leader of its own process group).
        base_url: URL of the server root, ending in ``/``.
        token: The authentication token.
        log_path: File that receives the server's stdout and stderr.
    """

    process: subprocess.Popen[bytes]
    base_url: str
    token: str
    log_path: Path

    def log_tail(self, n_chars: int = 4000) -> str:
        """Returns the end of the server log, for failure messages.

        Args:
            n_chars: How many characters to return at most.

        Returns:
            The last ``n_chars`` characters of the log (empty if unreadable).
        """
        try:
            return self.log_path.read_text(errors="replace")[-n_chars:]
        except OSError:
            return ""


@dataclasses.dataclass
class BrowserLog:
    """Console messages and page errors collected from the browser page.

    Attributes:
        entries: One ``(kind, text, url)`` triple per message, in arrival
            order; ``kind`` is ``console.<type>`` or ``pageerror``, ``url``
            the script or resource the message came from ("" if unknown).
    """

    entries: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)

    def add_console_message(self, message: Any) -> None:
        """Records a Playwright ``ConsoleMessage``.

        Args:
            message: The console message.
        """
        url = (message.location or {}).get("url") or ""
        self.entries.append((f"console.{message.type}", message.text, url))

    def add_page_error(self, error: Any) -> None:
        """Records an uncaught exception in the page.

        Args:
            error: The Playwright ``Error``.
        """
        self.entries.append(("pageerror", str(error), ""))

    def failures(self) -> list[str]:
        """Returns the messages that should fail the test.

        Every page error and console error fails unless its text or URL
        matches :data:`CONSOLE_ALLOWLIST` (the URL matters for messages such
        as "Failed to load resource: ... 404", which name the resource only
        there). Console warnings fail only if their text looks like a widget
        problem (:data:`WIDGET_WARNING_PATTERNS`).

        Returns:
            Formatted ``kind: text [url]`` lines, one per failing message.
        """
        bad = []
        for kind, text, url in self.entries:
            if any(p.search(text) or p.search(url) for p in CONSOLE_ALLOWLIST):
                continue
            is_error = kind in ("pageerror", "console.error")
            is_widget_warning = kind == "console.warning" and bool(
                WIDGET_WARNING_PATTERNS.search(text)
            )
            if is_error or is_widget_warning:
                bad.append(f"{kind}: {text} [{url}]")
        return bad

    def dump(self) -> str:
        """Returns every collected message, one per line, for diagnostics."""
        return "\n".join(f"{kind}: {text} [{url}]" for kind, text, url in self.entries)


def widget_notebooks() -> list[str]:
    """Returns the notebooks to test, relative to the repository root.

    Returns:
        ``[$MLIPVIZ_BROWSER_NOTEBOOK]`` if set, else every ``notebooks/NN_*.ipynb`` whose code cells hold one of
        :data:`WIDGET_MARKERS`, as POSIX paths relative to :data:`REPO_ROOT`.
    """
    raw = os.environ.get(NOTEBOOK_ENV)
    if raw:
        path = Path(raw)
        if path.is_absolute():
            path = path.resolve().relative_to(REPO_ROOT)
        return [path.as_posix()]
    found = []
    for notebook in sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        if any(marker in code for marker in WIDGET_MARKERS):
            found.append(notebook.relative_to(REPO_ROOT).as_posix())
    return found


def find_free_port() -> int:
    """Returns a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_lab_settings(settings_dir: Path) -> None:
    """Writes :data:`LAB_SETTINGS` as JupyterLab user settings files.

    Args:
        settings_dir: The directory passed as ``--LabApp.user_settings_dir``.
    """
    for plugin, values in LAB_SETTINGS.items():
        target = settings_dir / f"{plugin}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values, indent=2))


def api_request(server: LabServer, path: str, method: str = "GET", timeout: float = 5.0) -> Any:
    """Calls the Jupyter server REST API with the token.

    Args:
        server: The server to call.
        path: API path below the base URL, e.g. ``api/status``.
        method: HTTP method.
        timeout: Socket timeout in seconds.

    Returns:
        The decoded JSON body, or ``None`` if the body is empty.

    Raises:
        urllib.error.URLError: If the server cannot be reached.
        urllib.error.HTTPError: If the server answers with an error status.
    """
    request = urllib.request.Request(
        server.base_url + path,
        method=method,
        headers={"Authorization": f"token {server.token}"},
        data=b"" if method == "POST" else None,
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read()
    return json.loads(body) if body else None


def wait_for_server(server: LabServer, timeout: float) -> None:
    """Blocks until ``/api/status`` answers, or fails the test.

    Args:
        server: The server that was just started.
        timeout: Seconds to wait at most.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"JupyterLab exited early with code {server.process.returncode}."
                f"\n--- server log ---\n{server.log_tail()}"
            )
        try:
            api_request(server, "api/status", timeout=2.0)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(POLL_INTERVAL_S)
    pytest.fail(
        f"JupyterLab did not answer /api/status within {timeout:.0f} s."
        f"\n--- server log ---\n{server.log_tail()}"
    )


def stop_server(server: LabServer) -> None:
    """Shuts the server and its kernels down, escalating to signals.

    The server is asked to shut down over the API first, because kernels run
    in their own sessions and only the server knows them. If it does not exit
    in time, its process group gets SIGTERM and then SIGKILL.

    Args:
        server: The server to stop.
    """
    proc = server.process
    if proc.poll() is None:
        try:
            api_request(server, "api/shutdown", method="POST", timeout=10.0)
            proc.wait(timeout=SERVER_STOP_TIMEOUT_S)
        except (urllib.error.URLError, OSError, subprocess.TimeoutExpired):
            pass  # Not up yet, or hanging: the signals below take over.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            continue
    # Reap anything left in the group (e.g. helpers the server spawned).
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@contextlib.contextmanager
def sigterm_raises_interrupt() -> Iterator[None]:
    """Turns SIGTERM into ``KeyboardInterrupt`` while the block runs.

    A plain SIGTERM (from ``timeout`` or a CI runner) would otherwise end
    pytest without any teardown and orphan the JupyterLab server, which runs
    in its own session. Does nothing outside the main thread or where a
    SIGTERM handler is already installed.

    Yields:
        Nothing; the previous handler is restored on exit.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """Starts JupyterLab on a free local port and stops it afterwards.

    Args:
        tmp_path_factory: pytest's factory for temporary directories.

    Yields:
        The running server.
    """
    tmp = tmp_path_factory.mktemp("jupyterlab")
    settings_dir = tmp / "settings"
    workspaces_dir = tmp / "workspaces"
    runtime_dir = tmp / "runtime"
    checkpoints_dir = tmp / "checkpoints"
    for directory in (settings_dir, workspaces_dir, runtime_dir, checkpoints_dir):
        directory.mkdir()
    write_lab_settings(settings_dir)

    port = find_free_port()
    token = secrets.token_hex(24)
    env = dict(os.environ, MLIPVIZ_SMOKE="1", JUPYTER_RUNTIME_DIR=str(runtime_dir))
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={REPO_ROOT}",
        f"--LabApp.user_settings_dir={settings_dir}",
        f"--LabApp.workspaces_dir={workspaces_dir}",
        # Keeps .ipynb_checkpoints/ out of the repository (absolute path wins).
        f"--FileCheckpoints.checkpoint_dir={checkpoints_dir}",
        # Exposes window.jupyterapp, so the test can drive lab commands.
        "--LabApp.expose_app_in_browser=True",
    ]
    if os.geteuid() == 0:  # Containers and CI machines often run as root.
        cmd.append("--allow-root")
    log_path = tmp / "jupyterlab.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LabServer(process, f"http://127.0.0.1:{port}/", token, log_path)
    with sigterm_raises_interrupt():
        try:
            wait_for_server(server, SERVER_START_TIMEOUT_S)
            yield server
        finally:
            stop_server(server)


@pytest.fixture()
def browser_page() -> Iterator[tuple[Any, BrowserLog]]:
    """Launches headless Chromium and opens a page that logs its console.

    Yields:
        The Playwright page and the log that collects its console messages
        and page errors from the moment the page exists.
    """
    log = BrowserLog()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            timeout=BROWSER_LAUNCH_TIMEOUT_S * 1000,
        )
        try:
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            page.set_default_timeout(PAGE_LOAD_TIMEOUT_S * 1000)
            page.on("console", log.add_console_message)
            page.on("pageerror", log.add_page_error)
            yield page, log
        finally:
            browser.close()


# JavaScript run in the page. `path` is the notebook path; the functions find
# its NotebookPanel among the main-area widgets of window.jupyterapp.
_JS_FIND_PANEL = """
const findPanel = (path) => {
  const app = window.jupyterapp;
  if (!app || !app.shell) { return null; }
  return Array.from(app.shell.widgets('main')).find(
    (w) => w.context && w.context.path === path && w.content && w.content.model
  ) || null;
};
"""

JS_KERNEL_READY = _JS_FIND_PANEL + """
(path) => {
  const panel = findPanel(path);
  if (!panel) { return false; }
  const ctx = panel.sessionContext;
  const kernel = ctx.session && ctx.session.kernel;
  return Boolean(ctx.isReady && kernel && kernel.status === 'idle');
}
"""

JS_RUN_ALL = _JS_FIND_PANEL + """
async (path) => {
  const app = window.jupyterapp;
  const panel = findPanel(path);
  app.shell.activateById(panel.id);
  // Saved outputs and execution counts would make the notebook look done.
  await app.commands.execute('notebook:clear-all-cell-outputs');
  // Not awaited: the returned promise settles only when every cell has run.
  app.commands.execute('notebook:run-all-cells').catch(
    (err) => console.error('run-all-cells failed: ' + err)
  );
  return panel.id;
}
"""

JS_NOTEBOOK_STATE = _JS_FIND_PANEL + """
(path) => {
  const panel = findPanel(path);
  if (!panel) { return null; }
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const text = (t) => Array.isArray(t) ? t.join('') : String(t || '');
  const cells = [];
  let index = 0;
  for (const cell of panel.content.model.cells) {
    index += 1;
    if (cell.type !== 'code') { continue; }
    const outputs = cell.outputs.toJSON();
    cells.push({
      index: index,
      empty: cell.sharedModel.getSource().trim() === '',
      count: cell.executionCount,
      errors: outputs.filter((o) => o.output_type === 'error').map(
        (o) => `${o.ename}: ${o.evalue}\\n${(o.traceback || []).join('\\n')}`),
      tracebacks: outputs.filter(
        (o) => o.output_type === 'stream' && o.name === 'stderr'
               && text(o.text).includes('Traceback')).map((o) => text(o.text)),
    });
  }
  return {status: kernel ? kernel.status : 'no kernel', cells: cells};
}
"""

JS_DESCRIBE_CANVASES = """
() => Array.from(document.querySelectorAll('canvas')).map((c) => {
  const chain = [];
  for (let el = c; el && chain.length < 8; el = el.parentElement) {
    const classes = String(el.className || '').trim().split(/\\s+/).filter(Boolean);
    chain.push([el.tagName.toLowerCase(), ...classes].join('.'));
  }
  return `${c.width}x${c.height}: ${chain.join(' < ')}`;
})
"""

# Strips ANSI colour codes from tracebacks for readable failure messages.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def format_cell_errors(state: dict[str, Any]) -> str:
    """Formats the error outputs of all cells for a failure message.

    Args:
        state: The result of :data:`JS_NOTEBOOK_STATE`.

    Returns:
        One block per failing cell, or an empty string if none failed.
    """
    blocks = []
    for cell in state["cells"]:
        problems = cell["errors"] + cell["tracebacks"]
        if problems:
            body = _ANSI.sub("", "\n".join(problems))
            blocks.append(f"cell #{cell['index']} (count {cell['count']}):\n{body}")
    return "\n\n".join(blocks)


def run_all_cells(page: Any, path: str, log: BrowserLog) -> dict[str, Any]:
    """Runs every cell of the open notebook and waits until all have run.

    Args:
        page: The Playwright page showing the notebook.
        path: The notebook path relative to the server root.
        log: The browser log, quoted in failure messages.

    Returns:
        The final notebook state (see :data:`JS_NOTEBOOK_STATE`).
    """
    try:
        page.wait_for_function(
            JS_KERNEL_READY,
            arg=path,
            timeout=KERNEL_READY_TIMEOUT_S * 1000,
            polling=int(POLL_INTERVAL_S * 1000),
        )
    except sync_api.TimeoutError:
        pytest.fail(
            f"Notebook {path} did not open with an idle kernel within "
            f"{KERNEL_READY_TIMEOUT_S:.0f} s.\n--- browser console ---\n{log.dump()}"
        )
    page.evaluate(JS_RUN_ALL, path)

    deadline = time.monotonic() + RUN_ALL_TIMEOUT_S
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_S)
        state = page.evaluate(JS_NOTEBOOK_STATE, path)
        assert state is not None, f"Notebook {path} is no longer open"
        if state["status"] in ("dead", "no kernel"):
            pytest.fail(f"Kernel is {state['status']} while running {path}")
        errors = format_cell_errors(state)
        if errors and state["status"] == "idle":
            pytest.fail(f"Cell error(s) while running {path}:\n{errors}")
        pending = [c for c in state["cells"] if not c["empty"] and c["count"] is None]
        if state["status"] == "idle" and not pending:
            return state
    pending_idx = [
        c["index"] for c in state.get("cells", []) if not c["empty"] and c["count"] is None
    ]
    pytest.fail(
        f"Running all cells of {path} did not finish within {RUN_ALL_TIMEOUT_S:.0f} s "
        f"(kernel {state.get('status')}, cells without execution count: {pending_idx})"
    )


def canvas_pixel_std(png: bytes) -> float:
    """Returns the standard deviation of a PNG image's RGB values.

    Args:
        png: PNG-encoded image.

    Returns:
        The standard deviation over all RGB channel values; ~0 for a blank or
        uniformly coloured image.
    """
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    return float(rgb.std())


def save_page_screenshot(page: Any, target: Path) -> None:
    """Saves a full-page screenshot, also after a failure.

    A browser that has died is only reported, so that the error which
    killed it stays the one the test fails with.

    Args:
        page: The Playwright page.
        target: PNG file to write.
    """
    try:
        page.screenshot(path=str(target), full_page=True, timeout=30_000)
    except sync_api.Error as err:
        print(f"\n[browser] could not save {target}: {err}")


def widget_problems(page: Any, log: BrowserLog) -> list[str]:
    """Lists the widget and JavaScript problems visible so far.

    Args:
        page: The Playwright page showing the notebook.
        log: The browser log collected since the page opened.

    Returns:
        One line per problem: console errors, bad text in outputs, and
        tracebacks printed to stderr. Empty if all is well.
    """
    problems = [f"browser console: {failure}" for failure in log.failures()]
    outputs_text = page.evaluate(
        "() => Array.from(document.querySelectorAll('.jp-OutputArea'))"
        ".map((el) => el.innerText).join('\\n')"
    )
    problems += [f"an output shows {t!r}" for t in BAD_OUTPUT_TEXT if t in outputs_text]
    n_tracebacks = page.locator(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]',
        has_text="Traceback",
    ).count()
    if n_tracebacks:
        problems.append(f"{n_tracebacks} output(s) with a Traceback on stderr")
    n_error_widgets = page.locator(".jp-OutputArea .jupyter-widgets-error-widget").count()
    if n_error_widgets:
        problems.append(f"{n_error_widgets} widget(s) rendered as an error box")
    return problems


def wait_for_canvas(page: Any, log: BrowserLog) -> Any:
    """Waits until an nglview canvas exists and has a non-zero size.

    Fails early if a widget problem (see :func:`widget_problems`) shows up
    meanwhile, since a broken widget would never draw its canvas.

    Args:
        page: The Playwright page showing the executed notebook.
        log: The browser log, quoted in failure messages.

    Returns:
        A Playwright locator for the first such canvas.
    """
    canvases = page.locator(CANVAS_SELECTOR)
    deadline = time.monotonic() + CANVAS_TIMEOUT_S
    while time.monotonic() < deadline:
        problems = widget_problems(page, log)
        if problems:
            pytest.fail("Widget problems after running all cells:\n" + "\n".join(problems))
        for i in range(canvases.count()):
            canvas = canvases.nth(i)
            canvas.scroll_into_view_if_needed(timeout=5000)
            box = canvas.bounding_box()
            if box and box["width"] > 0 and box["height"] > 0:
                return canvas
        time.sleep(POLL_INTERVAL_S)
    pytest.fail(
        f"No nglview canvas ({CANVAS_SELECTOR!r}) with non-zero size appeared "
        f"within {CANVAS_TIMEOUT_S:.0f} s.\n--- canvases on the page ---\n"
        + "\n".join(page.evaluate(JS_DESCRIBE_CANVASES))
        + f"\n--- browser console ---\n{log.dump()}"
    )


JS_SHUTDOWN_KERNEL = _JS_FIND_PANEL + """
async (path) => {
  const panel = findPanel(path);
  if (panel) { await panel.sessionContext.shutdown(); }
  return true;
}
"""

# The dataset explorer's parts (see mlipviz.widgets.DatasetExplorer): its bqplot figure, its 3D view and the
# label that names the picked structure.
EXPLORER_SCATTER = ".mlipviz-explorer-scatter"
EXPLORER_VIEW = ".mlipviz-explorer-view"
EXPLORER_LABEL = ".mlipviz-explorer-label"
EXPLORER_WIDGET = ".mlipviz-explorer"
# bqplot draws each scatter point as an SVG path of class "dot".
EXPLORER_DOT = "path.dot"
SELECTION_TIMEOUT_S = 30.0
# Mean absolute RGB change above which two screenshots of the 3D view count as different pictures.
MIN_VIEW_CHANGE = 0.5


def image_difference(before: bytes, after: bytes) -> float:
    """Mean absolute RGB difference of two PNG screenshots of the same element (0 when identical).

    Args:
        before: PNG bytes.
        after: PNG bytes.

    Returns:
        The mean |ΔRGB| over the overlapping pixels, in 0–255 units.
    """
    from PIL import Image

    with Image.open(io.BytesIO(before)) as a, Image.open(io.BytesIO(after)) as b:
        x, y = np.asarray(a.convert("RGB"), dtype=float), np.asarray(b.convert("RGB"), dtype=float)
    h, w = min(x.shape[0], y.shape[0]), min(x.shape[1], y.shape[1])
    return float(np.abs(x[:h, :w] - y[:h, :w]).mean())


def check_explorer_click(page: Any, log: BrowserLog) -> str | None:
    """Clicks a point of the first dataset explorer's scatter and checks the selection reaches the 3D view.

    Args:
        page: The Playwright page showing the executed notebook.
        log: The browser log, quoted in failure messages.

    Returns:
        A one-line summary, or None when the notebook shows no explorer.
    """
    figures = page.locator(EXPLORER_SCATTER)
    if figures.count() == 0:
        return None
    explorer = page.locator(EXPLORER_WIDGET).first
    explorer.scroll_into_view_if_needed(timeout=5000)
    label = page.locator(EXPLORER_LABEL).first
    canvas = page.locator(f"{EXPLORER_VIEW} canvas").first
    page.wait_for_timeout(RENDER_SETTLE_S * 1000)
    before_label, before_png = label.inner_text(), canvas.screenshot(timeout=30_000)
    dots = figures.first.locator(EXPLORER_DOT)
    n_dots = dots.count()
    assert n_dots >= 2, f"the explorer's scatter shows {n_dots} points ({EXPLORER_DOT!r}); expected one per structure"
    # The point farthest from the first in document order: another structure than the one shown at start.
    dots.nth(n_dots - 1).click(force=True, timeout=10_000)
    deadline = time.monotonic() + SELECTION_TIMEOUT_S
    while label.inner_text() == before_label and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_S)
    after_label = label.inner_text()
    assert after_label != before_label, (
        f"clicking a scatter point left the explorer's label at {before_label!r} for {SELECTION_TIMEOUT_S:.0f} s"
        f"\n--- browser console ---\n{log.dump()}")
    page.wait_for_timeout(RENDER_SETTLE_S * 1000)
    after_png = canvas.screenshot(timeout=30_000)
    change = image_difference(before_png, after_png)
    explorer.screenshot(path=str(SCREENSHOT_DIR / "explorer.png"), timeout=30_000)
    assert change > MIN_VIEW_CHANGE, (
        f"the explorer's 3D view did not change after the click (mean |ΔRGB| {change:.2f}); see "
        f"{SCREENSHOT_DIR / 'explorer.png'}")
    assert canvas_pixel_std(after_png) > MIN_CANVAS_STD, "the explorer's 3D view is blank after the click"
    return f"explorer: {before_label!r} -> {after_label!r}, 3D view mean |ΔRGB| {change:.1f}"


@pytest.mark.browser
@pytest.mark.parametrize("path", widget_notebooks())
def test_notebook_runs_and_widgets_draw(
    path: str, lab_server: LabServer, browser_page: tuple[Any, BrowserLog]
) -> None:
    """Runs a notebook in JupyterLab; checks its widgets render, nglview draws and the explorer answers clicks.

    Args:
        path: The notebook, relative to the repository root.
        lab_server: The running JupyterLab server.
        browser_page: The Chromium page and its console log.
    """
    page, log = browser_page
    assert (REPO_ROOT / path).is_file(), f"Notebook {path} does not exist (see ${NOTEBOOK_ENV})"
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    stem = Path(path).stem
    page_shot = SCREENSHOT_DIR / f"browser_{stem}.png"
    canvas_shot = SCREENSHOT_DIR / f"nglview_canvas_{stem}.png"

    started = time.monotonic()
    page.goto(
        f"{lab_server.base_url}lab/tree/{urllib.parse.quote(path)}?token={lab_server.token}",
        wait_until="domcontentloaded",
    )
    try:
        run_all_cells(page, path, log)
        canvas = wait_for_canvas(page, log)
        # nglview loads the structure and draws asynchronously after the
        # canvas appears; give it a moment (software WebGL is slow).
        page.wait_for_timeout(RENDER_SETTLE_S * 1000)
        canvas.scroll_into_view_if_needed(timeout=5000)
        png = canvas.screenshot(path=str(canvas_shot), timeout=30_000)
        clicked = check_explorer_click(page, log)
        problems = widget_problems(page, log)
    finally:
        save_page_screenshot(page, page_shot)
        with contextlib.suppress(sync_api.Error):  # free the kernel's memory before the next notebook
            page.evaluate(JS_SHUTDOWN_KERNEL, path)
    elapsed = time.monotonic() - started

    assert not problems, f"Widget problems after rendering (see {page_shot}):\n" + "\n".join(
        problems
    )
    std = canvas_pixel_std(png)
    print(f"\n[browser] {path}: ran in {elapsed:.1f} s, nglview canvas RGB std = {std:.2f}"
          + (f"; {clicked}" if clicked else ""))
    assert (
        std > MIN_CANVAS_STD
    ), f"nglview canvas looks blank: RGB std {std:.2f} <= {MIN_CANVAS_STD} (see {canvas_shot})"
