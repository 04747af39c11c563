"""Random rattle: independent Gaussian displacements of every Cartesian coordinate."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from ... import keys
from ...geometry import check_positive_int
from ...structure_io import as_atoms

__all__ = ["rattle_sample"]


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
        a.info[keys.SAMPLER] = keys.SAMPLER_RATTLE
        a.info[keys.RATTLE_STDEV] = float(stdev)
        out.append(a)
    return out
