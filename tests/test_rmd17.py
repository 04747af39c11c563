"""mlipviz.dataset.rmd17: reading rMD17 files in eV and Å.

A synthetic file checks the unit conversion against ASE's kcal/mol (an independent constant: 1 kcal/mol =
0.0433641 eV) and the refusals; the real files are read only when a local copy is present.
"""

from pathlib import Path

import numpy as np
import pytest

from mlipviz import keys
from mlipviz.dataset import RMD17_LEVEL, load_rmd17, rmd17_split_file
from mlipviz.reference.levels import get_level

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "rmd17"
SLUG = get_level(RMD17_LEVEL).slug


def fake_rmd17(path, n=4, **override):
    rng = np.random.default_rng(0)
    data = {
        "nuclear_charges": np.array([8, 1, 1], dtype=np.uint8),
        "coords": rng.normal(size=(n, 3, 3)),
        "energies": -47_000.0 + rng.normal(size=n),
        "forces": rng.normal(size=(n, 3, 3)),
    }
    data.update(override)
    np.savez(path, **data)
    return data


def test_units_are_converted_from_kcal_per_mol(tmp_path):
    data = fake_rmd17(tmp_path / "w.npz")
    frames = load_rmd17(tmp_path / "w.npz")
    assert len(frames) == 4 and frames[0].get_chemical_formula() == "H2O"
    assert frames[2].info[keys.energy_key(SLUG)] == pytest.approx(data["energies"][2] * 0.0433641, rel=1e-6)
    np.testing.assert_allclose(frames[1].arrays[keys.forces_key(SLUG)], data["forces"][1] * 0.0433641, rtol=1e-6)
    np.testing.assert_allclose(frames[3].positions, data["coords"][3])


def test_a_split_file_picks_frames(tmp_path):
    fake_rmd17(tmp_path / "w.npz", n=10)
    np.savetxt(tmp_path / "index_train_01.csv", [7, 2, 5], fmt="%d")
    frames = load_rmd17(tmp_path / "w.npz", split_file=tmp_path / "index_train_01.csv", max_frames=2)
    assert [f.info["rmd17_index"] for f in frames] == [7, 2]
    np.savetxt(tmp_path / "bad.csv", [3, 10], fmt="%d")
    with pytest.raises(ValueError, match="outside 0..9"):
        load_rmd17(tmp_path / "w.npz", split_file=tmp_path / "bad.csv")


def test_bad_files_are_refused_by_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="download"):
        load_rmd17(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", coords=np.zeros((1, 3, 3)))
    with pytest.raises(ValueError, match="lacks"):
        load_rmd17(tmp_path / "other.npz")
    fake_rmd17(tmp_path / "shape.npz", forces=np.zeros((4, 2, 3)))
    with pytest.raises(ValueError, match="inconsistent shapes"):
        load_rmd17(tmp_path / "shape.npz")
    fake_rmd17(tmp_path / "nan.npz", energies=np.array([0.0, np.nan, 0.0, 0.0]))
    with pytest.raises(ValueError, match=r"frames \[1\]"):
        load_rmd17(tmp_path / "nan.npz")
    with pytest.raises(ValueError, match="not an rMD17 molecule"):
        rmd17_split_file(tmp_path, "water")
    with pytest.raises(FileNotFoundError, match="figshare"):
        rmd17_split_file(tmp_path, "ethanol")


@pytest.mark.skipif(not SHARED.is_dir(), reason="no local rMD17 copy (download from figshare record 12672038)")
def test_real_ethanol_split_has_1000_frames_with_consistent_forces():
    frames = load_rmd17(rmd17_split_file(SHARED, "ethanol", "train"))
    assert len(frames) == 1000 and frames[0].get_chemical_formula() == "C2H6O"
    f = np.stack([a.arrays[keys.forces_key(SLUG)] for a in frames])
    assert np.abs(f.sum(axis=1)).max() < 1e-3  # an isolated molecule's forces sum to zero (eV/Å)
    e = np.array([a.info[keys.energy_key(SLUG)] for a in frames])
    assert -4211 < e.mean() < -4208  # ethanol at PBE/def2-SVP: about -97,076 kcal/mol = -4,209.6 eV
