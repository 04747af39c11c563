"""Labelling throughput: mlipviz campaigns against a bare PySCF loop, parallel efficiency, records per hour.

All arms label the same geometries at the same level (CCSD(T)/cc-pVDZ with analytic forces by default) in this
one run:

* bare loop      a plain Python loop of PySCF calls (gto.M → RHF → CCSD → (T) → (T)-lambda → gradient),
                 written here directly against PySCF, with OpenMP on all cores; run before and after the
                 campaigns, and the faster of the two is the baseline;
* campaign/1×N   ``run_campaign`` with one Dask worker using all N cores (same resources as the loop):
                 campaign ÷ loop is mlipviz's overhead (validation, hashing, durable writes, Dask);
* campaign/N×1   the default: N single-threaded workers;
* campaign/1×1   one single-threaded worker: the baseline of the parallel efficiency T(1×1) / (N · T(N×1)).

The campaigns run without their finite-difference guard (``fd_check_first=False``) so that the ratios measure
the machinery; the guard's own price — 6N extra energies on the first record — is timed separately.

    python benchmarks/labelling.py [--n-water 16] [--n-methanol 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from ase.build import molecule

from mlipviz.reference import rattle_sample
from mlipviz.reference.campaign import run_campaign

LEVEL = "CCSD(T)/cc-pVDZ"


def bare_pyscf_loop(images, threads: int) -> float:
    """Label with PySCF directly (no mlipviz), return wall time in s."""
    from pyscf import cc, gto, lib, scf
    from pyscf.cc import ccsd_t_lambda
    from pyscf.grad import ccsd_t as ccsd_t_grad

    lib.num_threads(threads)
    t0 = time.perf_counter()
    for a in images:
        mol = gto.M(atom=[(s, p) for s, p in zip(a.get_chemical_symbols(), a.positions)], basis="cc-pvdz", verbose=0)
        mf = scf.RHF(mol)
        mf.conv_tol = 1e-10
        mf.kernel()
        mycc = cc.CCSD(mf)
        mycc.conv_tol = 1e-9
        mycc.kernel()
        eris = mycc.ao2mo()
        mycc.ccsd_t(eris=eris)
        _, l1, l2 = ccsd_t_lambda.kernel(mycc, eris, mycc.t1, mycc.t2, verbose=0)
        ccsd_t_grad.Gradients(mycc).kernel(mycc.t1, mycc.t2, l1, l2, eris=eris)
    return time.perf_counter() - t0


def campaign_time(images, workers: int, threads: int, guard: bool = False) -> float:
    tmp = Path(tempfile.mkdtemp())
    try:
        t0 = time.perf_counter()
        run_campaign(images, LEVEL, tmp / "s.jsonl", n_workers=workers, threads_per_worker=threads,
                     fd_check_first=guard, progress=False)
        return time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-water", type=int, default=16)
    p.add_argument("--n-methanol", type=int, default=4)
    p.add_argument("--json")
    args = p.parse_args(argv)
    n = os.cpu_count() or 1
    water = rattle_sample(molecule("H2O"), args.n_water, stdev=0.03, seed=0)
    loop_before = bare_pyscf_loop(water, n)
    one_by_n = campaign_time(water, 1, n)
    n_by_one = campaign_time(water, n, 1)
    one_by_one = campaign_time(water, 1, 1)
    guarded = campaign_time(water, n, 1, guard=True)
    loop_after = bare_pyscf_loop(water, n)
    loop = min(loop_before, loop_after)  # the faster baseline: conservative for mlipviz
    report = {
        "machine": f"{platform.machine()}, {n} cores",
        "level": LEVEL + ", analytic forces",
        "water": {
            "n_records": args.n_water,
            "bare_pyscf_loop_s": loop,
            "bare_pyscf_loop_runs_s": [loop_before, loop_after],
            "campaign_1_worker_x_all_cores_s": one_by_n,
            "campaign_all_workers_x_1_thread_s": n_by_one,
            "campaign_1_worker_x_1_thread_s": one_by_one,
            "ratio_campaign_over_bare_loop_same_cores": one_by_n / loop,
            "ratio_default_campaign_over_bare_loop": n_by_one / loop,
            "parallel_efficiency": one_by_one / (n * n_by_one),
            "campaign_all_workers_with_fd_guard_on_first_record_s": guarded,
            "records_per_hour": 3600 * args.n_water / min(n_by_one, one_by_n),
        },
    }
    if args.n_methanol:
        meoh = rattle_sample(molecule("CH3OH"), args.n_methanol, stdev=0.03, seed=0)
        t = min(campaign_time(meoh, n, 1), campaign_time(meoh, 1, n))
        report["methanol"] = {"n_records": args.n_methanol, "best_campaign_s": t, "records_per_hour": 3600 * args.n_methanol / t}
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
