"""Metrology: errors with confidence intervals, and parity plots."""

from .errors import ErrorStat, error_stats, evaluate, predict
from .plots import parity_plot

__all__ = ["ErrorStat", "error_stats", "evaluate", "parity_plot", "predict"]
