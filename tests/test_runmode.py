"""One smoke-mode rule, in the package, used by every notebook and by ``make demo``."""

import json
from pathlib import Path

import pytest

from mlipviz.runmode import SMOKE_VARIABLE, smoke_mode

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0*.ipynb"))


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"CI": "true"}, True),
        ({"CI": "1"}, True),
        ({"CI": "false"}, False),
        ({"CI": ""}, False),
        ({SMOKE_VARIABLE: "1"}, True),
        ({SMOKE_VARIABLE: "yes"}, True),
        ({SMOKE_VARIABLE: "0"}, False),
        ({"CI": "false", SMOKE_VARIABLE: "1"}, True),
    ],
)
def test_smoke_rule(env, expected):
    assert smoke_mode(env) is expected


def test_reads_the_process_environment(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv(SMOKE_VARIABLE, "1")
    assert smoke_mode() is True
    monkeypatch.setenv(SMOKE_VARIABLE, "0")
    assert smoke_mode() is False


def test_every_notebook_asks_the_package_and_keeps_no_copy_of_the_rule():
    assert len(NOTEBOOKS) >= 5
    for nb in NOTEBOOKS:
        cells = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        params = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
        assert len(params) == 1, nb.name
        assert "SMOKE = smoke_mode()" in "".join(params[0]["source"]), nb.name
        code = "".join("".join(c["source"]) for c in cells)
        assert "os.environ" not in code and "getenv" not in code, nb.name  # no private copy of the rule
