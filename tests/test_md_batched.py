"""mlipviz.md.batched: many replicas in one model call on TorchSim's integrators.

Independent references: SchNetPack's own ASE calculator (MatScipy neighbour list) for energies and forces, ASE's
neighbour list for the pairs, harmonic springs for the physics (equipartition, velocity Verlet's O(Δt²) energy
error, the thermostats' mean temperature), and a run that was never interrupted for resume.
"""

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.build import molecule
from ase.io import read
from ase.neighborlist import neighbor_list

from mlipviz.device import default_threads, torch_threads
from mlipviz.md import (BatchedMD, MDInstabilityError, SchNetPackPotential, SkinNeighborList, bond_monitor,
                        fu_protocol, pairs_within, read_log)
from mlipviz.potential import MLIPCalculator

WATER = Atoms("OH2", positions=[(0.0, 0.0, 0.0), (0.0, -0.757, 0.587), (0.0, 0.757, 0.587)])


class PairSprings(torch.nn.Module):
    """E = Σ_{i<j} ½ k (r_ij − r0_ij)² over the listed pairs of water replicas (SchNetPack's input and output keys).

    r0 are the distances of :data:`WATER`; k = 50 eV/Å² (O–H) and 5 eV/Å² (H–H). Forces by autograd.
    """

    def __init__(self, k_heavy: float = 50.0):
        super().__init__()
        r0 = torch.as_tensor(WATER.get_all_distances(), dtype=torch.float64)
        light = torch.as_tensor(WATER.numbers == 1)
        self.register_buffer("r0", r0)
        self.k = torch.nn.Parameter(torch.where(light[:, None] & light[None, :], 5.0, k_heavy).double(),
                                    requires_grad=False)

    def forward(self, inputs):
        pos = inputs["_positions"].clone().requires_grad_(True)
        i, j = inputs["_idx_i"], inputs["_idx_j"]
        r = (pos[j] - pos[i] + inputs["_offsets"]).norm(dim=1)
        li, lj = i % 3, j % 3
        e_pair = 0.25 * self.k[li, lj] * (r - self.r0[li, lj]) ** 2  # full list: each pair twice
        n_sys = len(inputs["_n_atoms"])
        energy = torch.zeros(n_sys, dtype=pos.dtype).index_add(0, inputs["_idx_m"][i], e_pair)
        (grad,) = torch.autograd.grad(energy.sum(), pos)
        return {"energy": energy, "forces": -grad}


def springs(**kwargs) -> BatchedMD:
    return BatchedMD(WATER, PairSprings(), cutoff=3.0, **kwargs)


@pytest.fixture(scope="module")
def water_box():
    rng = np.random.default_rng(4)
    box = Atoms(cell=[6.2, 6.2, 6.2], pbc=True)
    for corner in np.array(np.meshgrid([0, 1], [0, 1], [0, 1])).T.reshape(-1, 3):
        w = WATER.copy()
        w.rotate(rng.uniform(0, 360), rng.normal(size=3), center="COM")
        w.translate(corner * 3.1 + 1.0)
        box += w
    return box


def rows(pairs: np.ndarray) -> np.ndarray:
    """(i, j, d) rows in a canonical order, d rounded to 1e-6 Å."""
    pairs = np.c_[pairs[:, :2], np.round(pairs[:, 2], 6)]
    return pairs[np.lexsort(pairs.T[::-1])]


def test_pairs_match_ase_neighbour_list_in_a_periodic_box_and_a_batch(water_box):
    mol = molecule("CH3CH2OH")
    systems = [water_box, mol]
    pos = torch.as_tensor(np.concatenate([a.positions for a in systems]))
    cells = torch.as_tensor(np.stack([a.cell.array for a in systems]))
    pbc = torch.as_tensor(np.stack([a.pbc for a in systems]))
    idx = torch.repeat_interleave(torch.arange(2), torch.tensor([len(a) for a in systems]))
    i, j, off = pairs_within(pos, cells, pbc, idx, 2, 4.0)
    got = rows(np.c_[i.numpy(), j.numpy(), (pos[j] - pos[i] + off).norm(dim=1).numpy()])
    ref = []
    start = 0
    for a in systems:
        ai, aj, ad = neighbor_list("ijd", a, 4.0)
        ref.append(np.c_[ai + start, aj + start, ad])
        start += len(a)
    ref = rows(np.concatenate(ref))
    assert got.shape == ref.shape and np.allclose(got, ref)


def test_skin_list_rebuilds_only_after_half_the_skin_and_padding_changes_nothing(embedded_model_dir):
    from mlipviz.potential import load_model

    model, config = load_model(embedded_model_dir)
    pos = torch.as_tensor(molecule("H2O").positions)
    args = (torch.zeros(1, 3, 3, dtype=torch.float64), torch.zeros(3, dtype=torch.bool),
            torch.zeros(3, dtype=torch.long), 1)
    nl = SkinNeighborList(config.cutoff, skin=1.0)
    nl(pos, *args)
    nl(pos + torch.tensor([0.49, 0.0, 0.0]), *args)
    assert nl.n_builds == 1
    nl(pos + torch.tensor([0.51, 0.0, 0.0]), *args)
    assert nl.n_builds == 2
    z = torch.as_tensor(molecule("H2O").numbers)
    plain = SchNetPackPotential(model, config.cutoff, pad_multiple=0)(pos, *args[:2], z, *args[2:])
    padded = SchNetPackPotential(model, config.cutoff, pad_multiple=64)
    padded.neighbors.pad_multiple = 64
    out = padded(pos, *args[:2], z, *args[2:])
    assert padded.neighbors.capacity == 64
    assert torch.allclose(plain["energy"], out["energy"], atol=1e-6)
    assert torch.allclose(plain["forces"], out["forces"], atol=1e-6)


def test_batched_energies_and_forces_match_schnetpacks_calculator(embedded_model_dir, water_box):
    dimer = WATER.copy() + WATER.copy()
    dimer.positions[3:] += [2.9, 0.1, 0.2]
    distorted = WATER.copy()
    distorted.positions[1] += [0.05, -0.08, 0.1]
    calc = MLIPCalculator(embedded_model_dir, device="cpu")
    for systems in ([distorted, dimer], [water_box, water_box.copy()]):
        md = BatchedMD(systems, embedded_model_dir, temperature_K=0.0, device="cpu")
        counts = np.cumsum([0] + [len(a) for a in systems])
        for k, a in enumerate(systems):
            a = a.copy()
            a.calc = calc
            assert md.state.energy[k].item() == pytest.approx(a.get_potential_energy(), abs=2e-5)
            got = md.state.forces[counts[k]:counts[k + 1]].numpy()
            assert np.abs(got - a.get_forces()).max() < 2e-4
    with pytest.raises(ValueError, match="periodic"):
        BatchedMD([distorted, water_box], embedded_model_dir)


@pytest.mark.parametrize("ensemble, pbc, dof", [("nve", False, 3), ("nose_hoover", False, 6), ("langevin", False, 9),
                                                ("nve", True, 6)])
def test_start_temperature_is_exact_over_the_counted_degrees_of_freedom(ensemble, pbc, dof):
    w = WATER.copy()
    if pbc:
        w.cell, w.pbc = [8.0, 8.0, 8.0], True
    md = BatchedMD(w, PairSprings(), cutoff=3.0, n_replicas=5, ensemble=ensemble, temperature_K=300.0, seed=2)
    res = md.run(1, record_every=1, progress=False)
    assert list(res.n_dof) == [dof] * 5
    np.testing.assert_allclose(res.temperature_K[0], 300.0, rtol=1e-9)
    ekin = 0.5 * np.einsum("i,kia->k", w.get_masses(), (res.velocities[0][:1] / units.fs) ** 2)
    assert 2 * ekin[0] / (dof * units.kB) == pytest.approx(300.0, rel=1e-6)  # by hand from the recorded velocities
    assert len({tuple(v[0].ravel()) for v in res.velocities}) == 5  # every replica has its own velocities


def test_nve_obeys_harmonic_equipartition_and_velocity_verlets_dt_squared_error():
    spreads = {}
    for dt in (0.5, 0.25):
        md = BatchedMD(WATER, PairSprings(), cutoff=3.0, n_replicas=8, timestep_fs=dt, temperature_K=300.0)
        res = md.run(int(400 / dt), record_every=2, progress=False)
        spreads[dt] = (res.etot - res.etot.mean(axis=0)).std()
        if dt == 0.5:  # harmonic: <E_kin> = <E_pot> = E_kin(0) / 2, so <T> = T0 / 2
            assert res.temperature_K[50:].mean() == pytest.approx(150.0, rel=0.06)
    assert 3.6 < spreads[0.5] / spreads[0.25] < 4.4


@pytest.mark.parametrize("ensemble", ["langevin", "nose_hoover"])
def test_thermostats_hold_the_requested_temperature(ensemble):
    md = BatchedMD(WATER, PairSprings(), cutoff=3.0, n_replicas=48, ensemble=ensemble, timestep_fs=0.5,
                   temperature_K=500.0, friction_per_fs=0.05, tau_fs=10.0, seed=1)
    res = md.run(1600, record_every=10, progress=False)
    assert res.temperature_K[40:].mean() == pytest.approx(500.0, rel=0.06)


def test_a_batch_has_no_cross_talk(embedded_model_dir):
    rng = np.random.default_rng(0)
    a, b = WATER.copy(), WATER.copy()
    b.positions[1] += [0.04, -0.06, 0.05]
    for x in (a, b):
        x.set_momenta(rng.normal(scale=0.5, size=(3, 3)))
    together = BatchedMD([a, b], embedded_model_dir, device="cpu").run(40, record_every=40, progress=False)
    alone = BatchedMD(b, embedded_model_dir, device="cpu").run(40, record_every=40, progress=False)
    assert np.abs(together.positions[1][-1] - alone.positions[0][-1]).max() < 1e-6


def test_files_are_readable_and_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    kwargs = dict(n_replicas=3, ensemble="langevin", temperature_K=400.0, friction_per_fs=0.02, seed=7)
    full = springs(**kwargs).run(60, record_every=10, progress=False)

    def interrupt(k, atoms, state={"n": 0}):
        state["n"] += 1
        if state["n"] > 3 * 6:  # 3 systems × frames 0..50 checked: stop at the first check of step 60
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        springs(**kwargs).run(60, record_every=10, checkpoint_every=20, directory=tmp_path, monitor=interrupt,
                              progress=False)
    log = read_log(tmp_path / "log.csv")
    assert log["step"].max() == 50  # frame 50 was written after the checkpoint at step 40
    resumed = springs(**kwargs).run(60, record_every=10, checkpoint_every=20, directory=tmp_path, resume=True,
                                    progress=False)
    np.testing.assert_allclose(resumed.positions[2][-1], full.positions[2][-1], atol=1e-12)  # computed after resume
    np.testing.assert_allclose(resumed.positions[2], full.positions[2], atol=1e-7)  # earlier frames read from extxyz
    np.testing.assert_allclose(resumed.temperature_K, full.temperature_K, rtol=1e-10)
    log = read_log(tmp_path / "log.csv")
    assert sorted(zip(log["step"], log["system"])) == [(s, k) for s in range(0, 61, 10) for k in range(3)]
    frames = read(tmp_path / "system_001.extxyz", ":")
    assert [f.info["step"] for f in frames] == list(range(0, 61, 10))
    np.testing.assert_allclose(frames[-1].positions, full.positions[1][-1], atol=1e-8)
    assert frames[-1].get_potential_energy() == pytest.approx(full.epot[-1, 1], abs=1e-8)
    np.testing.assert_allclose(log["etot_eV"][log["system"] == 0], full.etot[:, 0], atol=1e-8)
    with pytest.raises(FileExistsError, match="resume=True"):
        springs(**kwargs).run(60, directory=tmp_path, progress=False)
    with pytest.raises(ValueError, match="other settings"):
        springs(**{**kwargs, "seed": 8}).run(60, directory=tmp_path, resume=True, progress=False)


def test_an_exploding_replica_stops_alone_and_its_failure_frame_is_kept(embedded_model_dir):
    md = BatchedMD(WATER, embedded_model_dir, n_replicas=3, temperature_K=300.0, device="cpu")
    md.run(10, record_every=10, progress=False)
    md.state.positions[3:6] = float("nan")  # replica 1 turns non-finite mid-run
    res = md.run(40, record_every=10, progress=False)
    assert set(res.stopped) == {1} and "non-finite" in res.stopped[1][1]
    assert res.stopped[1][0] == 10
    assert np.isnan(res.positions[1][-1]).all() and len(res.positions[1]) == 1
    assert len(res.positions[0]) == 4 and np.isfinite(res.etot[:, 0]).all()
    assert np.isnan(res.etot[1:, 1]).all()


def test_instability_can_raise_with_the_frames_so_far(embedded_model_dir):
    md = BatchedMD(WATER, embedded_model_dir, n_replicas=2, device="cpu")
    md.state.positions[0, 0] = float("inf")
    with pytest.raises(MDInstabilityError, match="system 0 became unstable at step 0") as err:
        md.run(20, record_every=10, on_instability="raise", progress=False)
    assert err.value.result.epot.shape == (1, 2)


def test_a_monitor_stops_one_system_at_a_recorded_frame():
    seen = []

    def stop_system_0_at_step_20(k, atoms):
        seen.append(k)
        return "bond broke" if k == 0 and len(seen) >= 5 else None

    res = springs(n_replicas=2).run(50, record_every=10, progress=False, monitor=stop_system_0_at_step_20)
    assert res.stopped == {0: (20, "bond broke")}
    assert len(res.positions[0]) == 3 and len(res.positions[1]) == 6


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"timestep_fs": "0.5"}, TypeError, "timestep_fs"),
        ({"timestep_fs": 1e6}, ValueError, "timestep_fs"),
        ({"temperature_K": float("inf")}, ValueError, "temperature_K"),
        ({"ensemble": "npt"}, ValueError, "ensemble"),
        ({"n_replicas": 0}, ValueError, "n_replicas"),
        ({"tau_fs": -1.0, "ensemble": "nose_hoover"}, ValueError, "tau_fs"),
        ({"friction_per_fs": float("nan"), "ensemble": "langevin"}, ValueError, "friction_per_fs"),
        ({"seed": -1}, ValueError, "seed"),
        ({"threads": 0}, ValueError, "threads"),
    ],
)
def test_bad_arguments_are_refused_before_any_force_call(kwargs, error, match):
    with pytest.raises(error, match=match):
        springs(**kwargs)


def test_bad_structures_and_run_arguments_are_refused(tmp_path):
    with pytest.raises(TypeError, match="structures"):
        BatchedMD([], PairSprings(), cutoff=3.0)
    nan = WATER.copy()
    nan.positions[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"structures\[0\]"):
        BatchedMD(nan, PairSprings(), cutoff=3.0)
    with pytest.raises(ValueError, match="cutoff"):
        BatchedMD(WATER, PairSprings())
    md = springs()
    with pytest.raises(ValueError, match="resume=True needs the directory"):
        md.run(10, resume=True)
    with pytest.raises(ValueError, match="record_every"):
        md.run(5, record_every=10)
    with pytest.raises(ValueError, match="checkpoint_every"):
        md.run(40, record_every=10, checkpoint_every=15, directory=tmp_path)
    with pytest.raises(ValueError, match="on_instability"):
        md.run(10, on_instability="ignore")


def test_thread_count_is_set_for_the_run_and_restored():
    assert default_threads(9, "cpu") == 1
    assert default_threads(10_000, "cpu") >= 1
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    res = springs(threads=1).run(10, progress=False)
    assert res.threads == 1 and torch.get_num_threads() == before


def test_fu_protocol_fails_soft_bonds_at_high_temperature_and_keeps_stiff_ones():
    """Harmonic O–H springs: the stretch has std sqrt(kT/k) — 0.02 Å for k = 50 eV/Å² at 300 K (the 0.5 Å
    tolerance is 20σ away), 0.7 Å for k = 0.5 eV/Å² at 3000 K (the tolerance is within 1σ)."""
    stiff = fu_protocol(PairSprings(), WATER, [WATER], horizon_ps=0.2, n_replicas=4, temperature_K=300.0,
                        cutoff=3.0, progress=False)
    assert stiff.n_failed == 0 and stiff.survival.at(200.0) == 1.0
    soft = fu_protocol(PairSprings(k_heavy=0.5), WATER, [WATER], horizon_ps=0.2, n_replicas=4, temperature_K=3000.0,
                       cutoff=3.0, progress=False)
    assert soft.n_failed == 4 and soft.survival.at(200.0) == 0.0
    for k, report in enumerate(soft.reports):  # the monitor stopped each replica at the frame the rule names
        assert report.failure_frame == len(soft.result.positions[k]) - 1
        assert report.failed_symbols in (("O", "H"), ("H", "H"))
        assert "bond" in soft.result.stopped[k][1]
    assert soft.audit is None and "4/4 replicas collapsed" in soft.summary()


def test_bond_monitor_refuses_other_molecules_and_bad_tolerances():
    with pytest.raises(ValueError, match="tolerance_A"):
        bond_monitor([WATER], tolerance_A=-1.0)
    with pytest.raises(ValueError, match="reference's atoms"):
        bond_monitor([WATER])(0, molecule("NH3"))
    assert bond_monitor([WATER])(0, WATER) is None


def test_structures_outside_the_models_chemistry_are_refused(embedded_model_dir):
    for structure, match in ((molecule("CH4"), "C"), (Atoms("H2Fm", positions=[(0, 0, 0), (0, 0, 0.8), (0, 0, 2.5)]),
                                                       "Fm|100")):
        with pytest.raises(ValueError, match=match):
            BatchedMD([WATER, structure], embedded_model_dir, device="cpu")


def test_periodic_frames_keep_their_cell(tmp_path, water_box):
    res = BatchedMD(water_box, PairSprings(), cutoff=3.0).run(2, record_every=2, directory=tmp_path, progress=False)
    frame = read(tmp_path / "system_000.extxyz", -1)
    np.testing.assert_allclose(frame.cell.array, water_box.cell.array)
    assert frame.pbc.all() and res.frames(0)[-1].pbc.all()
    np.testing.assert_allclose(res.trajectory(0).cells[-1], water_box.cell.array)
