"""The finite-difference guard: analytic forces checked against central differences of the energy.

A campaign checks the first task of every run, and a chosen fraction of the others; a mismatch above
:data:`FD_TOLERANCE` is stored on the record and stops the campaign with :class:`FDMismatchError`.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from ..levels import Level
from ..pyscf_driver import run_pyscf

__all__ = ["FD_STEP", "FD_TOLERANCE", "FDMismatchError", "finite_difference_forces"]

#: Default tolerance of the finite-difference check, eV/Å.
FD_TOLERANCE = 1e-3
#: Finite-difference step, Å.
FD_STEP = 1e-3


class FDMismatchError(RuntimeError):
    """An analytic gradient disagreed with finite differences; the campaign stopped."""


def finite_difference_forces(atoms: Atoms, level: Level, h: float = FD_STEP, scf_options: dict | None = None) -> np.ndarray:
    """Forces (eV/Å) by central differences of the energy, (n_atoms, 3): 6N energy evaluations."""
    f = np.zeros((len(atoms), 3))
    for i in range(len(atoms)):
        for a in range(3):
            e = []
            for sign in (1, -1):
                disp = atoms.copy()
                disp.positions[i, a] += sign * h
                e.append(run_pyscf(disp, level, forces=False, scf_options=scf_options).energy)
            f[i, a] = -(e[0] - e[1]) / (2 * h)
    return f
