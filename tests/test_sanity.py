"""mlipviz.attribution.sanity: completeness, model randomisation (Adebayo et al. 2018) and symmetry checks."""

import numpy as np
import pytest
import torch
from ase.build import molecule
from scipy.stats import spearmanr

from mlipviz.attribution import (
    RandomisationCheck,
    completeness_check,
    equivalent_atoms,
    integrated_gradients,
    model_randomisation,
    randomised_copy,
    symmetry_check,
)
from mlipviz.potential import MLIPCalculator


def test_completeness_check_reports_the_gap(model_and_config, water_distorted):
    model, config = model_and_config
    res = integrated_gradients(model, water_distorted, config.cutoff, baseline="dissociated")
    check = completeness_check(res)
    diff = res.energy - res.baseline_energy
    assert check.gap == pytest.approx(res.atom_attributions.sum() - diff, abs=1e-5)
    assert check.relative_gap == pytest.approx(abs(check.gap) / abs(diff))
    assert check.passed and check.n_steps == res.n_steps
    assert not completeness_check(res, tolerance=abs(check.gap) / 2).passed
    assert "completeness: gap" in str(check)


def test_randomised_copy_has_fresh_weights_and_leaves_the_model_alone(model_and_config, water_distorted):
    model, config = model_and_config
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng_state = torch.random.get_rng_state()
    fresh = randomised_copy(model, seed=1)
    assert torch.equal(rng_state, torch.random.get_rng_state())
    assert fresh.state_dict().keys() == model.state_dict().keys()
    for (name, p), q in zip(fresh.named_parameters(), model.parameters()):
        assert p.shape == q.shape and not torch.equal(p, q), name
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    e_trained = water_distorted.copy()
    e_trained.calc = MLIPCalculator(model, config, device="cpu")
    e_fresh = water_distorted.copy()
    e_fresh.calc = MLIPCalculator(fresh, config, device="cpu")
    assert abs(e_trained.get_potential_energy() - e_fresh.get_potential_energy()) > 0.01
    again = randomised_copy(model, seed=1)
    for p, q in zip(fresh.parameters(), again.parameters()):
        assert torch.equal(p, q)  # the seed fixes the re-initialisation


def test_model_randomisation_compares_trained_and_fresh_attributions(model_and_config, embedded_water):
    model, config = model_and_config
    test = [embedded_water[i] for i in config.metadata["split"]["test"][:6]]
    baselines = [integrated_gradients(model, s).baseline for s in test]
    check = model_randomisation(model, test, baselines, seeds=(0, 4))
    trained = np.concatenate([integrated_gradients(model, s, baseline=b).atom_attributions
                              for s, b in zip(test, baselines)])
    fresh = randomised_copy(model, seed=4)
    by_hand = np.concatenate([integrated_gradients(fresh, s, baseline=b).atom_attributions
                              for s, b in zip(test, baselines)])
    np.testing.assert_allclose(check.trained, trained, atol=1e-6)
    np.testing.assert_allclose(check.randomised[1], by_hand, atol=1e-4)
    assert check.n_values == 18 and check.randomised.shape == (2, 18)
    assert not np.allclose(check.trained, check.randomised[0], atol=1e-3)
    rho4 = spearmanr(trained, by_hand).statistic
    assert check.per_seed[1] == pytest.approx((4, rho4, spearmanr(np.abs(trained), np.abs(by_hand)).statistic))
    assert check.spearman == pytest.approx((check.per_seed[0][1] + rho4) / 2)
    assert -1 <= check.spearman <= 1 and "Spearman" in str(check)
    with pytest.raises(ValueError, match="one baseline per structure"):
        model_randomisation(model, test, baselines[:2])
    with pytest.raises(ValueError, match="seeds must be an integer"):
        model_randomisation(model, test, baselines, seeds=[])


def test_randomisation_verdict():
    a = np.arange(5.0)
    assert not RandomisationCheck(1.0, 1.0, [(0, 1.0, 1.0)], 5, a, a[None], 0.5).passed  # identical maps fail
    assert not RandomisationCheck(-0.9, 0.2, [(0, -0.9, 0.2)], 5, a, a[None], 0.5).passed
    assert RandomisationCheck(0.1, -0.2, [(0, 0.1, -0.2)], 5, a, a[None], 0.5).passed


def test_rigid_motions_and_the_c2v_hydrogens(model_and_config, water_reference):
    model, config = model_and_config
    for baseline in ("minimum", "dissociated"):
        res = integrated_gradients(model, water_reference, config.cutoff, baseline=baseline)
        check = symmetry_check(model, water_reference, res)
        assert check.equivalent_pairs == [(1, 2)]
        assert check.rotation_error < 1e-4 and check.translation_error < 1e-4
        assert check.equivalence_error < 1e-5 and check.passed
        assert check.scale > 1e-3  # the attributions are not trivially zero


def test_a_symmetry_broken_by_the_baseline_is_not_claimed(model_and_config, water_reference, water_distorted):
    """With an asymmetric reference baseline the path has no C2 axis: no pair is called equivalent, and the two
    hydrogens really do get different attributions."""
    model, _ = model_and_config
    one_bond_longer = water_reference.copy()
    v = one_bond_longer.positions[1] - one_bond_longer.positions[0]
    one_bond_longer.positions[1] += 0.1 * v / np.linalg.norm(v)
    res = integrated_gradients(model, water_reference, baseline=one_bond_longer)
    check = symmetry_check(model, water_reference, res)
    assert check.equivalent_pairs == [] and check.equivalence_error == 0.0
    assert abs(res.atom_attributions[1] - res.atom_attributions[2]) > 0.01
    assert check.rotation_error < 1e-4


def test_equivalent_atoms_by_distance_fingerprints(water_reference, water_distorted):
    assert equivalent_atoms(water_reference) == [(1, 2)]
    assert equivalent_atoms(water_distorted) == []
    ch4 = molecule("CH4")
    assert equivalent_atoms(ch4) == [(1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4)]
    nh3 = molecule("NH3")
    assert equivalent_atoms(nh3) == [(1, 2), (1, 3), (2, 3)]
