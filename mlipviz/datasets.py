"""Regenerate the embedded data: the water dataset and the small PaiNN model trained on it.

Run ``python -m mlipviz.datasets`` (or ``make data``). The recipe:

1. optimise water and take normal modes at B3LYP/cc-pVDZ (PySCF analytic Hessian);
2. draw geometries by quantum normal-mode sampling at 300, 600 and 1000 K (a third each);
3. label every geometry at CCSD(T)/cc-pVDZ and B3LYP/cc-pVDZ (all electrons correlated), energies and
   analytic forces;
4. train PaiNN on the CCSD(T) labels and save it as ``config.json`` + weights-only ``model.pt``.

Labelling is resumable: finished records are appended to ``<dataset>.partial`` one at a time, and a rerun
skips them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import ase.io
import numpy as np
from ase.build import molecule
from tqdm.auto import tqdm

from .data import water_dataset_path, water_model_dir, write_images

__all__ = ["build_water_dataset", "train_water_model", "WATER_LEVELS", "WATER_TEMPERATURES"]

#: Levels of the embedded water dataset; the first is the training target.
WATER_LEVELS = ("CCSD(T)/cc-pVDZ", "B3LYP/cc-pVDZ")
#: Sampling temperatures, K.
WATER_TEMPERATURES = (300.0, 600.0, 1000.0)
#: Level of the geometry optimisation and Hessian for sampling.
SAMPLING_LEVEL = "B3LYP/cc-pVDZ"
SAMPLE_INDEX = "sample_index"


def build_water_dataset(n_geometries: int = 300, path: str | Path | None = None, seed: int = 0) -> Path:
    """Sample and label the water dataset (resumable).

    Args:
        n_geometries: Total geometries, split evenly over :data:`WATER_TEMPERATURES`.
        path: Output extxyz; default :func:`mlipviz.data.water_dataset_path`.
        seed: Base random seed.

    Returns:
        The path of the finished dataset.
    """
    from .reference import label, normal_modes, sample_normal_modes

    path = Path(path) if path else water_dataset_path()
    partial = path.with_name(path.name + ".partial")
    modes = normal_modes(molecule("H2O"), SAMPLING_LEVEL)
    per_t = [n_geometries // len(WATER_TEMPERATURES)] * len(WATER_TEMPERATURES)
    per_t[-1] += n_geometries - sum(per_t)
    images = []
    for k, (t, n) in enumerate(zip(WATER_TEMPERATURES, per_t)):
        images += sample_normal_modes(modes, n, t, quantum=True, seed=seed + k)
    for i, a in enumerate(images):
        a.info[SAMPLE_INDEX] = i
    done = {}
    if partial.exists():
        done = {a.info[SAMPLE_INDEX]: a for a in ase.io.read(partial, ":")}
    t0 = time.perf_counter()
    for a in tqdm(images, desc="labelling water"):
        if a.info[SAMPLE_INDEX] in done:
            continue
        rec = label(a, WATER_LEVELS)
        rec.calc = None
        write_images(partial, rec, append=True)
        done[a.info[SAMPLE_INDEX]] = rec
    ordered = [done[i] for i in range(len(images))]
    write_images(path, ordered)
    partial.unlink()
    card = {
        "levels": list(WATER_LEVELS),
        "frozen_core": False,
        "n_geometries": len(ordered),
        "sampling": f"quantum normal-mode sampling at {list(WATER_TEMPERATURES)} K around the {SAMPLING_LEVEL} minimum",
        "labelling_wall_time_s_this_run": round(time.perf_counter() - t0, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return path


def train_water_model(dataset: str | Path | None = None, out: str | Path | None = None, max_time_s: float = 600, seed: int = 0):
    """Train the embedded PaiNN on the CCSD(T) labels of the water dataset.

    Returns:
        The :class:`mlipviz.potential.TrainResult`.
    """
    from .potential import ModelConfig, train_potential

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


#: Where campaign datasets are written (extxyz + a JSON data card each).
CAMPAIGN_DATA = "campaigns"


def _campaign_dataset(name: str, images, runs: list[tuple[list[str], bool]], store_dir: Path, out_dir: Path) -> Path:
    """Run one or more campaigns over ``images`` into one store, export extxyz, write the data card."""
    from .reference.campaign import run_campaign
    from .reference.store import RecordStore

    store_path = store_dir / f"{name}.jsonl"
    t0 = time.perf_counter()
    reports = [run_campaign(images, levels, store_path, forces=forces, fd_check_fraction=0.01) for levels, forces in runs]
    store = RecordStore(store_path)
    exported = store.to_images()
    path = out_dir / f"{name}.extxyz"
    write_images(path, exported)
    card = {
        "n_geometries": len(exported),
        "runs": [{"levels": lv, "forces": "analytic" if f else "energies only"} for lv, f in runs],
        "records_ok": sum(1 for _ in store.successes()),
        "records_failed": [r["reason"] for r in store.failures()],
        "fd_checked_this_build": sum(r.n_fd_checked for r in reports),
        "wall_time_s_this_build": round(time.perf_counter() - t0, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return path


def build_campaign_datasets(out_dir: str | Path | None = None, store_dir: str | Path = "build/campaigns",
                            n_water: int = 1000, n_dimer: int = 100, n_methanol: int = 100) -> list[Path]:
    """The reference-lab datasets, made through the same Dask campaign path a cluster would use.

    * ``water_monomer``: ``n_water`` normal-mode samples (300/600/1000 K) at CCSD(T), B3LYP and PBE0/cc-pVDZ
      with forces, and CCSD(T)/cc-pVTZ energies on the first 20 (basis-set check);
    * ``water_dimer``: the S22 dimer, a rigid O···O scan, random orientations and rattles: CCSD(T)/cc-pVDZ
      energies, B3LYP/cc-pVDZ energies and forces (CCSD(T) forces of a 48-function dimer cost ~30 s each);
    * ``methanol``: normal-mode samples: CCSD(T)/cc-pVDZ energies, B3LYP/cc-pVDZ energies and forces.

    Resumable: the record stores in ``store_dir`` keep finished work across interruptions.
    """
    from .data import DATA_DIR
    from .reference import distance_scan, get_system, normal_modes, orientation_samples, rattle_sample, sample_normal_modes

    out_dir = Path(out_dir) if out_dir else DATA_DIR / CAMPAIGN_DATA
    store_dir = Path(store_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []

    modes = normal_modes(get_system("water"), SAMPLING_LEVEL)
    water = []
    for k, t in enumerate(WATER_TEMPERATURES):
        n = n_water // 3 + (n_water % 3 if k == 2 else 0)
        water += sample_normal_modes(modes, n, t, seed=10 + k)
    dz = ["CCSD(T)/cc-pVDZ", "B3LYP/cc-pVDZ", "PBE0/cc-pVDZ"]
    path = _campaign_dataset("water_monomer", water, [(dz, True)], store_dir, out_dir)
    _campaign_dataset("water_monomer_tz_subset", water[:20], [(["CCSD(T)/cc-pVTZ"], False)], store_dir, out_dir)
    paths.append(path)

    dimer = get_system("water_dimer")
    w = get_system("water")
    n_scan = n_dimer // 4
    geoms = distance_scan(dimer, [3, 4, 5], np.linspace(2.5, 6.0, n_scan))
    geoms += orientation_samples(w, w, 3.2, n_dimer // 4, seed=1)
    geoms += orientation_samples(w, w, 4.5, n_dimer // 4, seed=2)
    geoms += rattle_sample(dimer, n_dimer - len(geoms), stdev=0.04, seed=3)
    paths.append(_campaign_dataset("water_dimer", geoms,
                                   [(["CCSD(T)/cc-pVDZ"], False), (["B3LYP/cc-pVDZ"], True)], store_dir, out_dir))

    meoh_modes = normal_modes(get_system("methanol"), "HF/cc-pVDZ")
    meoh = []
    for k, t in enumerate(WATER_TEMPERATURES):
        n = n_methanol // 3 + (n_methanol % 3 if k == 2 else 0)
        meoh += sample_normal_modes(meoh_modes, n, t, seed=20 + k)
    paths.append(_campaign_dataset("methanol", meoh,
                                   [(["CCSD(T)/cc-pVDZ"], False), (["B3LYP/cc-pVDZ"], True)], store_dir, out_dir))
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-geometries", type=int, default=300)
    parser.add_argument("--max-train-time", type=float, default=600, help="training budget, s")
    parser.add_argument("--skip-dataset", action="store_true", help="only retrain the model")
    parser.add_argument("--skip-model", action="store_true", help="only relabel the dataset")
    parser.add_argument("--campaigns", action="store_true", help="also build the reference-lab campaign datasets")
    parser.add_argument("--only-campaigns", action="store_true", help="build only the campaign datasets")
    args = parser.parse_args(argv)
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
