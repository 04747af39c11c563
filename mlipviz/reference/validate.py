"""Checks on structures before any expensive work starts.

Every check raises :class:`ValueError` with a message that names the input and what is wrong, so that bad
input never surfaces as a traceback from deep inside PySCF.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols

from .levels import Level

__all__ = [
    "MIN_DISTANCE",
    "as_atoms",
    "check_atoms",
    "check_positive_int",
    "check_symbols",
    "electron_count",
    "resolve_spin",
]

#: Two atoms closer than this (Å) are treated as overlapping.
MIN_DISTANCE = 0.3


def check_symbols(symbols) -> list[str]:
    """Validate element symbols, e.g. from a file or a user list.

    Raises:
        ValueError: naming every symbol that is not a chemical element.
    """
    bad = [s for s in symbols if not isinstance(s, str) or s not in atomic_numbers or atomic_numbers[s] == 0]
    if bad:
        raise ValueError(f"Unknown element symbol(s): {', '.join(map(repr, sorted(set(map(str, bad)))))}.")
    return list(symbols)


def electron_count(atoms: Atoms, charge: int = 0) -> int:
    """Number of electrons of ``atoms`` at total ``charge``."""
    return int(atoms.get_atomic_numbers().sum()) - int(charge)


def resolve_spin(atoms: Atoms, level: Level) -> int:
    """The 2S to run with, checked against the electron count.

    Raises:
        ValueError: for an odd electron count with the default (closed-shell) spin, a parity mismatch,
            a non-positive electron count, or more unpaired electrons than electrons.
    """
    n_elec = electron_count(atoms, level.charge)
    formula = atoms.get_chemical_formula()
    if n_elec <= 0:
        raise ValueError(f"Charge {level.charge:+d} leaves {n_elec} electrons on {formula}; that is impossible.")
    if level.spin is None:
        if n_elec % 2:
            raise ValueError(
                f"{formula} with charge {level.charge:+d} has {n_elec} electrons, an odd count, but the default spin "
                f"is a closed shell. Pass spin=1 (a doublet) or change the charge."
            )
        return 0
    if (n_elec - level.spin) % 2:
        raise ValueError(
            f"spin={level.spin} (2S) is impossible for {formula} with {n_elec} electrons: "
            "2S must have the same parity as the electron count."
        )
    if level.spin > n_elec:
        raise ValueError(f"spin={level.spin} exceeds the {n_elec} electrons of {formula}.")
    return level.spin


def check_atoms(atoms: Atoms, name: str = "atoms") -> Atoms:
    """Check one structure: real elements, finite positions, no overlapping atoms.

    Args:
        atoms: The structure, positions in Å.
        name: How to call it in error messages (e.g. "geometry 17").

    Returns:
        The same ``atoms``.

    Raises:
        ValueError: for an empty structure, a dummy/unknown element, NaN or infinite positions, or two atoms
            closer than :data:`MIN_DISTANCE`.
    """
    if not isinstance(atoms, Atoms):
        raise ValueError(f"{name} must be an ase.Atoms, got {type(atoms).__name__}.")
    if len(atoms) == 0:
        raise ValueError(f"{name} has no atoms.")
    numbers = atoms.get_atomic_numbers()
    bad = sorted({int(z) for z in numbers if z < 1 or z >= len(chemical_symbols)})
    if bad:
        raise ValueError(f"{name} contains unknown element(s) with atomic number(s) {bad} (0 is ASE's dummy 'X').")
    pos = atoms.get_positions()
    if not np.all(np.isfinite(pos)):
        rows = sorted(set(np.argwhere(~np.isfinite(pos))[:, 0].tolist()))
        raise ValueError(f"{name} has NaN or infinite positions for atom index(es) {rows}.")
    if len(atoms) > 1:
        d = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
        d[np.diag_indices_from(d)] = np.inf
        i, j = np.unravel_index(np.argmin(d), d.shape)
        if d[i, j] < MIN_DISTANCE:
            sym = atoms.get_chemical_symbols()
            raise ValueError(
                f"{name} has overlapping atoms: {sym[i]}{i} and {sym[j]}{j} are {d[i, j]:.3f} Å apart "
                f"(minimum {MIN_DISTANCE} Å)."
            )
    return atoms


def as_atoms(structure, name: str = "structure") -> Atoms:
    """An :class:`ase.Atoms` from an Atoms or a structure file (xyz, extxyz, ...; its first frame), checked.

    Raises:
        ValueError: for a malformed file or a structure that fails :func:`check_atoms`.
        FileNotFoundError: if a path does not exist.
    """
    from pathlib import Path

    if isinstance(structure, (str, Path)):
        from ..data import load_images

        return load_images(structure, index=0)[0]
    return check_atoms(structure, name)


def check_positive_int(value, name: str) -> int:
    """``value`` if it is a positive integer (Python or NumPy, not bool).

    Raises:
        ValueError: naming ``name`` and the value given.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return value
