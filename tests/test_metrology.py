"""mlipviz.metrology: bootstrap intervals against analytic values and their coverage."""

import numpy as np
import pytest

from mlipviz.metrology import error_stats, parity_plot


def test_constant_error_gives_exact_mae_and_rmse():
    ref = np.zeros(50)
    stats = error_stats(ref + 0.3, ref, unit="eV")
    assert stats["MAE"].value == pytest.approx(0.3) and stats["RMSE"].value == pytest.approx(0.3)
    assert stats["MAE"].low == pytest.approx(0.3) and stats["MAE"].high == pytest.approx(0.3)


def test_interval_covers_true_mae_at_nominal_rate():
    """For N(0, σ) errors the true MAE is σ·sqrt(2/π); a 90% interval should cover it ~90% of the time."""
    rng = np.random.default_rng(0)
    sigma, n, trials = 2.0, 200, 200
    true_mae = sigma * np.sqrt(2 / np.pi)
    hits = 0
    for t in range(trials):
        err = rng.normal(0, sigma, n)
        s = error_stats(err, np.zeros(n), n_boot=400, confidence=0.9, seed=t)["MAE"]
        hits += s.low <= true_mae <= s.high
    assert 0.83 <= hits / trials <= 0.96


def test_force_errors_are_resampled_per_structure():
    """Per-structure arrays: the MAE is over all components, the interval over structures."""
    ref = [np.zeros((3, 3)), np.zeros((5, 3))]
    pred = [np.ones((3, 3)), 3 * np.ones((5, 3))]
    s = error_stats(pred, ref)
    assert s["MAE"].value == pytest.approx((9 * 1 + 15 * 3) / 24)
    assert s["MAE"].n == 2


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="pred has 2 structures but ref has 3"):
        error_stats(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="structure 1: prediction shape"):
        error_stats([np.zeros(3), np.zeros(4)], [np.zeros(3), np.zeros(3)])


def test_parity_plot_draws_points():
    import matplotlib

    matplotlib.use("Agg")
    ref = np.linspace(-1, 1, 20)
    ax = parity_plot(ref, ref + 0.1, stats=error_stats(ref + 0.1, ref, unit="eV"))
    assert len(ax.collections[0].get_offsets()) == 20
    assert "MAE" in ax.texts[0].get_text()
