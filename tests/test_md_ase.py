"""mlipviz.md.engine on ASE's integrators: degrees of freedom, the time-step scan, and refusing or stopping bad runs.

Analytic models only: pair springs for a water-like molecule (harmonic equipartition and the O(Δt²) energy error of
velocity Verlet are known exactly) and ASE's EMT for metal clusters.
"""

import pickle

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk, molecule
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from ase.cluster import Icosahedron
from ase.constraints import FixAtoms
from ase.io import read

from mlipviz.md.drift import drift_scan, plot_drift_scan
from mlipviz.md.engine import MAX_TEMPERATURE_K, MDInstabilityError, run_md

WATER = Atoms("OH2", positions=[(0.0, 0.0, 0.0), (0.0, -0.757, 0.587), (0.0, 0.757, 0.587)])


class PairSprings(Calculator):
    """E = Σ_{i<j} ½ k (r_ij − r0_ij)², eV, with r0 the reference distances (Å) and k in eV/Å².

    With k_OH = 50 eV/Å² the O–H stretch of water has a period of ~9 fs, like the real one.
    """

    implemented_properties = ["energy", "forces"]

    def __init__(self, reference=WATER, k_heavy=50.0, k_light=5.0, nan_from_call=None, raise_from_call=None):
        super().__init__()
        n = len(reference)
        self.i, self.j = np.triu_indices(n, 1)
        self.r0 = reference.get_all_distances()[self.i, self.j]
        light = (reference.numbers[self.i] == 1) & (reference.numbers[self.j] == 1)
        self.k = np.where(light, k_light, k_heavy)
        self.calls, self.nan_from_call, self.raise_from_call = 0, nan_from_call, raise_from_call

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.calls += 1
        if self.raise_from_call and self.calls >= self.raise_from_call:
            raise RuntimeError("the model failed")
        pos = self.atoms.get_positions()
        d = pos[self.j] - pos[self.i]
        r = np.linalg.norm(d, axis=1)
        g = (self.k * (r - self.r0) / r)[:, None] * d  # dE/d(pos_j) = −dE/d(pos_i)
        forces = np.zeros_like(pos)
        np.add.at(forces, self.i, g)
        np.add.at(forces, self.j, -g)
        energy = float(0.5 * np.sum(self.k * (r - self.r0) ** 2))
        if self.nan_from_call and self.calls >= self.nan_from_call:
            energy, forces = float("nan"), np.full_like(forces, np.nan)
        self.results = {"energy": energy, "forces": forces}


def hand_temperature(frame: Atoms, n_dof: int) -> float:
    """2 E_kin / (n_dof k_B), K, with E_kin = Σ p²/2m summed here from the frame's momenta."""
    p, m = frame.get_momenta(), frame.get_masses()
    return float(np.sum(p**2 / m[:, None]) / (n_dof * units.kB))


# ---- 1. the start temperature is the request, counted over the right degrees of freedom ----------------------


@pytest.mark.parametrize("ensemble, n_dof", [("nve", 9 - 6), ("langevin", 9)])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_start_temperature_is_the_request_over_the_counted_dof(ensemble, n_dof, seed, tmp_path):
    res = run_md(WATER, PairSprings(), 2, ensemble=ensemble, temperature_K=300.0, seed=seed,
                 trajectory=tmp_path / "w.traj", progress=False)
    start = read(tmp_path / "w.traj", 0)
    assert res.n_dof == n_dof
    assert res.temperature_K[0] == pytest.approx(300.0, rel=1e-9)
    assert hand_temperature(start, n_dof) == pytest.approx(300.0, rel=1e-9)
    if ensemble == "nve":  # centre-of-mass and rotation removed, so they stay out of the kinetic energy
        np.testing.assert_allclose(start.get_momenta().sum(axis=0), 0.0, atol=1e-12)
        np.testing.assert_allclose(start.get_angular_momentum(), 0.0, atol=1e-12)


@pytest.mark.parametrize(
    "atoms, n_dof",
    [
        (molecule("CO2"), 3 * 3 - 5),  # linear: two rotations
        (molecule("H2"), 1),  # a dimer keeps only its stretch
        (Icosahedron("Cu", noshells=2), 3 * 13 - 6),
        (bulk("Cu", cubic=True) * 2, 3 * 32 - 3),  # periodic: only the centre of mass is removed
        (Atoms("OH2", WATER.positions, constraint=FixAtoms([0])), 9 - 3),  # a fixed atom, nothing else removed
    ],
    ids=["CO2", "H2", "Cu13", "Cu32-bulk", "water-fixed-O"],
)
def test_nve_counts_degrees_of_freedom_by_hand(atoms, n_dof, tmp_path):
    res = run_md(atoms, EMT(), 1, temperature_K=300.0, trajectory=tmp_path / "a.traj", progress=False)
    assert res.n_dof == n_dof
    assert hand_temperature(read(tmp_path / "a.traj", 0), n_dof) == pytest.approx(300.0, rel=1e-9)


def test_caller_momenta_are_kept_and_their_zero_momenta_recognised():
    moving = WATER.copy()
    moving.set_momenta(np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.3]]))
    res = run_md(moving, PairSprings(), 1, progress=False)
    assert res.n_dof == 9  # net momentum and angular momentum: nothing is removed
    assert res.temperature_K[0] == pytest.approx(hand_temperature(moving, 9), rel=1e-12)
    still = WATER.copy()
    still.set_momenta(np.array([[0.0, 0.0, 0.0], [0.0, -0.2, 0.1], [0.0, 0.2, 0.1]]))  # pure symmetric stretch
    m = still.get_masses()[:, None]
    still.set_momenta(still.get_momenta() - m * still.get_momenta().sum(axis=0) / m.sum())  # zero total momentum
    assert run_md(still, PairSprings(), 1, progress=False).n_dof == 3


def test_nve_temperature_obeys_harmonic_equipartition():
    # For harmonic vibrations <E_kin> = <E_pot> and <E_pot> = (n_vib/2) k_B <T>, with n_vib = 3 for water
    # (hand count). Counting the temperature over 3N = 9 would report a third of this.
    res = run_md(WATER, PairSprings(), 4000, timestep_fs=0.25, temperature_K=300.0, record_every=4, progress=False)
    t_from_epot = 2 * res.epot.mean() / (3 * units.kB)
    assert res.temperature_K.mean() == pytest.approx(t_from_epot, rel=0.05)
    assert res.temperature_K.mean() == pytest.approx(150.0, rel=0.05)  # starts at the minimum: half is potential


def test_langevin_water_samples_the_thermostat_temperature_over_3n():
    res = run_md(WATER, PairSprings(), 8000, timestep_fs=0.5, ensemble="langevin", temperature_K=300.0,
                 friction_per_fs=0.1, record_every=5, progress=False)
    assert res.n_dof == 9
    assert res.temperature_K[100:].mean() == pytest.approx(300.0, rel=0.1)  # 3N − 6 would give 900 K
    assert 2 * res.epot[100:].mean() / (3 * units.kB) == pytest.approx(300.0, rel=0.15)  # 3 harmonic modes


def test_langevin_cluster_averages_the_thermostat_temperature():
    res = run_md(Icosahedron("Cu", noshells=2), EMT(), 2000, timestep_fs=5.0, ensemble="langevin",
                 temperature_K=300.0, friction_per_fs=0.05, record_every=5, progress=False)
    assert res.n_dof == 39
    assert res.temperature_K[40:].mean() == pytest.approx(300.0, rel=0.06)  # 3N − 6 would give 355 K


# ---- 2. drift as a time-step scan over seeds ------------------------------------------------------------------


def test_drift_scan_energy_error_falls_as_dt_squared():
    scan = drift_scan(WATER, PairSprings(), timesteps_fs=(0.125, 0.25, 0.5), seeds=(0, 1, 2), duration_fs=100.0)
    assert scan.rms_meV_per_atom.shape == (3, 3) and (scan.failed_step == -1).all()
    ratios = scan.rms_meV_per_atom[1:] / scan.rms_meV_per_atom[:-1]  # dt over dt/2, per seed
    np.testing.assert_allclose(ratios, 4.0, rtol=0.1)
    dev = scan.max_deviation_meV_per_atom
    assert (dev[2] > 8 * dev[0]).all()
    spread = scan.over_seeds()
    assert np.all(spread["min"] <= spread["mean"]) and np.all(spread["mean"] <= spread["max"])
    np.testing.assert_allclose(spread["mean"], scan.slope_meV_per_atom_ps.mean(axis=1))


def test_drift_scan_reports_a_stopped_run_and_refuses_bad_input():
    with pytest.warns(RuntimeWarning, match="seed 1: MD became unstable"):
        scan = drift_scan(WATER, PairSprings(nan_from_call=50), timesteps_fs=(0.5,), seeds=(1,), duration_fs=50.0)
    assert scan.failed_step[0, 0] == 49 and np.isnan(scan.slope_meV_per_atom_ps[0, 0])
    calc = PairSprings()
    with pytest.raises(ValueError, match="timestep_fs .* at most 10 fs, got 20"):
        drift_scan(WATER, calc, timesteps_fs=(0.5, 20.0))
    with pytest.raises(ValueError, match="duration_fs=2.0 must cover at least 10 steps"):
        drift_scan(WATER, calc, duration_fs=2.0)
    assert calc.calls == 0


def test_plot_drift_scan_draws_each_seed_and_a_dt_squared_guide():
    from matplotlib.figure import Figure

    scan = drift_scan(WATER, PairSprings(), timesteps_fs=(0.25, 0.5), seeds=(0, 1), duration_fs=40.0)
    ax_s, ax_r = plot_drift_scan(scan, axes=Figure().subplots(1, 2))
    assert ax_s.get_xscale() == "log" and ax_r.get_yscale() == "log"
    guide = next(line for line in ax_r.get_lines() if line.get_label() == "∝ Δt²")
    np.testing.assert_allclose(guide.get_ydata()[1] / guide.get_ydata()[0], 4.0)
    assert len([line for line in ax_s.get_lines() if line.get_label().startswith("seed")]) == 2


# ---- 3. bad input is refused before any force call; bad runs stop cleanly -------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"timestep_fs": 1e6}, ValueError, r"timestep_fs .* at most 10 fs, got 1000000.0"),
        ({"timestep_fs": "0.5"}, TypeError, "timestep_fs must be a real number, got str '0.5'"),
        ({"temperature_K": float("inf")}, ValueError, "temperature_K must be a finite number"),
        ({"temperature_K": float("nan")}, ValueError, "temperature_K must be a finite number"),
        ({"temperature_K": -5.0}, ValueError, "temperature_K must be a finite number"),
        ({"ensemble": "langevin", "friction_per_fs": float("nan")}, ValueError, "friction_per_fs must be a finite"),
        ({"ensemble": "langevin", "friction_per_fs": -0.01}, ValueError, "friction_per_fs must be a finite"),
        ({"ensemble": "langevin", "friction_per_fs": 1.0, "timestep_fs": 2.0}, ValueError, "γΔt << 1"),
        ({"record_every": 20}, ValueError, "record_every=20 is larger than n_steps=10"),
        ({"seed": -1}, ValueError, "seed must be a non-negative integer"),
    ],
)
def test_bad_arguments_are_refused_before_any_force_call(kwargs, error, match):
    calc = PairSprings()
    with pytest.raises(error, match=match):
        run_md(WATER, calc, 10, progress=False, **kwargs)
    assert calc.calls == 0


def test_bad_structures_are_refused_before_any_force_call():
    calc = PairSprings()
    nan_pos = WATER.copy()
    nan_pos.positions[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"atoms has NaN or infinite positions for atom index\(es\) \[1\]"):
        run_md(nan_pos, calc, 10, progress=False)
    nan_mom = WATER.copy()
    nan_mom.set_momenta([[0, 0, 0], [0, 0, 0], [np.inf, 0, 0]])
    with pytest.raises(ValueError, match=r"atoms has NaN or infinite momenta for atom index\(es\) \[2\]"):
        run_md(nan_mom, calc, 10, progress=False)
    with pytest.raises(ValueError, match="atoms has no atoms"):
        run_md(Atoms(), calc, 10, progress=False)
    with pytest.raises(ValueError, match="no degree of freedom left .* temperature_K=300.0 cannot be set"):
        run_md(Atoms("Cu"), calc, 10, progress=False)
    with pytest.raises(ValueError, match="calculator is None"):
        run_md(WATER, None, 10, progress=False)
    assert calc.calls == 0


@pytest.mark.parametrize("ensemble", ["nve", "langevin"])
def test_nan_forces_mid_run_stop_cleanly_and_keep_the_frames(ensemble, tmp_path):
    # call 1 computes step 0, call k step k − 1: NaN from call 23 means step 22 is the first bad one
    path = tmp_path / "nan.traj"
    with pytest.raises(MDInstabilityError, match="unstable at step 22 .* non-finite momenta, forces") as info:
        run_md(WATER, PairSprings(nan_from_call=23), 100, ensemble=ensemble, record_every=5, trajectory=path,
               progress=False)
    err = info.value
    assert err.step == 22 and err.time_fs == pytest.approx(11.0)
    np.testing.assert_allclose(err.result.time_fs, [0.0, 2.5, 5.0, 7.5, 10.0])  # steps 0, 5, ..., 20
    frames = read(path, ":")
    assert len(frames) == 5
    np.testing.assert_allclose([f.get_potential_energy() for f in frames], err.result.epot)
    assert np.isfinite(err.last_good.get_positions()).all() and np.isfinite(err.last_good.get_momenta()).all()
    assert "the last good step is 21" in str(err)
    assert pickle.loads(pickle.dumps(err)).step == 22


def test_an_exploding_run_stops_at_the_temperature_bound(tmp_path):
    path = tmp_path / "boom.traj"
    inverted = PairSprings(k_heavy=-50.0, k_light=-5.0)  # every spring pushes apart: exponential blow-up
    with pytest.raises(MDInstabilityError, match=f"above {MAX_TEMPERATURE_K:g} K") as info:
        run_md(WATER, inverted, 2000, timestep_fs=0.5, trajectory=path, progress=False)
    res = info.value.result
    assert 0 < info.value.step < 2000 and len(read(path, ":")) == len(res.time_fs) == info.value.step
    assert (res.temperature_K <= MAX_TEMPERATURE_K).all()


def test_a_calculator_error_mid_run_keeps_the_trajectory(tmp_path):
    path = tmp_path / "err.traj"
    with pytest.raises(RuntimeError, match="the model failed") as info:
        run_md(WATER, PairSprings(raise_from_call=8), 20, record_every=2, trajectory=path, progress=False)
    assert "after 6 completed step(s); 4 frame(s) recorded" in "".join(info.value.__notes__)
    assert len(read(path, ":")) == 4  # steps 0, 2, 4, 6
