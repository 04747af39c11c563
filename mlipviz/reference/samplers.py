"""More ways to sample geometries: random rattle, MD snapshots, rigid-body scans of clusters.

Normal-mode sampling lives in :mod:`mlipviz.reference.sampling`. Every sampler returns new structures (Å) and
records how each was made in ``atoms.info["sampler"]``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from .. import keys
from .validate import as_atoms, check_positive_int

__all__ = ["rattle_sample", "md_sample", "distance_scan", "orientation_samples"]


def rattle_sample(atoms: Atoms | str, n_samples: int, stdev: float = 0.05, seed: int | None = 0) -> list[Atoms]:
    """Independent Gaussian displacements of every Cartesian coordinate.

    Args:
        atoms: Reference structure (Å), or the path of a structure file (its first frame).
        n_samples: Number of structures.
        stdev: Standard deviation of each displacement component, Å.
        seed: Random seed.
    """
    atoms = as_atoms(atoms)
    check_positive_int(n_samples, "n_samples")
    if not stdev >= 0:
        raise ValueError(f"stdev must be a non-negative distance in Å, got {stdev!r}.")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_samples):
        a = atoms.copy()
        a.positions += rng.normal(0.0, stdev, a.positions.shape)
        a.info[keys.SAMPLER] = f"rattle stdev={stdev} Å"
        out.append(a)
    return out


def md_sample(
    atoms: Atoms | str,
    calculator,
    n_samples: int,
    temperature_K: float,
    interval_steps: int = 20,
    equilibration_steps: int = 200,
    timestep_fs: float = 0.5,
    seed: int = 0,
    progress: bool = True,
) -> list[Atoms]:
    """Snapshots of Langevin MD with any ASE calculator: a cheap level (PySCF) or an mlipviz potential.

    Hot MD (temperature well above the target) reaches the distorted geometries a potential must also know.

    Args:
        atoms: Start structure (Å), or the path of a structure file (its first frame).
        calculator: ASE calculator driving the MD.
        n_samples: Snapshots to return.
        temperature_K: Thermostat temperature, K.
        interval_steps: MD steps between snapshots (decorrelation).
        equilibration_steps: Steps discarded first.
        timestep_fs: Time step, fs.
        seed: Seed for velocities and noise.
        progress: Show a progress bar.
    """
    from ase.io import read

    from ..md import run_md

    atoms = as_atoms(atoms)
    check_positive_int(n_samples, "n_samples")
    check_positive_int(interval_steps, "interval_steps")
    n_steps = equilibration_steps + n_samples * interval_steps
    with tempfile.TemporaryDirectory() as tmp:
        traj = Path(tmp) / "md.traj"
        run_md(atoms, calculator, n_steps, timestep_fs, "langevin", temperature_K, record_every=interval_steps,
               trajectory=traj, seed=seed, progress=progress)
        frames = read(traj, ":")
    skip = int(np.ceil(equilibration_steps / interval_steps))
    out = []
    for f in frames[skip + 1 :][:n_samples]:
        a = Atoms(f.numbers, f.positions, cell=f.cell, pbc=f.pbc)
        a.info.update(atoms.info)
        a.info[keys.SAMPLER] = f"Langevin MD {temperature_K} K"
        a.info[keys.SAMPLING_TEMPERATURE] = float(temperature_K)
        out.append(a)
    return out


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
        a.info[keys.SAMPLER] = "rigid distance scan"
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
        dimer.info[keys.SAMPLER] = "random rigid orientation"
        dimer.info[keys.COM_DISTANCE] = float(distance)
        out.append(dimer)
    return out
