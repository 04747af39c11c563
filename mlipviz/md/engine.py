"""Molecular dynamics with any ASE calculator: NVE (velocity Verlet) and Langevin NVT.

This is the reference path through ASE's integrators; it records energies as it goes and writes an ASE
trajectory. The batched GPU engine of later releases is measured against it.

References:
    Swope et al., J. Chem. Phys. 76, 637 (1982), doi:10.1063/1.442716 (velocity Verlet).
    Vanden-Eijnden, Ciccotti, Chem. Phys. Lett. 429, 310 (2006), doi:10.1016/j.cplett.2006.07.086
    (the Langevin integrator in ASE).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.io import Trajectory
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
from ase.md.verlet import VelocityVerlet
from tqdm.auto import tqdm

__all__ = ["MDResult", "run_md"]

ENSEMBLES = ("nve", "langevin")


@dataclass
class MDResult:
    """Energies along an MD run.

    Attributes:
        ensemble: "nve" or "langevin".
        time_fs: (n_frames,) time, fs.
        epot: (n_frames,) potential energy, eV.
        ekin: (n_frames,) kinetic energy, eV.
        temperature_K: (n_frames,) instantaneous temperature, K.
        trajectory: Path of the ASE trajectory (one frame per record), or None.
        n_atoms: Number of atoms.
        wall_time_s: Wall time, s.
    """

    ensemble: str
    time_fs: np.ndarray
    epot: np.ndarray
    ekin: np.ndarray
    temperature_K: np.ndarray
    trajectory: Path | None
    n_atoms: int
    wall_time_s: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def etot(self) -> np.ndarray:
        """Total energy, eV."""
        return self.epot + self.ekin

    @property
    def ms_per_step(self) -> float:
        """Wall time per MD step, ms."""
        n_steps = self.extra.get("n_steps", 0)
        return 1e3 * self.wall_time_s / n_steps if n_steps else float("nan")


def run_md(
    atoms: Atoms,
    calculator,
    n_steps: int,
    timestep_fs: float = 0.5,
    ensemble: str = "nve",
    temperature_K: float = 300.0,
    friction_per_fs: float = 0.01,
    record_every: int = 1,
    trajectory: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
) -> MDResult:
    """Run NVE or Langevin MD from ``atoms``.

    Velocities are drawn from Maxwell–Boltzmann at ``temperature_K`` with zero total momentum and angular
    momentum (unless ``atoms`` already carries momenta).

    Args:
        atoms: Start structure, Å. Not modified; MD runs on a copy.
        calculator: Any ASE calculator (e.g. :class:`mlipviz.potential.MLIPCalculator`).
        n_steps: Number of MD steps.
        timestep_fs: Time step, fs.
        ensemble: "nve" (velocity Verlet) or "langevin" (NVT).
        temperature_K: Initial-velocity temperature, and the thermostat temperature for Langevin, K.
        friction_per_fs: Langevin friction, 1/fs.
        record_every: Record energies and a trajectory frame every this many steps.
        trajectory: Path of an ASE ``.traj`` file to write, or None.
        seed: Seed for the initial velocities and the Langevin noise.
        progress: Show a tqdm progress bar.

    Returns:
        An :class:`MDResult`.
    """
    import time

    if ensemble not in ENSEMBLES:
        raise ValueError(f"ensemble={ensemble!r} is not one of {ENSEMBLES}.")
    for name, value in (("n_steps", n_steps), ("record_every", record_every)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if not timestep_fs > 0 or not np.isfinite(timestep_fs):
        raise ValueError(f"timestep_fs must be a positive number of femtoseconds, got {timestep_fs!r}.")
    if not temperature_K >= 0:
        raise ValueError(f"temperature_K must be >= 0 K, got {temperature_K!r}.")
    work = atoms.copy()
    work.calc = calculator
    rng = np.random.default_rng(seed)
    if not np.any(work.get_momenta()):
        thermalize_momenta(work, temperature_K=temperature_K, rng=rng)
        Stationary(work)
        if len(work) > 2:
            ZeroRotation(work)
    dt = timestep_fs * units.fs
    if ensemble == "nve":
        dyn = VelocityVerlet(work, timestep=dt)
    else:
        dyn = Langevin(
            work, timestep=dt, temperature_K=temperature_K, friction=friction_per_fs / units.fs, fixcm=False, rng=rng
        )

    traj = Trajectory(str(trajectory), "w", work) if trajectory else None
    rec = {"t": [], "epot": [], "ekin": [], "T": []}

    def record():
        rec["t"].append(dyn.get_time() / units.fs)
        rec["epot"].append(work.get_potential_energy())
        rec["ekin"].append(work.get_kinetic_energy())
        rec["T"].append(work.get_temperature())
        if traj is not None:
            traj.write()

    record()
    t0 = time.perf_counter()
    try:
        with tqdm(total=n_steps, desc=f"MD {ensemble}", disable=not progress) as bar:
            for start in range(0, n_steps, record_every):
                chunk = min(record_every, n_steps - start)
                dyn.run(chunk)
                bar.update(chunk)
                if chunk == record_every:
                    record()
    finally:
        if traj is not None:
            traj.close()
    wall = time.perf_counter() - t0
    return MDResult(
        ensemble=ensemble,
        time_fs=np.array(rec["t"]),
        epot=np.array(rec["epot"]),
        ekin=np.array(rec["ekin"]),
        temperature_K=np.array(rec["T"]),
        trajectory=Path(trajectory) if trajectory else None,
        n_atoms=len(work),
        wall_time_s=wall,
        extra={"n_steps": int(n_steps), "timestep_fs": float(timestep_fs)},
    )
