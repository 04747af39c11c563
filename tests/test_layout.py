"""The shape of the house: no import cycles, modules of one concept, stable public entry points."""

import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlipviz"
#: "One concept per module, a few hundred lines at most."
MAX_LINES = 400


def test_no_import_cycles_between_modules():
    """Beside the layer contract (lint-imports), no two modules of mlipviz import each other, even indirectly."""
    import grimp

    graph = grimp.build_graph("mlipviz")
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            # a package's __init__ re-exporting its children is not a cycle of concepts
            if imported.startswith(module + ".") or module.startswith(imported + "."):
                continue
            if graph.chain_exists(importer=imported, imported=module):
                cycles.append((module, imported))
    assert not cycles, cycles


def test_modules_stay_small():
    long = {p.relative_to(PACKAGE).as_posix(): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_public_entry_points_keep_their_import_paths():
    from mlipviz.md import run_md
    from mlipviz.potential import MLIPCalculator
    from mlipviz.reference import label
    from mlipviz.reference.campaign import run_campaign

    assert all(callable(f) for f in (run_md, MLIPCalculator, label, run_campaign))


@pytest.mark.parametrize("module", ["mlipviz.reference.campaign"])
def test_command_lines_still_answer(module):
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--store" in out.stdout


def test_data_recipe_lives_beside_the_data_not_in_the_library():
    root = PACKAGE.parent
    assert (root / "data" / "build.py").is_file()
    assert not (PACKAGE / "datasets.py").exists() and not (PACKAGE / "data.py").exists()
    out = subprocess.run([sys.executable, str(root / "data" / "build.py"), "--help"], capture_output=True, text=True,
                         timeout=120, cwd=root)
    assert out.returncode == 0 and "--only-campaigns" in out.stdout
