"""The dataset stage: embedded paths, matching geometries across datasets, the SchNetPack writer."""

import numpy as np
import pytest
from ase import Atoms

from mlipviz import keys
from mlipviz.dataset import (CAMPAIGN_DATASETS, campaign_dataset_path, load_images, match_geometries,
                             write_spk_database)


def _waters(n, seed=0):
    rng = np.random.default_rng(seed)
    base = np.array([(0.0, 0.0, 0.0), (0.0, -0.757, 0.587), (0.0, 0.757, 0.587)])
    return [Atoms("OH2", positions=base + rng.normal(0, 0.03, base.shape), info={"i": i}) for i in range(n)]


def test_match_geometries_finds_the_same_geometry_and_names_a_missing_one():
    pool = _waters(6)
    wanted = [pool[4].copy(), pool[1].copy()]
    found = match_geometries(wanted, pool)
    assert [a.info["i"] for a in found] == [4, 1]
    moved = pool[2].copy()
    moved.positions[0, 0] += 1e-6  # a different geometry, though np.allclose would call it the same
    with pytest.raises(KeyError, match="structure 1 .*no geometry twin in water_monomer"):
        match_geometries([pool[0], moved], pool, "water_monomer")


def test_embedded_tz_subset_matches_its_dz_parents():
    """The cc-pVTZ subset was labelled on the first 20 cc-pVDZ monomers: every geometry has its twin."""
    tz = load_images(campaign_dataset_path("water_monomer_tz_subset"))
    dz = load_images(campaign_dataset_path("water_monomer"))
    twins = match_geometries(tz, dz, "water_monomer")
    for t, d in zip(tz, twins):
        np.testing.assert_array_equal(t.positions, d.positions)
    assert keys.energy_key("ccsdt_ccpvdz") in twins[0].info and keys.energy_key("ccsdt_ccpvtz") in tz[0].info


def test_campaign_dataset_paths_exist_and_unknown_names_are_refused():
    for name in CAMPAIGN_DATASETS:
        assert campaign_dataset_path(name).is_file(), name
    with pytest.raises(ValueError, match="Unknown campaign dataset 'water_tetramer'"):
        campaign_dataset_path("water_tetramer")


def test_spk_writer_target_mode_is_what_training_reads(tmp_path, embedded_water):
    import schnetpack as spk

    images = embedded_water[:4]
    path = write_spk_database(images, tmp_path / "t.db", "CCSD(T)/cc-pVDZ", target=True)
    row = spk.data.ASEAtomsData(str(path))[2]
    assert float(row[keys.ENERGY]) == pytest.approx(images[2].info["energy_ccsdt_ccpvdz"])
    np.testing.assert_allclose(row[keys.FORCES].numpy(), images[2].arrays["forces_ccsdt_ccpvdz"], atol=1e-5)
    with pytest.raises(FileExistsError, match="never overwritten"):
        write_spk_database(images, path, "CCSD(T)/cc-pVDZ", target=True)
    write_spk_database(images[:2], path, "CCSD(T)/cc-pVDZ", target=True, overwrite=True)
    assert len(spk.data.ASEAtomsData(str(path))) == 2
    with pytest.raises(ValueError, match="A training target is one level, got 2"):
        write_spk_database(images, tmp_path / "u.db", ["CCSD(T)/cc-pVDZ", "B3LYP/cc-pVDZ"], target=True)
    with pytest.raises(ValueError, match="No structures"):
        write_spk_database([], tmp_path / "v.db", "CCSD(T)/cc-pVDZ")
    bare = [images[0].copy()]
    del bare[0].arrays["forces_ccsdt_ccpvdz"]
    with pytest.raises(KeyError, match="not labelled with forces at CCSD\\(T\\)/cc-pVDZ"):
        write_spk_database(bare, tmp_path / "w.db", "CCSD(T)/cc-pVDZ", target=True)
    assert not (tmp_path / "w.db").exists()
