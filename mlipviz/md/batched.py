"""Batched MD: many replicas, of one system or several, in one model call per step, on TorchSim's integrators.

mlipviz writes no integrator here. TorchSim (PyPI ``torch-sim-atomistic``) integrates; mlipviz adds the batched
SchNetPack model (:mod:`.batch_model`), a Verlet neighbour list with a skin (:mod:`.neighbors`), start velocities at
exactly the requested temperature over the degrees of freedom that carry it (:mod:`.thermo`), per-system checks that
stop an exploding replica while the others go on, extxyz trajectories, a CSV log, checkpoints and resume
(:mod:`.batched_io`), a progress bar and a torch thread count chosen for the size of the call.

Degrees of freedom, as :func:`mlipviz.md.run_md` counts them: NVE removes centre-of-mass motion (and rotation, for an
isolated structure), 3N − 6; Nosé–Hoover removes the centre of mass only, 3N − 3, which is what TorchSim's chain
thermostats; Langevin (BAOAB) acts on every Cartesian degree of freedom, 3N.

References:
    Leimkuhler, Matthews, Proc. R. Soc. A 472, 20160138 (2016), doi:10.1098/rspa.2016.0138 (BAOAB Langevin).
    Martyna, Tuckerman, Tobias, Klein, Mol. Phys. 87, 1117 (1996), doi:10.1080/00268979600100761 (Nosé–Hoover chains).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from ase import Atoms, units
from tqdm.auto import tqdm

from ..device import default_threads, resolve_device, torch_threads
from ..geometry import check_atoms, check_positive_int
from ..potential.chemistry import check_chemistry, embedding_size
from .batch_model import as_potential, sliced_state, torchsim_model
from .batched_io import RunFiles
from .engine import MAX_TEMPERATURE_K, MDInstabilityError, check_thermostat_args
from .observables import Trajectory
from .thermo import kinetic_temperature, start_momenta

__all__ = ["BATCHED_ENSEMBLES", "BatchedMD", "BatchedMDResult"]

BATCHED_ENSEMBLES = ("nve", "langevin", "nose_hoover")
#: Monitor: called with (system index, its structure at a recorded frame); returns why to stop it, or None.
Monitor = Callable[[int, Atoms], "str | None"]


@dataclass
class BatchedMDResult:
    """Energies, temperatures and frames of every system of a batched run.

    Attributes:
        ensemble: "nve", "langevin" or "nose_hoover".
        time_fs: (n_frames,) time of each recorded frame, fs.
        epot, ekin, temperature_K: (n_frames, n_systems) eV, eV, K; NaN once a system has stopped.
        n_dof: (n_systems,) degrees of freedom each temperature is counted over.
        numbers: Atomic numbers of each system.
        cells: (3, 3) cell of each system, Å (zeros for an isolated one); pbc: (3,) periodic directions.
        positions, velocities: Per system, (n_frames_k, n_atoms_k, 3) Å and Å/fs of the frames it ran.
        stopped: {system: (step, reason)} for systems stopped before the end (exploded, or by the monitor).
        timestep_fs, record_every, n_steps: The integration settings and the steps run.
        wall_time_s: Wall time of the steps, s (this call; a resumed run counts its own).
        neighbor_builds: Neighbour-list rebuilds during this call.
        threads: Torch threads used.
        directory: The run directory, or None.
    """

    ensemble: str
    time_fs: np.ndarray
    epot: np.ndarray
    ekin: np.ndarray
    temperature_K: np.ndarray
    n_dof: np.ndarray
    numbers: list[np.ndarray]
    cells: list[np.ndarray]
    pbc: np.ndarray
    positions: list[np.ndarray]
    velocities: list[np.ndarray]
    stopped: dict[int, tuple[int, str]]
    timestep_fs: float
    record_every: int
    n_steps: int
    wall_time_s: float = 0.0
    neighbor_builds: int = 0
    threads: int = 1
    directory: Path | None = None
    _steps_timed: int = field(default=0, repr=False)

    @property
    def n_systems(self) -> int:
        return len(self.numbers)

    @property
    def etot(self) -> np.ndarray:
        """(n_frames, n_systems) total energy, eV."""
        return self.epot + self.ekin

    @property
    def ms_per_replica_step(self) -> float:
        """Wall time per step and system of this call, ms."""
        return 1e3 * self.wall_time_s / max(self._steps_timed * self.n_systems, 1)

    def trajectory(self, system: int) -> Trajectory:
        """The frames of one system as a :class:`~mlipviz.md.observables.Trajectory` (for the observables)."""
        if not 0 <= system < self.n_systems:
            raise IndexError(f"system {system} is not in 0..{self.n_systems - 1}.")
        z = self.numbers[system]
        masses = Atoms(numbers=z).get_masses()
        pos = self.positions[system]
        cells = np.broadcast_to(self.cells[system], (len(pos), 3, 3)).copy() if self.pbc.any() else None
        return Trajectory(pos, z, masses, self.timestep_fs * self.record_every, cells, self.pbc.copy(),
                          self.velocities[system])

    def frames(self, system: int) -> list[Atoms]:
        """The frames of one system as ``ase.Atoms`` with momenta."""
        traj = self.trajectory(system)
        return [traj.atoms(i) for i in range(traj.n_frames)]


class BatchedMD:
    """NVE, Langevin or Nosé–Hoover MD of many systems at once, one model call per step.

    Args:
        structures: An ``ase.Atoms`` or a list of them (sizes and compositions may differ), Å.
        model: A saved model directory (:func:`mlipviz.potential.load_model`), a SchNetPack model (then
            ``cutoff``), or a :class:`~mlipviz.md.batch_model.SchNetPackPotential`.
        n_replicas: Copies of each structure; each copy gets its own start velocities.
        ensemble: "nve" (velocity Verlet), "langevin" (BAOAB) or "nose_hoover" (a chain of 3).
        timestep_fs: Time step, fs (at most :data:`mlipviz.md.MAX_TIMESTEP_FS`).
        temperature_K: Start temperature, and the thermostat's, K.
        friction_per_fs: Langevin friction γ, 1/fs.
        tau_fs: Nosé–Hoover time constant, fs (None: 100 time steps, TorchSim's default).
        seed: Seeds the start velocities (system k draws from ``default_rng([seed, k])``) and the thermostat noise.
        cutoff: The model's cutoff, Å, when ``model`` is a module.
        skin: Neighbour-list skin, Å: the list is rebuilt after some atom moved skin/2.
        compile: Call the model through ``torch.compile`` (a first call of tens of seconds; pays off on long runs
            of one small system and on a GPU).
        device: "auto" (CUDA when present), "cpu" or "cuda".
        threads: Torch threads on the CPU, or "auto" (:func:`mlipviz.device.default_threads`).
        dtype: Dtype of the MD state (the model keeps its own).

    Raises:
        TypeError, ValueError: bad input, named, before any force call.
    """

    def __init__(self, structures: Atoms | Sequence[Atoms], model, n_replicas: int = 1, ensemble: str = "nve",
                 timestep_fs: float = 0.5, temperature_K: float = 300.0, friction_per_fs: float = 0.01,
                 tau_fs: float | None = None, seed: int = 0, cutoff: float | None = None, skin: float = 1.0,
                 compile: bool = False, device: str = "auto", threads: int | str = "auto",
                 dtype: torch.dtype = torch.float64):
        import torch_sim as ts

        if ensemble not in BATCHED_ENSEMBLES:
            raise ValueError(f"ensemble={ensemble!r} is not one of {BATCHED_ENSEMBLES}.")
        structures = [structures] if isinstance(structures, Atoms) else list(structures)
        if not structures or not all(isinstance(a, Atoms) for a in structures):
            raise TypeError("structures must be an ase.Atoms or a non-empty list of ase.Atoms.")
        n_replicas = check_positive_int(n_replicas, "n_replicas")
        for k, a in enumerate(structures):
            check_atoms(a, f"structures[{k}]")
            if not np.array_equal(a.pbc, structures[0].pbc):
                raise ValueError(f"structures[{k}] has pbc={a.pbc.tolist()} but structures[0] has "
                                 f"{structures[0].pbc.tolist()}: one batch holds periodic or isolated systems, not "
                                 "both (TorchSim's state shares one pbc). Run them in separate BatchedMD objects.")
        dt, temp, gamma = check_thermostat_args(timestep_fs, temperature_K, friction_per_fs,
                                                langevin=ensemble == "langevin")
        if tau_fs is not None and not (isinstance(tau_fs, (int, float)) and np.isfinite(tau_fs) and tau_fs > dt):
            raise ValueError(f"tau_fs must be a time in fs longer than the time step ({dt:g} fs), got {tau_fs!r}.")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
        self.device = resolve_device(device)
        self.ensemble, self.timestep_fs, self.temperature_K = ensemble, dt, temp
        self.potential = as_potential(model, cutoff, skin, compile, self.device)
        max_z = embedding_size(self.potential.model)
        for k, a in enumerate(structures):  # elements the model never saw are refused before any force call
            check_chemistry(a, self.potential.elements, max_z, f"structures[{k}]")
        self.model = torchsim_model(self.potential, self.device, dtype)

        systems = [a.copy() for a in structures for _ in range(n_replicas)]
        self.n_dof = np.zeros(len(systems), dtype=int)
        for k, a in enumerate(systems):
            a.calc = None
            self.n_dof[k] = start_momenta(a, ensemble, temp, np.random.default_rng([seed, k]))
        self.numbers = [a.numbers.copy() for a in systems]
        self.cells, self.pbc = [a.cell.array.copy() for a in systems], structures[0].pbc.copy()
        n_atoms = sum(len(a) for a in systems)
        self.threads = default_threads(n_atoms, self.device) if threads == "auto" else check_positive_int(
            threads, "threads")

        self.ts = ts
        self.dt = torch.tensor(dt * units.fs, device=self.device, dtype=dtype)  # TorchSim's metal time = ASE's
        self.kT = torch.tensor(temp * units.kB, device=self.device, dtype=dtype)
        self.gamma = torch.tensor(gamma / units.fs, device=self.device, dtype=dtype)
        tau = None if tau_fs is None else torch.tensor(tau_fs * units.fs, device=self.device, dtype=dtype)
        init, self._step_fn = {
            "nve": (ts.nve_init, ts.nve_step),
            "langevin": (ts.nvt_langevin_init, ts.nvt_langevin_step),
            "nose_hoover": (ts.nvt_nose_hoover_init, ts.nvt_nose_hoover_step),
        }[ensemble]
        state = ts.initialize_state(systems, device=self.device, dtype=dtype)
        state.momenta = torch.as_tensor(np.concatenate([a.get_momenta() for a in systems]), device=self.device,
                                        dtype=dtype)
        state.rng = int(seed)
        extra = {"dt": self.dt, "tau": tau} if ensemble == "nose_hoover" else {}
        with torch_threads(self.threads):
            self.state = init(state, self.model, kT=self.kT, **extra)
        self.active = list(range(len(systems)))  # original index of each system still in the state
        self.step_count = 0
        self.settings = {"ensemble": ensemble, "timestep_fs": dt, "temperature_K": temp, "friction_per_fs": gamma,
                         "tau_fs": tau_fs, "seed": int(seed), "n_systems": len(systems),
                         "numbers": [z.tolist() for z in self.numbers]}

    def _step_kwargs(self) -> dict:
        if self.ensemble == "nve":
            return {"dt": self.dt}
        if self.ensemble == "langevin":
            return {"dt": self.dt, "kT": self.kT, "gamma": self.gamma}
        return {"dt": self.dt, "kT": self.kT}

    def _snapshot(self):
        """Per active system: structure (with momenta), epot, ekin, temperature, forces."""
        s = self.state
        counts = torch.bincount(s.system_idx, minlength=s.n_systems).cpu().numpy()
        pos, mom = s.positions.detach().cpu().numpy(), s.momenta.detach().cpu().numpy()
        frc = s.forces.detach().cpu().numpy()
        epot = s.energy.detach().cpu().numpy().reshape(-1)
        ekin = self.ts.calc_kinetic_energy(masses=s.masses, momenta=s.momenta, system_idx=s.system_idx)
        ekin = ekin.detach().cpu().numpy().reshape(-1)
        bounds = np.concatenate([[0], np.cumsum(counts)])
        atoms, forces, temps = [], [], []
        for slot, k in enumerate(self.active):
            lo, hi = bounds[slot], bounds[slot + 1]
            a = Atoms(numbers=self.numbers[k], positions=pos[lo:hi], cell=self.cells[k], pbc=self.pbc)
            a.set_momenta(mom[lo:hi], apply_constraint=False)
            atoms.append(a)
            forces.append(frc[lo:hi])
            temps.append(float(kinetic_temperature(ekin[slot], int(self.n_dof[k]))))
        return atoms, epot, ekin, np.array(temps), forces

    def run(self, n_steps: int, record_every: int = 10, directory: str | Path | None = None,
            checkpoint_every: int | None = None, resume: bool = False, monitor: Monitor | None = None,
            on_instability: str = "stop_system", progress: bool = True) -> BatchedMDResult:
        """Run until step ``n_steps``, recording every ``record_every`` steps.

        Args:
            n_steps: The step the run ends at (a resumed run continues up to it).
            record_every: Steps between recorded frames (<= n_steps).
            directory: Run directory for trajectories, log and checkpoints (:mod:`.batched_io`), or None.
            checkpoint_every: Steps between checkpoints (a multiple of ``record_every``; default every 10 records).
            resume: Continue from the checkpoint in ``directory`` (the run must be built as before); without one,
                start afresh. Without ``resume``, a directory that already holds a run is refused.
            monitor: Called at each recorded frame for each running system; a returned reason stops that system
                (for example the Fu et al. bond rule, :func:`mlipviz.md.bond_monitor`).
            on_instability: A non-finite energy, position or momentum, or a kinetic temperature above
                :data:`MAX_TEMPERATURE_K`: "stop_system" stops that system and goes on; "raise" raises
                :class:`~mlipviz.md.MDInstabilityError` with the result so far.
            progress: Show a tqdm progress bar.

        Returns:
            A :class:`BatchedMDResult`; the frame that failed a check is the last frame of its system.
        """
        n_steps = check_positive_int(n_steps, "n_steps")
        record_every = check_positive_int(record_every, "record_every")
        if record_every > n_steps:
            raise ValueError(f"record_every={record_every} is larger than n_steps={n_steps}: only t = 0 would be "
                             "recorded.")
        if resume and directory is None:
            raise ValueError("resume=True needs the directory of the run to resume.")
        if on_instability not in ("stop_system", "raise"):
            raise ValueError(f"on_instability={on_instability!r} is not 'stop_system' or 'raise'.")
        every = checkpoint_every if checkpoint_every is not None else 10 * record_every
        every = check_positive_int(every, "checkpoint_every")
        if every % record_every:
            raise ValueError(f"checkpoint_every={every} must be a multiple of record_every={record_every}.")
        files = RunFiles(directory, len(self.numbers)) if directory is not None else None
        n_sys = len(self.numbers)
        rec = {"t": [], "epot": [], "ekin": [], "T": []}
        frames = {k: ([], []) for k in range(n_sys)}
        stopped: dict[int, tuple[int, str]] = {}
        if files is not None:
            files.check_settings({**self.settings, "record_every": record_every}, resume)
            if resume and files.checkpoint.exists():
                self._resume(files, rec, frames, stopped)
            files.start_log()

        def record():
            atoms, epot, ekin, temps, forces = self._snapshot()
            row = {name: np.full(n_sys, np.nan) for name in ("epot", "ekin", "T")}
            stop = []
            for slot, k in enumerate(self.active):
                row["epot"][k], row["ekin"][k], row["T"][k] = epot[slot], ekin[slot], temps[slot]
                frames[k][0].append(atoms[slot].positions.copy())
                frames[k][1].append(atoms[slot].get_velocities() * units.fs)
                finite = np.isfinite([epot[slot], ekin[slot]]).all() and np.isfinite(atoms[slot].positions).all()
                if not finite or temps[slot] > MAX_TEMPERATURE_K:
                    why = "non-finite energy or positions" if not finite else (
                        f"kinetic temperature {temps[slot]:.3g} K above {MAX_TEMPERATURE_K:g} K")
                    stop.append((slot, k, why, True))
                elif monitor is not None and (why := monitor(k, atoms[slot])):
                    stop.append((slot, k, str(why), False))
            rec["t"].append(self.step_count * self.timestep_fs)
            for name in ("epot", "ekin", "T"):
                rec[name].append(row[name])
            if files is not None:
                files.append(self.step_count, self.step_count * self.timestep_fs, self.active, atoms, epot, ekin,
                             temps, forces)
            recorded[0] = self.step_count
            return stop

        def finish(steps_timed: int, wall: float) -> BatchedMDResult:
            return BatchedMDResult(
                self.ensemble, np.array(rec["t"]), np.array(rec["epot"]).reshape(-1, n_sys),
                np.array(rec["ekin"]).reshape(-1, n_sys), np.array(rec["T"]).reshape(-1, n_sys), self.n_dof.copy(),
                self.numbers, self.cells, self.pbc, [np.array(frames[k][0]).reshape(-1, len(self.numbers[k]), 3) for k in range(n_sys)],
                [np.array(frames[k][1]).reshape(-1, len(self.numbers[k]), 3) for k in range(n_sys)], dict(stopped),
                self.timestep_fs, record_every, self.step_count, wall, self.potential.neighbors.n_builds - builds0,
                self.threads, None if files is None else files.directory, steps_timed)

        def handle(stop) -> None:
            for slot, k, why, unstable in stop:
                stopped[k] = (self.step_count, why)
                if unstable and on_instability == "raise":
                    res = finish(self.step_count - start_step, time.perf_counter() - t0)
                    raise MDInstabilityError(
                        f"system {k} became unstable at step {self.step_count} "
                        f"(t = {self.step_count * self.timestep_fs:g} fs): {why}; {len(rec['t'])} frame(s) kept.",
                        step=self.step_count, time_fs=self.step_count * self.timestep_fs, result=res)
            if stop:
                gone = {slot for slot, *_ in stop}
                keep = [slot for slot in range(len(self.active)) if slot not in gone]
                self.active = [self.active[slot] for slot in keep]
                if keep:
                    self.state = sliced_state(self.state, keep)

        recorded = [self.step_count if rec["t"] else -1]  # the step of the last completely recorded frame
        builds0, start_step, t0 = self.potential.neighbors.n_builds, self.step_count, time.perf_counter()
        kwargs = self._step_kwargs()
        with torch_threads(self.threads), tqdm(total=n_steps, initial=self.step_count, desc=f"MD {self.ensemble}",
                                               disable=not progress, unit="step") as bar:
            if not rec["t"]:
                handle(record())
            try:
                while self.step_count < n_steps and self.active:
                    self.state = self._step_fn(state=self.state, model=self.model, **kwargs)
                    self.step_count += 1
                    bar.update(1)
                    if self.step_count % record_every == 0:
                        handle(record())
                        if files is not None and self.step_count % every == 0:
                            self._checkpoint(files, rec, stopped)
            finally:
                wall = time.perf_counter() - t0
                if files is not None and recorded[0] == self.step_count:
                    self._checkpoint(files, rec, stopped)  # also on an interrupt: resume goes on from here
        return finish(self.step_count - start_step, wall)

    def _checkpoint(self, files: RunFiles, rec: dict, stopped: dict) -> None:
        book = {"active": list(self.active), "stopped": {int(k): [int(s), w] for k, (s, w) in stopped.items()},
                "t": torch.tensor(rec["t"]), "epot": torch.tensor(np.array(rec["epot"])),
                "ekin": torch.tensor(np.array(rec["ekin"])), "T": torch.tensor(np.array(rec["T"]))}
        files.save_checkpoint(self.state, self.ensemble, self.step_count, book)

    def _resume(self, files: RunFiles, rec: dict, frames: dict, stopped: dict) -> None:
        payload = files.read_checkpoint()
        book = payload["bookkeeping"]
        active = [int(k) for k in book["active"]]
        if active != self.active:  # written after systems stopped: slice the fresh state alike, then load
            self.state = sliced_state(self.state, active)
        step = files.load_checkpoint(self.state, self.ensemble, self.device, payload)
        self.active, self.step_count = active, step
        self.potential.neighbors.reset()
        stopped.update({int(k): (int(s), str(w)) for k, (s, w) in book["stopped"].items()})
        rec["t"].extend(book["t"].tolist())
        for name in ("epot", "ekin", "T"):
            rec[name].extend(list(book[name].numpy()))
        for k, kept in enumerate(files.truncate_after(step)):
            for a in kept:
                frames[k][0].append(a.positions.copy())
                frames[k][1].append(a.get_velocities() * units.fs)
