"""MD throughput: batched MD engines for mlipviz potentials, ms per replica-step, against ASE.

Which existing batched MD engine should mlipviz's fast MD stand on, schnetpack.md or TorchSim? Every arm runs
the same untrained PaiNN (64 features, 3 interactions, cutoff 5 Å, ``torch.manual_seed(0)``) on ethanol, and
the arms are interleaved and repeated, since other processes share the machine: each figure is the median over
the repeats, with min and max as the spread. On the CPU each arm is timed at 1 and 2 torch threads in the same
rotation and reports its better count. Each arm's peak memory (what it adds, build included) is measured after the
timing: on a CPU each arm in a fresh process (``--quick``: the arms of the summary ratios), on a GPU from the
allocator's statistics (see ``measure_memory``).

    python benchmarks/md_throughput.py [--quick] [--device auto|cpu|cuda] [--json PATH] [--profile]

Arms (ms per replica-step; one replica = one ethanol trajectory):
    A  ase            ASE VelocityVerlet + schnetpack.interfaces.SpkCalculator (MatScipy list every step)
    B  spk_md         schnetpack.md as it comes: System with 1 or 64 replicas, Simulator, VelocityVerlet,
                      LangevinThermostat, NeighborListMD (MatScipy, 1 Å cutoff shell), float32
    C  torchsim       TorchSim as it comes: nve_step / nvt_langevin_step (BAOAB), a minimal ModelInterface
                      that builds TorchSim's own neighbour list (torchsim_nl) at every call, eager model
    D  floor          the bare batched model call (forward + autograd forces) on 64 ethanols with a
                      precomputed neighbour list, eager and torch.compile(dynamic=False)
    E  neighbours     neighbour-list cost per replica of each engine, and how often each rebuilds
    F  mlipviz        mlipviz.md.BatchedMD (TorchSim's integrators + mlipviz's layer): skin list (1 Å) reused between rebuilds,
                      padded pair count, compiled model call (and the same with the eager call: on a CPU the
                      eager call of a 64-molecule batch is the faster one; the ratios use the faster)
    G  spk_md+layer   the same thin layer on schnetpack.md (a NeighborListMD and a calculator subclass):
                      shows what schnetpack.md reaches with it
    H  scaling        periodic water boxes of ~300, 3000, 30000 atoms on F's path (eager model call),
                      ms per atom-step; a box that would not fit in memory is reported as not measured

Every timed block starts from a freshly built arm: the untrained model heats the molecules and pulls them apart
within a few hundred steps, and arms must not be compared on configurations with fewer pairs. A cold
torch.compile cache adds about 1.5 min (two shapes) on 2 cores; --quick took 3.2 min with a cold cache there.

Ratios in the summary (all from this run):
    single_vs_ase               A ÷ F(1 replica, NVE): how much faster one trajectory runs (goal >= 2)
    batched64_vs_ase            A ÷ F(64, NVE) per replica-step (goal >= 10 on a CPU, >= 100 on a GPU)
    batched64_vs_schnetpack_md  B(64, NVE) ÷ F(64, NVE)
    batched64_over_model_floor  F(64, NVE) ÷ D (the faster of eager and compiled) (goal <= 1.25)
    (F is the faster of its compiled and eager arm; ratios_from_fastest_blocks repeats them from each arm's
    fastest block, the quiet spells of a shared machine)
    scaling_largest_over_smallest  H: ms per atom-step of the largest measured box ÷ the smallest
    scaling_floor_largest_over_smallest  the same for the bare model call on those boxes (how the model scales)
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import cProfile
import io
import json
import logging
import os
import platform
import pstats
import resource
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

warnings.filterwarnings("ignore", category=FutureWarning)  # TorchScript deprecation from schnetpack's import
warnings.filterwarnings("ignore", category=DeprecationWarning)

import schnetpack.transform as trn  # noqa: E402
from ase import Atoms, units  # noqa: E402
from ase.build import molecule  # noqa: E402
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta  # noqa: E402
from ase.md.verlet import VelocityVerlet  # noqa: E402
from schnetpack import properties as P  # noqa: E402
from schnetpack.interfaces import SpkCalculator  # noqa: E402
from schnetpack.md import Simulator, System  # noqa: E402
from schnetpack.md.calculators import SchNetPackCalculator  # noqa: E402
from schnetpack.md.initial_conditions import MaxwellBoltzmannInit  # noqa: E402
from schnetpack.md.integrators import VelocityVerlet as SpkVelocityVerlet  # noqa: E402
from schnetpack.md.neighborlist_md import NeighborListMD  # noqa: E402
from schnetpack.md.simulation_hooks import LangevinThermostat, SimulationHook  # noqa: E402

from mlipviz.device import resolve_device  # noqa: E402
from mlipviz.md import BatchedMD, SchNetPackPotential, SkinNeighborList, pairs_within  # noqa: E402
from mlipviz.potential import ModelConfig, build_model  # noqa: E402

try:
    import torch_sim as ts
    from torch_sim.models.interface import ModelInterface
    from torch_sim.neighbors import torchsim_nl
    from torch_sim.neighbors import ALCHEMIOPS_AVAILABLE, VESIN_AVAILABLE, VESIN_TORCHSCRIPT_AVAILABLE
    from torch_sim.transforms import compute_cell_shifts
except ImportError:  # TorchSim is not a dependency of mlipviz (yet): its arms are then not measured
    ts = None

CUTOFF = 5.0
SKIN = 1.0  # Å: the cutoff shell of schnetpack.md and the skin of mlipviz's list
TIMESTEP_FS = 0.5
TEMPERATURE_K = 300.0
FRICTION_PER_FS = 0.01  # Langevin: 1/(100 fs), schnetpack.md's time constant 100 fs
MOLECULE = "CH3CH2OH"
WATER_PER_A3 = 0.0334  # liquid water, molecules per Å^3


# ----------------------------------------------------------------------------------------------- timing


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@dataclass
class Arm:
    """One timed configuration: ``make()`` builds it and returns ``step(n)``; ``per_step`` systems per step."""

    key: str
    label: str
    make: Callable[[], Callable[[int], float | None]]
    replicas: int
    steps: int
    atoms_per_replica: int = 9
    stepper: Callable[[int], float | None] | None = None
    samples: dict[int, list[float]] = field(default_factory=dict)  # threads -> ms per replica-step
    note: str = ""
    peak_memory_mb: float = float("nan")  # see measure_memory

    def time_block(self, threads: int, device: torch.device) -> None:
        torch.set_num_threads(threads)
        sync(device)
        t0 = time.perf_counter()
        inner = self.stepper(self.steps)  # an arm may time itself (seconds per step) and return it
        sync(device)
        per_step = inner if inner is not None else (time.perf_counter() - t0) / self.steps
        self.samples.setdefault(threads, []).append(1e3 * per_step / self.replicas)

    def summary(self) -> dict:
        medians = {t: statistics.median(v) for t, v in self.samples.items() if v}
        best = min(medians, key=medians.get)
        vals = self.samples[best]
        return {
            "key": self.key,
            "label": self.label,
            "replicas": self.replicas,
            "ms_per_replica_step": medians[best],
            "min": min(vals),
            "max": max(vals),
            "threads": best,
            "median_by_threads": medians,
            "repeats": len(vals),
            "steps_per_block": self.steps,
            "peak_memory_mb": self.peak_memory_mb,
            "note": self.note,
        }


def run_interleaved(arms: list[Arm], threads: list[int], repeats: int, warmup: int, device, log) -> None:
    """Build and warm up every arm, then time blocks in rotation: repeat × threads × arms.

    Each block starts from a freshly built arm (untimed, plus one untimed step), so every arm is timed on the
    first few dozen steps from the same kind of start: the untrained model heats the molecules and pulls them
    apart within a few hundred steps, which would leave long-running arms with fewer pairs than the others and
    than the bare model call.
    """
    for arm in arms:
        t0 = time.perf_counter()
        torch.set_num_threads(max(threads))
        arm.stepper = arm.make()
        for t in threads:
            torch.set_num_threads(t)
            arm.stepper(warmup)
        log(f"  built and warmed {arm.key} in {time.perf_counter() - t0:.1f} s")
    for r in range(repeats):
        order = arms[r % len(arms):] + arms[: r % len(arms)]
        for t in threads if r % 2 == 0 else threads[::-1]:
            for arm in order:
                torch.set_num_threads(t)
                arm.stepper = arm.make()
                arm.stepper(1)
                arm.time_block(t, device)
        log(f"  repeat {r + 1}/{repeats} done")


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


QUICK_MEMORY_ARMS = ("A_ase", "B_spk_md_64", "C_torchsim_64", "F_mlipviz_64_eager")


def arm_peak_memory_mb(arm: Arm, device) -> float:
    """What one arm adds to memory at its peak, build and one block included, MB.

    On a GPU: ``torch.cuda.max_memory_allocated`` above what was allocated before. On a CPU: the peak resident set
    size, sampled every millisecond by a thread (the kernel's ``ru_maxrss`` would include the start-up's own peak),
    above the one before; meaningful in a fresh process only, where freed memory of other arms cannot be reused (see
    :func:`measure_memory`).
    """
    import gc
    import threading

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        arm.make()(arm.steps)
        sync(device)
        return (torch.cuda.max_memory_allocated() - base) / 1e6
    base, peak, done = _rss_mb(), [0.0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.001)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    arm.make()(arm.steps)
    done.set()
    watcher.join()
    return max(peak[0], _rss_mb()) - base


def measure_memory(arms: list[Arm], device, quick: bool, compile_model: bool, replicas: int, log) -> None:
    """Each arm's peak memory, apart from the timing. On a GPU in this process (the allocator's own statistics);
    on a CPU each arm in a fresh process of this script (``--memory-arm KEY``) at its best thread count, since one
    process reuses the memory other arms freed. ``--quick`` measures only :data:`QUICK_MEMORY_ARMS` on a CPU."""
    import subprocess
    import sys

    for arm in arms:
        best = arm.summary()["threads"]
        torch.set_num_threads(best)
        arm.stepper = None
        if device.type == "cuda":
            arm.peak_memory_mb = arm_peak_memory_mb(arm, device)
            continue
        if quick and arm.key not in QUICK_MEMORY_ARMS:
            continue
        cmd = [sys.executable, __file__, "--memory-arm", arm.key, "--device", "cpu", "--replicas", str(replicas),
               "--threads", str(best)] + (["--quick"] if quick else []) + ([] if compile_model else ["--no-compile"])
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
        if out.returncode == 0 and lines:
            arm.peak_memory_mb = json.loads(lines[-1])["peak_memory_mb"]
        else:
            log(f"  peak memory of {arm.key} not measured: {out.stderr.strip().splitlines()[-1:]}")
    log("  peak memory measured")


# ------------------------------------------------------------------------------------------------ systems


def ethanol() -> Atoms:
    return molecule(MOLECULE)


def with_velocities(atoms: Atoms, seed: int) -> Atoms:
    a = atoms.copy()
    thermalize_momenta(a, temperature_K=TEMPERATURE_K, rng=np.random.default_rng(seed))
    Stationary(a)
    ZeroRotation(a)
    return a


def water_box(n_molecules: int, seed: int = 0) -> Atoms:
    """Water molecules on a grid at liquid density, randomly oriented, in a periodic box."""
    rng = np.random.default_rng(seed)
    spacing = (1.0 / WATER_PER_A3) ** (1.0 / 3.0)
    side = round(n_molecules ** (1.0 / 3.0))
    dims = [side, side, side]
    while np.prod(dims) < n_molecules:  # grow the smallest side until the grid holds them all
        dims[int(np.argmin(dims))] += 1
    points = np.stack(np.meshgrid(*[np.arange(d) for d in dims], indexing="ij"), -1).reshape(-1, 3)
    lengths = np.array(dims) * spacing * (n_molecules / np.prod(dims)) ** (1 / 3)  # volume n / density
    points = points if len(points) == n_molecules else points[rng.choice(len(points), n_molecules, replace=False)]
    w = molecule("H2O")
    w.positions -= w.get_center_of_mass()
    box = Atoms(cell=np.diag(lengths), pbc=True)
    for p in points:
        m = w.copy()
        m.rotate(rng.uniform(0, 360), "z")
        m.rotate(rng.uniform(0, 360), "x")
        m.rotate(rng.uniform(0, 360), "z")
        m.positions += (p + 0.5) * lengths / np.array(dims)
        box += m
    return box


# -------------------------------------------------------------------------------------------- arm makers


def make_ase(model, device):
    def make():
        a = with_velocities(ethanol(), 0)
        a.calc = SpkCalculator(model, trn.MatScipyNeighborList(cutoff=CUTOFF), energy_unit="eV", device=device)
        dyn = VelocityVerlet(a, timestep=TIMESTEP_FS * units.fs)

        def step(n):
            dyn.run(n)

        return step

    return make


class InMemorySchNetPackCalculator(SchNetPackCalculator):
    """schnetpack.md's calculator, given a model object instead of a model file (same preparation).

    ``SchNetPackCalculator._deactivate_postprocessing`` only logs and sets ``do_postprocessing = False``; its log
    line fails on an ``AddOffsets`` mean of shape (1,) (``TypeError: unsupported format string``), which is
    what build_model makes, so the flag is set here directly.
    """

    def _prepare_model(self, model):
        model = copy.deepcopy(model).eval()
        model.do_postprocessing = False
        return model


class StepClock(SimulationHook):
    """Records the time at the end of each step, so a block's cost excludes simulate()'s extra first call."""

    def __init__(self):
        super().__init__()
        self.stamps: list[float] = []

    def on_step_finalize(self, simulator):
        if simulator.device.type == "cuda":
            torch.cuda.synchronize()
        self.stamps.append(time.perf_counter())


class CountingTransform(torch.nn.Module):
    """Wraps a neighbour-list transform and counts per-molecule builds."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.builds, self.seconds = inner, 0, 0.0

    def forward(self, inputs):
        t0 = time.perf_counter()
        out = self.inner(inputs)
        self.builds += 1
        self.seconds += time.perf_counter() - t0
        return out


def spk_system(n_replicas: int, device) -> System:
    system = System()
    system.load_molecules([ethanol()], n_replicas=n_replicas, position_unit_input="Angstrom")
    MaxwellBoltzmannInit(TEMPERATURE_K, remove_center_of_mass=True, remove_translation=True,
                         remove_rotation=True).initialize_system(system)
    return system


def make_spk_md(model, device, n_replicas: int, langevin: bool, stats: dict):
    def make():
        nbl = NeighborListMD(cutoff=CUTOFF, cutoff_shell=SKIN, base_nbl=trn.MatScipyNeighborList)
        counter = CountingTransform(nbl.transform)
        nbl.transform = counter
        calc = InMemorySchNetPackCalculator(
            model, force_key="forces", energy_unit="eV", position_unit="Angstrom", neighbor_list=nbl,
            energy_key="energy",
        )
        clock = StepClock()
        hooks = [LangevinThermostat(TEMPERATURE_K, 1.0 / FRICTION_PER_FS)] if langevin else []
        sim = Simulator(spk_system(n_replicas, device), SpkVelocityVerlet(TIMESTEP_FS), calc,
                        simulator_hooks=hooks + [clock], progress=False)
        sim = sim.to(torch.float32).to(device)
        stats["counter"], stats["simulator"] = counter, sim

        return clocked_steps(sim, clock)

    return make


def clocked_steps(sim, clock):
    """``step(n)`` for a schnetpack.md ``Simulator``: seconds per step between the clock's first and last stamps."""

    def step(n):
        clock.stamps.clear()
        sim.simulate(n)
        s = clock.stamps
        return (s[-1] - s[0]) / (len(s) - 1) if len(s) > 1 else None

    return step


class LayeredNeighborListMD(NeighborListMD):
    """schnetpack.md's neighbour list replaced by mlipviz's batched skin list (no per-molecule loop)."""

    def __init__(self, cutoff: float, skin: float, potential: SchNetPackPotential):
        self.cutoff, self.cutoff_shell, self.potential = cutoff, skin, potential

    def get_neighbors(self, inputs):
        n_mol = inputs[P.n_atoms].shape[0]
        i, j, off = self.potential.neighbors(inputs[P.R], inputs[P.cell], inputs[P.pbc], inputs[P.idx_m], n_mol)
        return {P.idx_i: i, P.idx_j: j, P.offsets: off.to(inputs[P.R].dtype)}


class LayeredSchNetPackCalculator(InMemorySchNetPackCalculator):
    """schnetpack.md's calculator calling mlipviz's shared (compiled) model call."""

    def _prepare_model(self, model):
        return model  # shared with mlipviz's arms, postprocessing left on (energy offset is a constant)

    def calculate(self, system):
        out = self.neighbor_list.potential.call(self._generate_input(system))
        self.results = {k: out[k].detach().to(system.dtype) for k in self.required_properties}
        self._update_system(system)


def make_spk_md_layer(potential: SchNetPackPotential, device, n_replicas: int):
    def make():
        pot = potential.fork()
        calc = LayeredSchNetPackCalculator(
            pot.model, force_key="forces", energy_unit="eV", position_unit="Angstrom",
            neighbor_list=LayeredNeighborListMD(CUTOFF, SKIN, pot), energy_key="energy",
        )
        clock = StepClock()
        sim = Simulator(spk_system(n_replicas, device), SpkVelocityVerlet(TIMESTEP_FS), calc,
                        simulator_hooks=[clock], progress=False)
        # the System holds float32 like the model; the model is shared, so only the system moves
        sim.system = sim.system.to(torch.float32).to(device)
        sim.integrator = sim.integrator.to(device)

        return clocked_steps(sim, clock)

    return make


def minimal_torchsim_model(model, device, stats: dict):
    """The smallest TorchSim ModelInterface for a SchNetPack model: TorchSim's own list at every call."""

    class SpkModel(ModelInterface):
        def __init__(self):
            super().__init__()
            self.model = model
            self._device, self._dtype = device, torch.float64
            self._compute_forces, self._compute_stress = True, False
            self.nl_seconds, self.nl_calls = 0.0, 0

        def forward(self, state, **_):
            t0 = time.perf_counter()
            pbc = state.pbc.unsqueeze(0).expand(state.n_systems, 3) if state.pbc.ndim == 1 else state.pbc
            mapping, system_mapping, shifts = torchsim_nl(
                state.positions, state.row_vector_cell, pbc, CUTOFF, state.system_idx
            )
            offsets = compute_cell_shifts(state.row_vector_cell, shifts, system_mapping)
            self.nl_seconds += time.perf_counter() - t0
            self.nl_calls += 1
            dtype = next(self.model.parameters()).dtype
            inputs = {
                P.Z: state.atomic_numbers.long(),
                P.R: state.positions.to(dtype),
                P.idx_m: state.system_idx,
                P.n_atoms: torch.bincount(state.system_idx, minlength=state.n_systems),
                P.cell: state.row_vector_cell.to(dtype),
                P.pbc: pbc,
                P.idx_i: mapping[0].long(),
                P.idx_j: mapping[1].long(),
                P.offsets: offsets.to(dtype),
            }
            out = self.model(inputs)
            return {"energy": out["energy"].detach().double(), "forces": out["forces"].detach().double()}

    m = SpkModel()
    stats["model"] = m
    return m


def make_torchsim(model, device, n_replicas: int, langevin: bool, stats: dict):
    def make():
        from torch_sim.units import MetalUnits

        tsm = minimal_torchsim_model(model, device, stats)
        state = ts.initialize_state([ethanol()] * n_replicas, device=device, dtype=torch.float64)
        state.rng = 0
        kT = TEMPERATURE_K * MetalUnits.temperature
        dt = torch.tensor(TIMESTEP_FS * 1e-3 * MetalUnits.time, device=device, dtype=torch.float64)
        if langevin:
            gamma = torch.tensor(FRICTION_PER_FS * 1e3 / MetalUnits.time, device=device, dtype=torch.float64)
            box = [ts.nvt_langevin_init(state, tsm, kT=kT)]
            kwargs = {"dt": dt, "kT": kT, "gamma": gamma}
            fn = ts.nvt_langevin_step
        else:
            box = [ts.nve_init(state, tsm, kT=kT)]
            kwargs = {"dt": dt}
            fn = ts.nve_step

        def step(n):
            s = box[0]
            for _ in range(n):
                s = fn(state=s, model=tsm, **kwargs)
            box[0] = s

        return step

    return make


def advance(md: BatchedMD, n: int) -> None:
    """``n`` more steps of mlipviz's engine as a user runs it (``BatchedMD.run``: checks and a record at both ends)."""
    md.run(md.step_count + n, record_every=n, progress=False)


def make_mlipviz(potential: SchNetPackPotential, device, structures: list[Atoms], ensemble: str, stats: dict):
    def make():
        md = BatchedMD(structures, potential.fork(), ensemble=ensemble, timestep_fs=TIMESTEP_FS,
                       temperature_K=TEMPERATURE_K, friction_per_fs=FRICTION_PER_FS, seed=0, device=device,
                       threads=torch.get_num_threads())
        stats["md"] = md

        def step(n):
            advance(md, n)

        return step

    return make


def floor_inputs(potential: SchNetPackPotential, n: int, device) -> dict:
    """The model inputs of n ethanols, neighbour list included (computed once, through a fresh list of the same
    kind as mlipviz's, so the padded pair count and hence the compiled graph are those of the MD arms)."""
    mols = [ethanol()] * n
    pos = torch.tensor(np.concatenate([m.positions for m in mols]), dtype=torch.float64, device=device)
    sidx = torch.arange(n, device=device).repeat_interleave(len(mols[0]))
    cell = torch.zeros(n, 3, 3, dtype=torch.float64, device=device)
    pbc = torch.zeros(3, dtype=torch.bool, device=device)
    z = torch.tensor(np.concatenate([m.numbers for m in mols]), device=device)
    return potential.fork().inputs(pos, cell, pbc, z, sidx, n)


def make_floor(call, inputs: dict):
    def make():
        def step(n):
            for _ in range(n):
                call(dict(inputs))

        return step

    return make


# ---------------------------------------------------------------------------------------- neighbour lists


def neighbour_costs(device, n_replicas: int, repeats: int, log) -> dict:
    """Cost per replica of each engine's neighbour list for 64 ethanols, ms (median of repeats)."""
    mols = [with_velocities(ethanol(), k) for k in range(n_replicas)]
    pos = torch.tensor(np.concatenate([m.positions for m in mols]), dtype=torch.float32, device=device)
    sidx = torch.arange(n_replicas, device=device).repeat_interleave(9)
    cell = torch.zeros(n_replicas, 3, 3, dtype=torch.float32, device=device)
    pbc = torch.zeros(n_replicas, 3, dtype=torch.bool, device=device)
    z = torch.tensor(np.concatenate([m.numbers for m in mols]), device=device)
    inputs = {P.Z: z, P.R: pos, P.n_atoms: torch.full((n_replicas,), 9, device=device), P.idx_m: sidx,
              P.cell: cell, P.pbc: pbc}
    out = {}

    def med(fn, k=repeats * 3):
        vals = []
        for _ in range(k):
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            vals.append(1e3 * (time.perf_counter() - t0) / n_replicas)
        return {"ms_per_replica": statistics.median(vals), "min": min(vals), "max": max(vals)}

    torch.set_num_threads(1)
    nbl = NeighborListMD(cutoff=CUTOFF, cutoff_shell=SKIN, base_nbl=trn.MatScipyNeighborList)

    def spk_rebuild():
        nbl.previous_positions = None
        nbl.get_neighbors(dict(inputs))

    out["schnetpack.md NeighborListMD (MatScipy), rebuild"] = med(spk_rebuild)
    nbl.get_neighbors(dict(inputs))
    out["schnetpack.md NeighborListMD (MatScipy), step without rebuild"] = med(lambda: nbl.get_neighbors(dict(inputs)))
    if ts is not None:
        pos64 = pos.double()
        kind = "alchemiops (warp)" if ALCHEMIOPS_AVAILABLE else (
            "vesin (torchscript)" if VESIN_TORCHSCRIPT_AVAILABLE else "vesin" if VESIN_AVAILABLE else "torch")
        torchsim_nl(pos64, cell.double(), pbc, CUTOFF, sidx)  # first call may compile kernels
        out[f"TorchSim torchsim_nl [{kind}], every step"] = med(
            lambda: torchsim_nl(pos64, cell.double(), pbc, CUTOFF, sidx))
    else:
        out["TorchSim torchsim_nl, every step"] = {"not_measured": "torch_sim is not importable"}
    out["mlipviz pairs_within (vesin), rebuild"] = med(lambda: pairs_within(pos, cell, pbc, sidx, n_replicas,
                                                                            CUTOFF + SKIN))

    skin = SkinNeighborList(CUTOFF, SKIN)
    skin(pos, cell, pbc, sidx, n_replicas)
    out["mlipviz SkinNeighborList, step without rebuild"] = med(lambda: skin(pos, cell, pbc, sidx, n_replicas))
    log("  neighbour lists timed")
    return out


# ------------------------------------------------------------------------------------------------- scaling


def scaling(model, device, sizes: list[int], steps: int, threads: int, log) -> dict:
    """ms per atom-step of NVE on periodic water boxes along mlipviz's path (eager model call)."""
    results = {}
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # GB
    per_atom_gb = None
    for n_mol in sizes:
        box = water_box(n_mol)
        n_atoms = len(box)
        need_gb = per_atom_gb * n_atoms if per_atom_gb else None
        if device.type == "cuda":
            free = torch.cuda.mem_get_info()[0] / 1e9
        else:
            free = psutil_available_gb()
        if need_gb is not None and need_gb > 0.8 * free:
            results[str(n_atoms)] = {"not_measured": f"needs about {need_gb:.0f} GB (extrapolated), "
                                                     f"{free:.0f} GB available"}
            log(f"  water {n_atoms} atoms: skipped, needs ~{need_gb:.0f} GB")
            continue
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        torch.set_num_threads(threads)
        pot = SchNetPackPotential(model, CUTOFF, SKIN, compile=False)
        md = BatchedMD([box], pot, ensemble="nve", timestep_fs=TIMESTEP_FS, temperature_K=TEMPERATURE_K,
                       seed=0, device=device, threads=threads)
        advance(md, 1)
        vals = []
        for _ in range(3):
            sync(device)
            t0 = time.perf_counter()
            advance(md, steps)
            sync(device)
            vals.append(1e3 * (time.perf_counter() - t0) / steps / n_atoms)
        st = md.state  # the bare model call on the same box, same threads: how the model itself scales
        inputs = pot.inputs(st.positions, st.row_vector_cell, st.pbc, st.atomic_numbers, st.system_idx, 1)
        floor = []
        for _ in range(3):
            sync(device)
            t0 = time.perf_counter()
            pot.model(dict(inputs))
            sync(device)
            floor.append(1e3 * (time.perf_counter() - t0) / n_atoms)
        if device.type == "cuda":
            used = torch.cuda.max_memory_allocated() / 1e9
        else:
            used = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6 - base_rss, 0.05)
        per_atom_gb = max(per_atom_gb or 0.0, used / n_atoms)
        n_pairs = int((pot.neighbors._pairs[0].shape[0]))
        results[str(n_atoms)] = {"ms_per_atom_step": statistics.median(vals), "min": min(vals), "max": max(vals),
                                 "floor_ms_per_atom_step": statistics.median(floor),
                                 "pairs": n_pairs, "peak_memory_gb": round(used, 2),
                                 "neighbour_builds": pot.neighbors.n_builds, "steps": 1 + 3 * steps}
        log(f"  water {n_atoms} atoms: {statistics.median(vals):.4f} ms/atom-step (bare call "
            f"{statistics.median(floor):.4f}), {n_pairs} pairs, {used:.1f} GB")
        del md, pot
    return results


def psutil_available_gb() -> float:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable"):
                return int(line.split()[1]) / 1e6
    return 8.0


# ------------------------------------------------------------------------------------------------- profile


def profile_arms(arms: list[Arm], steps: int, threads: int) -> dict:
    """cProfile of a few steps per arm: the ten functions with the most own time."""
    out = {}
    for arm in arms:
        torch.set_num_threads(threads)
        prof = cProfile.Profile()
        prof.enable()
        arm.stepper(steps)
        prof.disable()
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf)
        total = stats.total_tt
        rows = []
        for (fname, line, func), (cc, nc, tt, ct, _) in sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:10]:
            rows.append(f"{100 * tt / total:5.1f}%  {func} ({os.path.basename(fname)}:{line}) ×{nc}")
        out[arm.key] = rows
    return out


# ---------------------------------------------------------------------------------------------------- main


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    return f"{platform.machine()}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small step counts and repeats (under 5 min on 2 cores)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--replicas", type=int, default=64)
    p.add_argument("--repeats", type=int, default=None, help="timed rounds per thread count")
    p.add_argument("--no-compile", action="store_true", help="mlipviz arms call the model eagerly")
    p.add_argument("--no-scaling", action="store_true", help="skip the water-box arm")
    p.add_argument("--profile", action="store_true", help="also cProfile the 64-replica NVE arms")
    p.add_argument("--memory-arm", help=argparse.SUPPRESS)  # internal: one arm's peak memory in a fresh process
    p.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    device = resolve_device(args.device)
    quick = args.quick
    repeats = args.repeats or (3 if quick else 12)
    threads = [1, 2] if device.type == "cpu" else [torch.get_num_threads()]
    R = args.replicas
    # short blocks, many rounds: on a shared machine each arm then also gets samples from the quiet spells
    steps_1, steps_R = (20, 5) if quick else (40, 10)
    if device.type == "cuda":
        steps_1, steps_R = (50, 50) if quick else (200, 200)
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:6.0f} s] {msg}", flush=True)

    logging.getLogger("torch._dynamo").setLevel(logging.ERROR)  # graph-break notices of the compiled model
    logging.getLogger("torch._inductor").setLevel(logging.ERROR)

    torch.manual_seed(0)
    config = ModelConfig(representation="painn", n_atom_basis=64, n_interactions=3, cutoff=CUTOFF)
    model = build_model(config).to(device).eval()
    compile_model = not args.no_compile
    pot_R = SchNetPackPotential(model, CUTOFF, SKIN, compile=compile_model)
    pot_1 = SchNetPackPotential(model, CUTOFF, SKIN, compile=compile_model)
    eager_R = SchNetPackPotential(model, CUTOFF, SKIN, compile=False)
    eager_1 = SchNetPackPotential(model, CUTOFF, SKIN, compile=False)
    have_ts = ts is not None
    stats: dict[str, dict] = {k: {} for k in ("B1", "B64", "C1", "C64", "F1", "F64")}

    mols_R = [with_velocities(ethanol(), k) for k in range(R)]
    arms = [
        Arm("A_ase", "A  ASE VelocityVerlet + SpkCalculator", make_ase(model, device), 1, steps_1),
        Arm("B_spk_md_1", "B  schnetpack.md, 1 replica, NVE", make_spk_md(model, device, 1, False, stats["B1"]),
            1, steps_1),
        Arm("B_spk_md_64", f"B  schnetpack.md, {R} replicas, NVE",
            make_spk_md(model, device, R, False, stats["B64"]), R, steps_R),
        Arm("B_spk_md_64_langevin", f"B  schnetpack.md, {R} replicas, Langevin",
            make_spk_md(model, device, R, True, {}), R, steps_R),
        Arm("D_floor_eager_1", "D  bare model call, 1 ethanol, eager", make_floor(model, floor_inputs(pot_1, 1, device)),
            1, steps_1),
        Arm("D_floor_eager", f"D  bare model call, {R} ethanols, eager", make_floor(model, floor_inputs(pot_R, R, device)),
            R, steps_R),
        Arm("F_mlipviz_1", "F  mlipviz on TorchSim, 1 replica, NVE",
            make_mlipviz(pot_1, device, [with_velocities(ethanol(), 0)], "nve", stats["F1"]), 1, steps_1),
        Arm("F_mlipviz_64", f"F  mlipviz on TorchSim, {R} replicas, NVE",
            make_mlipviz(pot_R, device, mols_R, "nve", stats["F64"]), R, steps_R),
        Arm("F_mlipviz_64_langevin", f"F  mlipviz on TorchSim, {R} replicas, Langevin",
            make_mlipviz(pot_R, device, mols_R, "langevin", {}), R, steps_R),
        Arm("G_spk_md_layer_64", f"G  mlipviz layer on schnetpack.md, {R} replicas, NVE",
            make_spk_md_layer(pot_R, device, R), R, steps_R),
    ]
    if compile_model:  # the layer may call the model eagerly where that is faster (small batches on a CPU)
        arms += [
            Arm("F_mlipviz_1_eager", "F  mlipviz on TorchSim, 1 replica, NVE, eager call",
                make_mlipviz(eager_1, device, [with_velocities(ethanol(), 0)], "nve", {}), 1, steps_1),
            Arm("F_mlipviz_64_eager", f"F  mlipviz on TorchSim, {R} replicas, NVE, eager call",
                make_mlipviz(eager_R, device, mols_R, "nve", {}), R, steps_R),
            Arm("G_spk_md_layer_64_eager", f"G  mlipviz layer on schnetpack.md, {R} replicas, NVE, eager call",
                make_spk_md_layer(eager_R, device, R), R, steps_R),
        ]
    if compile_model:
        arms.insert(6, Arm("D_floor_compiled", f"D  bare model call, {R} ethanols, compiled",
                           make_floor(pot_R.call, floor_inputs(pot_R, R, device)), R, steps_R))
        arms.insert(6, Arm("D_floor_compiled_1", "D  bare model call, 1 ethanol, compiled",
                           make_floor(pot_1.call, floor_inputs(pot_1, 1, device)), 1, steps_1))
    if have_ts:
        arms += [
            Arm("C_torchsim_1", "C  TorchSim as it comes, 1 replica, NVE",
                make_torchsim(model, device, 1, False, stats["C1"]), 1, steps_1),
            Arm("C_torchsim_64", f"C  TorchSim as it comes, {R} replicas, NVE",
                make_torchsim(model, device, R, False, stats["C64"]), R, steps_R),
            Arm("C_torchsim_64_langevin", f"C  TorchSim as it comes, {R} replicas, Langevin (BAOAB)",
                make_torchsim(model, device, R, True, {}), R, steps_R),
        ]
    else:
        arms = [a for a in arms if not a.key.startswith(("F_", "C_"))]
    if quick:  # the Langevin arms of B and C, the eager single-molecule floor and G eager only in a full run
        arms = [a for a in arms if a.key not in ("B_spk_md_64_langevin", "C_torchsim_64_langevin", "D_floor_eager_1",
                                                 "G_spk_md_layer_64_eager")]
    if args.memory_arm:
        torch.set_num_threads(args.threads or 1)
        arm = next(a for a in arms if a.key == args.memory_arm)
        print(json.dumps({"key": arm.key, "peak_memory_mb": arm_peak_memory_mb(arm, device)}))
        return {}
    for arm in arms:
        if arm.key.startswith(("F_", "G_", "D_floor_compiled")) and compile_model and not arm.key.endswith("_eager"):
            arm.note = "compiled model call"
    log(f"device {device}, torch {torch.__version__}, threads {threads}, {len(arms)} arms, "
        f"TorchSim {'present' if have_ts else 'missing'}")
    run_interleaved(arms, threads, repeats, warmup=3, device=device, log=log)
    measure_memory(arms, device, quick, compile_model, R, log)
    table = {a.key: a.summary() for a in arms}

    def ms(key, stat="ms_per_replica_step"):
        return table[key][stat] if key in table else float("nan")

    # mlipviz's figure per size: the faster of its compiled and eager model call (the layer picks per device)
    f1 = min(("F_mlipviz_1", "F_mlipviz_1_eager"), key=lambda k: ms(k) if k in table else float("inf"))
    f64 = min(("F_mlipviz_64", "F_mlipviz_64_eager"), key=lambda k: ms(k) if k in table else float("inf"))
    g64 = min(("G_spk_md_layer_64", "G_spk_md_layer_64_eager"), key=lambda k: ms(k) if k in table else float("inf"))

    # neighbour lists: cost per replica and rebuild frequency seen in the timed runs
    nl = neighbour_costs(device, R, repeats, log)
    # rebuild frequency: a fresh run of each engine's list over the first n_rb steps (the initial build excluded)
    n_rb = 100 if quick else 200
    by_key = {a.key: a for a in arms}
    rebuilds = {"steps_from_start": n_rb}
    for key, arm_key in (("B1", "B_spk_md_1"), ("B64", "B_spk_md_64"), ("C64", "C_torchsim_64"),
                         ("F1", "F_mlipviz_1"), ("F64", "F_mlipviz_64")):
        if arm_key not in by_key:
            continue
        torch.set_num_threads(table[arm_key]["threads"])
        by_key[arm_key].make()(n_rb)
        if key.startswith("B"):
            c, sim = stats[key]["counter"], stats[key]["simulator"]
            n_mol = sim.system.n_replicas * sim.system.n_molecules
            rebuilds[f"schnetpack.md, {key[1:]} replicas (shell {SKIN} Å)"] = {
                "builds_per_molecule_per_step": (c.builds - n_mol) / (n_rb * n_mol),
                "build_ms_per_molecule": 1e3 * c.seconds / max(c.builds, 1),
            }
        elif key.startswith("C"):
            m = stats[key]["model"]
            rebuilds[f"TorchSim as it comes, {key[1:]} replicas"] = {
                "builds_per_step": m.nl_calls / (n_rb + 1),
                "build_ms_per_replica": 1e3 * m.nl_seconds / max(m.nl_calls, 1) / R,
            }
        else:
            md = stats[key]["md"]
            nb = md.potential.neighbors
            rebuilds[f"mlipviz, {key[1:]} replicas (skin {SKIN} Å)"] = {
                "builds_per_step": (nb.n_builds - 1) / n_rb,
                "build_ms_per_replica": 1e3 * nb.build_seconds / max(nb.n_builds, 1) / md.state.n_systems,
            }
    log("  rebuild frequencies counted")
    nl["rebuild_frequency"] = rebuilds

    profiles = {}
    if args.profile:
        prof_arms = [a for a in arms if a.key in ("B_spk_md_64", "C_torchsim_64", "F_mlipviz_64", "G_spk_md_layer_64")]
        profiles = profile_arms(prof_arms, steps_R, 1 if device.type == "cpu" else threads[0])
        log("  profiled")

    scale = {}
    if not args.no_scaling and have_ts:
        sizes = [100, 1000, 10000]
        best = table.get(f64, {}).get("threads", 1)
        scale = scaling(model, device, sizes, 1 if quick else (2 if device.type == "cpu" else 10), best, log)
    elif not have_ts:
        scale = {"not_measured": "torch_sim is not importable"}

    floor = min(ms("D_floor_eager"), ms("D_floor_compiled")) if compile_model else ms("D_floor_eager")
    floor_min = min(ms("D_floor_eager", "min"), ms("D_floor_compiled", "min")) if compile_model else ms(
        "D_floor_eager", "min")
    quiet = {  # the same ratios from each arm's fastest block: the machine's quiet spells
        "single_vs_ase": ms("A_ase", "min") / ms(f1, "min"),
        "batched64_vs_ase": ms("A_ase", "min") / ms(f64, "min"),
        "batched64_vs_schnetpack_md": ms("B_spk_md_64", "min") / ms(f64, "min"),
        "batched64_over_model_floor": ms(f64, "min") / floor_min,
    }
    measured = [v for v in scale.values() if isinstance(v, dict) and "ms_per_atom_step" in v]
    summary = {
        "single_vs_ase": ms("A_ase") / ms(f1),
        "batched64_vs_ase": ms("A_ase") / ms(f64),
        "batched64_vs_schnetpack_md": ms("B_spk_md_64") / ms(f64),
        "batched64_over_model_floor": ms(f64) / floor,
        "mlipviz_arms_used": {"single": f1, "batched64": f64, "spk_md_layer64": g64},
        "scaling_largest_over_smallest": (measured[-1]["ms_per_atom_step"] / measured[0]["ms_per_atom_step"]
                                          if len(measured) > 1 else float("nan")),
        "scaling_floor_largest_over_smallest": (measured[-1]["floor_ms_per_atom_step"]
                                                / measured[0]["floor_ms_per_atom_step"]
                                                if len(measured) > 1 else float("nan")),
        "scaling_atoms": [k for k, v in scale.items() if isinstance(v, dict) and "ms_per_atom_step" in v],
        "spk_md_layer64_vs_ase": ms("A_ase") / ms(g64),
        "torchsim_as_is64_vs_ase": ms("A_ase") / ms("C_torchsim_64"),
        "spk_md_as_is64_vs_ase": ms("A_ase") / ms("B_spk_md_64"),
        "ratios_from_fastest_blocks": quiet,
    }
    report = {
        "machine": machine_line(),
        "device": str(device) + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""),
        "torch": torch.__version__,
        "torch_sim": getattr(ts, "__version__", None) if have_ts else None,
        "system": f"{MOLECULE} (9 atoms), PaiNN 64 features × 3 interactions, cutoff {CUTOFF} Å, untrained, "
                  f"seed 0; dt {TIMESTEP_FS} fs, {TEMPERATURE_K} K",
        "quick": quick,
        "compiled": compile_model,
        "threads_tried": threads,
        **summary,
        "arms": table,
        "neighbour_lists": nl,
        "scaling_water": scale,
        "not_yet_measured": [
            "NPT (barostat) throughput",
            "mixed-size batches (TorchSim autobatching)",
            "CUDA graphs for the compiled model call",
            "trajectory and log writing cost during the run (BatchedMD.run with directory=, extxyz + CSV)",
        ],
        "profiles": profiles,
        "wall_s": time.perf_counter() - t_start,
    }
    print_table(report)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2, default=float)
    return report


def print_table(r: dict) -> None:
    print()
    print(f"machine: {r['machine']}")
    print(f"device:  {r['device']}   torch {r['torch']}   torch_sim {r['torch_sim']}   compiled: {r['compiled']}")
    print(f"system:  {r['system']}")
    ase_ms = r["arms"].get("A_ase", {}).get("ms_per_replica_step", float("nan"))
    print()
    print(f"{'arm':58s} {'ms/replica-step':>15s} {'[min, max]':>18s} {'thr':>3s} {'ASE ÷ arm':>9s} "
          f"{'peak MB':>8s}")
    for a in r["arms"].values():
        m = a["ms_per_replica_step"]
        print(f"{a['label']:58s} {m:15.3f} {'[%.3f, %.3f]' % (a['min'], a['max']):>18s} {a['threads']:3d} "
              f"{ase_ms / m:9.1f} {a.get('peak_memory_mb', float('nan')):8.1f}  {a['note']}")
    print()
    print(f"neighbour lists ({r['arms'].get('F_mlipviz_64', {}).get('replicas', 64)} ethanols, ms per replica):")
    for k, v in r["neighbour_lists"].items():
        if k == "rebuild_frequency":
            continue
        if "not_measured" in v:
            print(f"  {k:62s} not measured: {v['not_measured']}")
        else:
            print(f"  {k:62s} {v['ms_per_replica']:.4f}  [{v['min']:.4f}, {v['max']:.4f}]")
    rf = r["neighbour_lists"]["rebuild_frequency"]
    print(f"rebuilds over the first {rf['steps_from_start']} steps of a fresh run:")
    for k, v in rf.items():
        if k == "steps_from_start":
            continue
        print(f"  {k:40s} {json.dumps({kk: (round(vv, 4) if isinstance(vv, float) else vv) for kk, vv in v.items()})}")
    if r["scaling_water"]:
        print("water boxes (mlipviz path, eager model call), ms per atom-step:")
        for k, v in r["scaling_water"].items():
            if isinstance(v, dict) and "ms_per_atom_step" in v:
                print(f"  {k:>6s} atoms  {v['ms_per_atom_step']:.4f}  [{v['min']:.4f}, {v['max']:.4f}]  "
                      f"bare call {v['floor_ms_per_atom_step']:.4f}  {v['pairs']} pairs, {v['peak_memory_gb']} GB")
            else:
                print(f"  {k:>6s}  not measured: {v if isinstance(v, str) else v.get('not_measured')}")
    for k, rows in r.get("profiles", {}).items():
        print(f"profile {k} (own time):")
        for row in rows:
            print("   ", row)
    print()
    for k in ("single_vs_ase", "batched64_vs_ase", "batched64_vs_schnetpack_md", "batched64_over_model_floor",
              "scaling_largest_over_smallest", "scaling_floor_largest_over_smallest",
              "spk_md_layer64_vs_ase", "torchsim_as_is64_vs_ase",
              "spk_md_as_is64_vs_ase"):
        print(f"{k:36s} {r[k]:.2f}")
    print(f"mlipviz arms used in the ratios: {r['mlipviz_arms_used']}")
    print("the same from each arm's fastest block (quiet spells of a shared machine):",
          ", ".join(f"{k} {v:.2f}" for k, v in r["ratios_from_fastest_blocks"].items()))
    print(f"not yet measured: {'; '.join(r['not_yet_measured'])}")
    print(f"wall time {r['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
