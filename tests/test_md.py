"""mlipviz.md: energy conservation, thermostat equipartition, drift and bond observables."""

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.cluster import Icosahedron

from mlipviz.md import bond_check, energy_drift, run_md


def test_energy_drift_recovers_a_known_slope():
    t = np.linspace(0, 2000, 101)  # fs
    e = -10.0 + 0.004 * t / 1000  # 4 meV/ps over 2 atoms
    d = energy_drift(t, e, n_atoms=2)
    assert d.slope_meV_per_atom_ps == pytest.approx(2.0)
    assert d.max_deviation_meV_per_atom == pytest.approx(4.0)


def test_nve_conserves_energy_with_an_analytic_potential(tmp_path):
    cluster = Icosahedron("Cu", noshells=2)  # 13 atoms, EMT
    res = run_md(cluster, EMT(), n_steps=400, timestep_fs=2.0, temperature_K=300, trajectory=tmp_path / "nve.traj",
                 record_every=10, progress=False)
    d = energy_drift(res.time_fs, res.etot, res.n_atoms)
    assert d.max_deviation_meV_per_atom < 0.5
    assert res.ekin.std() > 0.01  # energy really flows between kinetic and potential
    assert res.trajectory.exists() and len(res.time_fs) == 41


def test_a_too_large_timestep_is_caught_by_the_drift():
    cluster = Icosahedron("Cu", noshells=2)
    small = run_md(cluster, EMT(), n_steps=200, timestep_fs=1.0, temperature_K=600, progress=False)
    big = run_md(cluster, EMT(), n_steps=20, timestep_fs=10.0, temperature_K=600, progress=False)
    dev = [energy_drift(r.time_fs, r.etot, 13).max_deviation_meV_per_atom for r in (small, big)]
    assert dev[1] > 20 * dev[0]


def test_langevin_reaches_equipartition():
    cluster = Icosahedron("Cu", noshells=2)
    res = run_md(cluster, EMT(), n_steps=3000, timestep_fs=5.0, ensemble="langevin", temperature_K=500,
                 friction_per_fs=0.02, record_every=5, progress=False)
    assert res.temperature_K[100:].mean() == pytest.approx(500, rel=0.1)


def test_bond_check_flags_a_dissociating_atom(water_reference):
    frames = []
    for k in range(10):
        a = water_reference.copy()
        a.positions[2] += [0, 0.1 * k, 0]  # the second H walks away, 0.9 Å in total
        frames.append(a)
    report = bond_check(frames, tolerance=0.5)
    assert not report.stable and report.first_broken_frame == 6
    assert len(report.bonds) == 2  # two O-H bonds, no H-H bond
    assert bond_check(frames[:5]).stable


def test_md_with_the_embedded_potential_is_stable(embedded_model_dir, water_reference, tmp_path):
    from ase.io import read

    from mlipviz.potential import MLIPCalculator

    calc = MLIPCalculator(embedded_model_dir, device="cpu")
    nve = run_md(water_reference, calc, n_steps=400, timestep_fs=0.25, temperature_K=300, record_every=4,
                 trajectory=tmp_path / "w.traj", progress=False)
    assert energy_drift(nve.time_fs, nve.etot, 3).max_deviation_meV_per_atom < 5
    nvt = run_md(water_reference, calc, n_steps=400, timestep_fs=0.5, ensemble="langevin", temperature_K=300,
                 record_every=10, trajectory=tmp_path / "l.traj", progress=False)
    assert bond_check(read(tmp_path / "l.traj", ":")).stable
    assert np.isfinite(nvt.epot).all()


def test_bad_md_arguments_are_named(water_reference):
    before = water_reference.get_positions().copy()
    with pytest.raises(ValueError, match="ensemble='npt'"):
        run_md(water_reference, EMT(), 10, ensemble="npt")
    with pytest.raises(ValueError, match="timestep_fs"):
        run_md(water_reference, EMT(), 10, timestep_fs=-1)
    with pytest.raises(ValueError, match="n_steps"):
        run_md(water_reference, EMT(), 0)
    # refused runs leave the caller's structure as it was: same positions, no calculator or momenta attached
    np.testing.assert_array_equal(water_reference.get_positions(), before)
    assert water_reference.calc is None and not water_reference.has("momenta")
