"""Uncertainty on water: a deep ensemble against last-layer prediction rigidity (LLPR), calibration and OOD.

Both methods sit on the same data: the embedded water dataset (its train split fits LLPR's covariance, its
validation split calibrates both) and, as the held-out test set, water monomers of ``data/campaigns/`` sampled
independently of the training data (other seeds; no geometry is shared, which the script checks). It reports

* calibration on the test set, the metric set of Tan et al. (npj Comput. Mater. 9, 225 (2023)): Spearman ρ of
  |error| against σ, ROC-AUC for flagging the 10 % largest errors, miscalibration area, calibrated NLL, and
  RMSE against RMV (Rasmussen et al., J. Cheminf. 15, 121 (2023)) as ENCE; for the ensemble's energies and force
  components, and for LLPR's energies (LLPR as implemented here gives energy uncertainties only);
* out of distribution: the ROC-AUC with which σ separates the test set from hot MD (2500 K), stretched O–H bonds
  and a second water nearby (the S22 dimer scan and orientations of ``data/campaigns/water_dimer.extxyz``);
* cost: inference per structure (ensemble of K against LLPR on one member), and training (K members against one
  member plus LLPR's fit).

    python benchmarks/uncertainty.py [--quick] [--ensemble DIR] [--json PATH] [--plot PATH]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore", category=FutureWarning)

from ase.build import molecule  # noqa: E402

from mlipviz import keys  # noqa: E402
from mlipviz.dataset import campaign_dataset_path, load_images, water_dataset_path, water_ensemble_dir  # noqa: E402
from mlipviz.geometry import geometry_key  # noqa: E402
from mlipviz.md import md_sample  # noqa: E402
from mlipviz.metrology import ood_roc_auc, uq_metrics  # noqa: E402
from mlipviz.potential import LLPR, MLIPCalculator, load_ensemble  # noqa: E402
from mlipviz.reference.levels import get_level  # noqa: E402

from md_throughput import machine_line  # noqa: E402  (beside this script)

LEVEL = "CCSD(T)/cc-pVDZ"
#: Below this spread a force component is exactly zero for every member (the planar waters' x forces).
MIN_SPREAD = 1e-6


def stretched(images, seed: int) -> list:
    """Each structure with one O–H bond stretched by 0.3–0.6 Å (uniform), the H moved along the bond."""
    rng = np.random.default_rng(seed)
    out = []
    for atoms in images:
        a = atoms.copy()
        h = int(rng.integers(1, 3))
        bond = a.positions[h] - a.positions[0]
        a.positions[h] += rng.uniform(0.3, 0.6) * bond / np.linalg.norm(bond)
        out.append(a)
    return out


def per_atom(values, images) -> np.ndarray:
    return np.asarray(values) / np.array([len(a) for a in images])


def rmse(errors) -> float:
    return float(np.sqrt(np.mean(np.square(errors))))


def as_json(m) -> dict:
    """A :class:`mlipviz.metrology.UQMetrics` as plain JSON values."""
    out = {}
    for k, v in vars(m).items():
        out[k] = v.tolist() if isinstance(v, np.ndarray) else (list(v) if isinstance(v, tuple) else v)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 test structures and 20 per OOD set")
    parser.add_argument("--ensemble", type=Path, default=None, help="saved ensemble (default: the embedded one)")
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--n-ood", type=int, default=100)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None, help="PNG: RMSE against RMV and the OOD separation")
    args = parser.parse_args(argv)
    n_test, n_ood = (200, 20) if args.quick else (args.n_test, args.n_ood)
    slug = get_level(LEVEL).slug
    t_start = time.perf_counter()

    ensemble = load_ensemble(args.ensemble or water_ensemble_dir(), device="cpu")
    data = load_images(water_dataset_path())
    split = ensemble.split
    train, val = [data[i] for i in split[keys.SPLIT_TRAIN]], [data[i] for i in split[keys.SPLIT_VAL]]
    seen = {geometry_key(a) for a in data}
    pool = [a for a in load_images(campaign_dataset_path("water_monomer")) if geometry_key(a) not in seen]
    test = [pool[i] for i in np.random.default_rng(0).permutation(len(pool))[:n_test]]
    dimers = load_images(campaign_dataset_path("water_dimer"))[:n_ood]
    calc = MLIPCalculator(ensemble.models[0], ensemble.configs[0], device="cpu")
    ood = {
        "hot MD, 2500 K": md_sample(molecule("H2O"), calc, n_ood, 2500.0, interval_steps=20, progress=False),
        "O–H stretched 0.3–0.6 Å": stretched(test[:n_ood], seed=1),
        "second water nearby": dimers,
    }

    # Deep ensemble: energies and force components on the test set.
    t0 = time.perf_counter()
    pred = ensemble.predict(test, device="cpu", progress=False)
    t_ens = (time.perf_counter() - t0) / len(test)
    e_ref = np.array([a.info[keys.energy_key(slug)] for a in test])
    de = pred.energy - e_ref
    df = np.concatenate([(f - a.arrays[keys.forces_key(slug)]).ravel() for f, a in zip(pred.forces, test)])
    sf = np.concatenate([s.ravel() for s in pred.forces_std])
    keep = np.concatenate([s.ravel() for s in pred.forces_std_raw]) > MIN_SPREAD
    metrics = {"ensemble energy": uq_metrics(de, pred.energy_std, unit="eV"),
               "ensemble force components": uq_metrics(df[keep], sf[keep], unit="eV/Å")}
    rmses = {"ensemble energy": rmse(de), "ensemble force components": rmse(df[keep])}

    # LLPR on member 0: covariance from the train split, (α, ς) from the validation split.
    t0 = time.perf_counter()
    llpr = LLPR.fit(ensemble.models[0], ensemble.configs[0], train).calibrate(val, LEVEL)
    t_llpr_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    lp = llpr.predict(test)
    t_llpr = (time.perf_counter() - t0) / len(test)
    metrics["LLPR energy (member 0)"] = uq_metrics(lp.energy - e_ref, lp.energy_uncertainty, unit="eV")
    rmses["LLPR energy (member 0)"] = rmse(lp.energy - e_ref)

    # Out of distribution: σ per atom for energies, the largest atom uncertainty for the ensemble's forces.
    ood_auc = {}
    ens_in_e, ens_in_f = per_atom(pred.energy_std, test), np.array([u.max() for u in pred.atom_uncertainty])
    llpr_in = per_atom(lp.energy_uncertainty, test)
    for name, images in ood.items():
        p_out, l_out = ensemble.predict(images, device="cpu", progress=False), llpr.predict(images)
        ood_auc[name] = {
            "ensemble energy σ/atom": ood_roc_auc(ens_in_e, per_atom(p_out.energy_std, images)),
            "ensemble max atom force σ": ood_roc_auc(ens_in_f, np.array([u.max() for u in p_out.atom_uncertainty])),
            "LLPR energy σ/atom": ood_roc_auc(llpr_in, per_atom(l_out.energy_uncertainty, images)),
        }

    member_s = [c.metadata.get(keys.META_TRAIN_WALL_TIME) for c in ensemble.configs]
    cost = {"ensemble_members": ensemble.n_members,
            "inference_ms_per_structure": {"ensemble": 1e3 * t_ens, "LLPR": 1e3 * t_llpr},
            "inference_ratio_ensemble_over_llpr": t_ens / t_llpr,
            "training_s": {"ensemble (all members)": float(np.sum(member_s)),
                           "LLPR (one member + fit)": float(member_s[0] + t_llpr_fit)},
            "llpr_fit_s": t_llpr_fit}

    print(f"\nUncertainty on water at {LEVEL}: {len(test)} held-out test monomers, {n_ood} per OOD set")
    print(f"machine: {machine_line()}")
    print(f"calibration scales (validation, n={len(val)}): ensemble {ensemble.calibration}, LLPR "
          f"α={llpr.alpha:.3g}, ς={llpr.regularizer:.3g}")
    print(f"\n{'method':28s} {'unit':5s} {'RMSE':>8s} {'ρ':>6s} {'AUC10%':>7s} {'miscal.':>7s} {'NLL':>7s} {'ENCE':>6s}")
    for name, m in metrics.items():
        print(f"{name:28s} {'m' + m.unit:5s} {1e3 * rmses[name]:8.2f} {m.spearman:6.2f} {m.auc:7.2f} "
              f"{m.miscalibration_area:7.3f} {m.nll:7.2f} {m.ence:6.2f}")
    print(f"\n{'OOD ROC-AUC against the test set':34s} " + " ".join(f"{k:>26s}" for k in next(iter(ood_auc.values()))))
    for name, row in ood_auc.items():
        print(f"{name:34s} " + " ".join(f"{v:26.3f}" for v in row.values()))
    print(f"\ncost: inference {cost['inference_ms_per_structure']['ensemble']:.2f} ms/structure (ensemble of "
          f"{ensemble.n_members}) against {cost['inference_ms_per_structure']['LLPR']:.2f} (LLPR), ratio "
          f"{cost['inference_ratio_ensemble_over_llpr']:.2f}; training {cost['training_s']['ensemble (all members)']:.0f} s "
          f"against {cost['training_s']['LLPR (one member + fit)']:.0f} s (LLPR fit {t_llpr_fit:.2f} s)")
    wall = time.perf_counter() - t_start
    print(f"wall time {wall:.0f} s")

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from mlipviz.metrology import plot_calibration_curve, plot_rmse_vs_rmv

        fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
        energies = [(k, m) for k, m in metrics.items() if m.unit == "eV"]
        forces = [(k, m) for k, m in metrics.items() if m.unit != "eV"]
        plot_rmse_vs_rmv(energies, ax=axes[0])
        plot_rmse_vs_rmv(forces, ax=axes[1])
        plot_calibration_curve(list(metrics.items()), ax=axes[2])
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"plot: {args.plot}")
    if args.json:
        out = {"machine": machine_line(), "level": LEVEL, "n_test": len(test), "n_ood": n_ood, "wall_s": wall,
               "calibration": {"ensemble": ensemble.calibration,
                               "llpr": {"alpha": float(llpr.alpha), "regularizer": float(llpr.regularizer)}},
               "rmse": rmses, "metrics": {k: as_json(m) for k, m in metrics.items()}, "ood_roc_auc": ood_auc, "cost": cost}
        args.json.write_text(json.dumps(out, indent=1) + "\n")
        print(f"json: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
