"""mlipviz.md.stability: Fu et al.'s collapse time, the MLIPAudit score and survival curves, by hand-built runs."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from ase import Atoms

from mlipviz.md.stability import (fu_stability, mlipaudit_score, plot_stability, plot_survival, survival_curve)


def water(r1=0.96, r2=0.96, angle_deg=104.5):
    t = np.radians(angle_deg)
    return Atoms("OH2", positions=[(0, 0, 0), (r1, 0, 0), (r2 * np.cos(t), r2 * np.sin(t), 0)])


def walking_h(n_frames=10, step_A=0.12, start=0.96):
    """Frames in which the second H walks away: r(O-H2) = start + step·k."""
    return [water(0.96, start + step_A * k) for k in range(n_frames)]


@pytest.fixture
def plt_close():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def test_fu_stability_fails_at_the_first_frame_beyond_the_reference_mean():
    reference = [water(0.95, 0.95), water(0.97, 0.97)]  # mean O-H 0.96 Å
    frames = walking_h()
    rep = fu_stability(frames, reference, dt_fs=0.5)
    # deviations 0.12 k: 0.48 at k=4, 0.60 at k=5
    assert rep.failure_frame == 5 and rep.failure_time_fs == pytest.approx(2.5)
    assert rep.failed_bond == (0, 2) and rep.failed_symbols == ("O", "H")
    assert rep.failed_length_A == pytest.approx(0.96 + 0.6)
    np.testing.assert_allclose(rep.failure_atoms.positions, frames[5].positions)
    np.testing.assert_allclose(rep.reference_lengths_A, [0.96, 0.96])
    np.testing.assert_allclose(rep.max_deviation_A, 0.12 * np.arange(10), atol=1e-12)
    assert rep.horizon_fs == pytest.approx(4.5) and not rep.stable


def test_the_reference_mean_not_the_first_frame_sets_the_lengths():
    from mlipviz.md.stability import bond_check

    reference = [water(1.10, 1.10)]  # the run starts 0.14 Å short of the reference mean
    frames = walking_h(16, step_A=0.045)  # O-H2 = 0.96 + 0.045 k
    rep = fu_stability(frames, reference, dt_fs=1.0)
    # |0.045 k - 0.14| > 0.5 first at k = 15; measured from the first frame it would be k = 12
    assert rep.failure_frame == 15 and rep.failed_bond == (0, 2)
    assert bond_check(frames).first_broken_frame == 12
    rep = fu_stability(frames, reference, tolerance_A=0.1, dt_fs=1.0)
    assert rep.failure_frame == 0 and rep.failed_bond in ((0, 1), (0, 2))  # 0.14 > 0.1 from the very start


def test_fu_stability_on_arrays_and_non_finite_frames():
    pos = np.stack([f.positions for f in walking_h(6, step_A=0.01)])
    pos[4] = np.nan
    rep = fu_stability(pos, [water()], numbers=[8, 1, 1], dt_fs=2.0)
    assert rep.failure_frame == 4 and rep.failure_time_fs == 8.0 and np.isinf(rep.max_deviation_A[4])
    with pytest.raises(ValueError, match="same atoms"):
        fu_stability(pos, [Atoms("H2O", positions=pos[0])], numbers=[8, 1, 1])
    with pytest.raises(ValueError, match="tolerance_A"):
        fu_stability(pos, [water()], numbers=[8, 1, 1], tolerance_A=0)


def test_mlipaudit_score_by_hand():
    stable = [water(0.96 + 0.01 * np.sin(k), 0.96) for k in range(20)]
    assert mlipaudit_score(stable).score == 1.0
    detach = walking_h(20, step_A=0.1)  # r(O-H2) > 2.5 Å first at k = 16 (2.56 Å)
    s = mlipaudit_score(detach)
    assert s.detach_frame == 16 and s.detached_hydrogen == 2 and s.partner == 0 and s.explosion_frame is None
    assert s.score == pytest.approx(0.5 + 0.5 * 16 / 20)
    exploded = [f.copy() for f in detach]
    exploded[18].positions[:] = np.nan  # explosion after the detachment: the explosion scores
    s = mlipaudit_score(exploded)
    assert s.explosion_frame == 18 and s.score == pytest.approx(0.5 * 18 / 20)
    stretched = walking_h(20, step_A=0.3)  # 0.96 + 0.3 k > 5 × 0.96 first at k = 13
    s = mlipaudit_score(stretched)
    assert s.explosion_frame == 13 and s.score == pytest.approx(0.5 * 13 / 20)


def test_mlipaudit_explosion_by_temperature():
    frames = [water() for _ in range(10)]
    for k, f in enumerate(frames):
        f.set_velocities(np.zeros((3, 3)))
    frames[7].set_momenta(np.full((3, 3), 10.0))  # 3 atoms, p 10 amu·Å/ASE-time per component: ~1e6 K
    assert frames[7].get_temperature() > 1e4
    s = mlipaudit_score(frames)
    assert s.explosion_frame == 7 and s.score == pytest.approx(0.35)


def test_survival_curve_is_the_kaplan_meier_estimate(plt_close):
    ref = [water()]
    runs = [walking_h(100, 0.0), walking_h(100, 0.12), walking_h(100, 0.07), walking_h(50, 0.0)]
    reports = [fu_stability(r, ref, dt_fs=10.0) for r in runs]
    # failures: run 1 at k=5 (50 fs), run 2 at k=8 (80 fs); runs 0 and 3 censored at 990 and 490 fs
    assert [r.failure_frame for r in reports] == [None, 5, 8, None]
    curve = survival_curve(reports)
    np.testing.assert_allclose(curve.time_to_failure_fs, [990, 50, 80, 490])
    np.testing.assert_array_equal(curve.failed, [False, True, True, False])
    assert curve.at(0) == 1.0 and curve.at(49) == 1.0
    assert curve.at(50) == pytest.approx(3 / 4)
    assert curve.at(80) == pytest.approx(3 / 4 * 2 / 3) and curve.at(5000) == pytest.approx(0.5)
    # a censored run drops out of the risk set: with a third failure at 600 fs after run 3 stopped at 490 fs
    late = walking_h(100, 0.0)
    late[60] = water(0.96, 2.0)
    curve2 = survival_curve(reports + [fu_stability(late, ref, dt_fs=10.0)])
    assert curve2.at(600) == pytest.approx(4 / 5 * 3 / 4 * (1 - 1 / 2))  # at risk at 600 fs: runs 0 and 4
    ax = plot_survival({"seeds": curve})
    assert len(ax.lines) == 2  # the step curve and the censored marks
    ax = plot_stability({f"seed {k}": r for k, r in enumerate(reports)})
    assert len(ax.lines) == 4 + 2 + 1  # four curves, two failure markers, the tolerance
    with pytest.raises(ValueError, match="dt_fs"):
        survival_curve([fu_stability(runs[0], ref)])


def test_embedded_potential_runs_stay_stable_against_the_training_data(embedded_model_dir, embedded_water, tmp_path):
    from ase.io import read

    from mlipviz.md import run_md
    from mlipviz.potential import MLIPCalculator

    calc = MLIPCalculator(embedded_model_dir, device="cpu")
    res = run_md(embedded_water[0], calc, n_steps=100, timestep_fs=0.5, ensemble="langevin", temperature_K=300,
                 record_every=5, trajectory=tmp_path / "w.traj", progress=False)
    frames = read(tmp_path / "w.traj", ":")
    rep = fu_stability(frames, embedded_water, dt_fs=res.time_fs[1] - res.time_fs[0])
    assert rep.stable and rep.n_frames == 21 and rep.horizon_fs == pytest.approx(50.0)
    np.testing.assert_allclose(rep.reference_lengths_A, 0.97, atol=0.03)  # O-H in the 300 K training data
    assert mlipaudit_score(frames).score == 1.0


def test_contacts_catch_two_molecules_fusing_that_the_bond_rule_misses():
    w = Atoms("OH2", positions=[(0.0, 0.0, 0.0), (0.0, -0.757, 0.587), (0.0, 0.757, 0.587)])
    frames = []
    for oo in (2.9, 2.5, 2.0, 1.5, 1.0):  # the second water slides onto the first, both stay intact
        second = w.copy()
        second.translate((oo, 0.0, 0.0))
        frames.append(w + second)
    reference = frames[:1]
    assert fu_stability(frames, reference, dt_fs=10.0).stable
    report = fu_stability(frames, reference, dt_fs=10.0, contacts=True)
    assert report.failure_frame == 2  # O–O 2.0 Å: 0.9 Å inside the closest reference O–O distance of 2.9 Å
    assert report.failed_bond == (0, 3) and report.failed_length_A == pytest.approx(2.0)
