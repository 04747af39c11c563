"""Stability checks on MD runs: energy drift in NVE and bond integrity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from ..geometry import bonds_of

__all__ = ["DriftReport", "energy_drift", "BondReport", "bond_check", "bonds_of"]


@dataclass
class DriftReport:
    """Energy conservation of an NVE run.

    Attributes:
        slope_meV_per_atom_ps: Slope of a least-squares line through E_tot(t), meV/atom/ps.
        max_deviation_meV_per_atom: Largest |E_tot - E_tot(0)|, meV/atom.
        std_meV_per_atom: Standard deviation of E_tot, meV/atom.
    """

    slope_meV_per_atom_ps: float
    max_deviation_meV_per_atom: float
    std_meV_per_atom: float


def energy_drift(time_fs: np.ndarray, etot_eV: np.ndarray, n_atoms: int) -> DriftReport:
    """Drift of the total energy of an NVE run.

    Args:
        time_fs: (n,) times, fs.
        etot_eV: (n,) total energies, eV.
        n_atoms: Atoms in the system (for per-atom values).
    """
    t = np.asarray(time_fs, dtype=float)
    e = np.asarray(etot_eV, dtype=float)
    if t.shape != e.shape or t.ndim != 1 or len(t) < 2:
        raise ValueError(f"time_fs and etot_eV must be 1-D of equal length >= 2, got {t.shape} and {e.shape}.")
    slope = np.polyfit(t / 1000.0, e, 1)[0]  # eV/ps
    return DriftReport(
        slope_meV_per_atom_ps=1e3 * slope / n_atoms,
        max_deviation_meV_per_atom=1e3 * np.max(np.abs(e - e[0])) / n_atoms,
        std_meV_per_atom=1e3 * np.std(e) / n_atoms,
    )


@dataclass
class BondReport:
    """Bond integrity along a trajectory.

    Attributes:
        stable: True when every bond stayed within ``tolerance`` of its starting length in every frame.
        tolerance: Allowed change of a bond length, Å.
        bonds: (n_bonds, 2) atom index pairs bonded in the first frame.
        max_change: (n_bonds,) largest |r(t) - r(0)| over the run, Å.
        first_broken_frame: Index of the first frame where some bond left the tolerance, or None.
    """

    stable: bool
    tolerance: float
    bonds: np.ndarray
    max_change: np.ndarray
    first_broken_frame: int | None


def bond_check(frames: list[Atoms], tolerance: float = 0.5) -> BondReport:
    """Whether every bond of the first frame stays within ``tolerance`` (Å) of its starting length.

    Args:
        frames: Trajectory frames, Å; the first defines the bonds and their reference lengths.
        tolerance: Allowed change, Å.
    """
    if not frames:
        raise ValueError("frames is empty: no trajectory to check.")
    bonds = bonds_of(frames[0])
    if len(bonds) == 0:
        return BondReport(True, tolerance, bonds, np.zeros(0), None)
    pos = np.stack([f.get_positions() for f in frames])
    lengths = np.linalg.norm(pos[:, bonds[:, 0]] - pos[:, bonds[:, 1]], axis=-1)
    change = np.abs(lengths - lengths[0])
    bad = np.where((change > tolerance).any(axis=1))[0]
    first = int(bad[0]) if len(bad) else None
    return BondReport(first is None, tolerance, bonds, change.max(axis=0), first)
