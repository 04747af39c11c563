"""The calibration of a deep ensemble: its scale factors, and how well its spread describes its errors.

An ensemble's raw uncertainty is the standard deviation of its members' predictions. One dimensionless scale per
quantity (total energy; force components) turns it into a calibrated uncertainty, ``scale · spread``. The scales
are fitted by maximum likelihood (:func:`mlipviz.potential.calibration.fit_scale`) on labelled held-out
structures, and :func:`calibration_summary` reports the fit together with the Gaussian negative log-likelihood
before and after scaling.

References:
    Lakshminarayanan, Pritzel, Blundell, NeurIPS 2017, arXiv:1612.01474 (deep ensembles).
    Tan et al., npj Comput. Mater. 9, 225 (2023), doi:10.1038/s41524-023-01180-8 (UQ for MLIPs, scale by NLL).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from ase import Atoms

from .. import keys
from ..reference.levels import get_level
from .calibration import fit_scale, gaussian_nll

__all__ = ["MIN_SPREAD", "QUANTITIES", "calibration_summary", "check_calibration"]

#: The calibrated quantities: total energy (eV) and force components (eV/Å).
QUANTITIES = (keys.ENERGY, keys.FORCES)
#: Spreads at or below this (eV, eV/Å) are float32 round-off, or components that symmetry fixes for every member
#: (the out-of-plane forces of a planar molecule): the calibration fit leaves them out.
MIN_SPREAD = 1e-6


def check_calibration(calibration: Mapping | None) -> dict[str, float]:
    """``{"energy": s_E, "forces": s_F}`` with positive finite scales; None means uncalibrated (1.0 each)."""
    if calibration is None:
        return {q: 1.0 for q in QUANTITIES}
    if not isinstance(calibration, Mapping) or set(calibration) != set(QUANTITIES):
        raise ValueError(f"calibration must be a mapping with exactly the keys {QUANTITIES}, got {calibration!r}.")
    out = {}
    for q in QUANTITIES:
        value = calibration[q]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"calibration[{q!r}] must be a positive finite scale factor, got {value!r}.")
        out[q] = float(value)
    return out


def _errors(prediction, images: Sequence[Atoms], level: str) -> dict:
    """Per quantity: (errors, raw spreads) of the values whose spread exceeds :data:`MIN_SPREAD`, and how many not."""
    if level is None:
        raise ValueError("level is None: the ensemble records no training level, so name the reference level.")
    lv = get_level(level)
    ek, fk = keys.energy_key(lv.slug), keys.forces_key(lv.slug)
    lacking = [i for i, a in enumerate(images) if ek not in a.info or fk not in a.arrays]
    if lacking:
        raise ValueError(f"images[{lacking[0]}] has no {lv.name} energy and forces ({ek!r}, {fk!r}); "
                         f"{len(lacking)} of {len(images)} structures lack them.")
    if len(images) != len(prediction.energy):
        raise ValueError(f"{len(images)} images but the prediction holds {len(prediction.energy)} structures.")
    e_ref = np.array([a.info[ek] for a in images], dtype=float)
    f_err = np.concatenate([(f - np.asarray(a.arrays[fk], dtype=float)).reshape(-1)
                            for f, a in zip(prediction.forces, images)])
    pairs = {keys.ENERGY: (prediction.energy - e_ref, prediction.energy_std_raw),
             keys.FORCES: (f_err, np.concatenate([s.reshape(-1) for s in prediction.forces_std_raw]))}
    return {q: (err[sigma > MIN_SPREAD], sigma[sigma > MIN_SPREAD], int(np.sum(sigma <= MIN_SPREAD)))
            for q, (err, sigma) in pairs.items()}


def calibration_summary(prediction, images: Sequence[Atoms], level: str, calibration: Mapping | None = None) -> dict:
    """How well the ensemble spread describes its errors on labelled structures.

    Args:
        prediction: An :class:`~mlipviz.potential.EnsemblePrediction` from
            :meth:`~mlipviz.potential.Ensemble.predict` on ``images`` (its raw spreads are used).
        images: The same structures, labelled at ``level``.
        level: Reference level, e.g. "CCSD(T)/cc-pVDZ".
        calibration: Scales to score; default 1.0 (uncalibrated).

    Values whose spread is at most :data:`MIN_SPREAD` carry no information on the scale and are left out.

    Returns:
        Per quantity ("energy", "forces"): ``n`` (values used), ``n_excluded`` (left out), ``rmse`` of the
        values used (eV or eV/Å), ``scale_fit`` (the maximum-likelihood scale on these data), ``scale`` (the one
        scored), ``nll_raw`` and ``nll_calibrated`` (mean Gaussian NLL, nats, with σ in eV or eV/Å) under the raw
        and the scaled spread.

    Raises:
        ValueError: for no ``level``, a structure without ``level`` energy and forces (naming it), a prediction
            of another number of structures, or a bad ``calibration``.
    """
    scale = check_calibration(calibration)
    out = {}
    for q, (err, sigma, n_excluded) in _errors(prediction, images, level).items():
        name = f"ensemble {q} spread"
        out[q] = {"n": int(err.size), "n_excluded": n_excluded, "rmse": float(np.sqrt(np.mean(err**2))),
                  "scale_fit": fit_scale(err, sigma, name), "scale": scale[q], "nll_raw": gaussian_nll(err, sigma, name),
                  "nll_calibrated": gaussian_nll(err, scale[q] * sigma, name)}
    return out
