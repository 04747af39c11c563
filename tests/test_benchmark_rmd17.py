"""benchmarks/rmd17.py: its pure helpers, its spktrain overrides and a dry run; nothing is trained here.

The overrides are checked by composing SchNetPack's own Hydra configs with them (an independent reader of the
override grammar), and the database written for ``spktrain`` is read back through SchNetPack's unit conversion
and compared against ASE's kcal/mol (1 kcal/mol = 0.0433641 eV).
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mlipviz import keys

ROOT = Path(__file__).resolve().parents[1]
KCAL = 0.0433641  # eV per kcal/mol


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("rmd17_benchmark", ROOT / "benchmarks" / "rmd17.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def fake_npz(path, n, n_atoms=9, seed=0):
    rng = np.random.default_rng(seed)
    np.savez(path, nuclear_charges=np.array([6, 6, 8] + [1] * (n_atoms - 3), dtype=np.uint8),
             coords=rng.normal(scale=1.5, size=(n, n_atoms, 3)), energies=-97_000.0 + rng.normal(size=n),
             forces=rng.normal(size=(n, n_atoms, 3)))


def test_arguments_are_checked(bench):
    for bad in (["--quick", "--full"], ["--molecules", "water"], ["--molecules", ","], ["--budget-min", "0"],
                ["--n-test", "0"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)
    quick = bench.make_plan(bench.parse_args(["--quick"]))
    assert quick.molecules == ["ethanol"] and quick.budget_s == 120 and quick.n_atom_basis < 64
    budget = bench.make_plan(bench.parse_args(["--budget-min", "30"]))
    assert budget.molecules == ["ethanol", "malonaldehyde", "aspirin"] and budget.budget_s == 1800
    assert (budget.n_atom_basis, budget.n_interactions, budget.cutoff) == (128, 3, 5.0)  # the PaiNN paper's model
    full = bench.make_plan(bench.parse_args(["--full", "--max-epochs", "50", "--molecules", "aspirin"]))
    assert full.budget_s is None and full.max_epochs == 50 and full.molecules == ["aspirin"]
    # 3 molecules × 2 trainers × (30 min + overhead); none for an epoch-limited run
    assert bench.estimate_wall_s(budget) == 6 * (1800 + bench.OVERHEAD_S)
    assert bench.estimate_wall_s(full) is None


def test_train_val_split_is_seeded_disjoint_and_complete(bench):
    a, b = bench.train_val_split(1000, 50, seed=0), bench.train_val_split(1000, 50, seed=0)
    assert a == b and len(a[keys.SPLIT_TRAIN]) == 950 and len(a[keys.SPLIT_VAL]) == 50
    assert sorted(a[keys.SPLIT_TRAIN] + a[keys.SPLIT_VAL]) == list(range(1000))
    assert bench.train_val_split(1000, 50, seed=1)[keys.SPLIT_VAL] != a[keys.SPLIT_VAL]
    for n_val in (0, 1000):
        with pytest.raises(ValueError, match="n_val"):
            bench.train_val_split(1000, n_val)


def test_error_summary_by_hand(bench):
    out = bench.error_summary_meV(np.array([1e-3, -3e-3]), np.array([[0.01, -0.02, 0.0], [0.0, 0.0, 0.03]]))
    assert out["energy_mae_meV"] == pytest.approx(2.0)  # (1 + 3) / 2
    assert out["energy_signed_meV"] == pytest.approx(-1.0)  # (1 - 3) / 2
    assert out["forces_mae_meV_per_A"] == pytest.approx(10.0)  # (10 + 20 + 0 + 0 + 0 + 30) / 6
    assert out["n_test"] == 2


def test_both_layouts_are_found_and_absence_names_every_place(bench, tmp_path):
    fake_npz(tmp_path / "rmd17_ethanol_train_01.npz", 6)
    fake_npz(tmp_path / "rmd17_ethanol_test_01.npz", 5, seed=1)
    src = bench.locate_rmd17(tmp_path, "ethanol")
    train, test = bench.load_split(src, n_test=3)
    assert len(train) == 6 and len(test) == 3 and src["train"].index_file is None

    fig = tmp_path / "download" / "rmd17"
    (fig / "npz_data").mkdir(parents=True)
    (fig / "splits").mkdir()
    fake_npz(fig / "npz_data" / "rmd17_aspirin.npz", 20, n_atoms=21)
    np.savetxt(fig / "splits" / "index_train_01.csv", [4, 17, 2, 9], fmt="%d")
    np.savetxt(fig / "splits" / "index_test_01.csv", [11, 0, 5], fmt="%d")
    src = bench.locate_rmd17(tmp_path / "download", "aspirin")  # the archive unpacked: DIR/rmd17/...
    train, test = bench.load_split(src, n_test=2)
    assert [a.info["rmd17_index"] for a in train] == [4, 17, 2, 9]
    assert [a.info["rmd17_index"] for a in test] == [11, 0]  # the first n_test, in file order

    with pytest.raises(FileNotFoundError) as err:
        bench.locate_rmd17(tmp_path / "empty", "malonaldehyde")
    msg = str(err.value)
    for name in ("rmd17_malonaldehyde_train_01.npz", "npz_data/rmd17_malonaldehyde.npz", "index_test_01.csv",
                 "figshare"):
        assert name in msg
    assert str(tmp_path / "empty") in msg


@pytest.mark.filterwarnings("ignore:provider=hydra.searchpath")
def test_spktrain_overrides_compose_with_schnetpack_configs(bench, tmp_path):
    import schnetpack.cli  # noqa: F401  (registers the resolvers train.yaml uses)
    from hydra import compose, initialize_config_module

    root = tmp_path / "a dir=with odd 'chars'"
    plan = bench.make_plan(bench.parse_args(["--quick"]))
    ov = bench.spktrain_overrides(plan, "ethanol", root / "e.db", root / "split.npz", root, 950, torch.device("cpu"))
    with initialize_config_module(config_module="schnetpack.configs", version_base="1.2"):
        cfg = compose("train", overrides=ov)
    assert cfg.data._target_ == "schnetpack.datasets.rMD17" and cfg.data.molecule == "ethanol"
    assert cfg.data.datapath == str(root / "e.db") and cfg.data.split_file == str(root / "split.npz")
    assert (cfg.data.num_train, cfg.data.num_val, cfg.data.batch_size, cfg.data.num_workers) == (950, 50, 10, 0)
    assert dict(cfg.trainer.max_time) == {"seconds": 120} and cfg.trainer.accelerator == "cpu"
    assert cfg.model.representation.n_atom_basis == plan.n_atom_basis
    assert cfg.model.representation.n_interactions == plan.n_interactions
    assert cfg.model.representation.radial_basis.n_rbf == 20 and cfg.globals.cutoff == 5.0
    assert list(cfg.logger) == ["csv"] and cfg.seed == 0
    assert dict(cfg.data.property_units) == {"energy": "kcal/mol", "forces": "kcal/mol/Ang"}  # the model's units

    full = bench.make_plan(bench.parse_args(["--full", "--max-epochs", "7"]))
    ov = bench.spktrain_overrides(full, "aspirin", root / "a.db", root / "s.npz", root, 950, torch.device("cuda"))
    with initialize_config_module(config_module="schnetpack.configs", version_base="1.2"):
        cfg = compose("train", overrides=ov)
    assert "max_time" not in cfg.trainer and cfg.trainer.max_epochs == 7 and cfg.trainer.accelerator == "gpu"
    assert cfg.model.representation.n_atom_basis == 128


def test_spktrain_database_reads_back_in_kcal_per_mol(bench, tmp_path):
    import schnetpack as spk

    fake_npz(tmp_path / "w.npz", 4)
    frames = bench.load_rmd17(tmp_path / "w.npz")
    raw = np.load(tmp_path / "w.npz")
    db = bench.write_spktrain_database(frames, tmp_path / "e.db", "ethanol")
    data = spk.data.ASEAtomsData(str(db), property_units={"energy": "kcal/mol", "forces": "kcal/mol/Ang"})
    assert data.metadata["molecule"] == "ethanol"  # what spk's rMD17 module checks instead of downloading
    assert float(data[2]["energy"]) == pytest.approx(raw["energies"][2], rel=1e-6)
    np.testing.assert_allclose(data[1]["forces"].numpy(), raw["forces"][1], rtol=1e-5)
    spk.datasets.rMD17(str(db), molecule="ethanol", batch_size=2).prepare_data()  # accepted, no download
    assert spk.units.convert_units("kcal/mol", "eV") == pytest.approx(KCAL, rel=1e-5)


def test_spktrain_log_parsing(bench, tmp_path):
    text = ("noise\n[2026-01-02 03:04:05,250][schnetpack.cli][INFO] - Starting training.\n"
            "Time limit reached.\n[2026-01-02 03:06:07,750][schnetpack.cli][INFO] - Starting testing.\n")
    assert bench.spktrain_fit_s(text) == pytest.approx(122.5)
    assert bench.spktrain_fit_s("nothing here") is None
    run = tmp_path / "run" / "csv" / "version_0"
    run.mkdir(parents=True)
    (run / "metrics.csv").write_text(
        "epoch,step,test_energy_mae,test_forces_mae,val_loss\n0,49,,,3.0\n6,653,,,1.5\n7,654,0.5,2.0,\n")
    out = bench._spktrain_log(tmp_path / "run")
    assert out == {"epochs": 7, "test_energy_mae": 0.5, "test_forces_mae": 2.0}


def test_table_shows_published_numbers_and_unmeasured_rows(bench):
    rows = [{"molecule": "ethanol", "trainer": bench.ARM_MLIPVIZ, "energy_mae_meV": 3.25, "energy_signed_meV": -0.5,
             "forces_mae_meV_per_A": 11.0, "epochs": 12, "train_s": 120.0,
             "own_test": {"energy_mae_meV": 3.25, "forces_mae_meV_per_A": 11.0}},
            {"molecule": "aspirin", "trainer": bench.ARM_SPK, "not_measured": "spktrain is not installed"},
            {"molecule": "uracil", "trainer": bench.ARM_MLIPVIZ, "energy_mae_meV": 1.0, "energy_signed_meV": 0.0,
             "forces_mae_meV_per_A": 2.0, "epochs": 1, "train_s": None}]
    lines = bench.format_table(rows).splitlines()
    eth = next(ln for ln in lines if ln.startswith("ethanol"))
    assert "3.25" in eth and "11.00" in eth and "-0.50" in eth and "2.0" in eth  # 120 s = 2.0 min
    assert "2.7 / 10.0" in eth and "0.4 / 2.1" in eth
    asp = next(ln for ln in lines if ln.startswith("aspirin"))
    assert "not measured: spktrain is not installed" in asp and "6.9 / 16.1" in asp and "2.2 / 6.6" in asp
    assert "—" in next(ln for ln in lines if ln.startswith("uracil"))  # no published figures


def test_dry_run_finds_data_and_trains_nothing(bench, tmp_path, capsys):
    fake_npz(tmp_path / "rmd17_ethanol_train_01.npz", 60)
    fake_npz(tmp_path / "rmd17_ethanol_test_01.npz", 10, seed=1)
    report = bench.main(["--quick", "--dry-run", "--data", str(tmp_path), "--workdir", str(tmp_path / "w"),
                         "--device", "cpu"])
    assert report["rows"] == [] and not (tmp_path / "w").exists()
    assert report["data"]["ethanol"]["train"].endswith("rmd17_ethanol_train_01.npz")
    assert "experiment=rmd17" in report["spktrain_command"] and "+trainer.max_time={seconds:120}" in report[
        "spktrain_command"]
    out = capsys.readouterr().out
    assert "machine:" in out and "cores" in out and "estimated wall time" in out
    with pytest.raises(SystemExit, match="looked for"):
        bench.main(["--quick", "--dry-run", "--data", str(tmp_path / "nothing"), "--device", "cpu"])
