"""Metrology: errors with confidence intervals, level-against-level comparisons, harmonic frequencies, parity plots,
and the calibration of predicted uncertainties (Tan et al. metrics, RMSE against RMV)."""

from .calibration import UQMetrics, ood_roc_auc, roc_auc, uq_metrics
from .errors import ErrorStat, error_stats, evaluate, mean_signed_error, predict
from .frequencies import FrequencyComparison, compare_frequencies, frequency_comparison, plot_frequency_comparison
from .interaction import InteractionEnergies, s22x5_interaction_energies
from .levels import LevelComparison, compare_levels, errors_by_stretch, plot_level_comparison, relative_energy_errors
from .plots import parity_plot
from .uq_plots import plot_calibration_curve, plot_error_vs_uncertainty, plot_rmse_vs_rmv

__all__ = [
    "UQMetrics",
    "ood_roc_auc",
    "plot_calibration_curve",
    "plot_error_vs_uncertainty",
    "plot_rmse_vs_rmv",
    "roc_auc",
    "uq_metrics",
    "ErrorStat",
    "FrequencyComparison",
    "InteractionEnergies",
    "LevelComparison",
    "compare_frequencies",
    "compare_levels",
    "error_stats",
    "mean_signed_error",
    "errors_by_stretch",
    "evaluate",
    "frequency_comparison",
    "parity_plot",
    "plot_frequency_comparison",
    "plot_level_comparison",
    "predict",
    "relative_energy_errors",
    "s22x5_interaction_energies",
]
