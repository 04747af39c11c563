"""Degrees of freedom, kinetic temperature and start velocities for MD.

The kinetic temperature is T = 2 E_kin / (n_dof k_B). ASE's ``Atoms.get_temperature`` divides by 3N (less the
degrees of freedom its constraints remove); that is right for a thermostat that acts on every Cartesian degree of
freedom, but wrong after centre-of-mass and rotational motion have been removed: for one water molecule with both
removed only 3 of the 9 degrees of freedom carry kinetic energy, and 3N would report a third of the true value.

Counts used here (Allen & Tildesley, *Computer Simulation of Liquids*, 2nd ed., Oxford University Press, 2017):

* 3N − 6 for an isolated non-linear molecule with centre-of-mass and rotational motion removed, 3N − 5 for a
  linear one (two rotations), 1 for a dimer, 0 for a single atom;
* 3N − 3 when only the centre-of-mass motion is removed (periodic systems, where rotation is not conserved);
* 3N when nothing is removed.

ASE constraints (e.g. ``FixAtoms``) remove their own count, as in ``Atoms.get_number_of_degrees_of_freedom``.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta

__all__ = [
    "LINEAR_TOLERANCE",
    "count_dof",
    "draw_momenta",
    "has_zero_angular_momentum",
    "has_zero_momentum",
    "is_linear",
    "kinetic_temperature",
    "remove_rotation",
    "rotational_dof",
    "start_momenta",
]

#: A structure is linear when its smallest principal moment of inertia is below this fraction of the largest.
#: 1e-6 Å of noise on a linear molecule gives ~1e-12; bending CO2 by 0.1° gives ~2e-7.
LINEAR_TOLERANCE = 1e-9
#: Relative size below which total momentum or angular momentum counts as zero (float round-off is ~1e-16).
_ZERO_RTOL = 1e-8


def _principal_moments(atoms: Atoms) -> tuple[np.ndarray, np.ndarray]:
    """Principal moments of inertia (amu Å², ascending) and axes (rows), about the centre of mass."""
    moments, axes = atoms.get_moments_of_inertia(vectors=True)
    order = np.argsort(moments)
    return moments[order], axes[order]


def is_linear(atoms: Atoms) -> bool:
    """Whether all atoms lie on one line (two atoms always do; one atom is a point, not a line).

    Args:
        atoms: The structure, Å.
    """
    if len(atoms) < 2:
        return False
    moments, _ = _principal_moments(atoms)
    return bool(moments[0] <= LINEAR_TOLERANCE * moments[-1])


def rotational_dof(atoms: Atoms) -> int:
    """Rotational degrees of freedom of an isolated structure: 0 for one atom, 2 when linear, else 3."""
    if len(atoms) < 2:
        return 0
    return 2 if is_linear(atoms) else 3


def count_dof(atoms: Atoms, com_removed: bool, rotation_removed: bool) -> int:
    """Degrees of freedom that carry kinetic energy.

    Args:
        atoms: The structure, Å; its ASE constraints remove their own count.
        com_removed: Centre-of-mass motion is removed (and conserved), taking 3.
        rotation_removed: Rigid rotation is removed (and conserved: isolated structures only), taking
            :func:`rotational_dof`.

    Returns:
        3N minus the constraint, centre-of-mass and rotational counts; never negative.
    """
    n = atoms.get_number_of_degrees_of_freedom()
    n -= 3 * bool(com_removed) + (rotational_dof(atoms) if rotation_removed else 0)
    return max(int(n), 0)


def kinetic_temperature(ekin_eV, n_dof: int):
    """T = 2 E_kin / (n_dof k_B), K; NaN where ``n_dof`` is 0.

    Args:
        ekin_eV: Kinetic energy, eV (a number or an array).
        n_dof: Degrees of freedom that carry it (:func:`count_dof`).
    """
    if n_dof <= 0:
        return np.full_like(np.asarray(ekin_eV, dtype=float), np.nan)[()]
    return 2.0 * np.asarray(ekin_eV, dtype=float)[()] / (n_dof * units.kB)


def has_zero_momentum(atoms: Atoms) -> bool:
    """Whether the total momentum is zero to round-off (relative to Σ|p_i|)."""
    p = atoms.get_momenta()
    scale = np.linalg.norm(p, axis=1).sum()
    return bool(np.linalg.norm(p.sum(axis=0)) <= _ZERO_RTOL * scale)


def has_zero_angular_momentum(atoms: Atoms) -> bool:
    """Whether the angular momentum about the centre of mass is zero to round-off (relative to Σ|r_i||p_i|)."""
    r = atoms.get_positions() - atoms.get_center_of_mass()
    p = atoms.get_momenta()
    scale = (np.linalg.norm(r, axis=1) * np.linalg.norm(p, axis=1)).sum()
    return bool(np.linalg.norm(np.cross(r, p).sum(axis=0)) <= _ZERO_RTOL * scale)


def remove_rotation(atoms: Atoms) -> None:
    """Subtract the rigid rotation that carries the angular momentum, in place.

    ASE's :func:`~ase.md.velocitydistribution.ZeroRotation` for non-linear structures. For a linear one the
    moment about the axis is zero (or round-off), so only the two perpendicular components are removed.

    Args:
        atoms: Structure with momenta (amu Å/ASE time); positions in Å.
    """
    if len(atoms) < 2:
        return
    if not is_linear(atoms):
        ZeroRotation(atoms, preserve_temperature=False)
        return
    moments, axes = _principal_moments(atoms)
    r = atoms.get_positions() - atoms.get_center_of_mass()
    ang = np.cross(r, atoms.get_momenta()).sum(axis=0)
    omega = sum(axes[k] * (axes[k] @ ang) / moments[k] for k in (1, 2))
    atoms.set_velocities(atoms.get_velocities() - np.cross(omega, r))


def draw_momenta(
    atoms: Atoms, temperature_K: float, rng: np.random.Generator, remove_com: bool, remove_rot: bool
) -> int:
    """Maxwell–Boltzmann momenta at exactly ``temperature_K`` over the degrees of freedom left, in place.

    Draws with ASE's ``thermalize_momenta``, removes centre-of-mass and/or rigid-rotation motion, then rescales so
    that 2 E_kin / (n_dof k_B) equals ``temperature_K``.

    Args:
        atoms: Structure, Å; its momenta are replaced.
        temperature_K: Start temperature, K (>= 0).
        rng: Random generator for the draw.
        remove_com: Remove the centre-of-mass momentum.
        remove_rot: Remove rigid rotation (isolated structures).

    Returns:
        The number of degrees of freedom the temperature is counted over (:func:`count_dof`).

    Raises:
        ValueError: when no degree of freedom is left to carry a temperature above 0 K.
    """
    n_dof = count_dof(atoms, remove_com, remove_rot)
    if n_dof == 0 and temperature_K > 0:
        raise ValueError(
            f"atoms ({len(atoms)} atom(s)) has no degree of freedom left after removing centre-of-mass"
            f"{' and rotational' if remove_rot else ''} motion, so temperature_K={temperature_K} cannot be set."
        )
    thermalize_momenta(atoms, temperature_K=temperature_K, rng=rng)
    if remove_com:
        Stationary(atoms, preserve_temperature=False)
    if remove_rot:
        remove_rotation(atoms)
    ekin = atoms.get_kinetic_energy()
    target = 0.5 * n_dof * units.kB * temperature_K
    if target == 0.0:
        atoms.set_momenta(np.zeros((len(atoms), 3)))
    elif ekin > 0.0:
        atoms.set_momenta(atoms.get_momenta() * np.sqrt(target / ekin))
    else:  # pragma: no cover - a draw of exactly zero relative motion has probability zero
        raise RuntimeError("the Maxwell–Boltzmann draw left no kinetic energy to rescale.")
    return n_dof


def start_momenta(atoms: Atoms, ensemble: str, temperature_K: float, rng: np.random.Generator) -> int:
    """Start momenta for an MD run, in place, and the degrees of freedom its temperature is counted over.

    * NVE, isolated (no periodic direction): centre-of-mass and rigid-rotation motion are removed and stay removed
      (both are conserved), so n_dof = 3N − 6, or 3N − 5 when linear.
    * NVE, periodic: rotation is not conserved; only the centre of mass is removed, n_dof = 3N − 3.
    * Nosé–Hoover (a chain acting on all momenta, as TorchSim's): the centre of mass is removed and stays removed;
      rotation is thermostatted like any other motion, so n_dof = 3N − 3.
    * Langevin with ASE's ``fixcm=False``: the friction and noise act on every Cartesian degree of freedom and
      re-excite translation and rotation, so the canonical kinetic energy is (3N/2) k_B T. Nothing is removed and
      n_dof = 3N (removing them and still counting 3N would start the internal modes hot: 3× for water).
    * ASE constraints (e.g. ``FixAtoms``) break those conservation laws: nothing is removed, their count is
      subtracted.

    Momenta that ``atoms`` already carries (not all zero) are kept; in NVE a zero total momentum or angular momentum
    is recognised and those degrees of freedom are not counted. Otherwise they are drawn with :func:`draw_momenta`.

    Args:
        atoms: Structure, Å; its momenta may be replaced.
        ensemble: "nve", "nose_hoover" or "langevin".
        temperature_K: Start temperature, K.
        rng: Random generator for the draw.

    Returns:
        The number of degrees of freedom (:func:`count_dof`).
    """
    isolated, constrained = not np.any(atoms.pbc), bool(atoms.constraints)
    remove_com = ensemble in ("nve", "nose_hoover") and not constrained
    remove_rot = ensemble == "nve" and remove_com and isolated
    if not np.any(atoms.get_momenta()):
        return draw_momenta(atoms, temperature_K, rng, remove_com, remove_rot)
    return count_dof(atoms, remove_com and has_zero_momentum(atoms), remove_rot and has_zero_angular_momentum(atoms))
