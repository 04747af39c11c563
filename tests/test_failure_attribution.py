"""mlipviz.attribution.failure and .force: attribution over the frames before an MD failure.

Checks against independent figures: model energies and forces from the ASE calculator (completeness of the
energy and of the projected-force attributions), central differences of the projected force (its gradient),
distances from ASE, and a real collapse of the shipped water model in a hot, coarse MD run.
"""

import dataclasses

import numpy as np
import pytest
from ase.optimize import BFGS

from mlipviz.attribution.failure import FailureAttribution, failure_attribution
from mlipviz.attribution.force import force_attributions, projected_force_function


def _projected(calc, atoms, a, b):
    """F_a · (r_a − r_b)/|r_a − r_b| from the ASE calculator, eV/Å."""
    work = atoms.copy()
    work.calc = calc
    u = atoms.positions[a] - atoms.positions[b]
    return float(work.get_forces()[a] @ u / np.linalg.norm(u))


def _energy(calc, atoms):
    work = atoms.copy()
    work.calc = calc
    return work.get_potential_energy()


@pytest.fixture(scope="module")
def minimum(calc, embedded_water):
    work = embedded_water[0].copy()
    work.calc = calc
    BFGS(work, logfile=None).run(fmax=1e-3, steps=500)
    out = work.copy()
    out.calc = None
    return out


@pytest.fixture(scope="module")
def stretched(minimum):
    """The minimum with its O0–H1 bond stretched by 0 … 0.8 Å over six frames (the last one 'failed')."""
    frames = []
    for s in np.linspace(0.0, 0.8, 6):
        a = minimum.copy()
        v = a.positions[1] - a.positions[0]
        a.positions[1] += s * v / np.linalg.norm(v)
        frames.append(a)
    return frames


@pytest.fixture(scope="module")
def stretched_result(model_and_config, stretched):
    model, config = model_and_config
    return failure_attribution(stretched, model, config, (0, 1), n_before=3)


def test_energy_attributions_add_up_to_the_energy_change(stretched_result, stretched, calc):
    fa = stretched_result
    assert list(fa.frame_indices) == [3, 4, 5]
    e0 = _energy(calc, fa.baseline)
    for f, k in enumerate(fa.frame_indices):
        diff = _energy(calc, stretched[k]) - e0
        assert fa.energy_attributions[f].sum() == pytest.approx(diff, abs=2e-3)
        assert abs(fa.energy_gap[f]) < 1e-3
    assert fa.energy_attributions[-1].sum() > 0.5  # 0.8 Å of stretch costs energy


def test_projected_force_attributions_add_up_to_the_force_change(stretched_result, stretched, calc):
    fa = stretched_result
    f0 = [_projected(calc, fa.baseline, 0, 1), _projected(calc, fa.baseline, 1, 0)]  # rotation invariant
    np.testing.assert_allclose(f0, 0.0, atol=5e-3)  # the baseline is a minimum: no force
    for f, k in enumerate(fa.frame_indices):
        ref = [_projected(calc, stretched[k], 0, 1), _projected(calc, stretched[k], 1, 0)]
        np.testing.assert_allclose(fa.projected_force[f], ref, atol=1e-4)
        np.testing.assert_allclose(fa.force_attributions[f].sum(axis=1), np.subtract(ref, f0), atol=2e-3)
    assert np.all(np.abs(fa.force_gap) < 1e-3)


def test_the_stretched_atoms_rank_first(stretched_result, stretched):
    fa = stretched_result
    assert set(fa.atom_ranking[:2].tolist()) == {0, 1}
    assert tuple(fa.pairs[fa.pair_ranking[0]]) == (0, 1)
    assert fa.ranked_pairs()[0][0] == "O0–H1"
    np.testing.assert_allclose(fa.distance_A, [a.get_distance(0, 1) for a in stretched], atol=1e-12)
    assert np.all(np.abs(fa.pair_conservation_error) < 1e-6)
    text = str(fa)
    assert "O0–H1" in text and "frame 5" in text


def test_plot_draws_distance_and_the_top_atoms(stretched_result):
    import matplotlib.pyplot as plt

    fig = stretched_result.plot(top=2)
    axes = fig.axes
    assert len(axes) == 3
    np.testing.assert_allclose(axes[0].lines[0].get_ydata(), stretched_result.distance_A)
    top = [stretched_result.label(k) for k in stretched_result.atom_ranking[:2]]
    assert [ln.get_label() for ln in axes[1].lines[:2]] == top
    assert "(Å)" in axes[0].get_ylabel() and "(eV)" in axes[1].get_ylabel() and "(eV/Å)" in axes[2].get_ylabel()
    plt.close(fig)


def test_projected_force_and_its_gradient_match_finite_differences(model_and_config, water_distorted, calc):
    model, _ = model_and_config
    atoms = water_distorted
    f = projected_force_function(model, atoms, 1, partner=0)
    import torch

    x = torch.tensor(atoms.positions[None], dtype=torch.float32)
    assert float(f(x)[0].detach()) == pytest.approx(_projected(calc, atoms, 1, 0), abs=1e-4)
    sal = force_attributions(model, atoms, 1, partner=0, method="saliency")
    h, fd = 1e-3, np.zeros((len(atoms), 3))
    for k in range(len(atoms)):
        for c in range(3):
            p, m = atoms.copy(), atoms.copy()
            p.positions[k, c] += h
            m.positions[k, c] -= h
            fd[k, c] = (_projected(calc, p, 1, 0) - _projected(calc, m, 1, 0)) / (2 * h)
    np.testing.assert_allclose(sal.atom_attributions, np.linalg.norm(fd, axis=1), rtol=2e-2, atol=2e-2)
    assert sal.unit == "eV/Å²" and np.isnan(sal.completeness_gap)


def test_fixed_direction_ig_is_complete(model_and_config, water_distorted, minimum, calc):
    model, _ = model_and_config
    work = water_distorted.copy()
    work.calc = calc
    force = work.get_forces()[2]
    r = force_attributions(model, water_distorted, 2, direction=force, baseline=minimum)
    assert r.value == pytest.approx(np.linalg.norm(force), abs=1e-4)  # along its own direction: |F|
    moved = r.baseline.copy()
    moved.calc = calc
    f0 = moved.get_forces()[2] @ force / np.linalg.norm(force)
    assert r.atom_attributions.sum() == pytest.approx(np.linalg.norm(force) - f0, abs=2e-3)


def test_a_real_collapse_from_a_stability_run(model_and_config, embedded_water):
    from mlipviz.md import fu_protocol

    model, config = model_and_config
    run = fu_protocol(model, embedded_water[0], embedded_water, horizon_ps=0.1, n_replicas=1, temperature_K=3000.0,
                      timestep_fs=2.0, record_every=5, progress=False, device="cpu", threads=1, cutoff=config.cutoff)
    report = run.reports[0]
    assert not report.stable  # 3000 K with 2 fs steps breaks a bond within 0.1 ps
    fa = FailureAttribution.from_stability_run(run, 0, model, config, n_before=2)
    assert fa.offending == report.failed_bond
    assert fa.frame_indices[-1] == report.failure_frame and fa.dt_fs == report.dt_fs
    assert fa.distance_A[-1] == pytest.approx(report.failed_length_A, abs=1e-9)
    assert np.all(np.abs(fa.energy_gap) < 1e-3) and np.all(np.abs(fa.force_gap) < 1e-3)
    np.testing.assert_allclose(fa.force_attributions.sum(axis=2), fa.projected_force - fa.baseline_projected_force,
                               atol=1e-3)
    assert set(fa.atom_ranking[:2].tolist()) <= set(range(3))
    stable = dataclasses.replace(run, reports=[dataclasses.replace(report, failure_frame=None)])
    with pytest.raises(ValueError, match="did not fail"):
        FailureAttribution.from_stability_run(stable, 0, model, config)
    with pytest.raises(ValueError, match="replica"):
        FailureAttribution.from_stability_run(run, 3, model, config)


def test_bad_input_is_refused_by_name(model_and_config, stretched):
    from ase import Atoms

    model, config = model_and_config
    cases = [
        (([], (0, 1)), {}, "frames is empty"),
        ((stretched, (0, 3)), {}, "offending"),
        ((stretched, (1, 1)), {}, "two different atoms"),
        ((stretched, (0, 1)), {"method": "lrp"}, "method"),
        ((stretched, (0, 1)), {"n_before": 0}, "n_before"),
        ((stretched, (0, 1)), {"baseline": "nowhere"}, "baseline"),
        ((stretched[:2] + [Atoms("CH2", positions=stretched[2].positions)] + stretched[3:], (0, 1)), {},
         r"frames\[2\]"),
        (([Atoms("CH2", positions=a.positions) for a in stretched], (0, 1)), {}, "C"),
    ]
    for (frames, pair), kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            failure_attribution(frames, model, config, pair, **kwargs)
    with pytest.raises(ValueError, match="exactly one of partner"):
        force_attributions(model, stretched[0], 0)
    with pytest.raises(ValueError, match="direction"):
        force_attributions(model, stretched[0], 0, direction=[0.0, 0.0, 0.0])
