"""mlipviz.attribution: adaptive Integrated Gradients, bad input, saliency, the embedding mask, the decomposition."""

import copy
import warnings

import numpy as np
import pytest
import torch
from ase import Atoms

from mlipviz.attribution import (
    CompletenessWarning,
    binding_contributions,
    dissociated_baseline,
    embedding_attributions,
    energy_function,
    integrated_gradients,
    saliency,
)
from mlipviz.potential import MLIPCalculator

from conftest import central_differences

TOL = 1e-3  # eV, the default completeness tolerance


def _energy(calc, atoms):
    a = atoms.copy()
    a.calc = calc
    return a.get_potential_energy()


def test_adaptive_steps_close_the_completeness_gap(model_and_config, calc, water_distorted):
    """The dissociation path needs far more than 64 points; the adaptive result meets 1 meV and says how many."""
    model, config = model_and_config
    with pytest.warns(CompletenessWarning, match="completeness gap"):
        fixed = integrated_gradients(model, water_distorted, config.cutoff, baseline="dissociated", n_steps=64)
    assert abs(fixed.completeness_gap) > TOL and not fixed.converged
    res = integrated_gradients(model, water_distorted, config.cutoff, baseline="dissociated")
    assert res.converged and abs(res.completeness_gap) < TOL
    assert res.n_steps > 64 and res.n_steps % 16 == 0 and res.tolerance == TOL
    # The energies come from the same model through SchNetPack's own neighbour list and calculator.
    assert res.energy == pytest.approx(_energy(calc, water_distorted), abs=1e-3)
    assert res.baseline_energy == pytest.approx(_energy(calc, res.baseline), abs=1e-3)
    total = res.energy - res.baseline_energy
    assert abs(total) > 1.0  # a real atomisation energy, eV
    assert res.atom_attributions.sum() == pytest.approx(total, abs=TOL)
    assert res.completeness_gap == pytest.approx(res.atom_attributions.sum() - total, abs=1e-5)
    np.testing.assert_allclose(res.coordinate_attributions.sum(axis=1), res.atom_attributions)


def test_a_gap_that_does_not_close_warns(model_and_config, water_distorted):
    model, config = model_and_config
    with pytest.warns(CompletenessWarning, match="raise max_steps or tol"):
        res = integrated_gradients(model, water_distorted, config.cutoff, baseline="dissociated", max_steps=16)
    assert res.n_steps == 16 and not res.converged and abs(res.completeness_gap) > TOL
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompletenessWarning)  # a loose tolerance is met without a warning
        loose = integrated_gradients(model, water_distorted, config.cutoff, baseline="dissociated", tol=1.0)
    assert loose.n_steps == 16 and loose.converged


def test_baseline_energy_is_the_sum_of_isolated_atoms(model_and_config, calc, water_distorted):
    """Beyond the cutoff the atoms do not interact, so E(dissociated) = Σ E(single atom)."""
    model, config = model_and_config
    base = dissociated_baseline(water_distorted, config.cutoff)
    d = np.linalg.norm(base.positions[:, None] - base.positions[None], axis=-1)
    assert d[np.triu_indices(3, 1)].min() > config.cutoff
    res = integrated_gradients(model, water_distorted, config.cutoff, baseline="dissociated")
    isolated = sum(_energy(calc, Atoms(numbers=[z], positions=[(0, 0, 0)])) for z in water_distorted.numbers)
    assert res.baseline_energy == pytest.approx(isolated, abs=1e-3)


def test_energy_function_matches_the_calculator(model_and_config, calc, water_distorted):
    model, _ = model_and_config
    f = energy_function(model, water_distorted)
    x = torch.as_tensor(water_distorted.positions, dtype=torch.float32)[None]
    assert float(f(x).detach()[0]) == pytest.approx(_energy(calc, water_distorted), abs=1e-3)


def test_symmetric_hydrogens_get_equal_attributions(model_and_config, water_reference):
    model, config = model_and_config
    for baseline in ("minimum", "dissociated"):
        res = integrated_gradients(model, water_reference, config.cutoff, baseline=baseline)
        assert res.atom_attributions[1] == pytest.approx(res.atom_attributions[2], abs=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"baseline": "nan"}, "baseline has NaN or infinite positions"),
        ({"cutoff": float("nan")}, "cutoff must be a finite positive distance"),
        ({"cutoff": -5.0}, "cutoff must be a finite positive distance"),
        ({"cutoff": "5"}, "cutoff must be a distance in Å"),
        ({"n_steps": 0}, "n_steps must be a positive integer"),
        ({"n_steps": 2.5}, "n_steps must be a positive integer"),
        ({"tol": 0.0}, "tol must be a finite positive number"),
        ({"tol": float("nan")}, "tol must be a finite positive number"),
        ({"max_steps": -1}, "max_steps must be a positive integer"),
        ({"baseline": "bogus"}, "baseline='bogus' is not one of"),
        ({"baseline": 3.0}, "baseline must be an ase.Atoms"),
        ({"baseline": "H3"}, "same atoms in the same order"),
        ({"baseline": "dissociated", "cutoff": None}, "needs the model's cutoff"),
        ({"baseline": "training-minimum"}, "needs the training structures"),
    ],
)
def test_bad_input_is_refused_by_name(model_and_config, water_reference, kwargs, match):
    model, config = model_and_config
    kwargs = {"cutoff": config.cutoff, **kwargs}
    if kwargs.get("baseline") == "nan":
        bad = water_reference.copy()
        bad.positions[1, 0] = np.nan
        kwargs["baseline"] = bad
    elif kwargs.get("baseline") == "H3":
        kwargs["baseline"] = Atoms("H3", positions=np.eye(3) * 9)
    cutoff = kwargs.pop("cutoff")
    with pytest.raises(ValueError, match=match):
        integrated_gradients(model, water_reference, cutoff, **kwargs)


def test_nan_structure_is_refused(model_and_config, water_reference):
    model, config = model_and_config
    bad = water_reference.copy()
    bad.positions[0, 2] = np.inf
    for fn in (lambda: integrated_gradients(model, bad, config.cutoff), lambda: saliency(model, bad),
               lambda: embedding_attributions(model, bad)):
        with pytest.raises(ValueError, match=r"NaN or infinite positions for atom index\(es\) \[0\]"):
            fn()
    with pytest.raises(ValueError, match="n_steps must be a positive integer"):
        embedding_attributions(model, water_reference, n_steps=0)


def test_saliency_is_the_force_magnitude(model_and_config, calc, water_distorted):
    """captum's Saliency, per atom, is |∂E/∂r_i| = |F_i|: compare with SchNetPack's forces and finite differences."""
    model, _ = model_and_config
    s = saliency(model, water_distorted)
    assert s.shape == (3,) and np.all(s > 0.05)
    a = water_distorted.copy()
    a.calc = calc
    np.testing.assert_allclose(s, np.linalg.norm(a.get_forces(), axis=1), rtol=1e-4, atol=1e-5)
    fd = central_differences(lambda b: _energy(calc, b), water_distorted, h=1e-3)
    np.testing.assert_allclose(s, np.linalg.norm(fd, axis=1), atol=5e-3)  # float32 energies over 2 mÅ


def test_embedding_mask_attributions_complete_to_the_zero_embedding_energy(model_and_config, water_distorted,
                                                                          water_reference):
    """Σ per-atom attributions = E(x) − E(x with every atom-type embedding zeroed), the latter computed
    independently by a copy of the model whose embedding table is all zeros."""
    model, config = model_and_config
    res = embedding_attributions(model, water_distorted)
    assert res.converged and abs(res.completeness_gap) < TOL and res.atom_attributions.shape == (3,)
    assert res.coordinate_attributions is None and res.baseline_kind == "zero embedding"
    zeroed = copy.deepcopy(model)
    with torch.no_grad():
        zeroed.representation.embedding.weight.zero_()
    e_zero = _energy(MLIPCalculator(zeroed, config, device="cpu"), water_distorted)
    assert res.baseline_energy == pytest.approx(e_zero, abs=1e-3)
    assert res.atom_attributions.sum() == pytest.approx(res.energy - e_zero, abs=2e-3)
    assert abs(res.energy - e_zero) > 0.05
    sym = embedding_attributions(model, water_reference)
    assert sym.atom_attributions[1] == pytest.approx(sym.atom_attributions[2], abs=1e-5)


def test_energy_decomposition_splits_the_same_atomisation_energy(model_and_config, calc, water_distorted):
    """Σ (ε_i − E_isolated) and Σ IG both equal E(x) − E(dissociated), by two independent routes."""
    model, config = model_and_config
    b = binding_contributions(water_distorted, calc)
    ig = integrated_gradients(model, water_distorted, config.cutoff, baseline="dissociated")
    assert b.sum() == pytest.approx(ig.energy - ig.baseline_energy, abs=1e-3)
    assert ig.atom_attributions.sum() == pytest.approx(b.sum(), abs=2e-3)
    from mlipviz.reference import PySCFCalculator

    with pytest.raises(ValueError, match="PySCFCalculator does not provide per-atom energies"):
        binding_contributions(water_distorted, PySCFCalculator("HF/sto-3g"))
