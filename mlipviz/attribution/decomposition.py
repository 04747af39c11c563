"""Energy decomposition: the model's per-atom energies, referenced to isolated atoms.

With ε_i the network's per-atom energy in the molecule and E_Z the model energy of an isolated atom of
element Z, the binding contributions b_i = ε_i − E_{Z_i} sum to the model's atomisation energy
E − Σ_i E_{Z_i} — the same quantity Integrated Gradients splits along the dissociation path.

References:
    Behler, Parrinello, Phys. Rev. Lett. 98, 146401 (2007), doi:10.1103/PhysRevLett.98.146401
    (energy as a sum of atomic contributions).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

__all__ = ["binding_contributions"]


def binding_contributions(atoms: Atoms, calculator) -> np.ndarray:
    """Per-atom binding contributions b_i = ε_i − E(isolated atom), (n_atoms,) eV.

    Args:
        atoms: Structure, Å.
        calculator: An ASE calculator that implements per-atom ``energies``
            (e.g. :class:`mlipviz.potential.MLIPCalculator`).
    """
    if "energies" not in getattr(calculator, "implemented_properties", ()):
        raise ValueError(f"{type(calculator).__name__} does not provide per-atom energies ('energies').")
    work = atoms.copy()
    work.calc = calculator
    eps = work.get_potential_energies()
    isolated = {}
    for z in set(atoms.numbers.tolist()):
        single = Atoms(numbers=[z], positions=[(0.0, 0.0, 0.0)])
        single.calc = calculator
        isolated[z] = single.get_potential_energy()
    return eps - np.array([isolated[z] for z in atoms.numbers])
