"""mlipviz.md.observables: h(r), bond/angle distributions and vibrational spectra against independent figures."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes
from ase.md.verlet import VelocityVerlet
from scipy.spatial.distance import cdist
from scipy.stats import wasserstein_distance

from mlipviz.md.observables import (as_trajectory, distribution_distances, h_r, h_r_mae, plot_h_r,
                                    plot_structure_distributions, structure_distributions, wasserstein_1)
from mlipviz.md.spectra import SPEED_OF_LIGHT_CM_PER_FS, plot_spectrum, vibrational_spectrum


def line_frames(xs_per_frame):
    return [Atoms("H3", positions=[(x, 0, 0) for x in xs]) for xs in xs_per_frame]


# --- h(r) ---------------------------------------------------------------------------------------------------


def test_h_r_is_the_hand_counted_histogram_and_mdsims_formula():
    frames = line_frames([(0, 1.2, 3.5), (0, 0.5, 2.1)])  # distances 1.2 3.5 2.3 | 0.5 2.1 1.6
    hr = h_r(frames, r_max_A=4.0, n_bins=4)
    width = (4.0 - 1e-6) / 4
    np.testing.assert_allclose(hr.h_per_A, np.array([1, 2, 2, 1]) / (6 * width))
    # Fu et al.'s MDsim: every ordered pair (self pairs at 0 fall below the first edge), np.histogram(density=True)
    pos = np.stack([f.positions for f in frames])
    d = np.concatenate([cdist(p, p).ravel() for p in pos])
    expected, _ = np.histogram(d, np.linspace(1e-6, 10, 501), density=True)
    np.testing.assert_allclose(h_r(pos, numbers=[1, 1, 1]).h_per_A, expected)
    assert np.sum(hr.h_per_A * np.diff(hr.edges_A)) == pytest.approx(1.0)


def test_h_r_in_passes_equals_one_pass(monkeypatch, rng):
    import mlipviz.md.observables as obs

    pos = rng.normal(0, 2.0, (7, 5, 3))
    whole = h_r(pos, numbers=[1] * 5)
    monkeypatch.setattr(obs, "MAX_DISTANCES_PER_PASS", 25)  # 10 pairs per frame: passes of 2 frames
    np.testing.assert_array_equal(h_r(pos, numbers=[1] * 5).h_per_A, whole.h_per_A)


def test_h_r_mae_limits_and_fu_formula():
    a = h_r(line_frames([(0, 1.0, 2.5)]), r_max_A=10)  # distances 1, 1.5, 2.5
    b = h_r(line_frames([(0, 5.0, 11.2)]), r_max_A=10)  # distances 5, 6.2 (11.2 beyond r_max)
    assert h_r_mae(a, a) == 0.0
    assert h_r_mae(a, b) == pytest.approx(2.0)  # disjoint distributions: ∫|p - q| = 2
    c = h_r(line_frames([(0, 1.03, 2.5)]), r_max_A=10)
    assert h_r_mae(a, c) == pytest.approx(np.abs(a.h_per_A - c.h_per_A).mean() * 10, rel=1e-5)  # MDsim's mae(.., xlim)
    with pytest.raises(ValueError, match="different bins"):
        h_r_mae(a, h_r(line_frames([(0, 1.0, 2.5)]), r_max_A=8))


def test_h_r_uses_the_minimum_image_in_a_periodic_box():
    box = Atoms("H2", positions=[(0.5, 5, 5), (9.3, 5, 5)], cell=[10, 10, 10], pbc=True)
    hr = h_r([box], r_max_A=10, n_bins=10)
    assert hr.r_A[np.argmax(hr.h_per_A)] == pytest.approx(1.5, abs=0.01)  # 1.2 Å across the boundary, not 8.8 Å
    arr = h_r(box.positions[None], numbers=[1, 1], cell=np.eye(3) * 10, pbc=True, r_max_A=10, n_bins=10)
    np.testing.assert_allclose(arr.h_per_A, hr.h_per_A)
    free = h_r(box.positions[None], numbers=[1, 1], r_max_A=10, n_bins=10)
    assert free.r_A[np.argmax(free.h_per_A)] == pytest.approx(8.5, abs=0.01)


def test_bad_trajectories_are_named():
    with pytest.raises(ValueError, match="numbers="):
        h_r(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="frame 1 has other atoms"):
        h_r([Atoms("H2", positions=[(0, 0, 0), (0, 0, 1)]), Atoms("HO", positions=[(0, 0, 0), (0, 0, 1)])])
    with pytest.raises(ValueError, match="shape"):
        h_r(np.zeros((4, 3)), numbers=[1, 1, 1, 1])
    with pytest.raises(ValueError, match="NaN"):
        h_r(np.full((1, 2, 3), np.nan), numbers=[1, 1])
    with pytest.raises(ValueError, match="dt_fs"):
        vibrational_spectrum(np.zeros((20, 2, 3)), numbers=[1, 1])


# --- bond lengths and angles ---------------------------------------------------------------------------------


def water(r1, r2, angle_deg):
    t = np.radians(angle_deg)
    return Atoms("OH2", positions=[(0, 0, 0), (r1, 0, 0), (r2 * np.cos(t), r2 * np.sin(t), 0)])


def test_bond_and_angle_distributions_are_the_built_geometries(plt_close):
    frames = [water(0.95 + 0.01 * k, 0.97, 100 + k) for k in range(5)]
    d = structure_distributions(frames)
    assert d.bond_labels == ["H-O", "H-O"] and d.angle_labels == ["H-O-H"]
    np.testing.assert_allclose(d.bond_lengths_A[:, 0], 0.95 + 0.01 * np.arange(5))
    np.testing.assert_allclose(d.angles_deg[:, 0], 100 + np.arange(5))
    shifted = structure_distributions([water(r1 + 0.02, r2 + 0.02, a + 3) for r1, r2, a in
                                       zip(d.bond_lengths_A[:, 0], d.bond_lengths_A[:, 1], d.angles_deg[:, 0])])
    dist = distribution_distances(shifted, d)
    assert dist["bond H-O"] == pytest.approx(0.02) and dist["angle H-O-H"] == pytest.approx(3.0)
    axes = plot_structure_distributions({"a": d, "b": shifted})
    assert len(axes[0].patches) == 2 and len(axes[1].patches) == 2


def test_bonds_and_angles_across_a_periodic_boundary():
    w = water(0.96, 0.97, 104.0)
    w.positions += [9.5, 5, 5]  # the hydrogens stick out of the box ...
    w.set_cell([10, 10, 10])
    w.set_pbc(True)
    wrapped = w.copy()
    wrapped.wrap()  # ... and are wrapped to the far side
    assert wrapped.positions[:, 0].max() - wrapped.positions[:, 0].min() > 5
    d = structure_distributions([wrapped], bonds=[(0, 1), (0, 2)])
    np.testing.assert_allclose(d.bond_lengths_A[0], [0.96, 0.97])
    np.testing.assert_allclose(d.angles_deg[0], [104.0])


def test_wasserstein_1_matches_scipy(rng):
    for n, m in ((50, 80), (7, 7), (1, 300)):
        u, v = rng.normal(0, 1, n), rng.gamma(2.0, 1.0, m)
        assert wasserstein_1(u, v) == pytest.approx(wasserstein_distance(u, v), rel=1e-12)
    assert wasserstein_1([1.0], [3.5]) == pytest.approx(2.5)


# --- vibrational spectrum ------------------------------------------------------------------------------------


class HarmonicBonds(Calculator):
    """E = Σ ½ k (r − r0)² over the given pairs: eV, Å."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, pairs, k_eV_per_A2, r0_A):
        super().__init__()
        self.pairs, self.k, self.r0 = pairs, k_eV_per_A2, r0_A

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        pos, e = self.atoms.positions, 0.0
        f = np.zeros_like(pos)
        for (i, j), k, r0 in zip(self.pairs, self.k, self.r0):
            d = pos[j] - pos[i]
            r = np.linalg.norm(d)
            e += 0.5 * k * (r - r0) ** 2
            f[i] += k * (r - r0) * d / r
            f[j] -= k * (r - r0) * d / r
        self.results = {"energy": e, "forces": f}


def wavenumber_cm(k, m1, m2):
    """sqrt(k/μ) as a wavenumber, cm⁻¹ (k eV/Å², masses amu)."""
    omega_per_fs = np.sqrt(k / (m1 * m2 / (m1 + m2))) * units.fs
    return omega_per_fs / (2 * np.pi) / SPEED_OF_LIGHT_CM_PER_FS


def run_nve(atoms, n_steps, dt_fs):
    frames = []
    dyn = VelocityVerlet(atoms, timestep=dt_fs * units.fs)
    dyn.attach(lambda: frames.append(atoms.copy()), interval=1)
    dyn.run(n_steps)
    return frames


@pytest.fixture(scope="module")
def two_diatomics():
    """An H2-like (k 30 eV/Å²) and a CO-like (k 115 eV/Å², masses 12 and 16) oscillator, 20 Å apart."""
    atoms = Atoms("H2CO", positions=[(0, 0, 0), (0.84, 0, 0), (20, 0, 0), (21.2, 0, 0)])
    atoms.set_masses([1.0, 1.0, 12.0, 16.0])
    atoms.calc = HarmonicBonds([(0, 1), (2, 3)], [30.0, 115.0], [0.74, 1.13])
    dt = 0.25
    return run_nve(atoms, 6000, dt), dt, [wavenumber_cm(30.0, 1, 1), wavenumber_cm(115.0, 12, 16)]


def test_spectrum_peaks_land_on_sqrt_k_over_mu(two_diatomics, plt_close):
    frames, dt, expected = two_diatomics
    spec = vibrational_spectrum(frames, dt_fs=dt)
    assert spec.velocities_from == "velocities" and spec.vacf[0] == pytest.approx(1.0)
    assert len(spec.peaks_cm) == 2
    for peak, exact in zip(spec.peaks_cm, sorted(expected)):
        assert abs(peak - exact) < spec.resolution_cm
        # closer still: velocity Verlet oscillates at (2/Δt) arcsin(ωΔt/2), not ω
        omega_dt = 2 * np.pi * exact * SPEED_OF_LIGHT_CM_PER_FS * dt
        assert peak == pytest.approx(exact * 2 * np.arcsin(omega_dt / 2) / omega_dt, abs=1.0)
    assert spec.resolution_cm == pytest.approx(1 / (3000 * dt * SPEED_OF_LIGHT_CM_PER_FS), rel=1e-3)
    # positions only: velocities by central differences give the same peaks
    pos = np.stack([f.positions for f in frames])
    fd = vibrational_spectrum(pos, numbers=frames[0].numbers, masses=frames[0].get_masses(), dt_fs=dt)
    assert fd.velocities_from == "finite differences"
    np.testing.assert_allclose(fd.peaks_cm, spec.peaks_cm, atol=fd.grid_cm)
    left, right = plot_spectrum({"velocities": spec, "positions": fd}, reference_cm=expected)
    assert len(left.lines) == 2 and len(right.lines) == 2 * 2 + 2  # spectra, peak markers, two reference lines


def test_velocities_from_frames_are_converted_to_A_per_fs(two_diatomics):
    frames, dt, _ = two_diatomics
    traj = as_trajectory(frames[:3], dt_fs=dt)
    fd = (frames[2].positions - frames[0].positions) / (2 * dt)
    np.testing.assert_allclose(traj.velocities[1], fd, atol=2e-4 * np.abs(fd).max())


@pytest.fixture
def plt_close():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def test_plot_h_r_draws_each_curve(plt_close):
    a = h_r(line_frames([(0, 1.0, 2.5)]))
    assert len(plot_h_r({"model": a, "reference": a}).lines) == 2
