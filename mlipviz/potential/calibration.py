"""Calibrate a predicted uncertainty by one scale factor, fitted by maximum likelihood on held-out errors.

An ensemble's spread, or a last-layer variance, is proportional to the error at best: its scale is not known.
Under a Gaussian error model ``e ~ N(0, (s·σ)²)`` the negative log-likelihood of validation errors ``e_i`` with
raw uncertainties ``σ_i`` is minimal at ``s² = mean(e_i² / σ_i²)``, which is what :func:`fit_scale` returns.
What a calibrated calculator reports is ``s·σ``.

References:
    Lakshminarayanan, Pritzel, Blundell, NeurIPS 2017, arXiv:1612.01474 (deep ensembles).
    Kuleshov, Fenner, Ermon, ICML 2018, arXiv:1807.00263 (recalibration of regression uncertainty).
    Tan et al., npj Comput. Mater. 9, 225 (2023), doi:10.1038/s41524-023-01180-8 (UQ for MLIPs, scale by NLL).
"""

from __future__ import annotations

import numpy as np

__all__ = ["fit_scale", "gaussian_nll"]


def _pairs(errors, sigmas, name: str) -> tuple[np.ndarray, np.ndarray]:
    e = np.asarray(errors, dtype=float).reshape(-1)
    s = np.asarray(sigmas, dtype=float).reshape(-1)
    if e.shape != s.shape:
        raise ValueError(f"{name}: errors ({e.size} values) and uncertainties ({s.size} values) must pair up.")
    if e.size == 0:
        raise ValueError(f"{name}: no errors to calibrate on.")
    if not (np.all(np.isfinite(e)) and np.all(np.isfinite(s))):
        raise ValueError(f"{name}: errors and uncertainties must be finite.")
    if np.any(s <= 0):
        raise ValueError(f"{name}: {int(np.sum(s <= 0))} uncertainties are not positive; a zero spread cannot be "
                         f"scaled (members that agree exactly, or a constant model).")
    return e, s


def fit_scale(errors, sigmas, name: str = "uncertainty") -> float:
    """The scale ``s`` that maximises the Gaussian likelihood of ``errors`` under uncertainties ``s·sigmas``.

    Args:
        errors: Prediction − reference, any shape (eV or eV/Å).
        sigmas: Raw uncertainties of the same shape and unit, all positive.
        name: What is calibrated, for error messages.

    Returns:
        ``s = sqrt(mean((errors / sigmas)²))``, dimensionless.

    Raises:
        ValueError: for mismatched shapes, no data, non-finite values or non-positive uncertainties.
    """
    e, s = _pairs(errors, sigmas, name)
    return float(np.sqrt(np.mean((e / s) ** 2)))


def gaussian_nll(errors, sigmas, name: str = "uncertainty") -> float:
    """Mean Gaussian negative log-likelihood, ``mean(½ log(2π σ²) + e² / (2σ²))`` (in nats, σ in the errors' unit).

    Args:
        errors: Prediction − reference.
        sigmas: Uncertainties (standard deviations) of the same shape, all positive.
        name: What is scored, for error messages.

    Returns:
        The mean NLL; lower is better. It depends on the unit of ``errors`` through ``log σ``.
    """
    e, s = _pairs(errors, sigmas, name)
    return float(np.mean(0.5 * np.log(2 * np.pi * s**2) + e**2 / (2 * s**2)))
