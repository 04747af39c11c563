"""Saved models: SHA-256 checksums refuse damage, loading never unpickles, weights must fit their architecture."""

import json

import numpy as np
import pytest
import torch

from mlipviz import keys
from mlipviz.potential import ChecksumError, MLIPCalculator, ModelConfig, build_model, load_model, save_model
from mlipviz.potential.files import check_state_dict, config_digest, file_digest
from mlipviz.potential.model import CONFIG_FILE, MODEL_FILE


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small PaiNN with a water-like offset, its config, and its saved directory."""
    torch.manual_seed(1)
    config = ModelConfig(representation="painn", n_atom_basis=8, n_interactions=2, cutoff=4.0, elements=["O", "H"])
    model = build_model(config)
    model.postprocessors[1].mean = torch.tensor([-691.4666323], dtype=torch.float64)
    return model, config, save_model(model, config, tmp_path_factory.mktemp("saved"))


def _copy(src, dst):
    dst.mkdir()
    for name in (CONFIG_FILE, MODEL_FILE):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def _energy(model, config, atoms):
    a = atoms.copy()
    a.calc = MLIPCalculator(model, config, device="cpu")
    return a.get_potential_energy()


def test_saved_model_records_digests_of_both_files(saved):
    _, _, directory = saved
    data = json.loads((directory / CONFIG_FILE).read_text())
    recorded = data[keys.MODEL_CHECKSUMS]
    assert recorded[MODEL_FILE] == file_digest(directory / MODEL_FILE)  # sha256 of the bytes on disk
    assert recorded["config"] == config_digest(data)
    assert data["elements"] == ["H", "O"]  # normalised: symbols in order of atomic number


def test_round_trip_predicts_the_same_energy(saved, water_distorted):
    model, config, directory = saved
    loaded, cfg = load_model(directory, device="cpu")
    assert cfg == config
    e = _energy(loaded, cfg, water_distorted)
    assert e == _energy(model, config, water_distorted)
    assert e == pytest.approx(3 * -691.4666323, abs=5.0)  # the float64 offset survives the round trip


def test_bit_flips_in_weights_are_refused(saved, tmp_path):
    _, _, directory = saved
    raw = (directory / MODEL_FILE).read_bytes()
    rng = np.random.default_rng(0)
    for k, pos in enumerate(rng.integers(0, len(raw), size=20)):
        damaged = _copy(directory, tmp_path / f"flip{k}")
        data = bytearray(raw)
        data[pos] ^= 1 << int(rng.integers(0, 8))
        (damaged / MODEL_FILE).write_bytes(bytes(data))
        with pytest.raises(ChecksumError, match=f"{damaged / MODEL_FILE}.*does not match"):
            load_model(damaged, device="cpu")


def test_edited_config_is_refused_but_reformatting_is_not(saved, tmp_path, water_distorted):
    model, config, directory = saved
    edited = _copy(directory, tmp_path / "edited")
    data = json.loads((edited / CONFIG_FILE).read_text())
    data["cutoff"] = 3.0
    (edited / CONFIG_FILE).write_text(json.dumps(data, indent=2))
    with pytest.raises(ChecksumError, match=f"{edited / CONFIG_FILE}.*edited or damaged"):
        load_model(edited, device="cpu")
    (edited / CONFIG_FILE).write_text("{ not json")
    with pytest.raises(ChecksumError, match="not valid JSON"):
        load_model(edited, device="cpu")
    data["cutoff"] = 4.0  # the same values, written in another layout, still load
    (edited / CONFIG_FILE).write_text(json.dumps(data, indent=None, sort_keys=True))
    loaded, cfg = load_model(edited, device="cpu")
    assert _energy(loaded, cfg, water_distorted) == _energy(model, config, water_distorted)


def test_model_without_checksums_needs_trust(saved, tmp_path):
    _, _, directory = saved
    old = _copy(directory, tmp_path / "old")
    data = json.loads((old / CONFIG_FILE).read_text())
    del data[keys.MODEL_CHECKSUMS]
    (old / CONFIG_FILE).write_text(json.dumps(data))
    with pytest.raises(ChecksumError, match="records no SHA-256 checksums"):
        load_model(old, device="cpu")
    with pytest.warns(UserWarning, match="unverified"):
        load_model(old, device="cpu", trust=True)
    data["cutoff"] = 3.0  # unverified, the cutoff stored with the weights still catches this edit
    (old / CONFIG_FILE).write_text(json.dumps(data))
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="4 Å cutoff but config.json says 3 Å"):
        load_model(old, device="cpu", trust=True)


def test_pickled_schnetpack_model_needs_trust(saved, tmp_path, water_distorted):
    model, config, _ = saved
    path = tmp_path / "best_model"
    torch.save(model, path)  # what spktrain writes: a pickle of the whole module
    with pytest.raises(ValueError, match="trust=True"):
        load_model(path, device="cpu")
    with pytest.raises(ValueError, match="trust=True"):
        MLIPCalculator(path, device="cpu")
    loaded, cfg = load_model(path, device="cpu", trust=True)
    assert (cfg.representation, cfg.n_atom_basis, cfg.n_interactions, cfg.cutoff) == ("painn", 8, 2, 4.0)
    assert cfg.metadata[keys.META_TRUSTED_PICKLE] == "best_model"
    assert _energy(loaded, cfg, water_distorted) == pytest.approx(_energy(model, config, water_distorted), abs=1e-9)


def test_weights_of_another_architecture_get_a_clear_error(saved, tmp_path):
    _, _, directory = saved
    schnet = build_model(ModelConfig(representation="schnet", n_atom_basis=16, n_interactions=2, cutoff=4.0))
    painn = build_model(ModelConfig(representation="painn", n_atom_basis=8, n_interactions=2, cutoff=4.0))
    with pytest.raises(ValueError, match=r"another architecture than painn.*like schnet with 16 features.*missing"):
        check_state_dict(schnet.state_dict(), painn, "weights.pt", "painn")
    wider = build_model(ModelConfig(representation="painn", n_atom_basis=16, n_interactions=2, cutoff=4.0))
    with pytest.raises(ValueError, match=r"wrong shape: .*\(100, 16\) vs \(100, 8\)"):
        check_state_dict(wider.state_dict(), painn, "weights.pt", "painn")
    # a directory whose weights belong to another model: refused by name, not with torch's size-mismatch traceback
    other = _copy(directory, tmp_path / "other")
    torch.save(schnet.state_dict(), other / MODEL_FILE)
    with pytest.raises(ChecksumError, match="weights are damaged or were replaced"):
        load_model(other, device="cpu")
    data = json.loads((other / CONFIG_FILE).read_text())
    del data[keys.MODEL_CHECKSUMS]
    (other / CONFIG_FILE).write_text(json.dumps(data))
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="another architecture.*look like schnet"):
        load_model(other, device="cpu", trust=True)


def test_weights_load_without_unpickling(saved):
    """model.pt holds tensors only: the restricted weights-only unpickler reads it."""
    _, _, directory = saved
    state = torch.load(directory / MODEL_FILE, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert state["postprocessors.1.mean"].dtype == torch.float64


def test_shipped_model_is_checksummed_and_records_its_data(embedded_model_dir, embedded_water):
    from mlipviz.potential.provenance import dataset_sha256

    model, config = load_model(embedded_model_dir, device="cpu")  # verifies both digests
    meta = config.metadata
    assert config.elements == ["H", "O"]
    assert meta[keys.META_DATASET_SHA256] == dataset_sha256(embedded_water, meta[keys.META_LEVEL])
    assert "CCSD(T)/cc-pVDZ" in meta[keys.META_LEVELS] and "B3LYP/cc-pVDZ" in meta[keys.META_LEVELS]
    split = meta[keys.META_SPLIT]
    assert sorted(split["train"] + split["val"] + split["test"]) == list(range(len(embedded_water)))
