"""Generic geometry checks, identity and connectivity, used by every stage.

Every check raises :class:`ValueError` with a message that names the input and what is wrong, so bad input
never surfaces as a traceback from deep inside PySCF or torch.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols

__all__ = [
    "KEY_DECIMALS",
    "MIN_DISTANCE",
    "bonds_of",
    "check_atoms",
    "check_molecule",
    "check_positive_int",
    "check_symbols",
    "geometry_key",
    "geometry_payload",
    "stable_hash",
]

#: Two atoms closer than this (Å) are treated as overlapping.
MIN_DISTANCE = 0.3
#: Positions are rounded to this many decimals (Å) before hashing, so float noise does not change a key.
KEY_DECIMALS = 8


def check_symbols(symbols) -> list[str]:
    """Validate element symbols, e.g. from a file or a user list.

    Raises:
        ValueError: naming every symbol that is not a chemical element.
    """
    bad = [s for s in symbols if not isinstance(s, str) or s not in atomic_numbers or atomic_numbers[s] == 0]
    if bad:
        raise ValueError(f"Unknown element symbol(s): {', '.join(map(repr, sorted(set(map(str, bad)))))}.")
    return list(symbols)


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
        i, j, d = _closest_pair(atoms)
        if d < MIN_DISTANCE:
            sym = atoms.get_chemical_symbols()
            raise ValueError(
                f"{name} has overlapping atoms: {sym[i]}{i} and {sym[j]}{j} are {d:.3f} Å apart "
                f"(minimum {MIN_DISTANCE} Å)."
            )
    return atoms


def _closest_pair(atoms: Atoms) -> tuple[int, int, float]:
    """The two closest atoms (i < j) and their distance, Å: minimum image in periodic directions.

    A k-d tree for isolated structures and matscipy's cell list for periodic ones, so memory and
    time grow about linearly with the number of atoms (a water box of 30,000 atoms takes a fraction of a second).
    """
    pos = atoms.get_positions()
    if not np.any(atoms.pbc):
        from scipy.spatial import cKDTree

        dist, idx = cKDTree(pos).query(pos, k=2)
        i = int(np.argmin(dist[:, 1]))
        j = int(idx[i, 1])
        return min(i, j), max(i, j), float(dist[i, 1])
    from matscipy.neighbours import neighbour_list  # a C cell list (installed with SchNetPack)

    ii, jj, dd = neighbour_list("ijd", atoms, MIN_DISTANCE)
    if not len(dd):
        return 0, 1, float("inf")
    k = int(np.argmin(dd))
    i, j = sorted((int(ii[k]), int(jj[k])))
    return i, j, float(dd[k])


def check_molecule(atoms: Atoms, name: str = "atoms") -> Atoms:
    """:func:`check_atoms`, and refuse periodic structures: the reference lab computes isolated molecules.

    Raises:
        ValueError: as :func:`check_atoms`, or naming the periodic directions.
    """
    check_atoms(atoms, name)
    if np.any(atoms.pbc):
        dirs = "".join(ax for ax, p in zip("xyz", atoms.pbc) if p)
        raise ValueError(
            f"{name} is periodic along {dirs} (pbc={atoms.pbc.tolist()}), but the reference lab computes isolated "
            "molecules with Gaussian basis sets. Set atoms.pbc = False if it really is one molecule in a box."
        )
    return atoms


def check_positive_int(value, name: str) -> int:
    """``value`` if it is a positive integer (Python or NumPy, not bool).

    Raises:
        ValueError: naming ``name`` and the value given.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def stable_hash(payload) -> str:
    """A 32-hex-digit SHA-256 of the canonical JSON of ``payload`` (sorted keys)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def geometry_payload(atoms: Atoms) -> dict:
    """Atomic numbers and positions rounded to :data:`KEY_DECIMALS` Å: what :func:`geometry_key` hashes."""
    pos = np.round(np.asarray(atoms.get_positions(), dtype=float), KEY_DECIMALS) + 0.0  # +0.0 folds -0.0
    return {"numbers": atoms.get_atomic_numbers().tolist(), "positions": pos.tolist()}


def geometry_key(atoms: Atoms) -> str:
    """Stable hash of atomic numbers and positions (to 1e-8 Å): the same geometry at any level."""
    return stable_hash(geometry_payload(atoms))


def bonds_of(atoms: Atoms, mult: float = 1.2) -> np.ndarray:
    """Bonded pairs (i < j) by scaled covalent radii (ASE ``natural_cutoffs``), shape (n_bonds, 2)."""
    from ase.neighborlist import natural_cutoffs, neighbor_list

    i, j = neighbor_list("ij", atoms, natural_cutoffs(atoms, mult=mult))
    keep = i < j
    return np.stack([i[keep], j[keep]], axis=1)
