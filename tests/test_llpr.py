"""Last-layer prediction rigidity on the shipped water model, against brute-force numpy and the model's own energy."""

import copy
import dataclasses
import json

import numpy as np
import pytest
from ase import Atoms

from mlipviz import keys
from mlipviz.potential import build_model
from mlipviz.potential.calibration import fit_scale, gaussian_nll
from mlipviz.potential.llpr import LLPR

LEVEL = "CCSD(T)/cc-pVDZ"
ENERGY_KEY = keys.energy_key("ccsdt_ccpvdz")


@pytest.fixture(scope="module")
def splits(model_and_config, embedded_water):
    _, config = model_and_config
    split = config.metadata[keys.META_SPLIT]
    return {name: [embedded_water[i] for i in split[name]] for name in (keys.SPLIT_TRAIN, keys.SPLIT_VAL,
                                                                         keys.SPLIT_TEST)}


@pytest.fixture(scope="module")
def fitted(model_and_config, splits):
    model, config = model_and_config
    return LLPR.fit(model, config, splits[keys.SPLIT_TRAIN])


@pytest.fixture(scope="module")
def calibrated(model_and_config, splits):
    model, config = model_and_config
    return LLPR.fit(model, config, splits[keys.SPLIT_TRAIN]).calibrate(splits[keys.SPLIT_VAL], LEVEL)


def hooked_features(model, calc, images):
    """Per-atom inputs of the energy head's last layer, captured independently through the ASE calculator."""
    captured = []
    layer = model.output_modules[0].outnet[-1]
    handle = layer.register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach().double().numpy()))
    try:
        for a in images:
            b = a.copy()
            b.calc = calc
            b.get_potential_energy()
    finally:
        handle.remove()
    return captured


def stretched_water(water, bond=1.6):
    out = water.copy()
    d = out.positions[1] - out.positions[0]
    out.positions[1] = out.positions[0] + bond * d / np.linalg.norm(d)
    return out


def test_features_reproduce_the_model_energy(fitted, splits, calc):
    images = splits[keys.SPLIT_TEST]
    energy, feats = fitted.features(images, batch_size=7)
    w, b = fitted.readout()
    linear = np.array([w @ f.sum(axis=0) + b * len(a) + fitted.offsets(a) for a, f in zip(images, feats)])
    np.testing.assert_allclose(energy - linear, 0.0, atol=1e-5)
    ase_energy = np.array([calc.get_potential_energy(a.copy()) for a in images])
    np.testing.assert_allclose(energy, ase_energy, atol=1e-5)
    assert all(f.shape == (3, fitted.covariance.shape[0]) for f in feats)


def test_sigma_equals_brute_force(calibrated, splits, model_and_config, calc):
    model, _ = model_and_config
    train = hooked_features(model, calc, splits[keys.SPLIT_TRAIN])
    c = np.zeros_like(calibrated.covariance)
    for f in train:
        c += np.outer(f.sum(axis=0), f.sum(axis=0))
    assert calibrated.n_train == len(train)
    np.testing.assert_allclose(calibrated.covariance, c, rtol=1e-6, atol=1e-9 * np.abs(c).max())
    images = splits[keys.SPLIT_TEST][:10]
    a = np.linalg.inv(c + calibrated.regularizer * np.eye(len(c)))
    pred = calibrated.predict(images)
    for i, f in enumerate(hooked_features(model, calc, images)):
        big_f = f.sum(axis=0)
        assert pred.energy_uncertainty[i] ** 2 == pytest.approx(calibrated.alpha**2 * big_f @ a @ big_f, rel=1e-5)
        per_atom = [calibrated.alpha**2 * fi @ a @ fi for fi in f]
        np.testing.assert_allclose(pred.energies_uncertainty[i] ** 2, per_atom, rtol=1e-5)


def test_stretched_water_is_more_uncertain(calibrated, splits, water_reference):
    train = splits[keys.SPLIT_TRAIN]
    minimum = train[int(np.argmin([a.info[ENERGY_KEY] for a in train]))]
    pred = calibrated.predict([minimum, water_reference, stretched_water(water_reference)])
    assert pred.energy_uncertainty[2] > 3 * pred.energy_uncertainty[0]
    assert pred.energy_uncertainty[2] > 3 * pred.energy_uncertainty[1]


def test_calibration_lowers_validation_nll(fitted, calibrated, splits):
    val = splits[keys.SPLIT_VAL]
    errors = np.array([a.info[ENERGY_KEY] for a in val])
    before, after = fitted.predict(val), calibrated.predict(val)
    errors_before, errors_after = before.energy - errors, after.energy - errors
    nll_before = gaussian_nll(errors_before, before.energy_uncertainty)
    nll_after = gaussian_nll(errors_after, after.energy_uncertainty)
    assert nll_after < nll_before
    cal = calibrated.calibration
    assert nll_before == pytest.approx(cal.nll_uncalibrated)
    assert nll_after == pytest.approx(cal.nlls[cal.best]) and cal.nlls[cal.best] == cal.nlls.min()
    # α is the maximum-likelihood scale at the chosen ς: the NLL cannot drop by rescaling further
    assert fit_scale(errors_after, after.energy_uncertainty) == pytest.approx(1.0, rel=1e-6)
    for factor in (0.8, 1.25):
        assert gaussian_nll(errors_after, factor * after.energy_uncertainty) > nll_after
    assert cal.level == LEVEL and cal.n_val == len(val)


def test_test_set_coverage_is_plausible(calibrated, splits):
    """Calibrated on val, the test errors should mostly fall inside ±2σ (a Gaussian gives 95 %)."""
    test = splits[keys.SPLIT_TEST]
    pred = calibrated.predict(test)
    z = (pred.energy - np.array([a.info[ENERGY_KEY] for a in test])) / pred.energy_uncertainty
    inside = np.mean(np.abs(z) < 2)
    assert inside >= 0.8, f"{inside:.0%} of test errors within 2σ"


def test_save_load_round_trip(calibrated, model_and_config, splits, embedded_model_dir, tmp_path):
    model, config = model_and_config
    path = calibrated.save(tmp_path / "llpr")
    assert path.suffix == ".npz"
    recorded = json.loads((embedded_model_dir / "config.json").read_text())[keys.MODEL_CHECKSUMS]["config"]
    with np.load(path, allow_pickle=False) as data:  # readable without pickles
        assert str(data["config_digest"]) == recorded  # the digest save_model wrote for this model
    loaded = LLPR.load(path, model, config)
    assert (loaded.alpha, loaded.regularizer, loaded.n_train) == (calibrated.alpha, calibrated.regularizer,
                                                                  calibrated.n_train)
    np.testing.assert_array_equal(loaded.covariance, calibrated.covariance)
    np.testing.assert_array_equal(loaded.calibration.nlls, calibrated.calibration.nlls)
    images = splits[keys.SPLIT_TEST][:5]
    np.testing.assert_array_equal(loaded.predict(images).energy_uncertainty,
                                  calibrated.predict(images).energy_uncertainty)


def test_load_refuses_another_model(calibrated, model_and_config, tmp_path):
    model, config = model_and_config
    path = calibrated.save(tmp_path / "llpr.npz")
    with pytest.raises(ValueError, match="other weights"):
        LLPR.load(path, build_model(config), config)
    other = dataclasses.replace(config, metadata={**config.metadata, "note": "another model"})
    with pytest.raises(ValueError, match="another configuration"):
        LLPR.load(path, model, other)
    changed = copy.deepcopy(model)
    changed.output_modules[0].outnet[-1].bias.data += 1e-3
    with pytest.raises(ValueError, match="other weights"):
        LLPR.load(path, changed, config)
    with pytest.raises(FileNotFoundError):
        LLPR.load(tmp_path / "missing.npz", model, config)


def test_refuses_foreign_chemistry_and_missing_labels(calibrated, model_and_config, splits):
    model, config = model_and_config
    methane = Atoms("CH4", positions=[(0, 0, 0), (0.63, 0.63, 0.63), (-0.63, -0.63, 0.63), (-0.63, 0.63, -0.63),
                                      (0.63, -0.63, -0.63)])
    with pytest.raises(ValueError, match="never saw"):
        calibrated.predict([methane])
    with pytest.raises(ValueError, match="never saw"):
        LLPR.fit(model, config, [*splits[keys.SPLIT_TRAIN][:3], methane])
    unlabelled = [a.copy() for a in splits[keys.SPLIT_VAL][:3]]
    for a in unlabelled:
        a.info.pop(ENERGY_KEY)
    with pytest.raises(ValueError, match=ENERGY_KEY):
        copy.copy(calibrated).calibrate(unlabelled, LEVEL)
    with pytest.raises(TypeError, match="list of ase.Atoms"):
        calibrated.predict(methane)
    with pytest.raises(ValueError, match="empty"):
        calibrated.predict([])
