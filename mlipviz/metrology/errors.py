"""Accuracy with uncertainty: MAE and RMSE with bootstrap confidence intervals.

Errors within one structure are correlated (its forces share one geometry), so the bootstrap resamples
*structures*, not force components.

References:
    Efron, Tibshirani, An Introduction to the Bootstrap (Chapman & Hall, 1993), ch. 13 (percentile interval).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ErrorStat", "error_stats", "mean_signed_error", "predict", "evaluate"]


@dataclass
class ErrorStat:
    """An error metric with its bootstrap confidence interval.

    Attributes:
        name: "MAE", "RMSE" or "mean signed error".
        value: Point estimate on the full sample.
        low: Lower bound of the confidence interval.
        high: Upper bound.
        confidence: Confidence level, e.g. 0.95.
        unit: Unit string, e.g. "meV/Å".
        n: Number of structures.
        offset: The mean error removed before the metric (``remove_offset=True``), in the scaled unit;
            None when nothing was removed.
    """

    name: str
    value: float
    low: float
    high: float
    confidence: float
    unit: str
    n: int
    offset: float | None = None

    def __str__(self) -> str:
        pct = int(round(100 * self.confidence))
        text = f"{self.name} = {self.value:.3g} {self.unit} [{pct}% CI {self.low:.3g}, {self.high:.3g}] (n={self.n})"
        return text if self.offset is None else f"{text}, offset {self.offset:+.4g} {self.unit} removed"


def _per_structure_errors(pred, ref) -> list[np.ndarray]:
    if len(pred) != len(ref):
        raise ValueError(f"pred has {len(pred)} structures but ref has {len(ref)}.")
    out = []
    for i, (p, r) in enumerate(zip(pred, ref)):
        p, r = np.asarray(p, dtype=float), np.asarray(r, dtype=float)
        if p.shape != r.shape:
            raise ValueError(f"structure {i}: prediction shape {p.shape} differs from reference shape {r.shape}.")
        out.append((p - r).ravel())
    return out


def _bootstrap_errors(pred, ref, confidence: float) -> list[np.ndarray]:
    """Per-structure errors, checked for a bootstrap interval: a confidence in (0, 1) and at least 2 structures."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}.")
    errs = _per_structure_errors(pred, ref)
    if len(errs) < 2:
        raise ValueError(f"Need at least 2 structures for a confidence interval, got {len(errs)}.")
    return errs


def error_stats(
    pred,
    ref,
    unit: str = "",
    scale: float = 1.0,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    remove_offset: bool = False,
) -> dict[str, ErrorStat]:
    """MAE and RMSE with percentile-bootstrap confidence intervals over structures.

    Absolute energies of two electronic-structure methods differ by a constant that does no harm in
    dynamics; ``remove_offset=True`` compares relative energies instead, subtracting the mean error. The
    offset is fitted again inside every bootstrap resample, so the interval includes its uncertainty.

    Args:
        pred: Predictions: a 1-D array (one value per structure, e.g. energies) or a list of per-structure
            arrays (e.g. (n_atoms, 3) forces).
        ref: Reference values, same shapes.
        unit: Unit of the scaled values, for display.
        scale: Multiply errors by this first (e.g. 1000 for eV → meV).
        n_boot: Bootstrap resamples.
        confidence: Confidence level of the interval.
        seed: Random seed of the resampling.
        remove_offset: Subtract the mean error first (one value per structure only, e.g. energies).

    Returns:
        ``{"MAE": ErrorStat, "RMSE": ErrorStat}``.
    """
    errs = _bootstrap_errors(pred, ref, confidence)
    n = len(errs)
    if remove_offset:
        return _offset_removed_stats(np.concatenate(errs) * scale, errs, unit, n_boot, confidence, seed)
    abs_sum = np.array([np.abs(e).sum() for e in errs]) * scale
    sq_sum = np.array([(e**2).sum() for e in errs]) * scale**2
    count = np.array([e.size for e in errs], dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    cnt = count[idx].sum(axis=1)
    mae_b = abs_sum[idx].sum(axis=1) / cnt
    rmse_b = np.sqrt(sq_sum[idx].sum(axis=1) / cnt)
    a = (1 - confidence) / 2
    mae = abs_sum.sum() / count.sum()
    rmse = np.sqrt(sq_sum.sum() / count.sum())
    return {
        "MAE": ErrorStat("MAE", mae, *np.quantile(mae_b, [a, 1 - a]), confidence, unit, n),
        "RMSE": ErrorStat("RMSE", rmse, *np.quantile(rmse_b, [a, 1 - a]), confidence, unit, n),
    }


def mean_signed_error(pred, ref, unit: str = "", scale: float = 1.0, n_boot: int = 2000, confidence: float = 0.95,
                      seed: int = 0) -> ErrorStat:
    """Mean signed error (prediction − reference), the bias beside an MAE, with a bootstrap interval over structures.

    A mean signed error near ± the MAE means nearly every error has the same sign: a constant offset, not scatter.

    Args:
        pred: Predictions: a 1-D array (one value per structure) or a list of per-structure arrays.
        ref: Reference values, same shapes.
        unit: Unit of the scaled values, for display.
        scale: Multiply errors by this first (e.g. 1000 for eV → meV).
        n_boot: Bootstrap resamples.
        confidence: Confidence level of the interval.
        seed: Random seed of the resampling.

    Returns:
        An :class:`ErrorStat` named "mean signed error".
    """
    errs = _bootstrap_errors(pred, ref, confidence)
    n = len(errs)
    total = np.array([e.sum() for e in errs]) * scale
    count = np.array([e.size for e in errs], dtype=float)
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    boot = total[idx].sum(axis=1) / count[idx].sum(axis=1)
    a = (1 - confidence) / 2
    value = total.sum() / count.sum()
    return ErrorStat("mean signed error", value, *np.quantile(boot, [a, 1 - a]), confidence, unit, n)


def predict(calculator, images) -> tuple[np.ndarray, list[np.ndarray]]:
    """Energies (eV) and forces (eV/Å) of ``images`` from an ASE calculator."""
    energies, forces = [], []
    for a in images:
        b = a.copy()
        b.calc = calculator
        energies.append(b.get_potential_energy())
        forces.append(b.get_forces().copy())
    return np.array(energies), forces


def evaluate(calculator, images, level: str, **kwargs) -> dict[str, dict[str, ErrorStat]]:
    """Energy (meV) and force (meV/Å) errors of a calculator against ``level`` labels on ``images``.

    Returns:
        ``{"energy": {"MAE", "RMSE"}, "forces": {"MAE", "RMSE"}}`` of :class:`ErrorStat`.
    """
    from ..reference.labelling import level_energy, level_forces

    e_ref, f_ref = level_energy(images, level), level_forces(images, level)
    e_pred, f_pred = predict(calculator, images)
    return {
        "energy": error_stats(e_pred, e_ref, unit="meV", scale=1e3, **kwargs),
        "forces": error_stats(f_pred, f_ref, unit="meV/Å", scale=1e3, **kwargs),
    }


def _offset_removed_stats(e: np.ndarray, errs, unit: str, n_boot: int, confidence: float, seed: int) -> dict[str, ErrorStat]:
    """MAE and RMSE of ``e - mean(e)``, with the mean refitted in every bootstrap resample."""
    if len(e) != len(errs):
        raise ValueError("remove_offset needs one value per structure (e.g. energies), not arrays (e.g. forces).")
    n = len(e)
    rng = np.random.default_rng(seed)
    sample = e[rng.integers(0, n, size=(n_boot, n))]
    centred = sample - sample.mean(axis=1, keepdims=True)
    a = (1 - confidence) / 2
    offset = float(e.mean())
    mae, rmse = float(np.abs(e - offset).mean()), float(np.sqrt(((e - offset) ** 2).mean()))
    mae_b, rmse_b = np.abs(centred).mean(axis=1), np.sqrt((centred**2).mean(axis=1))
    return {
        "MAE": ErrorStat("MAE", mae, *np.quantile(mae_b, [a, 1 - a]), confidence, unit, n, offset),
        "RMSE": ErrorStat("RMSE", rmse, *np.quantile(rmse_b, [a, 1 - a]), confidence, unit, n, offset),
    }
