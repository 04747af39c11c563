"""Rigid-body samples of clusters: a fragment moved along the centre-of-mass axis, or random orientations.

Every function returns new structures (Å) and records how each was made in ``atoms.info["sampler"]``
(names in :mod:`mlipviz.keys`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from ... import keys
from ...geometry import check_positive_int
from ...structure_io import as_atoms

__all__ = ["distance_scan", "orientation_samples"]


def _split(cluster: Atoms, fragment: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    idx = np.array(sorted(set(int(i) for i in fragment)))
    if len(idx) == 0 or len(idx) == len(cluster) or idx.min() < 0 or idx.max() >= len(cluster):
        raise ValueError(f"fragment must name some but not all of the {len(cluster)} atoms by index, got {list(fragment)}.")
    rest = np.setdiff1d(np.arange(len(cluster)), idx)
    return idx, rest


def distance_scan(cluster: Atoms | str, fragment: Sequence[int], distances: Sequence[float]) -> list[Atoms]:
    """Move one fragment rigidly along the line between the two centres of mass.

    Args:
        cluster: A dimer (or any cluster), Å, or the path of a structure file (its first frame).
        fragment: Indices of the atoms that move.
        distances: Centre-of-mass separations to produce, Å.

    Returns:
        One structure per distance, orientation unchanged; ``info["com_distance_A"]`` holds the separation.
    """
    cluster = as_atoms(cluster, "cluster")
    idx, rest = _split(cluster, fragment)
    com_a = cluster[rest].get_center_of_mass()
    com_b = cluster[idx].get_center_of_mass()
    axis = com_b - com_a
    if np.linalg.norm(axis) < 1e-8:
        raise ValueError("The two fragments share a centre of mass; there is no axis to scan along.")
    axis /= np.linalg.norm(axis)
    out = []
    for d in distances:
        if not d > 0:
            raise ValueError(f"distances must be positive, got {d!r}.")
        a = cluster.copy()
        a.positions[idx] += com_a + d * axis - com_b
        a.info[keys.SAMPLER] = keys.SAMPLER_DISTANCE_SCAN
        a.info[keys.COM_DISTANCE] = float(d)
        out.append(a)
    return out


def orientation_samples(
    mol_a: Atoms | str, mol_b: Atoms | str, distance: float, n_samples: int, min_contact: float = 1.4, seed: int | None = 0,
    max_tries: int = 10000,
) -> list[Atoms]:
    """Random rigid orientations of two molecules at a fixed centre-of-mass distance.

    Both molecules get uniformly random rotations (Haar measure) and the second is placed along a random
    direction; orientations with any intermolecular contact below ``min_contact`` Å are rejected.

    Returns:
        ``n_samples`` dimers (``mol_a`` atoms first); ``info["com_distance_A"]`` holds the distance.

    Raises:
        ValueError: if too few orientations pass the contact test (distance too short).
    """
    from scipy.spatial.transform import Rotation

    mol_a, mol_b = as_atoms(mol_a, "mol_a"), as_atoms(mol_b, "mol_b")
    check_positive_int(n_samples, "n_samples")
    rng = np.random.default_rng(seed)
    pa = mol_a.positions - mol_a.get_center_of_mass()
    pb = mol_b.positions - mol_b.get_center_of_mass()
    out, tries = [], 0
    while len(out) < n_samples:
        tries += 1
        if tries > max_tries:
            raise ValueError(
                f"Only {len(out)} of {n_samples} orientations at {distance} Å keep every contact above "
                f"{min_contact} Å after {max_tries} tries; use a larger distance."
            )
        ra, rb = Rotation.random(2, random_state=rng)
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        xa, xb = ra.apply(pa), rb.apply(pb) + distance * direction
        if np.linalg.norm(xa[:, None] - xb[None], axis=-1).min() < min_contact:
            continue
        dimer = Atoms(np.concatenate([mol_a.numbers, mol_b.numbers]), np.concatenate([xa, xb]))
        dimer.info[keys.SAMPLER] = keys.SAMPLER_ORIENTATION
        dimer.info[keys.COM_DISTANCE] = float(distance)
        out.append(dimer)
    return out
