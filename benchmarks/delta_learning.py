"""Δ-learning against direct training: CCSD(T) test error against the number of CCSD(T) labels.

Does a B3LYP baseline plus a Δ model reach a given CCSD(T) error with fewer CCSD(T) labels than a potential trained
on CCSD(T) directly? On ``data/campaigns/water_monomer.extxyz`` (1000 H2O with CCSD(T), B3LYP and PBE0 energies and
forces, cc-pVDZ):

* a fixed test set (200 structures, the same for every seed) and a baseline pool (the other 800 structures);
* per seed, one baseline trained on the B3LYP labels of the whole pool (90/10 train/validation);
* per seed and N CCSD(T) labels: N structures of the pool (the first N of one permutation per seed, so the sets are
  nested), split 80/20 into train/validation. *direct*: ``train_potential`` on their CCSD(T) labels. *Δ*: the
  baseline plus a Δ model (``train_delta``) on CCSD(T) − B3LYP of the same N structures, the same split. Direct and
  Δ models share the architecture and the wall-time budget (``--time-per-model``), trained one after the other;
* CCSD(T) energy MAE (meV) and force MAE (meV/Å) on the test set, mean ± standard deviation over seeds ("± —" with
  one seed), and the label ratio: how many CCSD(T) labels direct training needs to reach the force MAE that Δ reaches
  with N, divided by N (log-log interpolation of the direct curve's means; "> x" or "< x" where Δ's error lies
  outside the measured direct curve). The baseline alone is the N = 0 point of Δ.

    python benchmarks/delta_learning.py [--quick] [--seeds 3] [--labels 10 20 40 80 160 320]
        [--time-per-model 60] [--baseline-time 300] [--device auto] [--json PATH] [--plot PATH]

``--quick``: N in (10, 40), one seed, 10 s per model and 30 s for a smaller baseline; about 3 min on 2 cores.

Reference:
    Ramakrishnan, Dral, Rupp, von Lilienfeld, J. Chem. Theory Comput. 11, 2087 (2015),
    doi:10.1021/acs.jctc.5b00099 (Δ-learning).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore", category=FutureWarning)  # TorchScript deprecation from schnetpack's import
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=UserWarning, module="pytorch_lightning")
os.environ.setdefault("TQDM_DISABLE", "1")  # SchNetPack's per-database statistics bar, once per model

import torch  # noqa: E402

from mlipviz import keys  # noqa: E402
from mlipviz.device import resolve_device  # noqa: E402
from mlipviz.potential import MLIPCalculator, ModelConfig, train_potential  # noqa: E402
from mlipviz.potential.delta import train_delta  # noqa: E402
from mlipviz.structure_io import load_images  # noqa: E402

from md_throughput import machine_line  # noqa: E402  (beside this script)
from _model_errors import test_set_errors  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "campaigns" / "water_monomer.extxyz"
TARGET, BASELINE = "CCSD(T)/cc-pVDZ", "B3LYP/cc-pVDZ"
N_TEST = 200
SPLIT_SEED = 0  # the test set does not move with --seeds
MAX_EPOCHS = 10**7  # the wall-time budget, not the epoch count, ends every training


def labels_needed(ns, direct_mae, target: float) -> tuple[str, float]:
    """Labels direct training needs for an error of ``target``: ("=", N) by log-log interpolation between the first
    two neighbouring points of the direct curve that bracket it, else (">", largest N) or ("<", smallest N)."""
    ns, m = np.asarray(ns, float), np.asarray(direct_mae, float)
    for i in range(len(ns) - 1):
        if (m[i] - target) * (m[i + 1] - target) <= 0 and m[i] != m[i + 1]:
            t = (np.log(target) - np.log(m[i])) / (np.log(m[i + 1]) - np.log(m[i]))
            return "=", float(np.exp(np.log(ns[i]) + t * (np.log(ns[i + 1]) - np.log(ns[i]))))
    return (">", float(ns[-1])) if target < m.min() else ("<", float(ns[0]))


def run_seed(seed, pool, test, labels, args, arch, base_arch, work: Path, log) -> dict:
    common = dict(lr=args.lr, batch_size=args.batch_size, max_epochs=MAX_EPOCHS, device=args.device, seed=seed,
                  progress=False)
    base = train_potential(pool, BASELINE, base_arch, workdir=work / "baseline", n_train=0.9, n_val=0.1,
                           max_time_s=args.baseline_time, **common)
    base_calc = MLIPCalculator(base.model, base.config, device=args.device)
    out = {"seed": seed, "baseline": {
        "vs_baseline_level": test_set_errors(base_calc, test, BASELINE),
        "vs_target_level": test_set_errors(base_calc, test, TARGET),
        "epochs": base.config.metadata[keys.META_EPOCHS],
        "train_wall_s": base.config.metadata[keys.META_TRAIN_WALL_TIME]}, "runs": {}}
    log(f"seed {seed}: baseline {out['baseline']['epochs']} epochs, B3LYP test force MAE "
        f"{out['baseline']['vs_baseline_level']['forces_mae_meV_per_A']:.1f} meV/Å, against CCSD(T) "
        f"{out['baseline']['vs_target_level']['forces_mae_meV_per_A']:.1f} meV/Å")
    order = np.random.default_rng(1000 + seed).permutation(len(pool))
    for n in labels:
        chosen = order[:n].tolist()
        delta = train_delta(pool, TARGET, BASELINE, baseline=(base.model, base.config), target_indices=chosen,
                            delta_config=arch, workdir=work / f"delta_{n}", n_train=0.8, n_val=0.2,
                            max_time_s=args.time_per_model, **common)
        split = delta.delta.config.metadata[keys.META_SPLIT]
        direct = train_potential([pool[i] for i in chosen], TARGET, arch, workdir=work / f"direct_{n}", split=split,
                                 max_time_s=args.time_per_model, **common)
        row = {}
        for name, calc, config in (("direct", MLIPCalculator(direct.model, direct.config, device=args.device),
                                    direct.config),
                                   ("delta", delta.calculator(device=args.device), delta.delta.config)):
            row[name] = {**test_set_errors(calc, test, TARGET), "epochs": config.metadata[keys.META_EPOCHS],
                         "train_wall_s": config.metadata[keys.META_TRAIN_WALL_TIME]}
        out["runs"][n] = row
        log(f"seed {seed}, N={n}: force MAE direct {row['direct']['forces_mae_meV_per_A']:.1f} "
            f"({row['direct']['epochs']} epochs), Δ {row['delta']['forces_mae_meV_per_A']:.1f} meV/Å "
            f"({row['delta']['epochs']} epochs)")
    return out


def summarise(seeds: list[dict], labels) -> dict:
    def stat(values):
        v = np.asarray(values, float)
        return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else None, "n_seeds": len(v)}

    rows = {}
    for n in labels:
        rows[n] = {arm: {q: stat([s["runs"][n][arm][q] for s in seeds])
                         for q in ("energy_mae_meV", "forces_mae_meV_per_A")} for arm in ("direct", "delta")}
    direct_f = [rows[n]["direct"]["forces_mae_meV_per_A"]["mean"] for n in labels]
    for n in labels:
        kind, needed = labels_needed(labels, direct_f, rows[n]["delta"]["forces_mae_meV_per_A"]["mean"])
        rows[n]["direct_labels_for_delta_forces_mae"] = {"relation": kind, "labels": needed, "ratio": needed / n}
    base = {f"{which}_{q}": stat([s["baseline"][which][q] for s in seeds])
            for which in ("vs_baseline_level", "vs_target_level") for q in ("energy_mae_meV", "forces_mae_meV_per_A")}
    return {"by_labels": rows, "baseline_alone": base}


def _pm(s: dict, width: int = 16) -> str:
    text = f"{s['mean']:.1f} ± {s['std']:.1f}" if s["std"] is not None else f"{s['mean']:.1f} ± —"
    return f"{text:>{width}s}"


def print_table(r: dict) -> None:
    print()
    print(f"machine: {r['machine']}")
    print(f"device:  {r['device']}   torch {r['torch']}   threads {r['threads']}")
    print(f"data:    {r['data']}: test {r['n_test']} fixed, baseline pool {r['n_pool']} ({BASELINE}), "
          f"seeds {r['seeds']}")
    print(f"models:  direct and Δ {r['architecture']}; baseline {r['baseline_architecture']}")
    print(f"budget:  {r['time_per_model_s']:g} s per direct or Δ model, {r['baseline_time_s']:g} s per baseline; "
          f"lr {r['lr']:g}, batch {r['batch_size']}, 80/20 train/validation within the N labels")
    b = r["summary"]["baseline_alone"]
    print(f"baseline alone (N = 0 for Δ), test MAE against {BASELINE}: energy "
          f"{_pm(b['vs_baseline_level_energy_mae_meV'], 0)} meV, forces "
          f"{_pm(b['vs_baseline_level_forces_mae_meV_per_A'], 0)} meV/Å; against {TARGET}: energy "
          f"{_pm(b['vs_target_level_energy_mae_meV'], 0)} meV (the levels' constant gap), forces "
          f"{_pm(b['vs_target_level_forces_mae_meV_per_A'], 0)} meV/Å")
    print()
    print(f"{TARGET} test MAE, mean ± std over seeds")
    print(f"{'N':>5s} {'direct E (meV)':>16s} {'Δ E (meV)':>16s} {'direct F (meV/Å)':>16s} {'Δ F (meV/Å)':>16s} "
          f"{'direct N for Δ F ÷ N':>21s}")
    for n, row in r["summary"]["by_labels"].items():
        need = row["direct_labels_for_delta_forces_mae"]
        rel = "" if need["relation"] == "=" else need["relation"]
        print(f"{n:>5d} {_pm(row['direct']['energy_mae_meV'])} {_pm(row['delta']['energy_mae_meV'])} "
              f"{_pm(row['direct']['forces_mae_meV_per_A'])} {_pm(row['delta']['forces_mae_meV_per_A'])} "
              f"{rel + format(need['ratio'], '.1f'):>21s}")
    epochs = {arm: [s["runs"][n][arm]["epochs"] for s in r["per_seed"] for n in s["runs"]]
              for arm in ("direct", "delta")}
    print()
    print("epochs in the budget: " + ", ".join(f"{arm} {min(v)}–{max(v)}" for arm, v in epochs.items()))
    print(f"wall time {r['wall_s']:.0f} s")


def plot(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = r["summary"]["by_labels"]
    ns = np.array(list(rows), float)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, q, unit in zip(axes, ("energy_mae_meV", "forces_mae_meV_per_A"), ("meV", "meV/Å")):
        for arm, label, marker in (("direct", f"direct ({TARGET})", "o"), ("delta", f"Δ ({BASELINE} + Δ)", "s")):
            mean = np.array([rows[n][arm][q]["mean"] for n in rows])
            std = np.array([rows[n][arm][q]["std"] or 0.0 for n in rows])
            ax.errorbar(ns, mean, yerr=std, marker=marker, capsize=3, label=label)
        base = r["summary"]["baseline_alone"]
        if q.startswith("forces"):  # its energies sit a constant ~4.8 eV from CCSD(T): off any useful scale
            ax.axhline(base[f"vs_target_level_{q}"]["mean"], color="grey", ls="--", lw=1,
                       label=f"baseline alone against {TARGET}")
        ax.axhline(base[f"vs_baseline_level_{q}"]["mean"], color="grey", ls=":", lw=1,
                   label=f"baseline against its own {BASELINE} labels")
        ax.set(xscale="log", yscale="log", xlabel=f"{TARGET} labels N", ylabel=f"test {q.split('_')[0]} MAE ({unit})")
        ax.set_xticks(ns, [str(int(n)) for n in ns])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle(f"H2O: {TARGET} test error against labels ({len(r['seeds'])} seed(s), "
                 f"{r['time_per_model_s']:g} s per model)")
    fig.savefig(path, dpi=150)
    plt.close(fig)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="N in (10, 40), 1 seed, 10 s per model (~3 min on 2 cores)")
    p.add_argument("--labels", type=int, nargs="+", default=[10, 20, 40, 80, 160, 320])
    p.add_argument("--seeds", type=int, default=3, help="seeds 0 … seeds−1 (at least 2 for a spread)")
    p.add_argument("--time-per-model", type=float, default=60.0, help="wall-time budget of each direct or Δ model, s")
    p.add_argument("--baseline-time", type=float, default=300.0, help="wall-time budget of each baseline, s")
    p.add_argument("--features", type=int, default=32, help="PaiNN features of the direct and Δ models")
    p.add_argument("--interactions", type=int, default=2, help="PaiNN interactions of the direct and Δ models")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--plot", type=Path, help="write the learning curve here (png)")
    args = p.parse_args(argv)
    if args.quick:
        args.labels, args.seeds, args.time_per_model, args.baseline_time = [10, 40], 1, 10.0, 30.0
    labels = sorted(set(args.labels))
    if args.seeds < 1 or not labels or labels[0] < 3:
        raise SystemExit("need --seeds >= 1 and every --labels N >= 3 (train and validation splits).")
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:6.0f} s] {msg}", flush=True)

    images = load_images(DATA)
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(images))
    test, pool = [images[i] for i in perm[:N_TEST]], [images[i] for i in perm[N_TEST:]]
    if labels[-1] > len(pool):
        raise SystemExit(f"--labels {labels[-1]} exceeds the baseline pool of {len(pool)} structures.")
    arch = ModelConfig(representation="painn", n_atom_basis=args.features, n_interactions=args.interactions, cutoff=5.0)
    base_arch = (ModelConfig(representation="painn", n_atom_basis=32, n_interactions=2, cutoff=5.0) if args.quick
                 else ModelConfig(representation="painn", n_atom_basis=64, n_interactions=3, cutoff=5.0))
    dev = resolve_device(args.device)
    log(f"{len(images)} structures: test {len(test)}, pool {len(pool)}; device {dev}, labels {labels}, "
        f"seeds {args.seeds}")
    per_seed = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            per_seed.append(run_seed(seed, pool, test, labels, args, arch, base_arch, Path(tmp) / f"seed{seed}", log))
    report = {
        "machine": machine_line(),
        "device": str(dev) + (f" ({torch.cuda.get_device_name()})" if dev.type == "cuda" else ""),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "data": DATA.name,
        "n_test": len(test),
        "n_pool": len(pool),
        "seeds": list(range(args.seeds)),
        "labels": labels,
        "architecture": arch.describe(),
        "baseline_architecture": base_arch.describe(),
        "time_per_model_s": args.time_per_model,
        "baseline_time_s": args.baseline_time,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "quick": args.quick,
        "summary": summarise(per_seed, labels),
        "per_seed": per_seed,
        "wall_s": time.perf_counter() - t_start,
    }
    print_table(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=float) + "\n")
    if args.plot:
        plot(report, args.plot)
        print(f"plot: {args.plot}")
    return report


if __name__ == "__main__":
    main()
