"""Geometries for labelling from MD: snapshots of Langevin MD driven by any ASE calculator."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms

from .. import keys
from ..geometry import check_positive_int
from ..structure_io import as_atoms
from .engine import run_md

__all__ = ["md_sample"]


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
        a.info[keys.SAMPLER] = keys.SAMPLER_MD
        a.info[keys.SAMPLING_TEMPERATURE] = float(temperature_K)
        out.append(a)
    return out
