"""Deep ensembles: shared split, mean and spread against separate member calculators, calibration, files, refusals."""

import copy
import json
import shutil

import numpy as np
import pytest
import pytorch_lightning as pl
from ase.build import molecule
from conftest import central_differences
from scipy.optimize import minimize_scalar

from mlipviz import keys
from mlipviz.potential import (
    ChecksumError,
    Ensemble,
    EnsembleCalculator,
    MLIPCalculator,
    ModelConfig,
    build_model,
    load_ensemble,
    save_ensemble,
    save_model,
    train_ensemble,
)
from mlipviz.potential.calibration import fit_scale, gaussian_nll
from mlipviz.potential.ensemble_files import ENSEMBLE_FILE, ENSEMBLE_MEMBER_CHECKSUMS
from mlipviz.potential.ensemble_train import ENSEMBLE_CALIBRATION_REPORT
from mlipviz.potential.model import CONFIG_FILE

LEVEL = "CCSD(T)/cc-pVDZ"
EK, FK = keys.energy_key("ccsdt_ccpvdz"), keys.forces_key("ccsdt_ccpvdz")


class EpochCounter(pl.Callback):
    """Counts the validation epochs one member's training runs."""

    def __init__(self):
        self.epochs = 0

    def on_validation_epoch_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.epochs += 1


@pytest.fixture(scope="module")
def trained(tmp_path_factory, embedded_water):
    root = tmp_path_factory.mktemp("ensemble")
    images = embedded_water[:40]
    counters = {}

    def callbacks(k):
        counters[k] = EpochCounter()
        return [counters[k]]

    ensemble = train_ensemble(
        images, LEVEL, n_members=3, config=ModelConfig(n_atom_basis=8, n_interactions=1, cutoff=4.0),
        workdir=root / "work", save_to=root / "saved", seeds=[3, 5, 7], n_train=24, n_val=8, progress=False,
        callbacks=callbacks, max_epochs=3, batch_size=8, lr=2e-3, device="cpu",
    )
    return ensemble, root / "saved", images, counters


def member_calculators(directory, n):
    """Each member as its own MLIPCalculator, loaded separately from its saved directory."""
    return [MLIPCalculator(directory / f"member_{k}", device="cpu") for k in range(n)]


def member_results(calcs, atoms):
    out = {"energy": [], "forces": [], "energies": []}
    for calc in calcs:
        a = atoms.copy()
        a.calc = calc
        out["energy"].append(a.get_potential_energy())
        out["forces"].append(a.get_forces())
        out["energies"].append(a.get_potential_energies())
    return {k: np.array(v) for k, v in out.items()}


def test_members_share_one_split_and_differ(trained):
    ensemble, directory, images, counters = trained
    assert ensemble.n_members == 3 and ensemble.level == LEVEL
    splits = [c.metadata[keys.META_SPLIT] for c in ensemble.configs]
    assert all(s == ensemble.split for s in splits)
    assert [len(ensemble.split[p]) for p in (keys.SPLIT_TRAIN, keys.SPLIT_VAL, keys.SPLIT_TEST)] == [24, 8, 8]
    assert {k: c.epochs for k, c in counters.items()} == {0: 3, 1: 3, 2: 3}  # one callback per member, each ran
    assert ensemble.metadata["seeds"] == [3, 5, 7]
    assert all(len(h) == 3 for h in ensemble.histories)


def test_calculator_is_the_mean_and_spread_of_separate_members(trained, water_distorted):
    ensemble, directory, _, _ = trained
    members = member_results(member_calculators(directory, 3), water_distorted)
    assert np.ptp(members["energy"]) > 1e-4  # the members really differ
    atoms = water_distorted.copy()
    atoms.calc = EnsembleCalculator(ensemble, device="cpu")
    s_e, s_f = ensemble.calibration[keys.ENERGY], ensemble.calibration[keys.FORCES]
    assert atoms.get_potential_energy() == pytest.approx(np.mean(members["energy"]), abs=1e-6)
    np.testing.assert_allclose(atoms.get_forces(), members["forces"].mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(atoms.get_potential_energies(), members["energies"].mean(axis=0), atol=1e-6)
    get = atoms.calc.get_property
    std_f = np.std(members["forces"], axis=0, ddof=1)
    assert get(keys.ENERGY_UNCERTAINTY, atoms) == pytest.approx(s_e * np.std(members["energy"], ddof=1), rel=1e-4)
    np.testing.assert_allclose(get(keys.FORCES_UNCERTAINTY, atoms), s_f * std_f, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(get(keys.ATOM_UNCERTAINTY, atoms),
                               [np.sqrt(np.mean((s_f * std_f[i]) ** 2)) for i in range(3)], rtol=1e-4)
    np.testing.assert_allclose(get(keys.ENERGIES_UNCERTAINTY, atoms),
                               s_e * np.std(members["energies"], axis=0, ddof=1), rtol=1e-4, atol=1e-9)
    raw = EnsembleCalculator(ensemble, device="cpu", calibrated=False)
    np.testing.assert_allclose(raw.get_property(keys.FORCES_UNCERTAINTY, water_distorted.copy()), std_f,
                               rtol=1e-4, atol=1e-9)


def test_batched_prediction_matches_member_calculators(trained, embedded_water):
    ensemble, directory, _, _ = trained
    images = embedded_water[100:170]  # more than one batch of 64 structures
    pred = ensemble.predict(images, device="cpu", progress=False)
    calcs = member_calculators(directory, 3)
    for i in (0, 63, 64, 69):
        members = member_results(calcs, images[i])
        np.testing.assert_allclose(pred.member_energy[:, i], members["energy"], atol=1e-6)
        np.testing.assert_allclose(pred.member_forces[i], members["forces"], atol=1e-6)
        np.testing.assert_allclose(pred.energies[i], members["energies"].mean(axis=0), atol=1e-6)
    assert pred.member_energy.shape == (3, 70) and pred.forces_std[5].shape == (3, 3)
    np.testing.assert_allclose(pred.energy_std, ensemble.calibration[keys.ENERGY] * np.std(pred.member_energy, axis=0,
                                                                                             ddof=1))


def test_energies_sum_to_energy_and_mean_forces_are_its_gradient(trained, water_distorted):
    calc = EnsembleCalculator(trained[0], device="cpu")
    atoms = water_distorted.copy()
    atoms.calc = calc
    assert atoms.get_potential_energies().sum() == pytest.approx(atoms.get_potential_energy(), abs=1e-6)

    def energy(a):
        a = a.copy()
        a.calc = calc
        return a.get_potential_energy()

    np.testing.assert_allclose(atoms.get_forces(), central_differences(energy, water_distorted, h=2e-3), atol=1e-3)


def test_calibration_is_the_maximum_likelihood_scale_on_validation(trained):
    ensemble, directory, images, _ = trained
    val = [images[i] for i in ensemble.split[keys.SPLIT_VAL]]
    calcs = member_calculators(directory, 3)
    runs = [member_results(calcs, a) for a in val]
    e_err = np.array([r["energy"].mean() - a.info[EK] for r, a in zip(runs, val)])
    e_sig = np.array([np.std(r["energy"], ddof=1) for r in runs])
    f_err = np.concatenate([(r["forces"].mean(axis=0) - a.arrays[FK]).ravel() for r, a in zip(runs, val)])
    f_sig = np.concatenate([np.std(r["forces"], axis=0, ddof=1).ravel() for r in runs])
    assert all(np.all(a.positions[:, 0] == 0) for a in val)  # every water lies in the yz plane: no x forces
    in_plane = np.tile([False, True, True], 3 * len(val))
    assert np.all(f_sig[~in_plane] < 1e-6) and np.all(f_sig[in_plane] > 1e-6)
    f_err, f_sig = f_err[in_plane], f_sig[in_plane]
    for q, err, sig in ((keys.ENERGY, e_err, e_sig), (keys.FORCES, f_err, f_sig)):
        by_hand = np.sqrt(np.mean((err / sig) ** 2))
        assert ensemble.calibration[q] == pytest.approx(by_hand, rel=1e-3)
        best = minimize_scalar(lambda log_s: gaussian_nll(err, np.exp(log_s) * sig), bounds=(-8, 8), method="bounded")
        assert ensemble.calibration[q] == pytest.approx(np.exp(best.x), rel=1e-3)  # the NLL minimum, found by scipy
        assert gaussian_nll(err, ensemble.calibration[q] * sig) <= gaussian_nll(err, sig)
        report = ensemble.metadata[ENSEMBLE_CALIBRATION_REPORT]
        assert report[keys.SPLIT_VAL][q]["nll_calibrated"] <= report[keys.SPLIT_VAL][q]["nll_raw"]
        assert report[keys.SPLIT_TEST][q]["scale"] == ensemble.calibration[q]
        assert report[keys.SPLIT_VAL][q]["n"] == err.size
        assert report[keys.SPLIT_TEST][q]["n"] + report[keys.SPLIT_TEST][q]["n_excluded"] == (8 if q == keys.ENERGY
                                                                                              else 8 * 9)


def test_fit_scale_recovers_a_planted_factor(rng):
    sigma = rng.uniform(0.01, 0.2, 20000)
    errors = rng.normal(0.0, 2.0 * sigma)
    assert fit_scale(errors, sigma) == pytest.approx(2.0, rel=0.03)
    assert gaussian_nll(errors, 2.0 * sigma) < gaussian_nll(errors, sigma)


def test_save_load_round_trip_predicts_the_same(trained, embedded_water):
    ensemble, directory, _, _ = trained
    loaded = load_ensemble(directory, device="cpu")
    assert loaded.calibration == ensemble.calibration and loaded.level == LEVEL and loaded.split == ensemble.split
    assert loaded.metadata[ENSEMBLE_CALIBRATION_REPORT] == ensemble.metadata[ENSEMBLE_CALIBRATION_REPORT]
    images = embedded_water[200:210]
    a, b = ensemble.predict(images, device="cpu"), loaded.predict(images, device="cpu")
    np.testing.assert_array_equal(a.member_energy, b.member_energy)
    np.testing.assert_array_equal(a.energy_std, b.energy_std)
    for x, y in zip(a.forces_std + a.energies, b.forces_std + b.energies):
        np.testing.assert_array_equal(x, y)
    from_dirs = Ensemble.from_models([directory / f"member_{k}" for k in range(3)], device="cpu")
    assert from_dirs.calibration == ensemble.calibration  # recorded in every member's config


def _variant(ensemble, k, **changes):
    config = copy.deepcopy(ensemble.configs[k])
    for name, value in changes.items():
        if name == "level":
            config.metadata[keys.META_LEVEL] = value
        else:
            setattr(config, name, value)
    return config


def test_from_models_refuses_members_that_cannot_be_averaged(trained):
    ensemble = trained[0]
    models, configs = ensemble.models, ensemble.configs
    wide = _variant(ensemble, 1, n_atom_basis=16)
    with pytest.raises(ValueError, match="member 1 has n_atom_basis=16 but member 0 has n_atom_basis=8"):
        Ensemble.from_models([models[0], build_model(wide)], [configs[0], wide])
    with pytest.raises(ValueError, match=r"member 2 has elements=\['H', 'C', 'O'\]"):
        Ensemble.from_models(models, [configs[0], configs[1], _variant(ensemble, 2, elements=["H", "C", "O"])])
    with pytest.raises(ValueError, match="member 1 has level='B3LYP/cc-pVDZ' but member 0 has level='CCSD"):
        Ensemble.from_models(models[:2], [configs[0], _variant(ensemble, 1, level="B3LYP/cc-pVDZ")])
    with pytest.raises(ValueError, match="at least 2 members, got 1"):
        Ensemble.from_models(models[:1], configs[:1])
    with pytest.raises(ValueError, match="configs\\[1\\] is None but member 1 is a module"):
        Ensemble.from_models(models[:2], [configs[0], None])
    with pytest.raises(ValueError, match="calibration\\['forces'\\] must be a positive"):
        Ensemble.from_models(models, configs, calibration={keys.ENERGY: 1.0, keys.FORCES: 0.0})


def test_load_refuses_damaged_or_inconsistent_ensembles(trained, tmp_path):
    ensemble, directory, _, _ = trained

    def fresh(name):
        target = tmp_path / name
        shutil.copytree(directory, target)
        return target, json.loads((target / ENSEMBLE_FILE).read_text())

    def write(target, data):
        (target / ENSEMBLE_FILE).write_text(json.dumps(data))

    target, _ = fresh("deleted")
    shutil.rmtree(target / "member_1")
    with pytest.raises(ValueError, match="member 1 \\(member_1\\) is missing"):
        load_ensemble(target, device="cpu")

    target, data = fresh("edited")
    data[ENSEMBLE_MEMBER_CHECKSUMS][0]["config"] = "0" * 64
    write(target, data)
    with pytest.raises(ValueError, match="member 0 \\(member_0\\): its config checksum .* does not match"):
        load_ensemble(target, device="cpu")

    target, _ = fresh("swapped")
    shutil.rmtree(target / "member_2")
    shutil.copytree(target / "member_0", target / "member_2")
    with pytest.raises(ValueError, match="member 2 \\(member_2\\): its config checksum"):
        load_ensemble(target, device="cpu")

    target, _ = fresh("damaged")
    weights = target / "member_0" / "model.pt"
    weights.write_bytes(weights.read_bytes()[:-8] + bytes(8))
    with pytest.raises(ChecksumError, match="member 0 \\(member_0\\): .*model.pt does not match the SHA-256"):
        load_ensemble(target, device="cpu")

    target, data = fresh("single")
    data[keys.ENSEMBLE_MEMBERS], data[ENSEMBLE_MEMBER_CHECKSUMS] = ["member_0"], data[ENSEMBLE_MEMBER_CHECKSUMS][:1]
    write(target, data)
    with pytest.raises(ValueError, match="lists 1 member.*at least 2"):
        load_ensemble(target, device="cpu")

    # members that each load, recorded consistently in ensemble.json, but disagree with member 0
    for field, changes in (("n_atom_basis", {"n_atom_basis": 16}), ("elements", {"elements": ["H", "C", "O"]}),
                           ("level", {"level": "B3LYP/cc-pVDZ"})):
        target, data = fresh(field)
        config = _variant(ensemble, 1, **changes)
        config.metadata[keys.ENSEMBLE_CALIBRATION] = ensemble.calibration
        model = build_model(config) if field == "n_atom_basis" else ensemble.models[1]
        shutil.rmtree(target / "member_1")
        save_model(model, config, target / "member_1")
        data[ENSEMBLE_MEMBER_CHECKSUMS][1] = json.loads((target / "member_1" / CONFIG_FILE).read_text())["sha256"]
        write(target, data)
        with pytest.raises(ValueError, match=f"member 1 \\(member_1\\) has {field}="):
            load_ensemble(target, device="cpu")


def test_foreign_chemistry_and_bad_arguments_are_refused(trained, tmp_path, embedded_water):
    ensemble, directory, _, _ = trained
    calc = EnsembleCalculator(directory, device="cpu")
    methane = molecule("CH4")
    methane.calc = calc
    with pytest.raises(ValueError, match="contains C \\(Z=6\\), which the model never saw"):
        methane.get_potential_energy()
    with pytest.raises(ValueError, match="images\\[1\\] .*contains C"):
        ensemble.predict([embedded_water[0], molecule("CH4")], device="cpu")
    kw = dict(workdir=tmp_path, progress=False, max_epochs=1)
    with pytest.raises(ValueError, match="n_members must be an integer ≥ 2"):
        train_ensemble(embedded_water[:12], n_members=1, **kw)
    with pytest.raises(ValueError, match="repeat a value"):
        train_ensemble(embedded_water[:12], n_members=2, seeds=[1, 1], **kw)
    with pytest.raises(ValueError, match="\\['seed'\\] cannot be passed through"):
        train_ensemble(embedded_water[:12], n_members=2, seed=4, **kw)
    with pytest.raises(ValueError, match="callbacks must be None, a list"):
        train_ensemble(embedded_water[:12], n_members=2, callbacks=3, **kw)
    assert not list(tmp_path.iterdir())  # refused before anything was written
    save_ensemble(ensemble, tmp_path / "again")  # an ensemble in memory saves again, and loads
    assert load_ensemble(tmp_path / "again", device="cpu").n_members == 3


def test_embedded_water_ensemble_reproduces_its_recorded_calibration(embedded_water):
    """The shipped ensemble loads (checksums verified), shares the single model's split, and its calibration is the
    likelihood scale recomputed here from the validation errors and the raw spread of its members."""
    from mlipviz.dataset import water_ensemble_dir, water_model_dir
    from mlipviz.potential import load_model
    from mlipviz.reference.labelling import level_energy, level_forces

    ens = load_ensemble(water_ensemble_dir(), device="cpu")
    _, single = load_model(water_model_dir(), device="cpu")
    assert ens.n_members == 4 and ens.elements == ["H", "O"]
    assert ens.split == single.metadata[keys.META_SPLIT]
    val = [embedded_water[i] for i in ens.split[keys.SPLIT_VAL]]
    pred = ens.predict(val, device="cpu", calibrated=False, progress=False)
    e_err = pred.energy - level_energy(val, ens.level)
    f_err = np.concatenate([(f - r).ravel() for f, r in zip(pred.forces, level_forces(val, ens.level))])
    f_std = np.concatenate([s.ravel() for s in pred.forces_std_raw])
    moving = f_std > 1e-6  # the planar waters' x components are exactly zero for every member
    assert ens.calibration[keys.ENERGY] == pytest.approx(np.sqrt(np.mean((e_err / pred.energy_std_raw) ** 2)), rel=1e-6)
    assert ens.calibration[keys.FORCES] == pytest.approx(np.sqrt(np.mean((f_err[moving] / f_std[moving]) ** 2)),
                                                         rel=1e-6)


def test_embedded_rmd17_ensemble_loads_and_knows_ethanol():
    from mlipviz.dataset import RMD17_LEVEL, rmd17_ensemble_dir

    ens = load_ensemble(rmd17_ensemble_dir("ethanol"), device="cpu")
    assert ens.n_members == 4 and ens.elements == ["H", "C", "O"] and ens.level == RMD17_LEVEL
    calc = EnsembleCalculator(ens, device="cpu")
    atoms = molecule("CH3CH2OH")
    atoms.calc = calc
    assert np.isfinite(atoms.get_potential_energy())
    assert calc.get_property(keys.ATOM_UNCERTAINTY, atoms).shape == (9,)
    with pytest.raises(ValueError, match="N"):
        calc.get_potential_energy(molecule("NH3"))
