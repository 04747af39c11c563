"""Regenerate the embedded data: the water dataset and the small PaiNN model trained on it.

This recipe lives beside the data it makes, apart from the library. Run ``python data/build.py`` from the
repository root (or ``make data``). The recipe:

1. optimise water and take normal modes at B3LYP/cc-pVDZ (PySCF analytic Hessian);
2. draw geometries by quantum normal-mode sampling at 300, 600 and 1000 K (a third each);
3. label every geometry at CCSD(T)/cc-pVDZ and B3LYP/cc-pVDZ (all electrons correlated), energies and
   analytic forces;
4. train PaiNN on the CCSD(T) labels (the per-atom energy offset refitted after training, so the energy
   errors carry no constant bias) and save it as ``config.json`` + weights-only ``model.pt``; the config
   records the elements, the data's levels and SHA-256, the split, each split's MAE and mean signed error,
   and the SHA-256 of both files, which loading checks. ``--resave-model`` does the offset refit and the
   records for the shipped network without retraining it (:func:`resave_water_model`).

Labelling goes through :func:`mlipviz.reference.campaign.run_campaign`, like the reference-lab datasets
(``--campaigns``): it is resumable and crash-safe, the sampled geometries and record stores are kept in
``build/campaigns/``, and every dataset gets a JSON data card that logs its builds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import molecule

from mlipviz import keys
from mlipviz.dataset import DATA_DIR, load_images, water_dataset_path, water_model_dir, write_images
from mlipviz.geometry import geometry_key
from mlipviz.reference.catalogue import METHANOL, WATER, WATER_DIMER

__all__ = ["build_water_dataset", "resave_water_model", "train_water_model", "WATER_LEVELS", "WATER_TEMPERATURES"]

#: Levels of the embedded water dataset; the first is the training target.
WATER_LEVELS = ("CCSD(T)/cc-pVDZ", "B3LYP/cc-pVDZ")
#: Sampling temperatures, K.
WATER_TEMPERATURES = (300.0, 600.0, 1000.0)
#: Level of the geometry optimisation and Hessian for sampling.
SAMPLING_LEVEL = "B3LYP/cc-pVDZ"
#: Where the datasets' sampled geometries and record stores are kept between runs.
CAMPAIGN_STORES = "build/campaigns"


def build_water_dataset(n_geometries: int = 300, path: str | Path | None = None, seed: int = 0,
                        store_dir: str | Path = CAMPAIGN_STORES) -> Path:
    """Sample and label the water dataset through the campaign path (resumable, crash-safe).

    Args:
        n_geometries: Total geometries, split evenly over :data:`WATER_TEMPERATURES`.
        path: Output extxyz; default :func:`mlipviz.data.water_dataset_path`. A data card is written beside it.
        seed: Base random seed.
        store_dir: Where the sampled geometries and the record store are kept between runs.

    Returns:
        The path of the finished dataset.
    """
    from mlipviz.reference import normal_modes

    path = Path(path) if path else water_dataset_path()

    def samples():
        return _over_temperatures(normal_modes(molecule("H2O"), SAMPLING_LEVEL), n_geometries, seed)

    images = _fixed_geometries(path.stem, Path(store_dir), samples, n_geometries)
    return _campaign_dataset(path.stem, images, [(list(WATER_LEVELS), True)], Path(store_dir), path.parent)


def train_water_model(dataset: str | Path | None = None, out: str | Path | None = None, max_time_s: float = 600, seed: int = 0):
    """Train the embedded PaiNN on the CCSD(T) labels of the water dataset.

    Returns:
        The :class:`mlipviz.potential.TrainResult`.
    """
    from mlipviz.potential import ModelConfig, train_potential

    config = ModelConfig(representation="painn", n_atom_basis=32, n_interactions=3, n_rbf=20, cutoff=5.0)
    return train_potential(
        dataset or water_dataset_path(),
        level=WATER_LEVELS[0],
        config=config,
        workdir=Path("build") / "train_water",
        save_to=out or water_model_dir(),
        n_train=0.8,
        n_val=0.1,
        batch_size=16,
        lr=1e-3,
        max_epochs=2000,
        max_time_s=max_time_s,
        seed=seed,
    )


def train_water_ensemble(dataset: str | Path | None = None, out: str | Path | None = None, n_members: int = 4,
                         max_epochs: int = 300, seeds=(1, 2, 3, 4)):
    """Train the embedded deep ensemble: the embedded model's recipe, data and split, ``n_members`` seeds.

    Members train for a fixed number of epochs (not a time budget), so the ensemble does not depend on how busy
    the machine was.

    Every member trains on the same train/val/test split as the embedded single model (its ``config.json``
    records it), so notebook 04's test structures are unseen by every member; the ensemble is calibrated on the
    validation split.

    Returns:
        The :class:`mlipviz.potential.Ensemble`.
    """
    from mlipviz.dataset import water_ensemble_dir
    from mlipviz.potential import ModelConfig, load_model, train_ensemble

    _, single = load_model(water_model_dir(), device="cpu")
    config = ModelConfig(representation="painn", n_atom_basis=32, n_interactions=3, n_rbf=20, cutoff=5.0)
    return train_ensemble(
        dataset or water_dataset_path(),
        level=WATER_LEVELS[0],
        n_members=n_members,
        config=config,
        workdir=Path("build") / "train_water_ensemble",
        save_to=out or water_ensemble_dir(),
        seeds=list(seeds)[:n_members],
        split=single.metadata[keys.META_SPLIT],
        batch_size=16,
        lr=1e-3,
        max_epochs=max_epochs,
    )


def train_rmd17_ethanol_ensemble(rmd17_dir: str | Path, out: str | Path | None = None, n_members: int = 4,
                                 max_time_s: float = 420, seeds=(0, 1, 2, 3)):
    """Train the embedded rMD17-ethanol ensemble from a user's rMD17 download (split 01, PBE/def2-SVP).

    The 1000 frames of the train split are shuffled with seed 0 into 950 for training and 50 for validation (the
    protocol of ``benchmarks/rmd17.py``); the 1000 test-split frames are the ensemble's test split. Each member
    trains for a wall-time budget on the CPU or GPU (``device="auto"``).

    Returns:
        The :class:`mlipviz.potential.Ensemble`.
    """
    from mlipviz.dataset import RMD17_LEVEL, load_rmd17, rmd17_ensemble_dir, rmd17_split_file
    from mlipviz.potential import ModelConfig, train_ensemble

    train = load_rmd17(rmd17_split_file(rmd17_dir, "ethanol", "train"))
    test = load_rmd17(rmd17_split_file(rmd17_dir, "ethanol", "test"))
    perm = np.random.default_rng(0).permutation(len(train))
    split = {keys.SPLIT_TRAIN: sorted(perm[50:].tolist()), keys.SPLIT_VAL: sorted(perm[:50].tolist()),
             keys.SPLIT_TEST: list(range(len(train), len(train) + len(test)))}
    return train_ensemble(
        train + test, RMD17_LEVEL, n_members=n_members,
        config=ModelConfig(representation="painn", n_atom_basis=32, n_interactions=3, cutoff=5.0),
        workdir=Path("build") / "train_rmd17_ethanol_ensemble", save_to=out or rmd17_ensemble_dir("ethanol"),
        seeds=list(seeds)[:n_members], split=split, progress=False, batch_size=10, lr=5e-4, energy_weight=0.05,
        max_time_s=max_time_s, max_epochs=100_000,
    )


def resave_water_model(directory: str | Path | None = None, dataset: str | Path | None = None):
    """Bring a model saved before offsets were refitted and files checksummed up to date, without retraining.

    The network is kept as it is. Its per-atom energy offset is refitted on its own training split (the last
    step :func:`mlipviz.potential.train_potential` now takes), and its config gains the elements of the data, the
    data's levels and SHA-256, each split's MAE and mean signed error, and the SHA-256 of both files.

    Returns:
        ``(delta, errors)``: the offset shift, eV/atom, and the per-split errors written into the config.
    """
    from mlipviz.metrology.errors import predict
    from mlipviz.potential import MLIPCalculator, load_model, save_model
    from mlipviz.potential.bias import error_summary, offset_shift
    from mlipviz.potential.chemistry import elements_of
    from mlipviz.potential.provenance import dataset_sha256, levels_in
    from mlipviz.reference.labelling import level_energy, level_forces

    directory = Path(directory) if directory else water_model_dir()
    data_path = Path(dataset) if dataset else water_dataset_path()
    images = load_images(data_path)
    model, config = load_model(directory, device="cpu", trust=True)
    meta = config.metadata
    level, split = meta[keys.META_LEVEL], meta[keys.META_SPLIT]
    calc = MLIPCalculator(model, config, device="cpu")

    def errors(part):
        sub = [images[i] for i in split[part]]
        e, f = predict(calc, sub)
        df = np.concatenate([(p - r).ravel() for p, r in zip(f, level_forces(sub, level))])
        return [len(a) for a in sub], e - level_energy(sub, level), df

    if keys.META_BEST_VAL_ENERGY_SIGNED not in meta:  # the saved network is the best-validation state
        _, de, df = errors(keys.SPLIT_VAL)
        meta[keys.META_BEST_VAL_ENERGY_SIGNED] = float(de.mean())
        meta[keys.META_BEST_VAL_FORCES_SIGNED] = float(df.mean())
    n, de, _ = errors(keys.SPLIT_TRAIN)
    delta = offset_shift(n, de)
    offsets = model.postprocessors[1]
    offsets.mean = offsets.mean.detach().double().reshape(1) + delta
    elements = elements_of(images)
    if config.elements not in (None, elements):
        raise ValueError(f"{directory} records elements {config.elements}, but {data_path.name} holds {elements}.")
    config.elements = elements
    meta.update({
        keys.META_LEVELS: levels_in(images),
        keys.META_DATA_FILE: data_path.name,
        keys.META_DATASET_SHA256: dataset_sha256(images, level),
        keys.META_ENERGY_OFFSET_REFIT: meta.get(keys.META_ENERGY_OFFSET_REFIT, 0.0) + delta,
        keys.META_ERRORS: {part: error_summary(*errors(part)[1:]) for part in (keys.SPLIT_TRAIN, keys.SPLIT_VAL,
                                                                              keys.SPLIT_TEST) if split[part]},
    })
    save_model(model, config, directory)
    return delta, meta[keys.META_ERRORS]


#: Distance factors of the S22x5 set (Gráfová, Pitoňák, Řezáč, Hobza, J. Chem. Theory Comput. 6, 2365 (2010)).
S22X5_FACTORS = ("0.9", "1.0", "1.2", "1.5", "2.0")

#: Where campaign datasets are written (extxyz + a JSON data card each).
CAMPAIGN_DATA = "campaigns"


def _over_temperatures(modes, n: int, seed: int) -> list:
    """``n`` quantum normal-mode samples, an equal share at each of :data:`WATER_TEMPERATURES` (the remainder
    at the last), with seeds ``seed``, ``seed + 1``, ..."""
    from mlipviz.reference import sample_normal_modes

    shares = [n // len(WATER_TEMPERATURES)] * len(WATER_TEMPERATURES)
    shares[-1] += n - sum(shares)
    return [a for k, (t, share) in enumerate(zip(WATER_TEMPERATURES, shares))
            for a in sample_normal_modes(modes, share, t, quantum=True, seed=seed + k)]


def _compute_seconds(store) -> dict[str, float]:
    """Per level: the summed wall time of its successful records, s (one task each, on its own threads)."""
    total: dict[str, float] = {}
    for rec in store.successes():
        name = rec[keys.RECORD_PROVENANCE][keys.LEVEL]
        total[name] = total.get(name, 0.0) + rec[keys.RECORD_PROVENANCE][keys.WALL_TIME]
    return {k: round(v, 1) for k, v in total.items()}


def _earlier_builds(card_path: Path) -> list[dict]:
    """The build log of an existing data card: each build that added records, how many, how long, where."""
    if not card_path.exists():
        return []
    return json.loads(card_path.read_text()).get("builds", [])


def _fixed_geometries(name: str, store_dir: Path, sample, n: int) -> list:
    """The ``n`` geometries of one dataset: ``sample()`` once, written to ``store_dir``, read back on reruns.

    Record keys hash positions to 1e-8 Å. Normal-mode sampling goes through a geometry optimisation and an
    eigen-decomposition whose last digits (and eigenvector signs) depend on the BLAS library and its thread
    count, so sampling again on another machine would give other geometries and miss the finished records.
    """
    path = store_dir / f"{name}.geometries.extxyz"
    if not path.exists():
        write_images(path, [Atoms(a.numbers, a.positions, info=dict(a.info)) for a in sample()])
    images = load_images(path)  # read back even the first time, so that every run hashes the same digits
    if len(images) != n:
        raise ValueError(f"{path} holds {len(images)} geometries, not the {n} asked for; delete it (and the "
                         f"record store beside it, if its records should go too) to sample again.")
    return images


def _campaign_dataset(name: str, images, runs: list[tuple[list[str], bool]], store_dir: Path, out_dir: Path) -> Path:
    """Run one or more campaigns over ``images`` into one store, export extxyz, write the data card."""
    from mlipviz.reference.campaign import run_campaign
    from mlipviz.reference.store import RecordStore

    store_path = store_dir / f"{name}.jsonl"
    t0 = time.perf_counter()
    reports = [run_campaign(images, levels, store_path, forces=forces, fd_check_fraction=0.01) for levels, forces in runs]
    store = RecordStore(store_path, mode="r")  # read to export: never rewrites the file
    labelled = {geometry_key(a): a for a in store.to_images()}
    exported = [labelled[k] for k in map(geometry_key, images) if k in labelled]  # in sampling order
    path = out_dir / f"{name}.extxyz"
    write_images(path, exported)
    card_path = path.with_suffix(".json")
    resumed = any(r.n_skipped for r in reports)  # a fresh store starts a fresh log
    builds = _earlier_builds(card_path) if resumed else []
    new_records = sum(r.n_ok + r.n_failed for r in reports)
    if new_records or not builds:
        builds.append({
            "new_records": new_records,
            "fd_checked": sum(r.n_fd_checked for r in reports),
            "wall_time_s": round(time.perf_counter() - t0, 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        })
    card = {
        "n_geometries": len(exported),
        "runs": [{"levels": lv, "forces": "analytic" if f else "energies only"} for lv, f in runs],
        "records_ok": sum(1 for _ in store.successes()),
        "records_failed": [r[keys.RECORD_REASON] for r in store.failures()],
        # summed from the records' own provenance, so it stays right when a build resumes an earlier one
        "compute_s_by_level": _compute_seconds(store),
        "builds": builds,
    }
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return path


def build_campaign_datasets(out_dir: str | Path | None = None, store_dir: str | Path = CAMPAIGN_STORES,
                            n_water: int = 1000, n_dimer: int = 100, n_methanol: int = 100) -> list[Path]:
    """The reference-lab datasets, made through the same Dask campaign path a cluster would use.

    * ``water_monomer``: ``n_water`` normal-mode samples (300/600/1000 K) at CCSD(T), B3LYP and PBE0/cc-pVDZ
      with forces, and CCSD(T)/cc-pVTZ energies on the first 20 (basis-set check);
    * ``water_dimer``: the S22 dimer, a rigid O···O scan, random orientations and rattles: CCSD(T)/cc-pVDZ
      energies, B3LYP and B3LYP-D3BJ/cc-pVDZ energies and forces (CCSD(T) forces of a 48-function dimer cost
      ~30 s each);
    * ``water_dimer_s22x5``: the five S22x5 water dimers (0.9–2.0 × the equilibrium distance; published
      CCSD(T)/CBS interaction energies in ``ase.data.s22``) and their two monomers: energies at CCSD(T), B3LYP
      and B3LYP-D3BJ/cc-pVDZ;
    * ``methanol``: normal-mode samples: CCSD(T)/cc-pVDZ energies, B3LYP/cc-pVDZ energies and forces.

    Resumable: the sampled geometries and the record stores in ``store_dir`` keep finished work across
    interruptions and reruns.
    """
    from mlipviz.reference import distance_scan, get_system, normal_modes, orientation_samples, rattle_sample

    out_dir = Path(out_dir) if out_dir else DATA_DIR / CAMPAIGN_DATA
    store_dir = Path(store_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []

    def water_samples():
        return _over_temperatures(normal_modes(get_system(WATER), SAMPLING_LEVEL), n_water, 10)

    def dimer_samples():
        dimer, w = get_system(WATER_DIMER), get_system(WATER)
        geoms = distance_scan(dimer, [3, 4, 5], np.linspace(2.5, 6.0, n_dimer // 4))
        geoms += orientation_samples(w, w, 3.2, n_dimer // 4, seed=1)
        geoms += orientation_samples(w, w, 4.5, n_dimer // 4, seed=2)
        return geoms + rattle_sample(dimer, n_dimer - len(geoms), stdev=0.04, seed=3)

    def s22x5_samples():
        """The five S22x5 water dimers and the two monomers of the S22 geometry (rigid, so shared by all)."""
        from ase.data import s22

        dimers = []
        for f in S22X5_FACTORS:
            a = s22.create_s22_system(f"Water_dimer_{f}")
            dimers.append(Atoms(a.numbers, a.positions, info={keys.SAMPLER: keys.SAMPLER_S22X5,
                                                                keys.S22X5_FACTOR: float(f)}))
        s22_geometry = dimers[1]
        monomers = [Atoms(s22_geometry[idx].numbers, s22_geometry[idx].positions,
                          info={keys.SAMPLER: keys.SAMPLER_S22_MONOMER, keys.S22_MONOMER: m})
                    for m, idx in (("A", [0, 1, 2]), ("B", [3, 4, 5]))]
        return dimers + monomers

    def methanol_samples():
        return _over_temperatures(normal_modes(get_system(METHANOL), "HF/cc-pVDZ"), n_methanol, 20)

    def dataset(name, images, runs):
        paths.append(_campaign_dataset(name, images, runs, store_dir, out_dir))

    cc_e, b3lyp = (["CCSD(T)/cc-pVDZ"], False), "B3LYP/cc-pVDZ"
    water = _fixed_geometries("water_monomer", store_dir, water_samples, n_water)
    dataset("water_monomer", water, [(["CCSD(T)/cc-pVDZ", b3lyp, "PBE0/cc-pVDZ"], True)])
    dataset("water_monomer_tz_subset", water[:20], [(["CCSD(T)/cc-pVTZ"], False)])
    dataset("water_dimer", _fixed_geometries("water_dimer", store_dir, dimer_samples, n_dimer),
            [cc_e, ([b3lyp, "B3LYP-D3BJ/cc-pVDZ"], True)])
    dataset("water_dimer_s22x5", _fixed_geometries("water_dimer_s22x5", store_dir, s22x5_samples, 7),
            [(["CCSD(T)/cc-pVDZ", b3lyp, "B3LYP-D3BJ/cc-pVDZ"], False)])
    dataset("methanol", _fixed_geometries("methanol", store_dir, methanol_samples, n_methanol), [cc_e, ([b3lyp], True)])
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-geometries", type=int, default=300)
    parser.add_argument("--max-train-time", type=float, default=600, help="training budget, s")
    parser.add_argument("--skip-dataset", action="store_true", help="only retrain the model")
    parser.add_argument("--skip-model", action="store_true", help="only relabel the dataset")
    parser.add_argument("--campaigns", action="store_true", help="also build the reference-lab campaign datasets")
    parser.add_argument("--only-campaigns", action="store_true", help="build only the campaign datasets")
    parser.add_argument("--resave-model", action="store_true",
                        help="only refit the shipped model's energy offset and re-save it with checksums (no training)")
    parser.add_argument("--only-ensemble", action="store_true",
                        help="only train the embedded deep ensemble")
    parser.add_argument("--ensemble-epochs", type=int, default=300, help="epochs per ensemble member")
    parser.add_argument("--rmd17-ensemble", metavar="DIR", default=None,
                        help="only train the rMD17-ethanol ensemble from the rMD17 files in DIR")
    parser.add_argument("--member-time", type=float, default=420, help="training budget per rMD17 member, s")
    args = parser.parse_args(argv)
    if args.rmd17_ensemble:
        ens = train_rmd17_ethanol_ensemble(args.rmd17_ensemble, max_time_s=args.member_time)
        print("rMD17 ensemble:", ens.directory, json.dumps(ens.metadata.get(keys.ENSEMBLE_CALIBRATION_REPORT), indent=1))
        return 0
    if args.only_ensemble:
        ens = train_water_ensemble(max_epochs=args.ensemble_epochs)
        print("ensemble:", ens.directory, json.dumps(ens.metadata.get(keys.ENSEMBLE_CALIBRATION_REPORT), indent=1))
        return 0
    if args.resave_model:
        delta, errors = resave_water_model()
        print(f"model re-saved: offset shifted by {1e3 * delta:+.4f} meV/atom;", json.dumps(errors, indent=1))
        return 0
    if args.campaigns or args.only_campaigns:
        for p in build_campaign_datasets():
            print("campaign dataset:", p)
        if args.only_campaigns:
            return 0
    if not args.skip_dataset:
        print("dataset:", build_water_dataset(args.n_geometries))
    if not args.skip_model:
        res = train_water_model(max_time_s=args.max_train_time)
        print("model:", res.directory, {k: v for k, v in res.config.metadata.items() if k != "split"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
