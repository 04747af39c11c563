"""mlipviz.attribution: completeness, the dissociation limit, and symmetry."""

import numpy as np
import pytest
from ase import Atoms

from mlipviz.attribution import dissociated_baseline, integrated_gradients
from mlipviz.potential import MLIPCalculator, load_model


@pytest.fixture(scope="module")
def model_and_config(embedded_model_dir):
    return load_model(embedded_model_dir, device="cpu")


def test_completeness_gap_shrinks_with_quadrature(model_and_config, water_distorted):
    model, config = model_and_config
    coarse = integrated_gradients(model, water_distorted, config.cutoff, n_steps=8)
    fine = integrated_gradients(model, water_distorted, config.cutoff, n_steps=512)
    total = fine.energy - fine.baseline_energy
    assert abs(total) > 0.1  # a real binding energy, eV
    assert abs(fine.completeness_gap) < 0.01 * abs(total)
    assert abs(fine.completeness_gap) < abs(coarse.completeness_gap)
    assert fine.atom_attributions.sum() == pytest.approx(total, rel=0.01)


def test_baseline_energy_is_the_sum_of_isolated_atoms(model_and_config, water_distorted):
    """Beyond the cutoff the atoms do not interact, so E(baseline) = Σ E(single atom)."""
    model, config = model_and_config
    base = dissociated_baseline(water_distorted, config.cutoff)
    d = np.linalg.norm(base.positions[:, None] - base.positions[None], axis=-1)
    assert d[np.triu_indices(3, 1)].min() > config.cutoff
    res = integrated_gradients(model, water_distorted, config.cutoff, n_steps=16)
    calc = MLIPCalculator(model, config, device="cpu")
    isolated = 0.0
    for z in water_distorted.numbers:
        single = Atoms(numbers=[z], positions=[(0, 0, 0)])
        single.calc = calc
        isolated += single.get_potential_energy()
    assert res.baseline_energy == pytest.approx(isolated, abs=1e-3)


def test_symmetric_hydrogens_get_equal_attributions(model_and_config, water_reference):
    model, config = model_and_config
    res = integrated_gradients(model, water_reference, config.cutoff, n_steps=64)
    assert res.atom_attributions[1] == pytest.approx(res.atom_attributions[2], abs=1e-5)


def test_baseline_must_match_atoms(model_and_config, water_reference):
    model, config = model_and_config
    with pytest.raises(ValueError, match="same atoms"):
        integrated_gradients(model, water_reference, config.cutoff, baseline=Atoms("H3", positions=np.eye(3) * 9))


def test_energy_decomposition_splits_the_same_atomisation_energy(model_and_config, water_distorted):
    """Σ (ε_i − E_isolated) and Σ IG both equal E(x) − E(dissociated), by two independent routes."""
    from mlipviz.attribution import binding_contributions

    model, config = model_and_config
    calc = MLIPCalculator(model, config, device="cpu")
    b = binding_contributions(water_distorted, calc)
    ig = integrated_gradients(model, water_distorted, config.cutoff, n_steps=512)
    assert b.sum() == pytest.approx(ig.energy - ig.baseline_energy, abs=1e-3)
    assert ig.atom_attributions.sum() == pytest.approx(b.sum(), rel=0.01)
    from mlipviz.reference import PySCFCalculator

    with pytest.raises(ValueError, match="PySCFCalculator does not provide per-atom energies"):
        binding_contributions(water_distorted, PySCFCalculator("HF/sto-3g"))
