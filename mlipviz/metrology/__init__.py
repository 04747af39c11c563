"""Metrology: errors with confidence intervals, level-against-level comparisons, parity plots."""

from .errors import ErrorStat, error_stats, evaluate, predict
from .interaction import InteractionEnergies, s22x5_interaction_energies
from .levels import LevelComparison, compare_levels, errors_by_stretch, plot_level_comparison, relative_energy_errors
from .plots import parity_plot

__all__ = [
    "ErrorStat",
    "InteractionEnergies",
    "LevelComparison",
    "compare_levels",
    "error_stats",
    "errors_by_stretch",
    "evaluate",
    "parity_plot",
    "plot_level_comparison",
    "predict",
    "relative_energy_errors",
    "s22x5_interaction_energies",
]
