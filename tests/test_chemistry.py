"""A potential refuses structures outside its chemistry: unknown elements, Z beyond its embedding, empty, NaN."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

from mlipviz.potential import MLIPCalculator, ModelConfig, build_model
from mlipviz.potential.chemistry import check_chemistry, elements_of, normalise_elements


@pytest.fixture(scope="module")
def water_calc(embedded_model_dir):
    return MLIPCalculator(embedded_model_dir, device="cpu")


@pytest.fixture(scope="module")
def blank_calc():
    """A model that records no elements: only its embedding limits the atomic numbers."""
    config = ModelConfig(representation="painn", n_atom_basis=8, n_interactions=1, cutoff=4.0)
    torch.manual_seed(0)
    return MLIPCalculator(build_model(config), config, device="cpu")


def _energy(atoms, calc):
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms.get_potential_energy()


def test_shipped_water_model_knows_h_and_o(water_calc, embedded_water):
    assert water_calc.config.elements == elements_of(embedded_water) == ["H", "O"]
    assert np.isfinite(_energy(embedded_water[0], water_calc))


@pytest.mark.parametrize("name, symbol", [("CH4", "C"), ("CH3OH", "C")])
def test_unknown_elements_are_refused_by_name(water_calc, name, symbol):
    with pytest.raises(ValueError, match=rf"contains {symbol} \(Z=6\), which the model never saw.*knows only H, O"):
        _energy(molecule(name), water_calc)


def test_atomic_number_beyond_the_embedding_is_refused(water_calc, blank_calc):
    fermium = Atoms([100, 1], positions=[(0, 0, 0), (0, 0, 1.5)])
    with pytest.raises(ValueError, match=r"Fm \(Z=100\), which the model never saw"):
        _energy(fermium, water_calc)
    # without recorded elements the embedding (Z = 0 … 99) still refuses it, instead of torch's IndexError
    with pytest.raises(ValueError, match=r"Fm \(Z=100\), which the model cannot represent \(.*covers Z < 100"):
        _energy(fermium, blank_calc)
    assert np.isfinite(_energy(molecule("CH4"), blank_calc))  # no element record: nothing else to refuse


def test_empty_and_nan_structures_are_refused(water_calc, water_distorted):
    with pytest.raises(ValueError, match="has no atoms"):
        _energy(Atoms(), water_calc)
    bad = water_distorted.copy()
    bad.positions[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite positions for atom index\(es\) \[2\]"):
        _energy(bad, water_calc)
    bad.positions[2, 1] = np.inf
    with pytest.raises(ValueError, match=r"\[2\]"):
        check_chemistry(bad, ["H", "O"])


def test_refusal_comes_before_any_result(water_calc, water_distorted):
    """A refused structure leaves no stale result behind: the next valid one is computed afresh."""
    atoms = water_distorted.copy()
    atoms.calc = water_calc
    e = atoms.get_potential_energy()
    methane = molecule("CH4")
    methane.calc = water_calc
    with pytest.raises(ValueError):
        methane.get_forces()
    assert atoms.get_potential_energy() == e


def test_elements_normalise_to_symbols_sorted_by_z():
    assert normalise_elements([8, "H", 1, "O"]) == ["H", "O"]
    assert ModelConfig(elements=[6, 1]).elements == ["H", "C"]
    with pytest.raises(ValueError, match=r"not chemical elements: \['Xx', 0\]"):
        normalise_elements(["Xx", 0, "H"])
    with pytest.raises(ValueError, match="list of chemical symbols"):
        normalise_elements("HO")
    with pytest.raises(ValueError, match="is empty"):
        ModelConfig(elements=[])
