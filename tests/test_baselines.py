"""mlipviz.attribution baselines and the distance-to-training-data check of an attribution path."""

import warnings

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from scipy.spatial.transform import Rotation

from mlipviz.attribution import (
    EnergyFunctionCalculator,
    OutOfDistributionWarning,
    align_to,
    dissociated_baseline,
    distance_ranges,
    integrated_gradients,
    minimum_energy_baseline,
    path_check,
    training_minimum_baseline,
    training_structures,
)


@pytest.fixture(scope="module")
def training(embedded_water, model_and_config):
    return training_structures(embedded_water, model_and_config[1])


def _moved(atoms, seed=3, shift=(1.0, -2.0, 0.5)):
    out = atoms.copy()
    out.positions = atoms.positions @ Rotation.random(random_state=seed).as_matrix().T + np.asarray(shift)
    return out


def test_the_minimum_baseline_is_the_models_minimum(model_and_config, calc, water_distorted):
    """The IG default relaxes with the all-pairs energy function; SchNetPack's calculator (neighbour list) must
    find the same minimum, with vanishing forces, below the starting energy."""
    model, config = model_and_config
    res = integrated_gradients(model, water_distorted, config.cutoff)
    assert res.baseline_kind == "minimum"
    relaxed = minimum_energy_baseline(water_distorted, calc, fmax=1e-3)
    np.testing.assert_allclose(res.baseline.get_all_distances(), relaxed.get_all_distances(), atol=2e-3)
    b = res.baseline.copy()
    b.calc = calc
    assert np.linalg.norm(b.get_forces(), axis=1).max() < 5e-3
    assert res.baseline_energy < res.energy
    assert res.energy - res.baseline_energy == pytest.approx(res.atom_attributions.sum(), abs=1e-3)
    # Aligned onto the structure: closer than any other placement of the same geometry.
    rmsd = np.sqrt(((res.baseline.positions - water_distorted.positions) ** 2).sum(axis=1).mean())
    moved = np.sqrt(((_moved(res.baseline).positions - water_distorted.positions) ** 2).sum(axis=1).mean())
    assert rmsd < 0.1 < moved


def test_a_relaxation_that_cannot_finish_says_so(calc, water_distorted):
    with pytest.raises(RuntimeError, match="did not reach fmax=1e-06 eV/Å in 2 steps"):
        minimum_energy_baseline(water_distorted, calc, fmax=1e-6, steps=2)
    with pytest.raises(ValueError, match="fmax must be a finite positive force"):
        minimum_energy_baseline(water_distorted, calc, fmax=float("nan"))


def test_align_to_undoes_a_rigid_motion(water_distorted):
    moved = _moved(water_distorted)
    back = align_to(moved, water_distorted)
    np.testing.assert_allclose(back.positions, water_distorted.positions, atol=1e-10)
    np.testing.assert_allclose(back.get_all_distances(), moved.get_all_distances(), atol=1e-12)
    with pytest.raises(ValueError, match="cannot align 2 atoms onto 3"):
        align_to(Atoms("H2", positions=[(0, 0, 0), (0, 0, 0.7)]), water_distorted)


def test_a_reference_baseline_is_used_wherever_it_was_placed(model_and_config, embedded_water, water_distorted):
    """A chosen reference conformer means the same wherever it sits: a rotated, shifted copy gives the same
    attributions (after alignment the paths coincide)."""
    model, _ = model_and_config
    ref = embedded_water[5]
    a = integrated_gradients(model, water_distorted, baseline=ref)
    b = integrated_gradients(model, water_distorted, baseline=_moved(ref), n_steps=a.n_steps)
    assert a.baseline_kind == "reference"
    np.testing.assert_allclose(a.atom_attributions, b.atom_attributions, atol=1e-5)
    np.testing.assert_allclose(a.baseline.get_all_distances(), ref.get_all_distances(), atol=1e-10)


def test_training_minimum_is_the_lowest_model_energy_in_training(model_and_config, calc, training, water_distorted):
    model, _ = model_and_config
    base = training_minimum_baseline(water_distorted, training, model)
    energies = []
    for t in training:
        a = t.copy()
        a.calc = calc
        energies.append(a.get_potential_energy())
    best = training[int(np.argmin(energies))]
    np.testing.assert_allclose(base.get_all_distances(), best.get_all_distances(), atol=1e-10)
    res = integrated_gradients(model, water_distorted, baseline="training-minimum", training=training)
    assert res.baseline_kind == "training-minimum" and res.path_check.max_deviation == 0.0
    with pytest.raises(ValueError, match="no training structure holds the atoms of CH4"):
        training_minimum_baseline(molecule("CH4"), training, model)


def test_training_structures_follow_the_recorded_split(embedded_water, model_and_config, training):
    _, config = model_and_config
    assert len(training) == len(config.metadata["split"]["train"])
    assert training[0] is embedded_water[config.metadata["split"]["train"][0]]
    with pytest.raises(ValueError, match="outside images"):
        training_structures(embedded_water[:10], config)
    with pytest.raises(ValueError, match="no 'split'"):
        training_structures(embedded_water, type("C", (), {"metadata": {}})())


def test_dissociated_baseline_refuses_bad_cutoffs(water_reference):
    for cutoff in (float("nan"), -5.0, 0.0, float("inf")):
        with pytest.raises(ValueError, match="cutoff must be a finite positive distance"):
            dissociated_baseline(water_reference, cutoff)


def test_the_dissociation_path_leaves_the_training_data(model_and_config, training, water_distorted):
    """The check's figure is the largest excursion of a pair distance beyond its training range, here computed by
    hand at the dissociated end, where every distance is largest."""
    model, config = model_and_config
    with pytest.warns(OutOfDistributionWarning, match="OUTSIDE the training distances"):
        res = integrated_gradients(model, water_distorted, config.cutoff, baseline="dissociated", training=training)
    check = res.path_check
    d_train = np.array([t.get_all_distances() for t in training])
    d_base = res.baseline.get_all_distances()
    iu = np.triu_indices(3, 1)
    by_hand = (d_base - d_train.max(axis=0))[iu].max()
    assert check.max_deviation == pytest.approx(by_hand, abs=1e-9)
    assert check.max_deviation > 3.0 and check.alpha == 0.0 and check.per_pair and not check.in_distribution
    assert check.baseline_deviation == pytest.approx(by_hand, abs=1e-9)


def test_a_path_between_training_structures_stays_inside(model_and_config, training):
    model, _ = model_and_config
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDistributionWarning)
        res = integrated_gradients(model, training[3], training=training)
    assert res.path_check.in_distribution and res.path_check.max_deviation == 0.0
    # A stretched bond, 0.6 Å beyond anything in training, is out: by that much (per pair, tight).
    stretched = training[3].copy()
    d_train_max = np.array([t.get_distance(0, 1) for t in training]).max()
    v = stretched.positions[1] - stretched.positions[0]
    stretched.positions[1] = stretched.positions[0] + v / np.linalg.norm(v) * (d_train_max + 0.6)
    check = path_check(stretched, training[3], training, warn=False)
    assert check.pair == (0, 1) and check.alpha == 1.0
    assert check.max_deviation == pytest.approx(0.6, abs=1e-9)


def test_another_atom_order_falls_back_to_element_pairs(training):
    flipped = [Atoms("H2O", positions=t.positions[[1, 2, 0]]) for t in training]
    assert distance_ranges(flipped).per_pair  # one order throughout: per-pair ranges ...
    check = path_check(training[0], training[1], flipped, warn=False)
    assert not check.per_pair and check.in_distribution  # ... but OH2 is another order: element pairs
    ranges = distance_ranges(flipped[:5] + training[5:])  # mixed orders: element pairs from the start
    assert not ranges.per_pair
    oh = [t.get_distance(0, k) for t in training for k in (1, 2)]
    assert ranges.low[(1, 8)] == pytest.approx(min(oh)) and ranges.high[(1, 8)] == pytest.approx(max(oh))
    with pytest.raises(ValueError, match="at least one structure"):
        distance_ranges([])
    with pytest.raises(ValueError, match="n_points must be at least 2"):
        path_check(training[0], training[1], training, n_points=1)


def test_the_energy_function_calculator_gives_forces_by_autograd(model_and_config, calc, water_distorted):
    model, _ = model_and_config
    a, b = water_distorted.copy(), water_distorted.copy()
    a.calc, b.calc = EnergyFunctionCalculator(model), calc
    np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=1e-4)
    assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), abs=1e-3)
