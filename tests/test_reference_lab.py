"""The reference-data lab: samplers, catalogue, multi-level export, FD fallback, DFT-vs-CCSD(T) analyses."""

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.emt import EMT
from ase.cluster import Icosahedron
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlipviz.dataset import load_images, write_spk_database
from mlipviz.md import md_sample
from mlipviz.metrology import compare_levels, errors_by_stretch, relative_energy_errors
from mlipviz.reference import (
    distance_scan,
    get_level,
    get_system,
    orientation_samples,
    rattle_sample,
    run_pyscf,
    system_names,
)
from mlipviz.reference.campaign import compute_record


def test_catalogue_systems_are_sane():
    assert {"water", "water_dimer", "water_trimer", "methane", "ammonia", "formaldehyde", "methanol",
            "water_methanol"} <= set(system_names())
    trimer = get_system("water_trimer")
    oo = [trimer.get_distance(0, 3), trimer.get_distance(3, 6), trimer.get_distance(6, 0)]
    np.testing.assert_allclose(oo, 2.85, atol=1e-6)
    # each water donates one linear hydrogen bond: H···O = 2.85 − 0.96 Å
    assert trimer.get_distance(1, 3) == pytest.approx(1.89, abs=1e-6)
    cluster = get_system("water_methanol")
    d = np.linalg.norm(cluster.positions[:6, None] - cluster.positions[None, 6:], axis=-1)
    assert d.min() > 1.6  # no intermolecular clash
    with pytest.raises(ValueError, match="Unknown system 'benzene'"):
        get_system("benzene")


def test_rattle_has_the_requested_spread(water_reference):
    images = rattle_sample(water_reference, 400, stdev=0.05, seed=1)
    disp = np.stack([a.positions - water_reference.positions for a in images])
    assert disp.std() == pytest.approx(0.05, rel=0.05)
    assert np.array_equal(rattle_sample(water_reference, 3, seed=4)[2].positions,
                          rattle_sample(water_reference, 3, seed=4)[2].positions)


def test_distance_scan_is_rigid_and_exact():
    from ase.collections import s22

    dimer = s22["Water_dimer"]
    scan = distance_scan(dimer, [3, 4, 5], [2.5, 3.0, 4.0])
    for a, d in zip(scan, [2.5, 3.0, 4.0]):
        com = np.linalg.norm(a[[3, 4, 5]].get_center_of_mass() - a[[0, 1, 2]].get_center_of_mass())
        assert com == pytest.approx(d)
        np.testing.assert_allclose(a[[3, 4, 5]].get_all_distances(), dimer[[3, 4, 5]].get_all_distances(), atol=1e-12)
    with pytest.raises(ValueError, match="some but not all"):
        distance_scan(dimer, range(6), [3.0])


def test_orientations_keep_distance_and_monomers():
    w = get_system("water")
    dimers = orientation_samples(w, w, 3.0, 20, seed=2)
    for a in dimers:
        com = np.linalg.norm(a[3:].get_center_of_mass() - a[:3].get_center_of_mass())
        assert com == pytest.approx(3.0)
        np.testing.assert_allclose(a[3:].get_all_distances(), w.get_all_distances(), atol=1e-10)
        assert np.linalg.norm(a.positions[:3, None] - a.positions[None, 3:], axis=-1).min() >= 1.4
    with pytest.raises(ValueError, match="use a larger distance"):
        orientation_samples(w, w, 0.5, 5, max_tries=200)


def test_md_sampling_returns_decorrelated_snapshots():
    cluster = Icosahedron("Cu", noshells=2)
    frames = md_sample(cluster, EMT(), 5, temperature_K=600, interval_steps=10, equilibration_steps=20,
                       timestep_fs=2.0, progress=False)
    assert len(frames) == 5
    assert all(f.info["sampling_temperature_K"] == 600 for f in frames)
    assert min(np.abs(frames[i].positions - frames[i + 1].positions).max() for i in range(4)) > 1e-3


def test_finite_difference_fallback_for_open_shell_ccsdt():
    """UCCSD(T) analytic gradients are refused; forces='fd' gives central-difference forces instead."""
    oh = Atoms("OH", positions=[(0, 0, 0), (0, 0, 1.05)])
    level = get_level("CCSD(T)/sto-3g", spin=1)
    rec = compute_record(oh.numbers.tolist(), oh.positions.tolist(), {}, level.as_dict(), "fd")
    assert rec["status"] == "ok" and rec["provenance"]["forces_method"] == "finite differences"
    f = np.array(rec["forces"])
    np.testing.assert_allclose(f.sum(axis=0), 0, atol=1e-4)  # no net force on an isolated molecule
    h = 1e-3
    e = [run_pyscf(Atoms("OH", positions=[(0, 0, 0), (0, 0, 1.05 + s)]), level, forces=False).energy for s in (h, -h)]
    assert f[1, 2] == pytest.approx(-(e[0] - e[1]) / (2 * h), abs=1e-6)


def test_spk_export_keeps_levels_side_by_side(tmp_path, embedded_water):
    import schnetpack as spk

    images = embedded_water[:5]
    path = write_spk_database(images, tmp_path / "w.db", ["CCSD(T)/cc-pVDZ", "B3LYP/cc-pVDZ"])
    db = spk.data.ASEAtomsData(str(path))
    assert len(db) == 5
    row = db[3]
    assert float(row["energy_ccsdt_ccpvdz"]) == pytest.approx(images[3].info["energy_ccsdt_ccpvdz"])
    np.testing.assert_allclose(row["forces_b3lyp_ccpvdz"].numpy(), images[3].arrays["forces_b3lyp_ccpvdz"], atol=1e-5)
    with pytest.raises(FileExistsError, match="never overwritten"):
        write_spk_database(images, path, ["CCSD(T)/cc-pVDZ"])


def test_dft_vs_ccsdt_analyses_are_consistent(embedded_water):
    cmp = compare_levels(embedded_water, "B3LYP/cc-pVDZ", "CCSD(T)/cc-pVDZ")
    by = errors_by_stretch(cmp, embedded_water, n_bins=3)
    assert by["count"].sum() == len(embedded_water)
    weighted = (by["force_mae_meV_per_A"] * by["count"]).sum() / by["count"].sum()
    assert weighted == pytest.approx(cmp.force_mae_meV_per_A, rel=1e-9)  # bins partition the data
    rel = relative_energy_errors(embedded_water, "B3LYP/cc-pVDZ")
    cc = np.array([a.info["energy_ccsdt_ccpvdz"] for a in embedded_water])
    assert rel[np.argmin(cc)] == 0.0
    # a level compared with itself has no error at all
    same = compare_levels(embedded_water, "CCSD(T)/cc-pVDZ", "CCSD(T)/cc-pVDZ")
    assert same.force_mae_meV_per_A == 0 and same.energy_mae_meV == 0
    assert set(cmp.force_mae_by_element()) == {"O", "H"}


_symbols = st.sampled_from(["H", "O", "C", "N", "Xx", "h", "", "1", "Og"])
_numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32), st.text(max_size=3))


@pytest.mark.timeout(120)  # a reader must never hang
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_symbols, _numbers, _numbers, _numbers), min_size=0, max_size=4), st.integers(-3, 6))
def test_xyz_parsing_fuzz(tmp_path, atoms, count):
    """Any xyz text either loads into valid structures or raises ValueError naming the problem."""
    body = "\n".join(" ".join(str(x) for x in row) for row in atoms)
    path = tmp_path / "fuzz.xyz"
    path.write_text(f"{count}\ncomment\n{body}\n")
    try:
        images = load_images(path)
    except ValueError as err:
        assert "fuzz.xyz" in str(err), str(err)  # the message names the file that was wrong
    else:
        for a in images:
            assert np.isfinite(a.positions).all() and len(a) > 0


def test_samplers_take_files(tmp_path):
    from ase.io import write

    from mlipviz.reference import normal_modes

    path = tmp_path / "w.xyz"
    write(path, get_system("water"))
    assert len(rattle_sample(path, 2)) == 2
    assert len(normal_modes(path, "HF/sto-3g").omega) == 3
    bad = tmp_path / "bad.xyz"
    bad.write_text("2\n\nO 0 0 0\nH 0 0 0.1\n")
    with pytest.raises(ValueError, match="overlapping atoms"):
        rattle_sample(bad, 2)


def test_get_levels_takes_one_or_several():
    from mlipviz.reference.levels import Level, get_levels

    assert [lv.name for lv in get_levels("HF/sto-3g")] == ["HF/sto-3g"]
    assert [lv.name for lv in get_levels(Level("B3LYP"))] == ["B3LYP/cc-pVDZ"]
    assert [lv.slug for lv in get_levels(["CCSD(T)/cc-pVDZ", Level("PBE0")])] == ["ccsdt_ccpvdz", "pbe0_ccpvdz"]
    with pytest.raises(ValueError, match="Unknown level of theory"):
        get_levels(["HF", "XYZ"])


def test_every_sampler_names_itself_with_a_key_constant():
    from mlipviz import keys
    from mlipviz.reference import normal_modes, sample_normal_modes

    water, dimer = get_system("water"), get_system("water_dimer")
    assert water.info[keys.SYSTEM] == "water"
    modes = normal_modes(water, "HF/sto-3g")
    made = {
        keys.SAMPLER_NORMAL_MODES: sample_normal_modes(modes, 2, 300.0, quantum=False),
        keys.SAMPLER_RATTLE: rattle_sample(water, 2, stdev=0.02),
        keys.SAMPLER_DISTANCE_SCAN: distance_scan(dimer, [3, 4, 5], [3.0, 4.0]),
        keys.SAMPLER_ORIENTATION: orientation_samples(water, water, 4.0, 2),
        keys.SAMPLER_MD: md_sample(Icosahedron("Cu", 2), EMT(), 2, temperature_K=300, interval_steps=5,
                                   equilibration_steps=5, progress=False),
    }
    for name, images in made.items():
        assert [a.info[keys.SAMPLER] for a in images] == [name] * len(images)
    # parameters live in keys of their own, not in the name
    assert made[keys.SAMPLER_RATTLE][0].info[keys.RATTLE_STDEV] == 0.02
    assert made[keys.SAMPLER_NORMAL_MODES][0].info[keys.QUANTUM_SAMPLING] is False
    assert made[keys.SAMPLER_NORMAL_MODES][0].info[keys.SAMPLING_TEMPERATURE] == 300.0
    assert made[keys.SAMPLER_MD][0].info[keys.SAMPLING_TEMPERATURE] == 300.0


def test_embedded_campaign_samplers_use_the_named_samplers():
    from mlipviz import keys
    from mlipviz.dataset import campaign_dataset_path

    names = {getattr(keys, k) for k in dir(keys) if k.startswith("SAMPLER_")}
    for ds in ("water_dimer", "water_dimer_s22x5"):
        seen = {a.info[keys.SAMPLER] for a in load_images(campaign_dataset_path(ds))}
        assert seen <= names, (ds, seen - names)
