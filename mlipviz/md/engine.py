"""Molecular dynamics with any ASE calculator: NVE (velocity Verlet) and Langevin NVT.

This is the reference path through ASE's integrators; it records energies as it goes and writes an ASE
trajectory; :class:`mlipviz.md.BatchedMD` is measured against it. Every reported temperature counts
the degrees of freedom that really carry kinetic energy (:mod:`mlipviz.md.thermo`), and a run that turns non-finite
or explodes stops with :class:`MDInstabilityError`, keeping what it recorded.

References:
    Swope et al., J. Chem. Phys. 76, 637 (1982), doi:10.1063/1.442716 (velocity Verlet).
    Vanden-Eijnden, Ciccotti, Chem. Phys. Lett. 429, 310 (2006), doi:10.1016/j.cplett.2006.07.086
    (the Langevin integrator in ASE).
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.io import Trajectory
from ase.md.langevin import Langevin
from ase.md.verlet import VelocityVerlet
from tqdm.auto import tqdm

from ..geometry import check_atoms, check_positive_int
from .thermo import kinetic_temperature, start_momenta

__all__ = ["MAX_TEMPERATURE_K", "MAX_TIMESTEP_FS", "MDInstabilityError", "MDResult", "run_md"]

ENSEMBLES = ("nve", "langevin")
#: Largest time step accepted, fs. A stable, accurate step is at most ~1/10 of the fastest vibrational period:
#: X–H stretches (~9 fs) need <= 1 fs, and even heavy metals (Cu's highest phonon, ~140 fs) need <= ~10 fs.
MAX_TIMESTEP_FS = 10.0
#: A run whose kinetic temperature passes this (K) has exploded and is stopped; requests above it are refused.
MAX_TEMPERATURE_K = 1e5
#: Largest Langevin friction × time step accepted: ASE's integrator expands in γΔt and amplifies velocities
#: beyond γΔt = 4 (its damping factor 1 − γΔt/2 + (γΔt)²/8 exceeds 1 in magnitude).
MAX_FRICTION_TIMESTEP = 1.0


@dataclass
class MDResult:
    """Energies along an MD run.

    Attributes:
        ensemble: "nve" or "langevin".
        time_fs: (n_frames,) time, fs.
        epot: (n_frames,) potential energy, eV.
        ekin: (n_frames,) kinetic energy, eV.
        temperature_K: (n_frames,) instantaneous kinetic temperature 2 E_kin / (n_dof k_B), K.
        trajectory: Path of the ASE trajectory (one frame per record), or None.
        n_atoms: Number of atoms.
        wall_time_s: Wall time, s.
        extra: Run settings: ``n_steps`` (steps completed), ``timestep_fs``.
        n_dof: Degrees of freedom the temperature is counted over (see :func:`run_md`).
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
    n_dof: int = 0

    @property
    def etot(self) -> np.ndarray:
        """Total energy, eV."""
        return self.epot + self.ekin

    @property
    def ms_per_step(self) -> float:
        """Wall time per MD step, ms."""
        n_steps = self.extra.get("n_steps", 0)
        return 1e3 * self.wall_time_s / n_steps if n_steps else float("nan")


class MDInstabilityError(RuntimeError):
    """An MD run turned non-finite or exploded; what it recorded before is kept.

    Attributes:
        step: Step at which the problem was seen (0 is the start).
        time_fs: Time of that step, fs.
        last_good: Copy of the structure with momenta at the last step that passed the checks, or None.
        result: :class:`MDResult` of the frames recorded before the problem (the trajectory file is closed).
    """

    def __init__(self, message: str, *, step: int = -1, time_fs: float = float("nan"), last_good=None, result=None):
        super().__init__(message)
        self.step, self.time_fs, self.last_good, self.result = step, time_fs, last_good, result


class _Stop(Exception):
    """Raised by the per-step check inside ASE's run loop."""


def _real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}.")
    return float(value)


def _check_timestep(timestep_fs) -> float:
    dt = _real(timestep_fs, "timestep_fs")
    if not (0 < dt <= MAX_TIMESTEP_FS):
        raise ValueError(
            f"timestep_fs must be a positive number of femtoseconds at most {MAX_TIMESTEP_FS:g} fs, got "
            f"{timestep_fs!r} (a step should be ~1/10 of the fastest vibrational period; X–H stretches take ~9 fs)."
        )
    return dt


def check_thermostat_args(timestep_fs, temperature_K, friction_per_fs, langevin: bool) -> tuple[float, float, float]:
    """Validate a time step (fs), a temperature (K) and a friction (1/fs); returns them as floats.

    Raises:
        TypeError: a number given as another type (e.g. ``"0.5"``).
        ValueError: out of range, naming the argument: Δt in (0, :data:`MAX_TIMESTEP_FS`], T in
            [0, :data:`MAX_TEMPERATURE_K`], a finite friction (> 0 for Langevin, with γΔt <= 1).
    """
    dt = _check_timestep(timestep_fs)
    temp = _real(temperature_K, "temperature_K")
    if not (0 <= temp <= MAX_TEMPERATURE_K):
        raise ValueError(
            f"temperature_K must be a finite number from 0 to {MAX_TEMPERATURE_K:g} K, got {temperature_K!r}."
        )
    gamma = _real(friction_per_fs, "friction_per_fs")
    if not (np.isfinite(gamma) and gamma >= 0) or (langevin and gamma == 0):
        raise ValueError(f"friction_per_fs must be a finite number > 0 (1/fs), got {friction_per_fs!r}.")
    if langevin and gamma * dt > MAX_FRICTION_TIMESTEP:
        raise ValueError(
            f"friction_per_fs × timestep_fs = {gamma * dt:g} is above {MAX_FRICTION_TIMESTEP:g}: a Langevin "
            "integrator needs γΔt << 1. Lower the friction or the time step."
        )
    return dt, temp, gamma


def _check_md_args(atoms, calculator, n_steps, timestep_fs, ensemble, temperature_K, friction_per_fs, record_every,
                   seed) -> tuple[float, float, float]:
    """Validate :func:`run_md`'s arguments; returns (timestep_fs, temperature_K, friction_per_fs) as floats."""
    if ensemble not in ENSEMBLES:
        raise ValueError(f"ensemble={ensemble!r} is not one of {ENSEMBLES}.")
    n_steps, record_every = check_positive_int(n_steps, "n_steps"), check_positive_int(record_every, "record_every")
    if record_every > n_steps:
        raise ValueError(f"record_every={record_every} is larger than n_steps={n_steps}: only t = 0 would be recorded.")
    dt, temp, gamma = check_thermostat_args(timestep_fs, temperature_K, friction_per_fs, ensemble == "langevin")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}.")
    if calculator is None:
        raise ValueError("calculator is None: pass an ASE calculator (e.g. mlipviz.potential.MLIPCalculator).")
    check_atoms(atoms, "atoms")
    if atoms.has("momenta") and not np.all(np.isfinite(atoms.get_momenta())):
        rows = sorted(set(np.argwhere(~np.isfinite(atoms.get_momenta()))[:, 0].tolist()))
        raise ValueError(f"atoms has NaN or infinite momenta for atom index(es) {rows}.")
    return dt, temp, gamma


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

    Unless ``atoms`` already carries momenta, velocities are drawn from Maxwell–Boltzmann and rescaled so that the
    start is exactly at ``temperature_K`` over the degrees of freedom counted, and every reported temperature uses
    the same count (:func:`mlipviz.md.thermo.start_momenta`): NVE of an isolated structure 3N − 6 (3N − 5 linear),
    centre-of-mass and rotation removed and conserved; NVE periodic 3N − 3; Langevin (``fixcm=False``, which
    re-excites translation and rotation) 3N; ASE constraints subtract their own count.

    Each step is checked: non-finite positions, momenta or forces, a non-finite energy at a recorded step, or a
    kinetic temperature above :data:`MAX_TEMPERATURE_K` stop the run with :class:`MDInstabilityError`.

    Args:
        atoms: Start structure, Å. Not modified; MD runs on a copy.
        calculator: Any ASE calculator (e.g. :class:`mlipviz.potential.MLIPCalculator`).
        n_steps: Number of MD steps.
        timestep_fs: Time step, fs, at most :data:`MAX_TIMESTEP_FS`.
        ensemble: "nve" (velocity Verlet) or "langevin" (NVT).
        temperature_K: Start temperature, and the thermostat temperature for Langevin, K.
        friction_per_fs: Langevin friction γ, 1/fs; γ × timestep_fs at most 1.
        record_every: Record energies and a trajectory frame every this many steps (<= n_steps).
        trajectory: Path of an ASE ``.traj`` file to write, or None.
        seed: Seed for the initial velocities and the Langevin noise.
        progress: Show a tqdm progress bar.

    Returns:
        An :class:`MDResult`.

    Raises:
        TypeError: a number given as another type (e.g. ``timestep_fs="0.5"``).
        ValueError: bad input, named, before any force is computed.
        MDInstabilityError: the run turned non-finite or exploded; recorded frames are kept (``.result``).
    """
    dt_fs, temp, gamma = _check_md_args(atoms, calculator, n_steps, timestep_fs, ensemble, temperature_K,
                                        friction_per_fs, record_every, seed)
    work = atoms.copy()
    work.calc = calculator
    rng = np.random.default_rng(seed)
    n_dof = start_momenta(work, ensemble, temp, rng)
    if ensemble == "nve":
        dyn = VelocityVerlet(work, timestep=dt_fs * units.fs)
    else:
        dyn = Langevin(work, timestep=dt_fs * units.fs, temperature_K=temp, friction=gamma / units.fs, fixcm=False,
                       rng=rng)

    traj = Trajectory(str(trajectory), "w", work) if trajectory else None
    rec = {"t": [], "epot": [], "ekin": [], "T": []}
    good: dict = {}  # the last step that passed the checks

    def check():
        step = dyn.nsteps
        state = {"positions": work.get_positions(), "momenta": work.get_momenta(), "forces": work.get_forces()}
        if step % record_every == 0:
            state["potential energy"] = np.asarray(work.get_potential_energy())
        bad = [name for name, value in state.items() if not np.all(np.isfinite(value))]
        if bad:
            raise _Stop(f"non-finite {', '.join(bad)}")
        t_kin = kinetic_temperature(work.get_kinetic_energy(), n_dof) if n_dof else 0.0
        if t_kin > MAX_TEMPERATURE_K:
            raise _Stop(f"kinetic temperature {t_kin:.3g} K is above {MAX_TEMPERATURE_K:g} K")
        good.update(step=step, positions=state["positions"], momenta=state["momenta"])
        if step:
            bar.update(1)

    def record():
        ekin = work.get_kinetic_energy()
        rec["t"].append(dyn.get_time() / units.fs)
        rec["epot"].append(work.get_potential_energy())
        rec["ekin"].append(ekin)
        rec["T"].append(kinetic_temperature(ekin, n_dof))
        if traj is not None:
            traj.write()

    def result(steps_done: int, wall: float) -> MDResult:
        return MDResult(
            ensemble=ensemble,
            time_fs=np.array(rec["t"], dtype=float),
            epot=np.array(rec["epot"], dtype=float),
            ekin=np.array(rec["ekin"], dtype=float),
            temperature_K=np.array(rec["T"], dtype=float),
            trajectory=Path(trajectory) if trajectory else None,
            n_atoms=len(work),
            wall_time_s=wall,
            extra={"n_steps": int(steps_done), "timestep_fs": dt_fs},
            n_dof=n_dof,
        )

    dyn.attach(check, interval=1)
    dyn.attach(record, interval=record_every)
    stop = None
    t0 = time.perf_counter()
    try:
        with tqdm(total=n_steps, desc=f"MD {ensemble}", disable=not progress) as bar:
            dyn.run(n_steps)
    except _Stop as err:
        stop = err
    except Exception as err:
        err.add_note(f"run_md: stopped after {dyn.nsteps} completed step(s); {len(rec['t'])} frame(s) recorded.")
        raise
    finally:
        if traj is not None:
            traj.close()
    wall = time.perf_counter() - t0
    if stop is None:
        return result(n_steps, wall)

    step = dyn.nsteps
    last = None
    if good:
        last = work.copy()
        last.set_positions(good["positions"], apply_constraint=False)
        last.set_momenta(good["momenta"], apply_constraint=False)
    kept = f"{len(rec['t'])} recorded frame(s) kept" + (f" in {trajectory}" if trajectory else "")
    where = f"the last good step is {good['step']}" if good else "no step was good"
    raise MDInstabilityError(
        f"MD became unstable at step {step} (t = {step * dt_fs:g} fs): {stop}; {where}; {kept}.",
        step=step, time_fs=step * dt_fs, last_good=last, result=result(good.get("step", 0), wall),
    ) from None
