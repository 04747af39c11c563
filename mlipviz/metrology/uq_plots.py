"""Plots of uncertainty quality (matplotlib): RMSE vs RMV, the calibration curve, errors against σ.

References:
    Levi, Gispan, Giladi, Fetaya, Sensors 22, 5540 (2022), doi:10.3390/s22155540 (RMSE vs RMV).
    Rasmussen et al., J. Cheminform. 15, 121 (2023), doi:10.1186/s13321-023-00790-0 (error-based calibration plots).
    Tran et al., Mach. Learn.: Sci. Technol. 1, 025006 (2020), doi:10.1088/2632-2153/ab7e1a (calibration curve).
"""

from __future__ import annotations

import numpy as np

from .calibration import UQMetrics, check_pairs

__all__ = ["plot_calibration_curve", "plot_error_vs_uncertainty", "plot_rmse_vs_rmv"]


def _labelled(metrics, same_unit: bool = True) -> list[tuple[str | None, UQMetrics]]:
    """One :class:`UQMetrics`, or a list of (label, UQMetrics), as a list of pairs (of one unit if ``same_unit``)."""
    if isinstance(metrics, UQMetrics):
        return [(None, metrics)]
    try:
        pairs = list(metrics)
    except TypeError:
        pairs = None
    if not pairs or not all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[1], UQMetrics) for p in pairs):
        raise TypeError("metrics must be a UQMetrics or a non-empty list of (label, UQMetrics) pairs, "
                        f"got {type(metrics).__name__}.")
    units = {m.unit for _, m in pairs}
    if same_unit and len(units) > 1:
        raise ValueError(f"The metrics to overlay have different units {sorted(units)}; plot them separately.")
    return [(str(label), m) for label, m in pairs]


def _new_axes(ax, size=(4, 4)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=size)
    return ax


def plot_rmse_vs_rmv(metrics, ax=None):
    """RMSE against RMV per equal-count bin of σ (log-log), with the line RMSE = RMV of perfect calibration.

    Points above the diagonal: σ too small (over-confident); below it: σ too large.

    Args:
        metrics: A :class:`~mlipviz.metrology.calibration.UQMetrics`, or a list of (label, UQMetrics) to overlay
            (same unit).
        ax: Matplotlib axes; a new figure if None.

    Returns:
        The axes: one marker line per metrics set (one point per bin) and the diagonal.
    """
    pairs = _labelled(metrics)
    ax = _new_axes(ax)
    unit = pairs[0][1].unit
    values = []
    for label, m in pairs:
        text = None if label is None else f"{label} (ENCE {m.ence:.2f})"
        ax.plot(m.bin_rmv, m.bin_rmse, "o-", ms=4, lw=1, label=text)
        values.extend([m.bin_rmv, m.bin_rmse])
    positive = np.concatenate(values)
    positive = positive[positive > 0]
    lo, hi = positive.min() / 1.5, positive.max() * 1.5
    ax.plot([lo, hi], [lo, hi], color="0.5", lw=1, ls="--", zorder=0)
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):  # minor-tick labels of a narrow log range overlap one another
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel(f"RMV, root mean variance ({unit})")
    ax.set_ylabel(f"RMSE ({unit})")
    if pairs[0][0] is not None:
        ax.legend(fontsize=7)
    else:
        ax.set_title(f"ENCE {pairs[0][1].ence:.2f}", fontsize=9)
    return ax


def plot_calibration_curve(metrics, ax=None):
    """Observed fraction of errors inside central Gaussian intervals against the expected fraction.

    The area between the curve and the diagonal (shaded for a single metrics set) is the miscalibration area.
    A curve above the diagonal means σ is too large (under-confident); below it, too small.

    Args:
        metrics: A :class:`~mlipviz.metrology.calibration.UQMetrics`, or a list of (label, UQMetrics) to overlay
            (of any units: the curve is dimensionless).
        ax: Matplotlib axes; a new figure if None.

    Returns:
        The axes: one curve per metrics set and the diagonal.
    """
    pairs = _labelled(metrics, same_unit=False)
    ax = _new_axes(ax)
    for label, m in pairs:
        text = f"area {m.miscalibration_area:.3f}" if label is None else f"{label} (area {m.miscalibration_area:.3f})"
        (line,) = ax.plot(m.expected, m.observed, lw=1.5, label=text)
        if len(pairs) == 1:
            ax.fill_between(m.expected, m.expected, m.observed, color=line.get_color(), alpha=0.25, lw=0)
    ax.plot([0, 1], [0, 1], color="0.5", lw=1, ls="--", zorder=0)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("expected fraction inside the interval")
    ax.set_ylabel("observed fraction")
    ax.legend(fontsize=7, loc="upper left")
    return ax


def plot_error_vs_uncertainty(errors, sigmas, ax=None, unit: str = "eV", label: str | None = None):
    """Signed errors against their σ, with the lines e = ±σ and e = ±2σ.

    For calibrated Gaussian errors about 68 % of the points lie between the ±σ lines and 95 % between ±2σ.

    Args:
        errors: Prediction − reference, any shape; flattened.
        sigmas: Uncertainties, same shape and unit, positive.
        ax: Matplotlib axes; a new figure if None.
        unit: Unit of errors and σ.
        label: Legend label of the points.

    Returns:
        The axes: one scatter collection and four lines (±1σ, ±2σ).

    Raises:
        ValueError: for mismatched shapes, empty or non-finite input, or σ ≤ 0.
    """
    e, s = check_pairs(errors, sigmas)
    ax = _new_axes(ax, size=(4.5, 3.5))
    inside = np.mean(np.abs(e) <= s), np.mean(np.abs(e) <= 2 * s)
    ax.scatter(s, e, s=8, alpha=0.6, label=label)
    x = np.array([0.0, s.max() * 1.05])
    for k, style in ((1, "-"), (2, "--")):
        for sign in (1, -1):
            ax.plot(x, sign * k * x, color="0.4", lw=1, ls=style,
                    label=f"±{k}σ ({inside[k - 1]:.0%} inside)" if sign > 0 else None)
    ax.set_xlim(0, x[1])
    ax.set_xlabel(f"predicted σ ({unit})")
    ax.set_ylabel(f"error ({unit})")
    ax.legend(fontsize=7)
    return ax
