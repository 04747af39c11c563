"""mlipviz.potential: pickle-free save/load, forces as energy gradients, training, device choice."""

import json

import numpy as np
import pytest
import torch
from conftest import central_differences

from mlipviz import keys
from mlipviz.device import resolve_device
from mlipviz.metrology.errors import predict
from mlipviz.potential import MLIPCalculator, ModelConfig, build_model, load_model, save_model, train_potential
from mlipviz.potential.model import MODEL_FILE
from mlipviz.reference.labelling import level_energy, level_forces


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
    with pytest.raises(ValueError, match="records no SHA-256 checksums"):
        load_model(bad)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="another architecture than the painn \\(99 feat"):
        load_model(bad, trust=True)
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
    """A short real training run beats the untrained model on structures it never saw, without an energy bias."""
    from mlipviz.metrology import evaluate
    from mlipviz.potential.provenance import dataset_sha256

    images = embedded_water[:60]
    config = ModelConfig(n_atom_basis=16, n_interactions=2, cutoff=4.0)
    result = train_potential(
        images, "CCSD(T)/cc-pVDZ", config, workdir=tmp_path / "w", save_to=tmp_path / "m",
        n_train=40, n_val=10, batch_size=8, lr=2e-3, max_epochs=25, progress=False, device="cpu",
    )
    meta = result.config.metadata
    test_idx = meta["split"]["test"]
    assert len(test_idx) == 10 and not set(test_idx) & set(meta["split"]["train"])
    held_out = [images[i] for i in test_idx]
    untrained = build_model(config)
    untrained.postprocessors[1].mean = result.model.postprocessors[1].mean.clone()
    before = evaluate(MLIPCalculator(untrained, config, device="cpu"), held_out, "CCSD(T)/cc-pVDZ")
    after = evaluate(MLIPCalculator(tmp_path / "m", device="cpu"), held_out, "CCSD(T)/cc-pVDZ")
    assert after["forces"]["MAE"].value < 0.7 * before["forces"]["MAE"].value
    assert len(result.history) >= 2 and "val_loss" in result.history[0]
    assert all(keys.HISTORY_VAL_ENERGY_SIGNED in h and keys.HISTORY_VAL_FORCES_SIGNED in h for h in result.history)
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["metadata"]["level"] == "CCSD(T)/cc-pVDZ" and saved["elements"] == ["H", "O"]
    assert meta[keys.META_DATASET_SHA256] == dataset_sha256(images, "CCSD(T)/cc-pVDZ")
    assert meta[keys.META_BEST_VAL_ENERGY_SIGNED] is not None

    # No constant bias: the signed energy error on the training split, measured independently through the ASE
    # calculator against the reference labels, is zero after the offset refit (it is a least-squares constant).
    calc = MLIPCalculator(tmp_path / "m", device="cpu")
    for part in ("train", "val", "test"):
        idx = meta["split"][part]
        e_pred, f_pred = predict(calc, [images[i] for i in idx])
        err = e_pred - level_energy([images[i] for i in idx], "CCSD(T)/cc-pVDZ")
        recorded = meta[keys.META_ERRORS][part]
        assert recorded[keys.ERR_N] == len(idx)
        assert recorded[keys.ERR_ENERGY_SIGNED] == pytest.approx(err.mean(), abs=2e-6)
        assert recorded[keys.ERR_ENERGY_MAE] == pytest.approx(np.abs(err).mean(), abs=2e-6)
        f_ref = level_forces([images[i] for i in idx], "CCSD(T)/cc-pVDZ")
        f_err = np.concatenate([(p - r).ravel() for p, r in zip(f_pred, f_ref)])
        assert recorded[keys.ERR_FORCES_MAE] == pytest.approx(np.abs(f_err).mean(), rel=1e-4)
        if part == "train":
            assert abs(err.mean()) < 1e-5 < np.abs(err).mean()


def test_training_rejects_unlabelled_data(tmp_path, water_distorted):
    with pytest.raises(ValueError, match="5 of 5 training structures .* no CCSD\\(T\\)/cc-pVDZ energy and forces"):
        train_potential([water_distorted] * 5, "CCSD(T)/cc-pVDZ", workdir=tmp_path, progress=False)


def test_training_rejects_bad_input_before_training(tmp_path, embedded_water):
    images = embedded_water[:12]
    kw = dict(workdir=tmp_path / "w", progress=False, device="cpu", max_epochs=1)
    with pytest.raises(ValueError, match="level='PBE0/cc-pVDZ'.*holds B3LYP/cc-pVDZ, CCSD\\(T\\)/cc-pVDZ"):
        train_potential(images, "PBE0/cc-pVDZ", **kw)
    with pytest.raises(ValueError, match="split\\['val'\\] is empty"):
        train_potential(images, split={"train": list(range(10)), "val": [], "test": [10, 11]}, **kw)
    with pytest.raises(ValueError, match="n_train=12, n_val=0 do not fit"):
        train_potential(images, n_train=12, n_val=0, **kw)
    with pytest.raises(ValueError, match="share indices \\[9\\]"):
        train_potential(images, split={"train": list(range(10)), "val": [9], "test": [10]}, **kw)
    # the same geometry stored twice, once in training and once in the test split
    leak = {"train": list(range(10)), "val": [10], "test": [11, 12]}
    with pytest.raises(ValueError, match="leaks 1 test structure.*12 \\(test\\) has the same geometry as structure 3"):
        train_potential(images + [images[3].copy()], split=leak, **kw)
    with pytest.raises(ValueError, match="the training data holds \\['H', 'O'\\]"):
        train_potential(images, config=ModelConfig(elements=["C", "H", "O"]), **kw)
    other = build_model(ModelConfig(representation="schnet", n_atom_basis=8, n_interactions=1))
    painn = ModelConfig(n_atom_basis=8, n_interactions=1)
    with pytest.raises(ValueError, match="init_from holds weights of another architecture than painn.*like schnet"):
        train_potential(images, config=painn, init_from=other.state_dict(), **kw)
    assert not (tmp_path / "w" / "train.db").exists()  # refused before anything was written


def test_explicit_split_and_warm_start(tmp_path, embedded_water):
    images = embedded_water[:16]
    split = {"train": list(range(10)), "val": [10, 11, 12], "test": [13, 14, 15]}
    config = ModelConfig(n_atom_basis=8, n_interactions=1, cutoff=4.0)
    kw = dict(workdir=tmp_path / "w", progress=False, device="cpu", batch_size=5)
    first = train_potential(images, config=config, split=split, save_to=tmp_path / "a", max_epochs=8, lr=5e-3, **kw)
    assert first.config.metadata["split"] == split
    with pytest.raises(ValueError, match="init_from=.* is a painn \\(8 features.*asks for a painn \\(16 features"):
        train_potential(images, config=ModelConfig(n_atom_basis=16, n_interactions=1, cutoff=4.0),
                        init_from=tmp_path / "a", split=split, **kw)
    # a warm start at a negligible learning rate keeps the saved network: its validation loss is the first run's best
    second = train_potential(images, config=config, split=split, init_from=tmp_path / "a", max_epochs=1, lr=1e-9, **kw)
    best = min(h["val_loss"] for h in first.history)
    assert best < 0.5 * first.history[0]["val_loss"]
    assert second.history[0]["val_loss"] == pytest.approx(best, rel=1e-3)


def test_refit_energy_offset_is_the_least_squares_constant():
    """δ = Σ n r / Σ n² over structures of mixed size, checked against numpy's least squares."""
    from mlipviz.potential.bias import refit_energy_offset, split_errors

    class Net(torch.nn.Module):  # stands in for a potential: "energy" is a fixed network output per structure
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.do_postprocessing = True
            self.postprocessors = torch.nn.ModuleList([build_model(ModelConfig(n_atom_basis=4)).postprocessors[1]])
            self.postprocessors[0].mean = torch.tensor([-100.0], dtype=torch.float64)

        def forward(self, batch):
            n = batch["_n_atoms"]
            return {"energy": batch["raw"] + 0 * self.w, "forces": torch.zeros(int(n.sum()), 3)}

    rng = np.random.default_rng(0)
    n = rng.integers(2, 9, size=40)
    raw, target = rng.normal(size=40), rng.normal(0.3, 1.0, size=40)
    batches = [{"_n_atoms": torch.tensor(n[s]), "raw": torch.tensor(raw[s]), "energy": torch.tensor(target[s]),
                "forces": torch.zeros(int(n[s].sum()), 3)} for s in (slice(i, i + 8) for i in range(0, 40, 8))]
    net = Net()
    delta = refit_energy_offset(net, batches)
    expected = np.linalg.lstsq(n[:, None].astype(float), target - raw, rcond=None)[0][0]
    assert delta == pytest.approx(expected, rel=1e-12)
    assert float(net.postprocessors[0].mean) == pytest.approx(-100.0 + expected, rel=1e-14)
    assert net.do_postprocessing  # restored
    errs = split_errors(net, batches, delta)
    resid = raw + n * delta - target
    assert errs[keys.ERR_ENERGY_SIGNED] == pytest.approx(resid.mean(), abs=1e-12)
    assert errs[keys.ERR_ENERGY_MAE] == pytest.approx(np.abs(resid).mean(), abs=1e-12)


def test_mean_signed_error_metric_matches_numpy(rng):
    from mlipviz.potential.bias import MeanSignedError

    metric = MeanSignedError()
    preds, targets = rng.normal(size=(3, 7)), rng.normal(size=(3, 7))
    for p, t in zip(preds, targets):
        metric.update(torch.tensor(p, dtype=torch.float32), torch.tensor(t, dtype=torch.float32))
    assert float(metric.compute()) == pytest.approx((preds - targets).mean(), abs=1e-6)
    with pytest.raises(ValueError, match="shape"):
        metric.update(torch.zeros(2), torch.zeros(3))


def test_calculator_adds_the_offset_in_float64(water_distorted):
    """SpkCalculator casts buffers to float32; the -691.4675 eV/atom offset must still be added unrounded."""
    config = ModelConfig(n_atom_basis=8, n_interactions=1, cutoff=4.0)
    model = build_model(config)
    mean = -691.4675031482257  # not a float32 number: float32 rounds it by 2.6e-5 eV
    model.postprocessors[1].mean = torch.tensor([mean], dtype=torch.float64)
    atoms = water_distorted.copy()
    atoms.calc = MLIPCalculator(model, config, device="cpu")
    e = atoms.get_potential_energy()
    model.do_postprocessing = False
    raw = float(atoms.calc.model(atoms.calc.converter(atoms))["energy"].detach())
    assert e == pytest.approx(raw + 3 * mean, abs=1e-9)


@pytest.mark.slow
def test_trained_water_model_has_small_energy_bias(tmp_path, embedded_water):
    """60 epochs on the full embedded water data: the held-out signed energy error is small against the MAE."""
    config = ModelConfig(representation="painn", n_atom_basis=32, n_interactions=3, cutoff=5.0)
    result = train_potential(embedded_water, "CCSD(T)/cc-pVDZ", config, workdir=tmp_path, batch_size=16, lr=1e-3,
                             max_epochs=60, progress=False, device="cpu")
    test = [embedded_water[i] for i in result.config.metadata["split"]["test"]]
    e_pred, _ = predict(MLIPCalculator(result.model, result.config, device="cpu"), test)
    err = e_pred - level_energy(test, "CCSD(T)/cc-pVDZ")
    assert abs(err.mean()) < 0.5 * np.abs(err).mean()


def test_mean_signed_error_stat_separates_bias_from_scatter(rng):
    """A constant offset gives a signed error equal to the MAE; symmetric scatter gives one near zero."""
    from mlipviz.metrology.errors import error_stats, mean_signed_error

    ref = rng.normal(size=40)
    biased = mean_signed_error(ref + 0.3, ref, unit="eV")
    assert biased.value == pytest.approx(0.3) == error_stats(ref + 0.3, ref)["MAE"].value
    forces_ref = [rng.normal(size=(3, 3)) for _ in range(30)]
    forces_pred = [f + rng.normal(0, 0.1, size=f.shape) for f in forces_ref]
    s = mean_signed_error(forces_pred, forces_ref, unit="meV/Å", scale=1e3, confidence=0.9)
    flat = 1e3 * np.concatenate([(p - r).ravel() for p, r in zip(forces_pred, forces_ref)])
    assert s.value == pytest.approx(flat.mean()) and s.low < s.value < s.high
    assert abs(s.value) < 0.2 * np.abs(flat).mean()
    with pytest.raises(ValueError, match="at least 2 structures"):
        mean_signed_error([1.0], [0.0])
