"""Tests for ``python -m mlipviz.demo`` on tiny throw-away notebooks."""

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from mlipviz import demo

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write(path: Path, cells: list) -> Path:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture
def notebooks(tmp_path: Path) -> Path:
    """Two small notebooks: one draws a figure, one only has a title and prints."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _write(
        folder / "01_plot.ipynb",
        [
            new_markdown_cell("# Plotting a line\n\nSome prose."),
            new_code_cell(
                "%matplotlib inline\n"
                "import matplotlib.pyplot as plt\n"
                "plt.plot([0, 1, 2], [0, 1, 4])\n"
                "plt.show()"
            ),
        ],
    )
    _write(
        folder / "02_titled.ipynb",
        [
            new_markdown_cell("Intro text first.\n\n# Second notebook title"),
            new_code_cell("import os\nprint(os.environ.get('MLIPVIZ_SMOKE'), os.getcwd())"),
        ],
    )
    return folder


def test_demo_runs_notebooks_and_writes_report(notebooks: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    rc = demo.main(["--notebooks", str(notebooks), "--out", str(out), "--smoke", "--timeout", "120"])
    assert rc == 0

    executed = out / "notebooks"
    assert (executed / "01_plot.ipynb").is_file()
    assert (executed / "02_titled.ipynb").is_file()

    figure = out / "figures" / "01_plot_1.png"
    assert figure.is_file()
    assert figure.read_bytes().startswith(PNG_MAGIC)
    assert not list((out / "figures").glob("02_titled_*.png"))

    page = (out / "index.html").read_text(encoding="utf-8")
    assert 'src="figures/01_plot_1.png"' in page
    assert "Plotting a line" in page
    assert "Second notebook title" in page
    assert 'href="notebooks/01_plot.ipynb"' in page
    assert "smoke" in page
    assert "failed:" not in page
    assert "2 of 2 notebooks ran cleanly" in page

    # the kernel saw MLIPVIZ_SMOKE=1 and ran inside the notebooks folder
    ran = nbformat.read(executed / "02_titled.ipynb", as_version=4)
    stdout = "".join(o.get("text", "") for o in ran.cells[1].outputs)
    assert stdout.split()[0] == "1"
    assert Path(stdout.split(maxsplit=1)[1].strip()).resolve() == notebooks.resolve()


def test_failing_notebook_is_reported_and_run_continues(notebooks: Path, tmp_path: Path) -> None:
    _write(
        notebooks / "01_plot.ipynb",
        [
            new_markdown_cell("# Broken notebook"),
            new_code_cell("print('before the failure')"),
            new_code_cell("raise ValueError('boom')"),
            new_code_cell("print('never reached')"),
        ],
    )
    out = tmp_path / "build"
    rc = demo.main(["--notebooks", str(notebooks), "--out", str(out), "--timeout", "120"])
    assert rc != 0

    broken = nbformat.read(out / "notebooks" / "01_plot.ipynb", as_version=4)
    assert "before the failure" in broken.cells[1].outputs[0]["text"]
    assert broken.cells[2].outputs[0]["ename"] == "ValueError"
    assert not broken.cells[3].get("outputs")

    other = nbformat.read(out / "notebooks" / "02_titled.ipynb", as_version=4)
    assert other.cells[1].outputs, "the notebook after the failing one must still run"

    page = (out / "index.html").read_text(encoding="utf-8")
    assert "failed: ValueError" in page
    assert "boom" in page
    assert "Second notebook title" in page


def test_only_selects_and_rejects_unknown(notebooks: Path) -> None:
    assert [p.name for p in demo.find_notebooks(notebooks, ["02"])] == ["02_titled.ipynb"]
    assert len(demo.find_notebooks(notebooks)) == 2
    with pytest.raises(FileNotFoundError):
        demo.find_notebooks(notebooks, ["07"])
    assert demo.main(["--notebooks", str(notebooks), "--only", "07"]) == 2
