"""Δ-learning: the pair is the sum of its members, it learns target − baseline, and bad input is refused."""

import json

import numpy as np
import pytest
from conftest import central_differences

from mlipviz import keys
from mlipviz.potential import MLIPCalculator, ModelConfig, load_model, save_model
from mlipviz.potential.delta import (
    META_DATA_INDICES,
    META_DELTA_BASELINE_LEVEL,
    META_DELTA_TARGET_LEVEL,
    DeltaCalculator,
    load_delta,
    train_delta,
)

TINY = ModelConfig(n_atom_basis=8, n_interactions=1, cutoff=4.0)
KW = dict(max_epochs=2, batch_size=8, progress=False, device="cpu")
TARGET_INDICES = list(range(1, 30, 2))  # 15 of the 30 structures carry the CCSD(T) budget


@pytest.fixture(scope="module")
def pair(tmp_path_factory, embedded_water):
    root = tmp_path_factory.mktemp("delta")
    result = train_delta(embedded_water[:30], baseline=None, target_indices=TARGET_INDICES, config=TINY,
                         delta_config=TINY, workdir=root / "work", save_to=root / "pair", **KW)
    return result, root


def _unlabel(atoms, slug):
    a = atoms.copy()
    del a.info[keys.energy_key(slug)]
    del a.arrays[keys.forces_key(slug)]
    return a


def test_delta_labels_written_for_training_are_target_minus_baseline(pair, embedded_water):
    from schnetpack.data import ASEAtomsData

    result, root = pair
    db = ASEAtomsData(str(root / "work" / "delta" / "train.db"))
    assert len(db) == len(TARGET_INDICES)
    for k, i in enumerate(TARGET_INDICES):
        raw = embedded_water[i]
        row = db[k]
        np.testing.assert_allclose(row["_positions"].numpy(), raw.positions, atol=1e-6)
        assert float(row["energy"]) == pytest.approx(raw.info["energy_ccsdt_ccpvdz"] - raw.info["energy_b3lyp_ccpvdz"],
                                                     abs=1e-6)
        np.testing.assert_allclose(row["forces"].numpy(),
                                   raw.arrays["forces_ccsdt_ccpvdz"] - raw.arrays["forces_b3lyp_ccpvdz"], atol=1e-6)
    # the baseline learned B3LYP on all 30 structures
    base_db = ASEAtomsData(str(root / "work" / "baseline" / "train.db"))
    assert len(base_db) == 30
    assert float(base_db[4]["energy"]) == pytest.approx(embedded_water[4].info["energy_b3lyp_ccpvdz"], abs=1e-6)


def test_metadata_names_what_each_member_learned(pair):
    result, root = pair
    meta = result.delta.config.metadata
    assert meta[META_DELTA_TARGET_LEVEL] == "CCSD(T)/cc-pVDZ"
    assert meta[META_DELTA_BASELINE_LEVEL] == "B3LYP/cc-pVDZ"
    assert meta[keys.META_LEVEL] == "CCSD(T)/cc-pVDZ - B3LYP/cc-pVDZ"
    assert meta[META_DATA_INDICES] == TARGET_INDICES
    assert sorted(meta[keys.META_SPLIT]["train"] + meta[keys.META_SPLIT]["val"]
                  + meta[keys.META_SPLIT]["test"]) == list(range(15))
    assert result.baseline.config.metadata[keys.META_LEVEL] == "B3LYP/cc-pVDZ"
    assert result.baseline.config.metadata[META_DATA_INDICES] == list(range(30))
    saved = json.loads((root / "pair" / "delta.json").read_text())
    assert (saved["target_level"], saved["baseline_level"]) == ("CCSD(T)/cc-pVDZ", "B3LYP/cc-pVDZ")
    _, delta_config = load_model(root / "pair" / "delta", device="cpu")
    assert delta_config.metadata[META_DELTA_BASELINE_LEVEL] == "B3LYP/cc-pVDZ"


def test_pair_lands_on_the_target_energy_scale(pair, embedded_water):
    """B3LYP and CCSD(T) total energies differ by ~4.8 eV; the Δ model's offset carries the pair across."""
    calc = pair[0].calculator(device="cpu")
    for i in (0, 1, 2):
        a = embedded_water[i].copy()
        a.calc = calc
        gap = abs(a.info["energy_ccsdt_ccpvdz"] - a.info["energy_b3lyp_ccpvdz"])
        assert gap > 1.0
        assert abs(a.get_potential_energy() - a.info["energy_ccsdt_ccpvdz"]) < 0.1 * gap


def test_calculator_is_the_sum_of_its_members(pair, water_distorted):
    root = pair[1] / "pair"
    calc = load_delta(root, device="cpu")
    assert (calc.target_level, calc.baseline_level) == ("CCSD(T)/cc-pVDZ", "B3LYP/cc-pVDZ")
    parts = []
    for sub in ("baseline", "delta"):
        a = water_distorted.copy()
        a.calc = MLIPCalculator(root / sub, device="cpu")
        parts.append((a.get_potential_energy(), a.get_forces(), a.get_potential_energies()))
    a = water_distorted.copy()
    a.calc = calc
    assert a.get_potential_energy() == pytest.approx(parts[0][0] + parts[1][0], abs=1e-9)
    np.testing.assert_allclose(a.get_forces(), parts[0][1] + parts[1][1], atol=1e-9)
    np.testing.assert_allclose(a.get_potential_energies(), parts[0][2] + parts[1][2], atol=1e-9)
    assert a.get_potential_energies().sum() == pytest.approx(a.get_potential_energy(), abs=1e-4)
    # the in-memory pair gives the same numbers as the saved one
    b = water_distorted.copy()
    b.calc = pair[0].calculator(device="cpu")
    assert b.get_potential_energy() == pytest.approx(a.get_potential_energy(), abs=1e-6)


def test_forces_are_minus_the_energy_gradient(pair, water_distorted):
    calc = load_delta(pair[1] / "pair", device="cpu")

    def energy(atoms):
        atoms.calc = calc
        return atoms.get_potential_energy()

    a = water_distorted.copy()
    a.calc = calc
    forces = a.get_forces()
    assert np.abs(forces).max() > 1e-3  # not trivially zero
    np.testing.assert_allclose(forces, central_differences(energy, water_distorted, h=1e-2), atol=2e-3)


def test_calculator_refuses_foreign_chemistry_and_mismatched_members(pair, embedded_model_dir):
    from ase.build import molecule

    root = pair[1] / "pair"
    calc = load_delta(root, device="cpu")
    methane = molecule("CH4")
    methane.calc = calc
    with pytest.raises(ValueError, match="baseline model \\(B3LYP/cc-pVDZ\\) refuses.*C \\(Z=6\\)"):
        methane.get_potential_energy()
    # the shipped model learned CCSD(T), not B3LYP: no baseline for this Δ model
    with pytest.raises(ValueError, match="baseline was trained on CCSD\\(T\\)/cc-pVDZ, not on baseline_level="):
        DeltaCalculator(embedded_model_dir, root / "delta", device="cpu")
    with pytest.raises(ValueError, match="delta: the model's metadata names no target and baseline level"):
        DeltaCalculator(root / "baseline", embedded_model_dir, device="cpu")
    model, config = load_model(root / "delta", device="cpu")
    config.elements = ["H", "C", "O"]
    with pytest.raises(ValueError, match="baseline knows elements \\['H', 'O'\\] but the Δ model knows \\['H', 'C'"):
        DeltaCalculator(root / "baseline", (model, config), device="cpu")


def test_load_refuses_a_swapped_member(pair, tmp_path):
    import shutil

    copy = tmp_path / "pair"
    shutil.copytree(pair[1] / "pair", copy)
    model, config = load_model(copy / "baseline", device="cpu")
    config.metadata["note"] = "retrained elsewhere"
    save_model(model, config, copy / "baseline")
    with pytest.raises(ValueError, match="baseline/config.json is not the baseline model saved with this pair"):
        load_delta(copy, device="cpu")


def test_train_delta_refuses_bad_input_before_training(tmp_path, embedded_water, pair, embedded_model_dir):
    images = embedded_water[:12]
    work = tmp_path / "w"
    kw = dict(config=TINY, delta_config=TINY, workdir=work, **KW)
    with pytest.raises(ValueError, match="12 of 12 structures lack CCSD\\(T\\)/cc-pVDZ energy and forces and 0 lack"):
        train_delta([_unlabel(a, "ccsdt_ccpvdz") for a in images], **kw)
    with pytest.raises(ValueError, match="0 of 12 structures lack CCSD\\(T\\).* and 12 lack B3LYP/cc-pVDZ"):
        train_delta([_unlabel(a, "b3lyp_ccpvdz") for a in images], **kw)
    with pytest.raises(ValueError, match="target_indices has indices \\[12\\] outside 0..11"):
        train_delta(images, target_indices=[0, 1, 12], **kw)
    partly = [_unlabel(a, "ccsdt_ccpvdz") if i in (3, 5) else a for i, a in enumerate(images)]
    with pytest.raises(ValueError, match="target_indices: 2 of 6 structures \\(first: structure 3\\) have no "
                                         "CCSD\\(T\\)/cc-pVDZ energy and forces"):
        train_delta(partly, target_indices=[0, 1, 2, 3, 4, 5], **kw)
    with pytest.raises(ValueError, match="target_indices repeats indices \\[2\\]"):
        train_delta(images, target_indices=[0, 2, 2, 4], **kw)
    with pytest.raises(ValueError, match="baseline was trained on CCSD\\(T\\)/cc-pVDZ, not on baseline_level="
                                         "'B3LYP/cc-pVDZ'"):
        train_delta(images, baseline=embedded_model_dir, delta_config=TINY, workdir=work, **KW)
    # a carbon structure labelled only at B3LYP: the baseline would know C, the Δ model would not
    carbon = images[0].copy()
    carbon.numbers = [6, 1, 1]
    carbon = _unlabel(carbon, "ccsdt_ccpvdz")
    with pytest.raises(ValueError, match="13 baseline structures .* hold elements \\['H', 'C', 'O'\\] but the 12 Δ"):
        train_delta(images + [carbon], **kw)
    with pytest.raises(ValueError, match="train_delta sets \\['split'\\] itself"):
        train_delta(images, split={"train": [0, 1], "val": [2]}, **kw)
    with pytest.raises(ValueError, match="both B3LYP/cc-pVDZ"):
        train_delta(images, target_level="b3lyp/cc-pvdz", **kw)
    base = pair[0].baseline
    with pytest.raises(ValueError, match="config describes a baseline to train"):
        train_delta(images, baseline=(base.model, base.config), **kw)
    assert not work.exists()  # refused before anything was written
