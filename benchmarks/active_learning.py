"""Active learning against random selection: labels needed to reach a force MAE, water monomer at CCSD(T)/cc-pVDZ.

The pool is ``data/campaigns/water_monomer.extxyz`` (1,000 H2O with CCSD(T)/cc-pVDZ energies and forces) less a
fixed test set of 200 structures (the same for every arm and seed). Each run starts from ``--initial`` random
labels of the pool (drawn by the seed, the same for both arms), and each round trains a deep ensemble on all labels
with a fixed epoch budget (:func:`mlipviz.active.active_learning`), records its test energy and force MAE, and adds
``--per-round`` labels: the most uncertain candidates (max calibrated per-atom force uncertainty) in the
"uncertainty" arm, a uniform draw in the "random" arm. The uncertainty arm stops at ``--budget`` labels, the random
arm at ``--random-budget`` (default twice as many), so that the labels random selection needs can be counted. Labels come from the finished campaign
(:func:`mlipviz.active.pool_labeller`), so no quantum chemistry runs here; both arms of one seed share the initial
labels, the member seeds and the rule for the validation split, and differ only in the selection rule.

For a target force MAE (``--target`` meV/Å; default: the largest final MAE among the uncertainty runs, so that
every one of them reaches it) the script reports the labels each arm needs, interpolated log-log between rounds, on
the curves averaged over seeds and per seed, and the ratio uncertainty ÷ random (goal <= 0.5): on the mean curves,
and its mean, spread and range over the seeds' paired ratios. A run that never reaches the target is reported as
censored (">budget"), never extrapolated; a seed whose random run is censored gives a bound on its ratio. Beside it,
the ratio as a curve: for the MAE the uncertainty arm's mean curve reaches with n labels, the labels the random arm's
mean curve needs.

    python benchmarks/active_learning.py [--quick] [--seeds 0 1 2] [--per-round 10] [--budget 60]
                                         [--random-budget 120] [--target MEV_PER_A] [--jobs 2]
                                         [--json PATH] [--plot PATH]

Runs are kept in ``--workdir`` (default a temporary directory): given an existing one, finished runs are read back,
interrupted ones continue, and finished ones go on to a larger budget (each run is a resumable active-learning
directory).

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
    budget = settings["budget"] if strategy == "uncertainty" else settings["random_budget"]
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
                          label_budget=budget, test=test, config=config, train_kwargs=train_kwargs,
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


def mean_curves(runs: list[dict]) -> dict:
    """One arm's force and energy MAE averaged over its seeds, with their standard deviation, per label count."""
    n = runs[0]["n_labels"]
    if any(r["n_labels"] != n for r in runs):
        raise ValueError(f"the {runs[0]['strategy']} runs have different label counts per round "
                         f"({[r['n_labels'] for r in runs]}); give every seed the same budget")
    out = {"n_labels": n}
    for q, key in (("forces", "forces_mae_meV_per_A"), ("energy", "energy_mae_meV")):
        v = np.array([r[key] for r in runs])
        out[f"{q}_mean"] = v.mean(0).tolist()
        out[f"{q}_std"] = v.std(0, ddof=1).tolist() if len(v) > 1 else [0.0] * len(n)
    return out


def ratio_curve(curves: dict) -> list[dict]:
    """For the force MAE the uncertainty arm's mean curve reaches with n labels, the labels random's mean curve needs."""
    cu, cr = curves["uncertainty"], curves["random"]
    out = []
    for n, mae in zip(cu["n_labels"][1:], cu["forces_mean"][1:]):
        nr = labels_needed(cr["n_labels"], cr["forces_mean"], mae)
        out.append({"n_labels_uncertainty": n, "forces_mae_meV_per_A": mae, "n_labels_random": nr,
                    "ratio": n / nr if np.isfinite(nr) else None,
                    "ratio_bound": None if np.isfinite(nr) else f"< {n / cr['n_labels'][-1]:.2f}"})
    return out


def summarise(runs: list[dict], target: float | None) -> dict:
    """Mean curves, the target, the labels each arm needs and the uncertainty ÷ random ratio with its spread."""
    by = {arm: sorted((r for r in runs if r["strategy"] == arm), key=lambda r: r["seed"]) for arm in ARMS}
    curves = {arm: mean_curves(by[arm]) for arm in ARMS}
    default = target is None
    if default:
        target = float(max(r["forces_mae_meV_per_A"][-1] for r in by["uncertainty"]))
    need = {arm: labels_needed(curves[arm]["n_labels"], curves[arm]["forces_mean"], target) for arm in ARMS}
    per_seed = {arm: {r["seed"]: labels_needed(r["n_labels"], r["forces_mae_meV_per_A"], target) for r in by[arm]}
                for arm in ARMS}
    paired, bounds = [], {}
    budget = {arm: curves[arm]["n_labels"][-1] for arm in ARMS}
    for seed, nr in per_seed["random"].items():
        nu = per_seed["uncertainty"].get(seed)
        if nu is None:
            continue
        if np.isfinite(nu) and np.isfinite(nr):
            paired.append(nu / nr)
        elif np.isfinite(nu):  # random never reached the target: it would need more than its budget
            bounds[seed] = f"< {nu / budget['random']:.2f}"
        elif np.isfinite(nr):
            bounds[seed] = f"> {budget['uncertainty'] / nr:.2f}"
        else:
            bounds[seed] = "neither arm reached the target"
    censored = sum(1 for arm in ARMS for v in per_seed[arm].values() if not np.isfinite(v))
    if np.isfinite(need["random"]):
        ratio_mean = need["uncertainty"] / need["random"]
    else:
        ratio_mean = float("nan")
    return {
        "target_meV_per_A": target,
        "target_source": "largest final MAE of the uncertainty runs" if default else "--target",
        "curves": curves,
        "labels_needed_mean_curve": need,
        "labels_needed_per_seed": per_seed,
        "ratio_mean_curves": ratio_mean,
        "ratio_mean_curves_bound": None if np.isfinite(need["random"]) or not np.isfinite(need["uncertainty"])
        else f"< {need['uncertainty'] / budget['random']:.2f}",
        "ratio_per_seed": paired,
        "ratio_per_seed_mean": float(np.mean(paired)) if paired else float("nan"),
        "ratio_per_seed_std": float(np.std(paired, ddof=1)) if len(paired) > 1 else float("nan"),
        "ratio_per_seed_range": [float(min(paired)), float(max(paired))] if paired else [],
        "n_censored_runs": censored,
        "ratio_bounds_censored_seeds": bounds,
        "ratio_curve": ratio_curve(curves),
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
    rows = {arm: {n: i for i, n in enumerate(c["curves"][arm]["n_labels"])} for arm in ARMS}
    for n in sorted(set(rows["uncertainty"]) | set(rows["random"])):
        cells = {}
        for arm in ARMS:
            cv, i = c["curves"][arm], rows[arm].get(n)
            cells[arm] = ("", "") if i is None else (f"{cv['forces_mean'][i]:.1f} ± {cv['forces_std'][i]:5.1f}",
                                                     f"{cv['energy_mean'][i]:.2f} ± {cv['energy_std'][i]:5.2f}")
        print(f"{n:6d}  {cells['uncertainty'][0]:>26s}  {cells['random'][0]:>22s}  "
              f"{cells['uncertainty'][1]:>24s}  {cells['random'][1]:>20s}")
    print("(mean ± standard deviation over seeds " + ", ".join(map(str, s["seeds"])) + ")")
    print()
    budget = {"uncertainty": s["budget"], "random": s["random_budget"]}
    print(f"target force MAE: {c['target_meV_per_A']:.1f} meV/Å ({c['target_source']})")
    for arm in ARMS:
        b = budget[arm]
        seeds = ", ".join(f"seed {k}: {fmt_labels(v, b)}" for k, v in c["labels_needed_per_seed"][arm].items())
        print(f"labels needed, {arm:11s}: {fmt_labels(c['labels_needed_mean_curve'][arm], b):>6s} on the mean curve "
              f"({seeds})")
    rng = c["ratio_per_seed_range"]
    mean_curves_ratio = (c["ratio_mean_curves_bound"] if c["ratio_mean_curves_bound"]
                         else f"{c['ratio_mean_curves']:.2f}")
    paired = c["ratio_per_seed"]
    if len(paired) > 1:
        per_seed = (f"{c['ratio_per_seed_mean']:.2f} ± {c['ratio_per_seed_std']:.2f} [{rng[0]:.2f}, {rng[1]:.2f}] "
                    f"over {len(paired)} seeds where both arms reached the target")
    elif paired:
        per_seed = f"{paired[0]:.2f} on the one seed where both arms reached the target"
    else:
        per_seed = "none where both arms reached the target"
    print(f"ratio uncertainty ÷ random: {mean_curves_ratio} on the mean curves; per seed {per_seed}; goal <= 0.5")
    if c["ratio_bounds_censored_seeds"]:
        print(f"  {c['n_censored_runs']} run(s) never reached the target within the budget; ratio bounds there: "
              + ", ".join(f"seed {k}: {v}" for k, v in c["ratio_bounds_censored_seeds"].items()))
    print()
    print("the ratio as a curve (mean curves): the MAE uncertainty selection reaches with n labels, and the labels "
          "random selection needs for it")
    for row in c["ratio_curve"]:
        nr = fmt_labels(row["n_labels_random"], s["random_budget"])
        ratio = row["ratio_bound"] or f"{row['ratio']:.2f}"
        print(f"  {row['n_labels_uncertainty']:4d} labels: {row['forces_mae_meV_per_A']:6.1f} meV/Å  "
              f"random needs {nr:>6s}  ratio {ratio}")
    print(f"training time of all runs {report['train_wall_s']:.0f} s (runs read back from --workdir included); "
          f"this call's wall time {report['wall_s']:.0f} s")


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
            ax.fill_between(n, np.maximum(m - s, 1e-3), m + s, color=colour, alpha=0.15)
            key = "forces_mae_meV_per_A" if q == "forces" else "energy_mae_meV"
            for r in (r for r in report["runs"] if r["strategy"] == arm):  # each seed, thin
                ax.plot(r["n_labels"], r[key], "-", color=colour, lw=0.7, alpha=0.6)
            ax.set(xscale="log", yscale="log", xlabel="labelled structures", ylabel=f"test {unit}")
    axes[0].axhline(c["target_meV_per_A"], color="grey", ls="--", label="target")
    ratio = c["ratio_mean_curves_bound"] or f"{c['ratio_mean_curves']:.2f}"
    axes[0].set_title(f"water, {LEVEL}: ratio {ratio} (uncertainty ÷ random)")
    axes[0].legend(title="thin lines: single seeds", title_fontsize="small")
    axes[1].legend()
    fig.savefig(path, dpi=120)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 seeds, 2 rounds, a tiny model: a few minutes on 2 cores")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds per arm (default 0 1 2; --quick 0 1)")
    p.add_argument("--initial", type=int, default=10, help="random labels to start from")
    p.add_argument("--per-round", type=int, default=10, help="labels added per round")
    p.add_argument("--budget", type=int, default=None, help="labels of the uncertainty arm (default 60; --quick 30)")
    p.add_argument("--random-budget", type=int, default=None, help="labels of the random arm (default 2 × --budget)")
    p.add_argument("--target", type=float, default=None, help="force MAE target, meV/Å (default: random's final)")
    p.add_argument("--test-size", type=int, default=200)
    p.add_argument("--members", type=int, default=None, help="ensemble members (default 3; --quick 2)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per member and round (default 120; --quick 30)")
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
        "budget": args.budget or (args.initial + 2 * args.per_round if q else 60), "n_test": args.test_size,
        "members": args.members or (2 if q else 3), "epochs": args.epochs or (30 if q else 120),
        "max_time_s": args.max_time_s, "lr": args.lr, "batch_size": args.batch_size,
        "n_atom_basis": args.features or (16 if q else 32), "n_interactions": args.interactions or (1 if q else 2),
        "device": args.device, "threads": args.threads, "quick": q,
    }
    settings["random_budget"] = args.random_budget or 2 * settings["budget"]
    if settings["random_budget"] < settings["budget"]:
        p.error(f"--random-budget ({settings['random_budget']}) must be at least --budget ({settings['budget']}): "
                "the random arm has to be able to reach what the uncertainty arm reaches")
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
                f"{settings['initial']} random labels, +{settings['per_round']} per round, budget {settings['budget']} "
                f"(uncertainty) and {settings['random_budget']} (random)",
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
