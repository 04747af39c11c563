"""Parity plots of predictions against reference values (matplotlib)."""

from __future__ import annotations

import numpy as np

__all__ = ["parity_plot"]


def parity_plot(ref, pred, ax=None, quantity: str = "energy", unit: str = "eV", stats=None, shift_mean: bool = False):
    """Scatter predictions against references with the y = x line.

    Args:
        ref: Reference values (any shape; flattened).
        pred: Predictions, same shape.
        ax: Matplotlib axes; a new figure if None.
        quantity: Axis label, e.g. "energy" or "force component".
        unit: Unit of ``ref`` and ``pred``.
        stats: Optional ``{"MAE": ErrorStat, "RMSE": ErrorStat}`` to print in the corner.
        shift_mean: Subtract the reference mean from both (for total energies of ~-2000 eV).

    Returns:
        The axes.
    """
    import matplotlib.pyplot as plt

    ref = np.concatenate([np.ravel(r) for r in ref]) if isinstance(ref, list) else np.ravel(ref)
    pred = np.concatenate([np.ravel(p) for p in pred]) if isinstance(pred, list) else np.ravel(pred)
    if ref.shape != pred.shape:
        raise ValueError(f"ref has {ref.size} values but pred has {pred.size}.")
    if shift_mean:
        m = ref.mean()
        ref, pred = ref - m, pred - m
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    lo, hi = min(ref.min(), pred.min()), max(ref.max(), pred.max())
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", lw=1, zorder=0)
    ax.scatter(ref, pred, s=8, alpha=0.6)
    shift = " − mean" if shift_mean else ""
    ax.set_xlabel(f"reference {quantity}{shift} ({unit})")
    ax.set_ylabel(f"predicted {quantity}{shift} ({unit})")
    ax.set_aspect("equal")
    if stats:
        ax.text(0.04, 0.96, "\n".join(str(s).split(" (n=")[0] for s in stats.values()), transform=ax.transAxes,
                va="top", fontsize=7, bbox=dict(boxstyle="round", fc="white", ec="0.8"))
    return ax
