"""mlipviz.potential: pickle-free save/load, forces as energy gradients, training, device choice."""

import json

import numpy as np
import pytest
import torch
from conftest import central_differences

from mlipviz.device import resolve_device
from mlipviz.potential import MLIPCalculator, ModelConfig, build_model, load_model, save_model, train_potential
from mlipviz.potential.model import MODEL_FILE


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    torch.manual_seed(0)
    config = ModelConfig(representation="painn", n_atom_basis=16, n_interactions=2, cutoff=4.0)
    model = build_model(config)
    model.postprocessors[1].mean = torch.tensor([-691.0], dtype=torch.float64)  # eV/atom, like water at CC level
    return save_model(model, config, tmp_path_factory.mktemp("tiny"))


@pytest.mark.parametrize("representation", ["painn", "schnet", "so3net"])
def test_save_load_round_trip_is_pickle_free(tmp_path, water_distorted, representation):
    config = ModelConfig(representation=representation, n_atom_basis=8, n_interactions=1, metadata={"note": "x"})
    model = build_model(config)
    save_model(model, config, tmp_path)
    state = torch.load(tmp_path / MODEL_FILE, weights_only=True)  # would raise on a pickled module
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    loaded, cfg = load_model(tmp_path, device="cpu")
    assert cfg == config
    a, b = water_distorted.copy(), water_distorted.copy()
    a.calc, b.calc = MLIPCalculator(model, config, device="cpu"), MLIPCalculator(loaded, cfg, device="cpu")
    assert a.get_potential_energy() == b.get_potential_energy()
    np.testing.assert_array_equal(a.get_forces(), b.get_forces())


def test_forces_are_minus_energy_gradient(tiny_model_dir, water_distorted):
    calc = MLIPCalculator(tiny_model_dir, device="cpu")

    def energy(atoms):
        atoms = atoms.copy()
        atoms.calc = calc
        return atoms.get_potential_energy()

    atoms = water_distorted.copy()
    atoms.calc = calc
    numeric = central_differences(energy, water_distorted, h=1e-2)
    np.testing.assert_allclose(atoms.get_forces(), numeric, atol=2e-3)


def test_per_atom_energies_sum_to_total(tiny_model_dir, water_distorted):
    atoms = water_distorted.copy()
    atoms.calc = MLIPCalculator(tiny_model_dir, device="cpu")
    e = atoms.get_potential_energy()
    per_atom = atoms.get_potential_energies()
    assert per_atom.shape == (3,)
    assert per_atom.sum() == pytest.approx(e, abs=1e-4)
    assert e == pytest.approx(3 * -691.0, abs=50)  # the offset is part of the total


def test_skin_neighbour_list_gives_same_forces(tiny_model_dir, water_distorted):
    plain, skin = MLIPCalculator(tiny_model_dir, device="cpu"), MLIPCalculator(tiny_model_dir, device="cpu", skin=0.5)
    for shift in (0.0, 0.05, 0.1):
        a, b = water_distorted.copy(), water_distorted.copy()
        a.positions[1] += shift
        b.positions[1] += shift
        a.calc, b.calc = plain, skin
        np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=1e-5)


def test_load_model_errors(tmp_path, tiny_model_dir):
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        load_model(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"representation": "painn", "n_atom_basis": 99}))
    (bad / MODEL_FILE).write_bytes((tiny_model_dir / MODEL_FILE).read_bytes())
    with pytest.raises(ValueError, match="do not fit the architecture"):
        load_model(bad)
    with pytest.raises(ValueError, match="Unknown model-config key"):
        ModelConfig.from_dict({"representation": "painn", "n_atoms_basis": 8})
    with pytest.raises(ValueError, match="representation='mace'"):
        ModelConfig(representation="mace")


def test_device_selection():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="not a torch device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU is visible"):
            resolve_device("cuda")


def test_training_reduces_held_out_force_error(tmp_path, embedded_water):
    """A short real training run beats the untrained model on structures it never saw."""
    from mlipviz.metrology import evaluate

    images = embedded_water[:60]
    config = ModelConfig(n_atom_basis=16, n_interactions=2, cutoff=4.0)
    result = train_potential(
        images, "CCSD(T)/cc-pVDZ", config, workdir=tmp_path / "w", save_to=tmp_path / "m",
        n_train=40, n_val=10, batch_size=8, lr=2e-3, max_epochs=25, progress=False, device="cpu",
    )
    test_idx = result.config.metadata["split"]["test"]
    assert len(test_idx) == 10 and not set(test_idx) & set(result.config.metadata["split"]["train"])
    held_out = [images[i] for i in test_idx]
    untrained = build_model(config)
    untrained.postprocessors[1].mean = result.model.postprocessors[1].mean.clone()
    before = evaluate(MLIPCalculator(untrained, config, device="cpu"), held_out, "CCSD(T)/cc-pVDZ")
    after = evaluate(MLIPCalculator(tmp_path / "m", device="cpu"), held_out, "CCSD(T)/cc-pVDZ")
    assert after["forces"]["MAE"].value < 0.7 * before["forces"]["MAE"].value
    assert len(result.history) >= 2 and "val_loss" in result.history[0]
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["metadata"]["level"] == "CCSD(T)/cc-pVDZ"


def test_training_rejects_unlabelled_data(tmp_path, water_distorted):
    with pytest.raises(KeyError, match="not labelled with forces at CCSD\\(T\\)/cc-pVDZ"):
        train_potential([water_distorted] * 5, "CCSD(T)/cc-pVDZ", workdir=tmp_path, progress=False)
