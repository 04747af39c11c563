"""Interaction energies of dimers against the published S22x5 CCSD(T)/CBS reference.

The S22x5 set (Gráfová, Pitoňák, Řezáč, Hobza, J. Chem. Theory Comput. 6, 2365 (2010),
doi:10.1021/ct1002253) gives counterpoise-corrected CCSD(T)/CBS interaction energies of the S22 dimers at
0.9, 1.0, 1.2, 1.5 and 2.0 times their equilibrium intermolecular distance; ASE ships them in
:mod:`ase.data.s22`. A dataset of the five dimers (``info["s22x5_factor"]``) and the two rigid monomers of the
S22 geometry, labelled at some levels, gives E_int = E(dimer) − E(A) − E(B) at each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from .. import keys
from ..reference.labelling import level_energy
from ..reference.levels import get_level

__all__ = ["InteractionEnergies", "s22x5_interaction_energies"]


@dataclass
class InteractionEnergies:
    """Interaction energies along the S22x5 curve of one dimer.

    Attributes:
        system: S22 name of the dimer, e.g. "Water_dimer".
        factors: (5,) distance factors, ascending.
        com_distance_A: (5,) centre-of-mass distance of the two monomers, Å.
        reference_meV: (5,) published CCSD(T)/CBS (counterpoise-corrected) interaction energies, meV.
        by_level: Level name -> (5,) interaction energies, meV.
    """

    system: str
    factors: np.ndarray
    com_distance_A: np.ndarray
    reference_meV: np.ndarray
    by_level: dict[str, np.ndarray]

    def errors_meV(self, level: str) -> np.ndarray:
        """E_int[level] − reference, (5,) meV."""
        return self.by_level[get_level(level).name] - self.reference_meV


def s22x5_interaction_energies(images: Sequence[Atoms], levels, system: str = "Water_dimer") -> InteractionEnergies:
    """E_int = E(dimer) − E(monomer A) − E(monomer B) at each level, beside the published S22x5 values.

    Args:
        images: The dimers, each with ``info["s22x5_factor"]``, and exactly two monomers without it (rigid
            fragments of the S22 geometry), all labelled at every level.
        levels: One level or several, e.g. ``["CCSD(T)/cc-pVDZ", "B3LYP/cc-pVDZ"]``.
        system: S22 name of the dimer.

    Returns:
        :class:`InteractionEnergies` with the dimers sorted by distance factor.

    Raises:
        ValueError: for no dimers, not exactly two monomers, atoms that do not add up, or a factor S22x5
            does not have.
        KeyError: if a structure lacks a level.
    """
    from ase.data import s22

    from ..reference.levels import get_levels

    dimers = sorted((a for a in images if keys.S22X5_FACTOR in a.info), key=lambda a: float(a.info[keys.S22X5_FACTOR]))
    monomers = [a for a in images if keys.S22X5_FACTOR not in a.info]
    if not dimers:
        raise ValueError(f"No dimer carries info[{keys.S22X5_FACTOR!r}]; is this an S22x5 dataset?")
    if len(monomers) != 2:
        raise ValueError(f"Expected the two monomers of the S22 geometry beside the dimers, found {len(monomers)} "
                         "structures without an S22x5 factor.")
    n_a = len(monomers[0])
    if any(len(d) != n_a + len(monomers[1]) for d in dimers):
        raise ValueError("Every dimer must hold the atoms of both monomers.")
    factors = np.array([float(a.info[keys.S22X5_FACTOR]) for a in dimers])
    reference = []
    for f in factors:
        name = f"{system}_{f:.1f}"
        try:
            reference.append(1e3 * s22.get_interaction_energy_s22x5(name))
        except (KeyError, ValueError, IndexError) as err:
            raise ValueError(f"S22x5 has no reference for {name!r} ({err}).") from None
    com = np.array([np.linalg.norm(a[n_a:].get_center_of_mass() - a[:n_a].get_center_of_mass()) for a in dimers])
    by_level = {}
    for lv in get_levels(levels):
        e_mono = level_energy(monomers, lv).sum()
        by_level[lv.name] = 1e3 * (level_energy(dimers, lv) - e_mono)
    return InteractionEnergies(system, factors, com, np.array(reference), by_level)
