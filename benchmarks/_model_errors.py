"""Test-set errors of a calculator, as the benchmarks report them: energy MAE and mean signed error per structure
(meV), force MAE over all components (meV/Å).

A helper, not a benchmark: imported by the scripts beside it (``from _model_errors import test_set_errors``).
"""

from __future__ import annotations

import numpy as np

from mlipviz.metrology import predict
from mlipviz.reference.labelling import level_energy, level_forces


def error_summary_meV(de_eV: np.ndarray, df_eV_per_A: np.ndarray) -> dict:
    """Energy MAE and mean signed error (meV) per structure, force MAE (meV/Å) over all components."""
    de, df = 1e3 * np.asarray(de_eV, float).ravel(), 1e3 * np.asarray(df_eV_per_A, float).ravel()
    return {"energy_mae_meV": float(np.abs(de).mean()), "energy_signed_meV": float(de.mean()),
            "forces_mae_meV_per_A": float(np.abs(df).mean()), "n_test": int(de.size)}


def test_set_errors(calc, frames, level: str, to_eV: float = 1.0) -> dict:
    """Errors of the ASE calculator ``calc`` against the ``level`` labels of ``frames``.

    Args:
        calc: An ASE calculator (positions in Å).
        frames: Labelled structures.
        level: The level of the reference labels, e.g. "CCSD(T)/cc-pVDZ".
        to_eV: Converts the calculator's energy unit to eV (for a model trained in another unit).

    Returns:
        :func:`error_summary_meV` of prediction − reference.
    """
    energies, forces = predict(calc, frames)
    de = to_eV * energies - level_energy(frames, level)
    df = np.concatenate([(to_eV * f - r).ravel() for f, r in zip(forces, level_forces(frames, level))])
    return error_summary_meV(de, df)
