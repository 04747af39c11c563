"""benchmarks/active_learning.py: how labels-needed and the ratio are counted, on learning curves made by hand.

Nothing is trained here. The curves are power laws MAE = a·n^-b, so the labels at which a curve reaches a target
are known in closed form, n = (a / target)^(1/b); log-log interpolation between rounds is exact for them.
"""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("active_learning_benchmark", ROOT / "benchmarks" /
                                                  "active_learning.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def run(strategy, seed, n, a, b):
    n = list(n)
    return {"strategy": strategy, "seed": seed, "n_labels": n,
            "forces_mae_meV_per_A": [a * k ** -b for k in n], "energy_mae_meV": [a / 10 * k ** -b for k in n]}


def test_labels_needed_is_exact_on_a_power_law(bench):
    n = [10, 20, 30, 40]
    mae = [300 * k ** -0.8 for k in n]
    target = 300 * 27.5 ** -0.8
    assert bench.labels_needed(n, mae, target) == pytest.approx(27.5, rel=1e-12)
    assert bench.labels_needed(n, mae, mae[0] * 2) == 10  # reached at the start
    assert bench.labels_needed(n, mae, mae[-1] / 2) == math.inf  # never reached: censored, not extrapolated


def test_ratio_with_a_longer_random_arm(bench):
    """Uncertainty learns with exponent 1.2, random with 0.8, from the same start; random gets twice the budget."""
    u_n, r_n = range(10, 61, 10), range(10, 121, 10)
    runs = []
    for seed, scale in enumerate((1.0, 1.1, 0.9)):
        runs.append(run("uncertainty", seed, u_n, 300 * scale * 10 ** 1.2 / 10 ** 0.8, 1.2))
        runs.append(run("random", seed, r_n, 300 * scale, 0.8))
    s = bench.summarise(runs, target=None)
    target = max(r["forces_mae_meV_per_A"][-1] for r in runs if r["strategy"] == "uncertainty")
    assert s["target_meV_per_A"] == pytest.approx(target)
    for seed, scale in enumerate((1.0, 1.1, 0.9)):  # closed form per seed
        a_u, a_r = 300 * scale * 10 ** 0.4, 300 * scale
        nu, nr = (a_u / target) ** (1 / 1.2), (a_r / target) ** (1 / 0.8)
        assert s["labels_needed_per_seed"]["uncertainty"][seed] == pytest.approx(nu, rel=1e-9)
        if nr <= 120:
            assert nu / nr in [pytest.approx(x, rel=1e-9) for x in s["ratio_per_seed"]]
        else:
            assert s["labels_needed_per_seed"]["random"][seed] == math.inf
            assert s["ratio_bounds_censored_seeds"][seed] == f"< {nu / 120:.2f}"
    curve = s["ratio_curve"]
    assert [row["n_labels_uncertainty"] for row in curve] == [20, 30, 40, 50, 60]
    mean_u = np.mean([300 * x * 10 ** 0.4 for x in (1.0, 1.1, 0.9)])  # the mean of power laws with one exponent
    for row in curve:
        n = row["n_labels_uncertainty"]
        expected = (300 / (mean_u * n ** -1.2)) ** (1 / 0.8)
        if expected <= 120:
            assert row["n_labels_random"] == pytest.approx(expected, rel=1e-9)
            assert row["ratio"] == pytest.approx(n / expected, rel=1e-9)
        else:
            assert row["n_labels_random"] == math.inf and row["ratio_bound"] == f"< {n / 120:.2f}"


def test_seeds_with_different_rounds_are_refused(bench):
    runs = [run("uncertainty", 0, [10, 20], 100, 1), run("uncertainty", 1, [10, 20, 30], 100, 1),
            run("random", 0, [10, 20], 100, 1), run("random", 1, [10, 20], 100, 1)]
    with pytest.raises(ValueError, match="uncertainty runs have different label counts"):
        bench.summarise(runs, target=None)
