"""MD speed: mlipviz's calculator against the usual ASE + SchNetPack SpkCalculator path, same model.

Every arm runs ASE velocity Verlet from the same structure and velocities with the same weights. Each arm is
timed at 1 and 2 torch threads and its best count is reported (small molecules often run faster on one
thread). Ratios are mlipviz ÷ baseline wall time per step, measured in this run.

    python benchmarks/md_speed.py [--molecule CH3CH2OH] [--steps 300] [--device auto]

Arms:
    baseline   ASE VelocityVerlet + schnetpack.interfaces.SpkCalculator (MatScipy neighbour list every step)
    mlipviz    ASE VelocityVerlet + mlipviz MLIPCalculator (per-atom energies too), skin 0.5 Å neighbour list
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import schnetpack.transform as trn
import torch
from ase import units
from ase.build import molecule
from ase.md.velocitydistribution import thermalize_momenta
from ase.md.verlet import VelocityVerlet
from schnetpack.interfaces import SpkCalculator

from mlipviz.device import resolve_device
from mlipviz.potential import MLIPCalculator, ModelConfig, build_model


def time_arm(make_calc, atoms, steps: int, threads: int) -> float:
    torch.set_num_threads(threads)
    a = atoms.copy()
    a.calc = make_calc()
    thermalize_momenta(a, temperature_K=300, rng=np.random.default_rng(0))
    dyn = VelocityVerlet(a, timestep=0.5 * units.fs)
    dyn.run(10)  # warm-up: first calls allocate and JIT
    t0 = time.perf_counter()
    dyn.run(steps)
    return 1e3 * (time.perf_counter() - t0) / steps


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--molecule", default="CH3CH2OH", help="ASE molecule name")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--quick", action="store_true", help="100 steps per arm (about a minute on 2 cores)")
    args = p.parse_args(argv)
    if args.quick:
        args.steps = 100

    dev = resolve_device(args.device)
    torch.manual_seed(0)
    config = ModelConfig(representation="painn", n_atom_basis=64, n_interactions=3, cutoff=5.0)
    model = build_model(config).to(dev).eval()
    atoms = molecule(args.molecule)
    arms = {
        "baseline: ASE + SpkCalculator": lambda: SpkCalculator(
            model, trn.MatScipyNeighborList(cutoff=config.cutoff), energy_unit="eV", device=dev
        ),
        "mlipviz: ASE + MLIPCalculator, skin list": lambda: MLIPCalculator(model, config, device=str(dev), skin=0.5),
    }
    thread_counts = [1, 2] if dev.type == "cpu" else [1]
    results = {}
    for name, make in arms.items():
        per = {t: time_arm(make, atoms, args.steps, t) for t in thread_counts}
        best = min(per, key=per.get)
        results[name] = {"ms_per_step": per[best], "threads": best, "all": per}
    base = results["baseline: ASE + SpkCalculator"]["ms_per_step"]
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or 'cpu'}",
        "device": str(dev) + (f" ({torch.cuda.get_device_name()})" if dev.type == "cuda" else ""),
        "torch": torch.__version__,
        "system": f"{args.molecule} ({len(atoms)} atoms), PaiNN 64 features × 3 interactions, cutoff 5 Å, untrained",
        "steps": args.steps,
        "arms": results,
        "ratio_mlipviz_over_baseline": results["mlipviz: ASE + MLIPCalculator, skin list"]["ms_per_step"] / base,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
    return report


if __name__ == "__main__":
    main()
