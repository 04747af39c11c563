"""Uncertainty-quality metrics and their plots, against brute force, scipy and analytic Gaussian limits."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy.integrate import quad  # noqa: E402
from scipy.stats import norm, spearmanr  # noqa: E402

from mlipviz.metrology.calibration import UQMetrics, ood_roc_auc, roc_auc, uq_metrics  # noqa: E402
from mlipviz.metrology.uq_plots import (  # noqa: E402
    plot_calibration_curve,
    plot_error_vs_uncertainty,
    plot_rmse_vs_rmv,
)


def brute_force_auc(scores, labels):
    """P(score of a positive > score of a negative), ties ½, by counting every pair."""
    pos, neg = scores[labels], scores[~labels]
    diff = pos[:, None] - neg[None, :]
    return (np.sum(diff > 0) + 0.5 * np.sum(diff == 0)) / diff.size


def gaussian_sample(n, seed, factor=1.0):
    """σ log-normal around 10 meV, errors drawn from N(0, (factor·σ)²)."""
    rng = np.random.default_rng(seed)
    sigma = np.exp(rng.normal(np.log(0.01), 0.7, n))
    return rng.normal(0.0, factor * sigma), sigma


def test_auc_equals_pair_count_with_ties(rng):
    scores = rng.integers(0, 6, 300).astype(float)  # few distinct values: many ties
    labels = rng.random(300) < 0.3
    assert roc_auc(scores, labels) == pytest.approx(brute_force_auc(scores, labels), abs=1e-12)


def test_uq_metrics_auc_flags_largest_errors(rng):
    errors = rng.normal(size=200)
    sigmas = rng.integers(1, 5, 200).astype(float)  # tied scores
    m = uq_metrics(errors, sigmas, flag_fraction=0.2, n_bins=4, n_boot=0)
    flagged = np.abs(errors) >= np.sort(np.abs(errors))[-40]
    assert m.n_flagged == 40
    assert m.auc == pytest.approx(brute_force_auc(sigmas, flagged), abs=1e-12)


def test_ood_auc_equals_pair_count(rng):
    sigma_in = np.round(rng.lognormal(0, 1, 80), 1)
    sigma_out = np.round(rng.lognormal(0.5, 1, 40), 1)
    scores = np.concatenate([sigma_in, sigma_out])
    labels = np.r_[np.zeros(80, bool), np.ones(40, bool)]
    assert ood_roc_auc(sigma_in, sigma_out) == pytest.approx(brute_force_auc(scores, labels), abs=1e-12)
    assert ood_roc_auc([1.0, 2.0], [3.0, 4.0]) == 1.0
    assert ood_roc_auc([3.0, 4.0], [1.0, 2.0]) == 0.0
    assert ood_roc_auc([0.0, 1.0], [0.0, 2.0]) == pytest.approx(0.625)  # zero spread (atoms beyond the cutoff) ranks too


def test_perfect_and_reversed_ranking(rng):
    errors = rng.normal(size=100)
    perfect = uq_metrics(errors, np.abs(errors) + 1e-3, n_bins=5, n_boot=0)
    reversed_ = uq_metrics(errors, 1.0 / (np.abs(errors) + 1e-3), n_bins=5, n_boot=0)
    assert perfect.auc == 1.0 and perfect.spearman == pytest.approx(1.0)
    assert reversed_.auc == 0.0 and reversed_.spearman == pytest.approx(-1.0)


def test_spearman_equals_scipy_and_bootstrap_brackets_it(rng):
    errors = rng.normal(size=150)
    sigmas = np.abs(errors) + rng.exponential(0.5, 150)
    sigmas[:20] = 1.0  # ties
    m = uq_metrics(errors, sigmas, n_bins=5, n_boot=300, seed=3)
    assert m.spearman == pytest.approx(spearmanr(np.abs(errors), sigmas).statistic, abs=1e-12)
    assert m.spearman_ci[0] < m.spearman < m.spearman_ci[1]
    assert m.auc_ci[0] < m.auc < m.auc_ci[1]
    assert m.spearman_ci[1] - m.spearman_ci[0] < 0.4


def test_calibrated_gaussian_errors():
    errors, sigma = gaussian_sample(20000, seed=0)
    m = uq_metrics(errors, sigma)
    assert m.miscalibration_area < 0.01
    assert m.scale == pytest.approx(1.0, abs=0.02)
    # RMSE ≈ RMV in every equal-count bin (2000 items each: ~1.6 % standard error of an RMSE)
    np.testing.assert_allclose(m.bin_rmse, m.bin_rmv, rtol=0.08)
    assert m.ence < 0.04
    assert m.slope == pytest.approx(1.0, abs=0.1)
    assert np.all(np.diff(m.bin_rmv) > 0) and m.bin_count.sum() == 20000


def test_miscalibration_area_of_doubled_errors_matches_analytic():
    def excess(p):  # errors drawn with 2σ: P(|e| ≤ z_p σ) = 2Φ(z_p / 2) − 1
        z = norm.ppf((1 + p) / 2)
        return abs(2 * norm.cdf(z / 2) - 1 - p)

    analytic = quad(excess, 0, 1, limit=200)[0]
    errors, sigma = gaussian_sample(20000, seed=1, factor=2.0)
    m = uq_metrics(errors, sigma, n_boot=0)
    assert analytic > 0.1  # a clearly miscalibrated case
    assert m.miscalibration_area == pytest.approx(analytic, abs=0.01)
    assert m.signed_area == pytest.approx(-analytic, abs=0.01)  # σ too small: curve below the diagonal
    assert m.scale == pytest.approx(2.0, rel=0.03)
    assert m.slope == pytest.approx(2.0, rel=0.1)


def test_nll_matches_hand_formula(rng):
    errors = rng.normal(0, 0.02, 50)
    sigmas = rng.uniform(0.01, 0.03, 50)
    m = uq_metrics(errors, sigmas, n_bins=5, n_boot=0)
    hand = np.mean(0.5 * np.log(2 * np.pi * sigmas**2) + errors**2 / (2 * sigmas**2))
    assert m.nll == pytest.approx(hand, rel=1e-12)
    s = np.sqrt(np.mean(errors**2 / sigmas**2))
    assert m.scale == pytest.approx(s)
    assert m.nll_calibrated <= m.nll + 1e-12
    assert isinstance(m, UQMetrics) and "Spearman" in str(m)


@pytest.mark.parametrize(
    "kwargs, errors, sigmas, match",
    [
        ({}, np.ones(20), np.ones(21), "shape"),
        ({}, np.array([]), np.array([]), "empty"),
        ({}, np.r_[np.nan, np.ones(19)], np.ones(20), "NaN"),
        ({}, np.ones(20), np.r_[0.0, np.ones(19)], "positive"),
        ({}, np.ones(20), np.r_[np.nan, np.ones(19)], "NaN"),
        ({"flag_fraction": 0.0}, np.arange(20.0), np.ones(20), "flag_fraction"),
        ({"flag_fraction": 1.0}, np.arange(20.0), np.ones(20), "flag_fraction"),
        ({"n_bins": 11}, np.arange(20.0), np.ones(20), "n_bins"),
        ({"n_bins": 0}, np.arange(20.0), np.ones(20), "n_bins"),
        ({"n_bins": 2}, np.ones(20), np.ones(20), "flags every item"),
    ],
)
def test_refuses_bad_input(kwargs, errors, sigmas, match):
    with pytest.raises(ValueError, match=match):
        uq_metrics(errors, sigmas, **kwargs)


def test_ood_auc_refuses_bad_input():
    with pytest.raises(ValueError, match="sigma_out is empty"):
        ood_roc_auc([1.0], [])
    with pytest.raises(ValueError, match="sigma_in"):
        ood_roc_auc([1.0, -1.0], [2.0])


# --- plots -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_metrics():
    a = uq_metrics(*gaussian_sample(400, seed=2), n_bins=8, n_boot=0)
    b = uq_metrics(*gaussian_sample(400, seed=3, factor=2.0), n_bins=8, n_boot=0)
    return a, b


def test_plot_rmse_vs_rmv(two_metrics):
    a, b = two_metrics
    ax = plot_rmse_vs_rmv(a)
    assert len(ax.lines) == 2  # the bins and the diagonal
    np.testing.assert_allclose(ax.lines[0].get_xdata(), a.bin_rmv)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), a.bin_rmse)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log" and "(eV)" in ax.get_xlabel()
    ax = plot_rmse_vs_rmv([("calibrated", a), ("×2", b)])
    assert len(ax.lines) == 3 and len(ax.get_legend().get_texts()) == 2
    assert all(len(line.get_xdata()) == 8 for line in ax.lines[:2])
    plt.close("all")


def test_plot_calibration_curve(two_metrics):
    a, b = two_metrics
    ax = plot_calibration_curve(a)
    assert len(ax.lines) == 2 and len(ax.collections) == 1  # curve, diagonal, shaded area
    np.testing.assert_allclose(ax.lines[0].get_ydata(), a.observed)
    ax = plot_calibration_curve([("a", a), ("b", b)])
    assert len(ax.lines) == 3 and len(ax.collections) == 0
    with pytest.raises(TypeError, match="UQMetrics"):
        plot_calibration_curve([a, b])
    plt.close("all")


def test_plot_error_vs_uncertainty(rng):
    errors, sigmas = gaussian_sample(123, seed=4)
    ax = plot_error_vs_uncertainty(errors, sigmas, unit="meV")
    assert len(ax.collections) == 1 and ax.collections[0].get_offsets().shape == (123, 2)
    assert len(ax.lines) == 4  # ±σ, ±2σ
    assert "meV" in ax.get_xlabel() and "meV" in ax.get_ylabel()
    with pytest.raises(ValueError, match="positive"):
        plot_error_vs_uncertainty([0.1], [0.0])
    plt.close("all")


def test_bootstrap_rows_match_scipy_and_brute_force(rng):
    from mlipviz.metrology.calibration import _auc_rows, _flag_largest, _spearman_rows

    x = rng.integers(0, 8, (5, 60)).astype(float)
    y = rng.integers(0, 8, (5, 60)).astype(float)
    flagged = _flag_largest(x, 0.2)
    for i in range(5):
        assert _spearman_rows(x, y)[i] == pytest.approx(spearmanr(x[i], y[i]).statistic, abs=1e-12)
        assert _auc_rows(y, flagged)[i] == pytest.approx(brute_force_auc(y[i], flagged[i]), abs=1e-12)
