"""Active learning against random selection: labels needed to reach a force MAE, water monomer at CCSD(T)/cc-pVDZ.

The pool is ``data/campaigns/water_monomer.extxyz`` (1,000 H2O with CCSD(T)/cc-pVDZ energies and forces) less a
fixed test set of 200 structures (the same for every arm and seed). Each run starts from ``--initial`` random
labels of the pool (drawn by the seed, the same for both arms), and each round trains a deep ensemble on all labels
with a fixed epoch budget (:func:`mlipviz.active.active_learning`), records its test energy and force MAE, and adds
``--per-round`` labels: the most uncertain candidates (max calibrated per-atom force uncertainty) in the
"uncertainty" arm, a uniform draw in the "random" arm. Labels come from the finished campaign
(:func:`mlipviz.active.pool_labeller`), so no quantum chemistry runs here; both arms of one seed share the initial
labels, the member seeds and the rule for the validation split, and differ only in the selection rule.

For a target force MAE (``--target`` meV/Å; default: the MAE the random arm reaches at its final budget, averaged
over seeds) the script reports the labels each arm needs, interpolated log-log between rounds, on the curves
averaged over seeds and per seed, and the ratio uncertainty ÷ random (goal <= 0.5): on the mean curves, and its mean,
spread and range over the seeds' paired ratios. A run that never reaches the target is reported as censored
(">budget"), never extrapolated.

    python benchmarks/active_learning.py [--quick] [--seeds 0 1 2] [--per-round 10] [--budget 100]
                                         [--target MEV_PER_A] [--jobs 2] [--json PATH] [--plot PATH]

Runs are kept in ``--workdir`` (default a temporary directory): given an existing one, finished runs are read back
and interrupted ones continue (each run is a resumable active-learning directory).

References:
    Settles, Active Learning Literature Survey, University of Wisconsin–Madison TR 1648 (2009).
    Smith, Nebgen, Lubbers, Isayev, Roitberg, J. Chem. Phys. 148, 241733 (2018), doi:10.1063/1.5023802.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore", category=FutureWarning)  # TorchScript deprecation from schnetpack's import
warnings.filterwarnings("ignore", category=DeprecationWarning)

os.environ.setdefault("TQDM_DISABLE", "1")  # SchNetPack's per-training statistics bars; the log says enough
sys.path.insert(0, str(Path(__file__).resolve().parent))  # md_throughput beside this script, also in workers

DATA = Path(__file__).resolve().parents[1] / "data" / "campaigns" / "water_monomer.extxyz"
LEVEL = "CCSD(T)/cc-pVDZ"
ARMS = ("uncertainty", "random")
TEST_SEED = 12345  # the fixed test set, independent of --seeds


def split_data(n_test: int):
    """The pool and the fixed test set (a permutation with :data:`TEST_SEED`)."""
    from mlipviz.structure_io import load_images

    images = load_images(DATA)
    order = np.random.default_rng(TEST_SEED).permutation(len(images))
    return [images[i] for i in sorted(order[n_test:])], [images[i] for i in sorted(order[:n_test])]


def quiet_lightning() -> None:
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def run_arm(strategy: str, seed: int, settings: dict, workdir: str) -> dict:
    """One active-learning run (resumed if its directory exists); its learning curve and timings."""
    import torch

    from mlipviz.active import active_learning, pool_labeller
    from mlipviz.potential import ModelConfig

    quiet_lightning()
    torch.set_num_threads(settings["threads"])
    pool, test = split_data(settings["n_test"])
    start = np.random.default_rng(seed).choice(len(pool), settings["initial"], replace=False)
    initial = [pool[i] for i in sorted(start)]
    config = ModelConfig(representation="painn", n_atom_basis=settings["n_atom_basis"],
                         n_interactions=settings["n_interactions"])
    train_kwargs = {"max_epochs": settings["epochs"], "lr": settings["lr"], "batch_size": settings["batch_size"],
                    "device": settings["device"]}
    if settings["max_time_s"]:
        train_kwargs["max_time_s"] = settings["max_time_s"]
    t0 = time.perf_counter()
    run = active_learning(initial, pool, pool_labeller(pool, LEVEL), Path(workdir) / f"{strategy}_seed{seed}",
                          level=LEVEL, n_members=settings["members"], per_round=settings["per_round"],
                          label_budget=settings["budget"], test=test, config=config, train_kwargs=train_kwargs,
                          strategy=strategy, seed=seed, progress=False)
    return {
        "strategy": strategy, "seed": seed,
        "n_labels": run.n_labels.tolist(),
        "forces_mae_meV_per_A": run.test_forces_mae.tolist(),
        "energy_mae_meV": run.test_energy_mae.tolist(),
        "pool_mean_uncertainty_meV_per_A": [r.pool_mean_uncertainty for r in run.rounds],
        "pool_max_uncertainty_meV_per_A": [r.pool_max_uncertainty for r in run.rounds],
        "train_wall_s": float(sum(r.train_wall_s for r in run.rounds)),
        "wall_s_this_call": time.perf_counter() - t0,
        "stop_reason": run.stop_reason,
    }


def labels_needed(n_labels, mae, target: float) -> float:
    """Labels at which a learning curve first reaches ``target``, interpolated log-log; inf if it never does."""
    n, m = np.asarray(n_labels, dtype=float), np.asarray(mae, dtype=float)
    below = np.nonzero(m <= target)[0]
    if not len(below):
        return float("inf")
    i = int(below[0])
    if i == 0:
        return float(n[0])
    x0, x1, y0, y1 = np.log(n[i - 1]), np.log(n[i]), np.log(m[i - 1]), np.log(m[i])
    return float(np.exp(x0 + (np.log(target) - y0) / (y1 - y0) * (x1 - x0)))


def summarise(runs: list[dict], target: float | None) -> dict:
    """Mean curves, the target, the labels each arm needs and the uncertainty ÷ random ratio with its spread."""
    by = {arm: sorted((r for r in runs if r["strategy"] == arm), key=lambda r: r["seed"]) for arm in ARMS}
    n = by["random"][0]["n_labels"]
    curves = {}
    for arm in ARMS:
        f = np.array([r["forces_mae_meV_per_A"] for r in by[arm]])
        e = np.array([r["energy_mae_meV"] for r in by[arm]])
        curves[arm] = {"n_labels": n, "forces_mean": f.mean(0).tolist(), "forces_std": f.std(0, ddof=1).tolist()
                       if len(f) > 1 else [0.0] * len(n), "energy_mean": e.mean(0).tolist(),
                       "energy_std": e.std(0, ddof=1).tolist() if len(e) > 1 else [0.0] * len(n)}
    default = target is None
    if default:
        target = float(np.mean([r["forces_mae_meV_per_A"][-1] for r in by["random"]]))
    need = {arm: labels_needed(n, curves[arm]["forces_mean"], target) for arm in ARMS}
    per_seed = {arm: {r["seed"]: labels_needed(r["n_labels"], r["forces_mae_meV_per_A"], target) for r in by[arm]}
                for arm in ARMS}
    paired, bounds = [], {}
    budget = n[-1]
    for seed, nr in per_seed["random"].items():
        nu = per_seed["uncertainty"].get(seed)
        if nu is None:
            continue
        if np.isfinite(nu) and np.isfinite(nr):
            paired.append(nu / nr)
        elif np.isfinite(nu):  # random never reached the target: it would need more than the budget
            bounds[seed] = f"< {nu / budget:.2f}"
        elif np.isfinite(nr):
            bounds[seed] = f"> {budget / nr:.2f}"
        else:
            bounds[seed] = "neither arm reached the target"
    censored = sum(1 for arm in ARMS for v in per_seed[arm].values() if not np.isfinite(v))
    return {
        "target_meV_per_A": target,
        "target_source": "random arm's mean final MAE" if default else "--target",
        "curves": curves,
        "labels_needed_mean_curve": need,
        "labels_needed_per_seed": per_seed,
        "ratio_mean_curves": need["uncertainty"] / need["random"] if np.isfinite(need["random"]) else float("nan"),
        "ratio_per_seed": paired,
        "ratio_per_seed_mean": float(np.mean(paired)) if paired else float("nan"),
        "ratio_per_seed_std": float(np.std(paired, ddof=1)) if len(paired) > 1 else float("nan"),
        "ratio_per_seed_range": [float(min(paired)), float(max(paired))] if paired else [],
        "n_censored_runs": censored,
        "ratio_bounds_censored_seeds": bounds,
    }


def fmt_labels(v: float, budget: int) -> str:
    return f">{budget}" if not np.isfinite(v) else f"{v:.1f}"


def print_table(report: dict) -> None:
    s, c = report["settings"], report["summary"]
    print()
    print(f"machine: {report['machine']}")
    print(f"device:  {report['device']}   torch {report['torch']}")
    print(f"data:    {report['data']}")
    print(f"model:   {report['model']}")
    print()
    print(f"{'labels':>6s}  {'uncertainty F-MAE (meV/Å)':>26s}  {'random F-MAE (meV/Å)':>22s}  "
          f"{'uncertainty E-MAE (meV)':>24s}  {'random E-MAE (meV)':>20s}")
    cu, cr = c["curves"]["uncertainty"], c["curves"]["random"]
    for i, n in enumerate(cu["n_labels"]):
        print(f"{n:6d}  {cu['forces_mean'][i]:17.1f} ± {cu['forces_std'][i]:6.1f}  "
              f"{cr['forces_mean'][i]:13.1f} ± {cr['forces_std'][i]:6.1f}  "
              f"{cu['energy_mean'][i]:15.2f} ± {cu['energy_std'][i]:6.2f}  "
              f"{cr['energy_mean'][i]:11.2f} ± {cr['energy_std'][i]:6.2f}")
    print("(mean ± standard deviation over seeds " + ", ".join(map(str, s["seeds"])) + ")")
    print()
    b = s["budget"]
    print(f"target force MAE: {c['target_meV_per_A']:.1f} meV/Å ({c['target_source']})")
    for arm in ARMS:
        seeds = ", ".join(f"seed {k}: {fmt_labels(v, b)}" for k, v in c["labels_needed_per_seed"][arm].items())
        print(f"labels needed, {arm:11s}: {fmt_labels(c['labels_needed_mean_curve'][arm], b):>6s} on the mean curve "
              f"({seeds})")
    rng = c["ratio_per_seed_range"]
    print(f"ratio uncertainty ÷ random: {c['ratio_mean_curves']:.2f} on the mean curves; per seed "
          f"{c['ratio_per_seed_mean']:.2f} ± {c['ratio_per_seed_std']:.2f}"
          + (f" [{rng[0]:.2f}, {rng[1]:.2f}]" if rng else "")
          + f" over {len(c['ratio_per_seed'])} paired seeds; goal <= 0.5")
    if c["ratio_bounds_censored_seeds"]:
        print(f"  {c['n_censored_runs']} run(s) never reached the target within the budget; ratio bounds there: "
              + ", ".join(f"seed {k}: {v}" for k, v in c["ratio_bounds_censored_seeds"].items()))
    print(f"training time {report['train_wall_s']:.0f} s of {report['wall_s']:.0f} s wall time")


def plot(report: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = report["summary"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for arm, colour in zip(ARMS, ("C0", "C1")):
        cv = c["curves"][arm]
        n = np.array(cv["n_labels"])
        for ax, q, unit in ((axes[0], "forces", "force MAE (meV/Å)"), (axes[1], "energy", "energy MAE (meV)")):
            m, s = np.array(cv[f"{q}_mean"]), np.array(cv[f"{q}_std"])
            ax.plot(n, m, "o-", color=colour, label=f"{arm} (mean of {len(report['settings']['seeds'])} seeds)")
            ax.fill_between(n, np.maximum(m - s, 1e-3), m + s, color=colour, alpha=0.2)
            ax.set(xscale="log", yscale="log", xlabel="labelled structures", ylabel=f"test {unit}")
    axes[0].axhline(c["target_meV_per_A"], color="grey", ls="--", label="target")
    axes[0].set_title(f"water, {LEVEL}: ratio {c['ratio_mean_curves']:.2f} (uncertainty ÷ random)")
    axes[0].legend()
    axes[1].legend()
    fig.savefig(path, dpi=120)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 seeds, 2 rounds, a tiny model: a few minutes on 2 cores")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds per arm (default 0 1 2; --quick 0 1)")
    p.add_argument("--initial", type=int, default=10, help="random labels to start from")
    p.add_argument("--per-round", type=int, default=10, help="labels added per round")
    p.add_argument("--budget", type=int, default=None, help="labels at the end (default 100; --quick 30)")
    p.add_argument("--target", type=float, default=None, help="force MAE target, meV/Å (default: random's final)")
    p.add_argument("--test-size", type=int, default=200)
    p.add_argument("--members", type=int, default=None, help="ensemble members (default 3; --quick 2)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per member and round (default 200; --quick 30)")
    p.add_argument("--max-time-s", type=float, default=None, help="also cap each member's training, s")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--features", type=int, default=None, help="PaiNN features (default 32; --quick 16)")
    p.add_argument("--interactions", type=int, default=None, help="PaiNN interactions (default 2; --quick 1)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (water is too small to gain from a GPU)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel processes")
    p.add_argument("--workdir", default=None, help="keep (and resume) the runs here; default a temporary directory")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--plot", help="learning curves with their spread over seeds, png")
    args = p.parse_args(argv)
    q = args.quick
    settings = {
        "seeds": args.seeds or ([0, 1] if q else [0, 1, 2]), "initial": args.initial, "per_round": args.per_round,
        "budget": args.budget or (args.initial + 2 * args.per_round if q else 100), "n_test": args.test_size,
        "members": args.members or (2 if q else 3), "epochs": args.epochs or (30 if q else 200),
        "max_time_s": args.max_time_s, "lr": args.lr, "batch_size": args.batch_size,
        "n_atom_basis": args.features or (16 if q else 32), "n_interactions": args.interactions or (1 if q else 2),
        "device": args.device, "threads": args.threads, "quick": q,
    }
    if len(settings["seeds"]) < 2:
        p.error("give at least 2 seeds: the spread over seeds is part of the result")
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:6.0f} s] {msg}", flush=True)

    import torch

    from md_throughput import machine_line  # beside this script

    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="al_bench_")
    workdir = args.workdir or tmp.name
    jobs = [(arm, seed) for seed in settings["seeds"] for arm in ARMS]
    log(f"{len(jobs)} runs ({', '.join(ARMS)} × seeds {settings['seeds']}), {args.jobs} at a time, in {workdir}")
    runs = []
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(run_arm, arm, seed, settings, workdir): (arm, seed) for arm, seed in jobs}
            for fut, (arm, seed) in futures.items():
                runs.append(fut.result())
                log(f"  {arm} seed {seed}: final force MAE {runs[-1]['forces_mae_meV_per_A'][-1]:.1f} meV/Å")
    else:
        for arm, seed in jobs:
            runs.append(run_arm(arm, seed, settings, workdir))
            log(f"  {arm} seed {seed}: final force MAE {runs[-1]['forces_mae_meV_per_A'][-1]:.1f} meV/Å "
                f"({runs[-1]['wall_s_this_call']:.0f} s)")
    n_pool = 1000 - settings["n_test"]
    report = {
        "machine": machine_line(),
        "device": settings["device"] + (f" ({torch.cuda.get_device_name()})" if settings["device"] != "cpu"
                                        and torch.cuda.is_available() else ""),
        "torch": torch.__version__,
        "data": f"{DATA.name}: {n_pool} pool / {settings['n_test']} test (fixed, seed {TEST_SEED}), {LEVEL}; start "
                f"{settings['initial']} random labels, +{settings['per_round']} per round, budget {settings['budget']}",
        "model": f"PaiNN {settings['n_atom_basis']} features × {settings['n_interactions']} interactions, "
                 f"{settings['members']} members, {settings['epochs']} epochs per member and round, lr {settings['lr']}, "
                 f"batch {settings['batch_size']}, {settings['threads']} torch thread(s); score: max per-atom force "
                 f"uncertainty",
        "settings": settings,
        "runs": runs,
        "summary": summarise(runs, args.target),
        "train_wall_s": sum(r["train_wall_s"] for r in runs),
        "wall_s": time.perf_counter() - t_start,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    print_table(report)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2, default=float)
    if args.plot:
        plot(report, args.plot)
    if tmp is not None:
        tmp.cleanup()
    return report


if __name__ == "__main__":
    main()
