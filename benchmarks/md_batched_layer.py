"""Batched MD, a prototype beside benchmarks/md_throughput.py: many systems in one model call on TorchSim.

Not run on its own: ``python benchmarks/md_throughput.py [--quick] [--json PATH]`` imports and measures it.

mlipviz adds three thin pieces to an existing batched MD engine and writes no integrator of its own:

* :class:`SkinNeighborList` — a Verlet list for a whole batch: pairs within ``cutoff + skin``, rebuilt only
  after some atom moved more than ``skin / 2`` (or a cell changed), cut to the pairs within ``cutoff`` every
  step and padded to a fixed capacity, so that a compiled model sees the same shapes from step to step.
  Padding pairs lie beyond the cutoff, where the model's cosine cutoff gives them zero weight.
* :class:`SchNetPackPotential` — a SchNetPack model (PaiNN, SchNet, SO3net) called once for the whole batch,
  optionally through ``torch.compile``; forces come from the model's own autograd ``Forces`` module.
* :func:`torchsim_model` — the two above as a TorchSim ``ModelInterface``, so TorchSim's velocity Verlet,
  Langevin (BAOAB), Nosé–Hoover chain and Bussi integrators drive it; :class:`BatchedMD` runs them, records
  energies, writes TorchSim's HDF5 trajectories (read back as ASE ``Atoms``) and saves/restores checkpoints.

TorchSim (PyPI ``torch-sim-atomistic``, import ``torch_sim``) is optional: everything but
:func:`torchsim_model` and :class:`BatchedMD` works without it.

Units: Å, eV, amu; time in fs and temperature in K at this interface (TorchSim's metal units inside).

References:
    Verlet, Phys. Rev. 159, 98 (1967), doi:10.1103/PhysRev.159.98 (neighbour list with a skin).
    Leimkuhler, Matthews, Proc. R. Soc. A 472, 20160138 (2016), doi:10.1098/rspa.2016.0138 (BAOAB).
    Martyna, Tuckerman, Tobias, Klein, Mol. Phys. 87, 1117 (1996), doi:10.1080/00268979600100761 (NHC).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from schnetpack import properties as spk_properties

__all__ = [
    "BatchedMD",
    "BatchedMDResult",
    "SchNetPackPotential",
    "SkinNeighborList",
    "pairs_within",
    "read_trajectory",
    "torchsim_model",
]

ENSEMBLES = ("nve", "langevin", "nose_hoover")


def pairs_within(
    positions: torch.Tensor,
    cell_rows: torch.Tensor,
    pbc: torch.Tensor,
    system_idx: torch.Tensor,
    n_systems: int,
    cutoff: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All ordered pairs (i, j), i != j, closer than ``cutoff`` within each system (vesin, on the CPU).

    Args:
        positions: (n_atoms, 3) Å; the atoms of each system are contiguous.
        cell_rows: (n_systems, 3, 3) cell vectors as rows (ASE's convention), Å.
        pbc: (n_systems, 3) or (3,) periodicity.
        system_idx: (n_atoms,) system of each atom, sorted.
        n_systems: Number of systems.
        cutoff: Å.

    Returns:
        ``(idx_i, idx_j, offsets)``: global atom indices (long) and the Cartesian image offsets (Å) such that
        ``R[j] - R[i] + offset`` is the pair vector, on the device of ``positions``.
    """
    from vesin import NeighborList

    device, dtype = positions.device, positions.dtype
    pos = positions.detach().double().cpu().numpy()
    cells = cell_rows.detach().double().cpu().numpy().reshape(n_systems, 3, 3)
    periodic = pbc.detach().cpu().numpy().astype(bool)
    periodic = np.broadcast_to(periodic, (n_systems, 3)) if periodic.ndim == 1 else periodic
    counts = torch.bincount(system_idx.detach().cpu(), minlength=n_systems).numpy()
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    calculator = NeighborList(cutoff=float(cutoff), full_list=True)
    idx_i, idx_j, shifts, owners = [], [], [], []
    for s in range(n_systems):
        lo, n = int(starts[s]), int(counts[s])
        if periodic[s].any() and not periodic[s].all():
            raise ValueError("mixed periodicity within one system is not supported by vesin.")
        box = cells[s] if periodic[s].all() else np.zeros((3, 3))
        i, j, shift = calculator.compute(pos[lo : lo + n], box, bool(periodic[s].all()), quantities="ijS")
        idx_i.append(i.astype(np.int64) + lo)
        idx_j.append(j.astype(np.int64) + lo)
        shifts.append(shift.astype(np.float64))
        owners.append(np.full(len(i), s, dtype=np.int64))
    idx_i, idx_j = np.concatenate(idx_i), np.concatenate(idx_j)
    shifts, owners = np.concatenate(shifts), np.concatenate(owners)
    offsets = np.einsum("pk,pkl->pl", shifts, cells[owners]) if len(owners) else np.zeros((0, 3))
    return (
        torch.from_numpy(idx_i).to(device),
        torch.from_numpy(idx_j).to(device),
        torch.from_numpy(offsets).to(device=device, dtype=dtype),
    )


class SkinNeighborList:
    """Verlet list for a batch of systems: built within ``cutoff + skin``, filtered to ``cutoff`` every step.

    Args:
        cutoff: The model's cutoff, Å.
        skin: Extra shell, Å. The list is rebuilt once some atom moved more than ``skin / 2`` since the last build,
            or a cell changed; 0 rebuilds every call.
        pad_multiple: Pad the pairs of each step to a fixed capacity, a multiple of this many pairs: at least the
            first count, growing (by at least 10 %) only when a step needs more room, so a compiled model sees one
            pair count instead of a new one every step. 0 disables padding (the count then changes every step).
        trim: Drop the pairs in the skin every step (one distance per listed pair, and one host sync for the
            compaction). Without it the model also runs over the skin pairs, which carry zero weight: in a liquid
            that is about ``((cutoff + skin) / cutoff)**3 - 1`` more pair work (73 % for 5 + 1 Å), for small
            molecules in vacuum next to nothing. None (default) decides at each build: trim when at least
            ``trim_above`` of the listed pairs lie in the skin.
        trim_above: Skin fraction above which ``trim=None`` trims.

    Padding pairs join the last atom to itself through an image ``3 * (cutoff + skin)`` away: beyond the cutoff,
    so the model's cosine cutoff gives them zero weight and zero force.

    Attributes:
        n_calls, n_builds: How often the list was asked for and how often it was rebuilt.
        build_seconds: Wall time spent in rebuilds, s.
        capacity: Current padded pair count (0 before the first call or without padding).
    """

    def __init__(
        self,
        cutoff: float,
        skin: float = 1.0,
        pad_multiple: int = 16,
        trim: bool | None = None,
        trim_above: float = 0.1,
    ):
        if not cutoff > 0:
            raise ValueError(f"cutoff must be a positive distance in Å, got {cutoff!r}.")
        if not skin >= 0:
            raise ValueError(f"skin must be >= 0 Å, got {skin!r}.")
        self.cutoff, self.skin, self.pad_multiple = float(cutoff), float(skin), int(pad_multiple)
        self.trim, self.trim_above = trim, float(trim_above)
        self.trimming = bool(trim)  # the decision in force since the last build
        self.n_calls = self.n_builds = 0
        self.build_seconds = 0.0
        self.capacity = 0
        self._reference: tuple[torch.Tensor, torch.Tensor] | None = None
        self._listed: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._pairs: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def reset(self) -> None:
        """Force a rebuild at the next call."""
        self._reference = None

    def _needs_build(self, positions: torch.Tensor, cell_rows: torch.Tensor) -> bool:
        if self._reference is None or self.skin == 0:
            return True
        ref_pos, ref_cell = self._reference
        if ref_pos.shape != positions.shape or not torch.equal(ref_cell, cell_rows):
            return True
        moved = (positions.detach() - ref_pos).square().sum(dim=1).max()
        return bool(moved > (0.5 * self.skin) ** 2)  # one host sync per step

    def _padded(self, idx_i: torch.Tensor, idx_j: torch.Tensor, offsets: torch.Tensor, n_atoms: int):
        n = len(idx_i)
        if n > self.capacity:  # the first count, then grow by at least 10 %
            grown = max(n, int(1.1 * self.capacity) if self.capacity else n)
            self.capacity = -(-grown // self.pad_multiple) * self.pad_multiple
        pad = self.capacity - n
        fill = torch.full((pad,), n_atoms - 1, dtype=idx_i.dtype, device=idx_i.device)
        far = torch.zeros((pad, 3), dtype=offsets.dtype, device=offsets.device)
        far[:, 0] = 3.0 * (self.cutoff + self.skin)
        return torch.cat([idx_i, fill]), torch.cat([idx_j, fill]), torch.cat([offsets, far])

    def __call__(
        self,
        positions: torch.Tensor,
        cell_rows: torch.Tensor,
        pbc: torch.Tensor,
        system_idx: torch.Tensor,
        n_systems: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(idx_i, idx_j, offsets)`` of the pairs within the cutoff now (or within ``cutoff + skin`` at the last
        build, without ``trim``), padded to the capacity."""
        self.n_calls += 1
        rebuilt = self._needs_build(positions, cell_rows)
        if rebuilt:
            t0 = time.perf_counter()
            self._listed = pairs_within(positions, cell_rows, pbc, system_idx, n_systems, self.cutoff + self.skin)
            self._reference = (positions.detach().clone(), cell_rows.detach().clone())
            if self.trim is None:
                i, j, off = self._listed
                pos = positions.detach()
                d2 = (pos[j] - pos[i] + off.to(pos.dtype)).square().sum(dim=1)
                self.trimming = bool((d2 >= self.cutoff**2).float().mean() >= self.trim_above) if len(i) else False
            else:
                self.trimming = bool(self.trim)
            self.n_builds += 1
            self.build_seconds += time.perf_counter() - t0
        if not self.trimming and not rebuilt:
            return self._pairs
        idx_i, idx_j, offsets = self._listed
        if self.trimming and self.skin > 0:
            pos = positions.detach()
            r = pos[idx_j] - pos[idx_i] + offsets.to(pos.dtype)
            keep = r.square().sum(dim=1) < self.cutoff**2
            idx_i, idx_j, offsets = idx_i[keep], idx_j[keep], offsets[keep]
        if self.pad_multiple > 0:
            idx_i, idx_j, offsets = self._padded(idx_i, idx_j, offsets, positions.shape[0])
        self._pairs = (idx_i, idx_j, offsets)
        return self._pairs


class SchNetPackPotential(torch.nn.Module):
    """A SchNetPack potential evaluated on a whole batch of systems in one call.

    Args:
        model: A SchNetPack ``NeuralNetworkPotential`` with ``PairwiseDistances`` as input module and a
            ``Forces`` output (as built by :func:`mlipviz.potential.build_model`).
        cutoff: The model's cutoff, Å.
        skin: Neighbour-list skin, Å (see :class:`SkinNeighborList`).
        compile: Call the model through ``torch.compile(model, dynamic=False)`` (the first call compiles); the
            pairs are then padded to a fixed count (see :class:`SkinNeighborList`).
        pad_multiple, trim: See :class:`SkinNeighborList`.
        energy_key, force_key: Output keys of the model.

    Call it with positions (n_atoms, 3) Å, cell rows (n_systems, 3, 3) Å, pbc, atomic numbers, the sorted
    system index of each atom and the number of systems; it returns ``{"energy": (n_systems,) eV,
    "forces": (n_atoms, 3) eV/Å}`` in the dtype of ``positions``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        cutoff: float,
        skin: float = 1.0,
        compile: bool = False,
        energy_key: str = "energy",
        force_key: str = "forces",
        pad_multiple: int = 16,
        trim: bool | None = None,
    ):
        super().__init__()
        self.model = model.eval()
        self.model_dtype = next(model.parameters()).dtype
        self.neighbors = SkinNeighborList(cutoff, skin, pad_multiple=pad_multiple if compile else 0, trim=trim)
        self.call = torch.compile(self.model, dynamic=False) if compile else self.model
        self.energy_key, self.force_key = energy_key, force_key
        self._counts: tuple[torch.Tensor, torch.Tensor] | None = None

    def fork(self) -> SchNetPackPotential:
        """A potential with its own neighbour list that shares this one's model and (compiled) call."""
        twin = SchNetPackPotential.__new__(SchNetPackPotential)
        torch.nn.Module.__init__(twin)
        twin.model, twin.model_dtype, twin.call = self.model, self.model_dtype, self.call
        twin.energy_key, twin.force_key, twin._counts = self.energy_key, self.force_key, None
        nl = self.neighbors
        twin.neighbors = SkinNeighborList(
            nl.cutoff, nl.skin, pad_multiple=nl.pad_multiple, trim=nl.trim, trim_above=nl.trim_above
        )
        return twin

    def _n_atoms(self, system_idx: torch.Tensor, n_systems: int) -> torch.Tensor:
        if self._counts is None or self._counts[0] is not system_idx:
            self._counts = (system_idx, torch.bincount(system_idx, minlength=n_systems))
        return self._counts[1]

    def inputs(
        self,
        positions: torch.Tensor,
        cell_rows: torch.Tensor,
        pbc: torch.Tensor,
        atomic_numbers: torch.Tensor,
        system_idx: torch.Tensor,
        n_systems: int,
    ) -> dict[str, torch.Tensor]:
        """The SchNetPack input dict of the batch (neighbour list included)."""
        idx_i, idx_j, offsets = self.neighbors(positions, cell_rows, pbc, system_idx, n_systems)
        pbc_rows = pbc.expand(n_systems, 3) if pbc.ndim == 1 else pbc
        return {
            spk_properties.Z: atomic_numbers.long(),
            spk_properties.R: positions.detach().to(self.model_dtype),
            spk_properties.idx_m: system_idx,
            spk_properties.n_atoms: self._n_atoms(system_idx, n_systems),
            spk_properties.cell: cell_rows.to(self.model_dtype),
            spk_properties.pbc: pbc_rows,
            spk_properties.idx_i: idx_i,
            spk_properties.idx_j: idx_j,
            spk_properties.offsets: offsets.to(self.model_dtype),
        }

    def forward(
        self,
        positions: torch.Tensor,
        cell_rows: torch.Tensor,
        pbc: torch.Tensor,
        atomic_numbers: torch.Tensor,
        system_idx: torch.Tensor,
        n_systems: int,
    ) -> dict[str, torch.Tensor]:
        out = self.call(self.inputs(positions, cell_rows, pbc, atomic_numbers, system_idx, n_systems))
        return {
            "energy": out[self.energy_key].detach().reshape(n_systems).to(positions.dtype),
            "forces": out[self.force_key].detach().to(positions.dtype),
        }


@functools.cache
def _torchsim_model_class():
    from torch_sim.models.interface import ModelInterface

    class SchNetPackTorchSimModel(ModelInterface):
        """A :class:`SchNetPackPotential` as a TorchSim model (energies and forces, no stress)."""

        def __init__(self, potential: SchNetPackPotential, device: torch.device, dtype: torch.dtype):
            super().__init__()
            self.potential = potential
            self._device, self._dtype = torch.device(device), dtype
            self._compute_forces, self._compute_stress = True, False
            self._memory_scales_with = "n_atoms_x_density"

        def forward(self, state, **_kwargs) -> dict[str, torch.Tensor]:
            return self.potential(
                state.positions,
                state.row_vector_cell,
                state.pbc,
                state.atomic_numbers,
                state.system_idx,
                state.n_systems,
            )

    return SchNetPackTorchSimModel


def torchsim_model(
    potential: SchNetPackPotential, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float64
):
    """``potential`` as a TorchSim ``ModelInterface`` (needs ``torch_sim``)."""
    return _torchsim_model_class()(potential, device, dtype)


@dataclass
class BatchedMDResult:
    """Energies of every system along a batched MD run.

    Attributes:
        time_fs: (n_frames,) time, fs.
        epot, ekin: (n_frames, n_systems) potential and kinetic energy, eV.
        temperature_K: (n_frames, n_systems) instantaneous temperature, K.
        wall_time_s: Wall time of the steps, s.
        n_steps: Steps run.
        n_systems: Systems in the batch.
        trajectories: HDF5 trajectory files (one per system), or empty.
        neighbor_builds: Neighbour-list rebuilds during the run.
    """

    time_fs: np.ndarray
    epot: np.ndarray
    ekin: np.ndarray
    temperature_K: np.ndarray
    wall_time_s: float
    n_steps: int
    n_systems: int
    trajectories: list[Path] = field(default_factory=list)
    neighbor_builds: int = 0

    @property
    def ms_per_replica_step(self) -> float:
        """Wall time per step and system, ms."""
        return 1e3 * self.wall_time_s / max(self.n_steps * self.n_systems, 1)


class BatchedMD:
    """NVE, Langevin or Nosé–Hoover MD of many systems at once on TorchSim's integrators.

    Args:
        structures: ASE ``Atoms`` (one per system; sizes and compositions may differ).
        potential: The batched potential.
        ensemble: "nve" (velocity Verlet), "langevin" (BAOAB) or "nose_hoover" (chain of 3).
        timestep_fs: Time step, fs.
        temperature_K: Initial-velocity temperature and thermostat temperature, K.
        friction_per_fs: Langevin friction, 1/fs.
        tau_fs: Nosé–Hoover time constant, fs (TorchSim's default, 100 steps, when None).
        seed: Seed of the initial velocities and the thermostat noise.
        device: Torch device of the state and the potential.
        dtype: Dtype of the MD state (the model keeps its own).
    """

    def __init__(
        self,
        structures: Sequence[Atoms],
        potential: SchNetPackPotential,
        ensemble: str = "nve",
        timestep_fs: float = 0.5,
        temperature_K: float = 300.0,
        friction_per_fs: float = 0.01,
        tau_fs: float | None = None,
        seed: int = 0,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float64,
    ):
        import torch_sim as ts
        from torch_sim.units import MetalUnits

        if ensemble not in ENSEMBLES:
            raise ValueError(f"ensemble={ensemble!r} is not one of {ENSEMBLES}.")
        if not timestep_fs > 0:
            raise ValueError(f"timestep_fs must be a positive number of femtoseconds, got {timestep_fs!r}.")
        if not temperature_K >= 0:
            raise ValueError(f"temperature_K must be >= 0 K, got {temperature_K!r}.")
        self.ts, self.ensemble = ts, ensemble
        self.device = torch.device(device)
        self.potential = potential.to(self.device)
        self.model = torchsim_model(self.potential, self.device, dtype)
        self.timestep_fs = float(timestep_fs)
        self.dt = torch.tensor(timestep_fs * 1e-3 * MetalUnits.time, device=self.device, dtype=dtype)
        self.kT = torch.tensor(temperature_K * MetalUnits.temperature, device=self.device, dtype=dtype)
        self.gamma = torch.tensor(friction_per_fs * 1e3 / MetalUnits.time, device=self.device, dtype=dtype)
        tau = None if tau_fs is None else torch.tensor(tau_fs * 1e-3 * MetalUnits.time, device=self.device, dtype=dtype)
        init, self._step_fn = {
            "nve": (ts.nve_init, ts.nve_step),
            "langevin": (ts.nvt_langevin_init, ts.nvt_langevin_step),
            "nose_hoover": (ts.nvt_nose_hoover_init, ts.nvt_nose_hoover_step),
        }[ensemble]
        state = ts.initialize_state(list(structures), device=self.device, dtype=dtype)
        state.rng = seed
        extra = {"dt": self.dt, "tau": tau} if ensemble == "nose_hoover" else {}
        self.state = init(state, self.model, kT=self.kT, **extra)
        self.step_count = 0

    def _kwargs(self) -> dict:
        if self.ensemble == "nve":
            return {"dt": self.dt}
        if self.ensemble == "langevin":
            return {"dt": self.dt, "kT": self.kT, "gamma": self.gamma}
        return {"dt": self.dt, "kT": self.kT}

    def step(self, n_steps: int = 1) -> None:
        """Advance all systems by ``n_steps`` with the engine's integrator (no recording)."""
        kwargs = self._kwargs()
        for _ in range(n_steps):
            self.state = self._step_fn(state=self.state, model=self.model, **kwargs)
        self.step_count += n_steps

    def _energies(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from torch_sim.units import MetalUnits

        s = self.state
        ekin = self.ts.calc_kinetic_energy(masses=s.masses, momenta=s.momenta, system_idx=s.system_idx)
        temp = s.calc_kT() / MetalUnits.temperature
        return s.energy.detach().cpu().numpy(), ekin.detach().cpu().numpy(), temp.detach().cpu().numpy()

    def run(
        self, n_steps: int, record_every: int = 10, trajectory_dir: str | Path | None = None
    ) -> BatchedMDResult:
        """Run ``n_steps``, recording energies (and, with ``trajectory_dir``, HDF5 frames) every ``record_every``.

        Trajectories are TorchSim's HDF5 files ``system_<k>.h5``; :func:`read_trajectory` returns ASE ``Atoms``.
        """
        for name, value in (("n_steps", n_steps), ("record_every", record_every)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        reporter = None
        files: list[Path] = []
        if trajectory_dir is not None:
            Path(trajectory_dir).mkdir(parents=True, exist_ok=True)
            files = [Path(trajectory_dir) / f"system_{k}.h5" for k in range(self.state.n_systems)]
            reporter = self.ts.TrajectoryReporter([str(f) for f in files], state_frequency=record_every)
        rec = {"t": [], "epot": [], "ekin": [], "T": []}

        def record():
            epot, ekin, temp = self._energies()
            rec["t"].append(self.step_count * self.timestep_fs)
            rec["epot"].append(epot)
            rec["ekin"].append(ekin)
            rec["T"].append(temp)
            if reporter is not None:
                reporter.report(self.state, self.step_count, model=self.model)

        builds0 = self.potential.neighbors.n_builds
        record()
        t0 = time.perf_counter()
        try:
            for start in range(0, n_steps, record_every):
                chunk = min(record_every, n_steps - start)
                self.step(chunk)
                if chunk == record_every:
                    record()
        finally:
            if reporter is not None:
                reporter.close()
        wall = time.perf_counter() - t0
        return BatchedMDResult(
            time_fs=np.array(rec["t"]),
            epot=np.array(rec["epot"]),
            ekin=np.array(rec["ekin"]),
            temperature_K=np.array(rec["T"]),
            wall_time_s=wall,
            n_steps=int(n_steps),
            n_systems=self.state.n_systems,
            trajectories=files,
            neighbor_builds=self.potential.neighbors.n_builds - builds0,
        )

    def save_checkpoint(self, path: str | Path) -> Path:
        """Write the full MD state (tensors, thermostat variables, RNG state, step) to ``path``.

        Only tensors, numbers and strings are stored, so it loads with ``torch.load(weights_only=True)``.
        """
        s = self.state
        tensors = {}
        for name, value in vars(s).items():
            if isinstance(value, torch.Tensor):
                tensors[name] = value.detach().cpu()
        chains = {}
        for name, value in vars(s).items():  # Nosé–Hoover chain variables are small dataclasses of tensors
            if hasattr(value, "__dataclass_fields__") and not isinstance(value, torch.Tensor):
                chains[name] = {
                    k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v)
                    for k, v in vars(value).items()
                    if isinstance(v, (torch.Tensor, int, float))
                }
        payload = {
            "class": type(s).__name__,
            "ensemble": self.ensemble,
            "step": self.step_count,
            "tensors": tensors,
            "chains": chains,
            "rng": s.rng.get_state(),
        }
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(payload, tmp)
        tmp.replace(path)
        return path

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore a state written by :meth:`save_checkpoint` into this (identically built) run."""
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload["ensemble"] != self.ensemble or payload["class"] != type(self.state).__name__:
            raise ValueError(
                f"{path} holds a {payload['ensemble']} run ({payload['class']}); this run is {self.ensemble}."
            )
        s = self.state
        for name, value in payload["tensors"].items():
            setattr(s, name, value.to(self.device))
        for name, values in payload["chains"].items():
            chain = getattr(s, name)
            for k, v in values.items():
                setattr(chain, k, v.to(self.device) if isinstance(v, torch.Tensor) else v)
        s.rng.set_state(payload["rng"])
        self.step_count = int(payload["step"])
        self.potential.neighbors.reset()

    def atoms(self) -> list[Atoms]:
        """The current structures as ASE ``Atoms`` (with momenta)."""
        return self.ts.io.state_to_atoms(self.state)


def read_trajectory(path: str | Path) -> list[Atoms]:
    """All frames of one TorchSim HDF5 trajectory as ASE ``Atoms``."""
    from torch_sim.trajectory import TorchSimTrajectory

    with TorchSimTrajectory(str(path), mode="r") as traj:
        return [traj.get_atoms(k) for k in range(len(traj))]
