"""mlipviz.metrology: bootstrap intervals against analytic values and their coverage."""

import numpy as np
import pytest

from mlipviz.metrology import error_stats, parity_plot


def test_constant_error_gives_exact_mae_and_rmse():
    ref = np.zeros(50)
    stats = error_stats(ref + 0.3, ref, unit="eV")
    assert stats["MAE"].value == pytest.approx(0.3) and stats["RMSE"].value == pytest.approx(0.3)
    assert stats["MAE"].low == pytest.approx(0.3) and stats["MAE"].high == pytest.approx(0.3)


def test_interval_covers_true_mae_at_nominal_rate():
    """For N(0, σ) errors the true MAE is σ·sqrt(2/π); a 90% interval should cover it ~90% of the time."""
    rng = np.random.default_rng(0)
    sigma, n, trials = 2.0, 200, 200
    true_mae = sigma * np.sqrt(2 / np.pi)
    hits = 0
    for t in range(trials):
        err = rng.normal(0, sigma, n)
        s = error_stats(err, np.zeros(n), n_boot=400, confidence=0.9, seed=t)["MAE"]
        hits += s.low <= true_mae <= s.high
    assert 0.83 <= hits / trials <= 0.96


def test_force_errors_are_resampled_per_structure():
    """Per-structure arrays: the MAE is over all components, the interval over structures."""
    ref = [np.zeros((3, 3)), np.zeros((5, 3))]
    pred = [np.ones((3, 3)), 3 * np.ones((5, 3))]
    s = error_stats(pred, ref)
    assert s["MAE"].value == pytest.approx((9 * 1 + 15 * 3) / 24)
    assert s["MAE"].n == 2


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="pred has 2 structures but ref has 3"):
        error_stats(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="structure 1: prediction shape"):
        error_stats([np.zeros(3), np.zeros(4)], [np.zeros(3), np.zeros(3)])


def test_parity_plot_draws_points():
    import matplotlib

    matplotlib.use("Agg")
    ref = np.linspace(-1, 1, 20)
    ax = parity_plot(ref, ref + 0.1, stats=error_stats(ref + 0.1, ref, unit="eV"))
    assert len(ax.collections[0].get_offsets()) == 20
    assert "MAE" in ax.texts[0].get_text()


def test_offset_removal_gives_relative_energy_errors_with_the_offset_refitted():
    """remove_offset: the MAE of e − mean(e), and an interval that knows the offset is estimated."""
    rng = np.random.default_rng(5)
    ref = rng.normal(-2000.0, 0.1, 80)
    noise = rng.normal(0, 0.004, 80)
    pred = ref + 0.25 + noise  # a constant 0.25 eV offset, as between two electronic-structure methods
    s = error_stats(pred, ref, unit="meV", scale=1e3, remove_offset=True)
    centred = noise - noise.mean()
    assert s["MAE"].value == pytest.approx(1e3 * np.abs(centred).mean(), rel=1e-9)
    assert s["RMSE"].value == pytest.approx(1e3 * np.sqrt((centred**2).mean()), rel=1e-9)
    assert s["MAE"].offset == pytest.approx(1e3 * (0.25 + noise.mean()), rel=1e-9)
    assert s["MAE"].low < s["MAE"].value < s["MAE"].high
    assert "offset +2" in str(s["MAE"])
    # without removal the offset dominates
    assert error_stats(pred, ref, scale=1e3)["MAE"].value > 240
    # a pure offset leaves nothing
    exact = error_stats(ref + 0.3, ref, remove_offset=True)
    assert exact["MAE"].value == pytest.approx(0, abs=1e-9) and exact["MAE"].high == pytest.approx(0, abs=1e-9)
    with pytest.raises(ValueError, match="one value per structure"):
        error_stats([np.ones((3, 3))] * 4, [np.zeros((3, 3))] * 4, remove_offset=True)


def test_level_comparison_reports_intervals_that_match_direct_numbers(embedded_water):
    from mlipviz.metrology import compare_levels
    from mlipviz.reference import level_energy, level_forces

    cmp = compare_levels(embedded_water, "B3LYP/cc-pVDZ", "CCSD(T)/cc-pVDZ", n_boot=500)
    df = np.stack(level_forces(embedded_water, "B3LYP/cc-pVDZ")) - np.stack(level_forces(embedded_water, "CCSD(T)/cc-pVDZ"))
    de = level_energy(embedded_water, "B3LYP/cc-pVDZ") - level_energy(embedded_water, "CCSD(T)/cc-pVDZ")
    assert cmp.forces["MAE"].value == pytest.approx(1e3 * np.abs(df).mean(), rel=1e-9)
    assert cmp.energy["MAE"].value == pytest.approx(1e3 * np.abs(de - de.mean()).mean(), rel=1e-9)
    for stat in (cmp.forces["MAE"], cmp.energy["MAE"]):
        assert stat.low < stat.value < stat.high and stat.n == len(embedded_water)
    by_el = cmp.force_stats_by_element(n_boot=200)
    assert by_el["O"]["MAE"].value == pytest.approx(cmp.force_mae_by_element()["O"], rel=1e-9)
    with pytest.raises(ValueError, match="at least 2 structures"):
        compare_levels(embedded_water[:1], "B3LYP/cc-pVDZ")


def _synthetic_s22x5(e_int_eV):
    """Two monomers far apart and their 'dimers', with energies set so that E_int is known exactly."""
    from ase import Atoms

    from mlipviz import keys

    a = Atoms("OH2", positions=[(0, 0, 0), (0, -0.757, 0.587), (0, 0.757, 0.587)])
    b = a.copy()
    b.positions += (3.0, 0, 0)
    a.info["energy_hf_sto3g"], b.info["energy_hf_sto3g"] = -1.0, -2.0
    images = [a, b]
    for f, e in zip((2.0, 0.9, 1.0), e_int_eV):  # deliberately out of order
        d = a + b
        d.info = {keys.S22X5_FACTOR: f, "energy_hf_sto3g": -3.0 + e}
        images.append(d)
    return images


def test_s22x5_interaction_energies_are_dimer_minus_monomers_beside_the_published_values():
    from ase import units

    from mlipviz.metrology import s22x5_interaction_energies

    r = s22x5_interaction_energies(_synthetic_s22x5([-0.01, -0.2, -0.25]), "HF/sto-3g")
    np.testing.assert_array_equal(r.factors, [0.9, 1.0, 2.0])  # sorted by distance factor
    np.testing.assert_allclose(r.by_level["HF/sto-3g"], [-200.0, -250.0, -10.0], atol=1e-9)
    # Jurečka et al. 2006 (S22): the water dimer at CCSD(T)/CBS binds by 5.02 kcal/mol
    kcal = units.kcal / units.mol * 1e3  # meV per kcal/mol
    assert r.reference_meV[1] == pytest.approx(-5.02 * kcal, abs=0.01 * kcal)
    np.testing.assert_allclose(r.errors_meV("HF/sto-3g"), r.by_level["HF/sto-3g"] - r.reference_meV)
    with pytest.raises(ValueError, match="two monomers"):
        s22x5_interaction_energies(_synthetic_s22x5([0, 0, 0])[1:], "HF/sto-3g")
    with pytest.raises(ValueError, match="No dimer"):
        s22x5_interaction_energies(_synthetic_s22x5([0, 0, 0])[:2], "HF/sto-3g")


def test_s22x5_on_the_embedded_dimers():
    from mlipviz.dataset import campaign_dataset_path, load_images
    from mlipviz.metrology import s22x5_interaction_energies

    r = s22x5_interaction_energies(load_images(campaign_dataset_path("water_dimer_s22x5")), "CCSD(T)/cc-pVDZ")
    np.testing.assert_array_equal(r.factors, [0.9, 1.0, 1.2, 1.5, 2.0])
    e = r.by_level["CCSD(T)/cc-pVDZ"]
    # bound everywhere, deepest at the equilibrium distance, weakest at twice it; distances grow with the factor
    assert np.all(e < 0) and np.argmin(e) == 1 and np.argmax(e) == 4
    assert np.all(np.diff(r.com_distance_A) > 0)
    # cc-pVDZ without counterpoise overbinds against CBS (basis-set superposition), by tens of meV
    assert 20 < -r.errors_meV("CCSD(T)/cc-pVDZ")[1] < 200
