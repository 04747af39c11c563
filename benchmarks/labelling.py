"""Labelling throughput: mlipviz campaigns against a bare PySCF loop, parallel efficiency, records per hour.

All arms label the same geometries at the same level (CCSD(T)/cc-pVDZ with analytic forces by default) in this
one run:

* bare loop        a plain Python loop of PySCF calls (gto.M → RHF → CCSD → (T) → (T)-lambda → gradient),
                   written here directly against PySCF, OpenMP and BLAS on all cores;
* campaign/1×N     ``run_campaign`` with its own ``LocalCluster`` of one worker using all N cores (the loop's
                   resources), start-up and shut-down included: campaign ÷ loop is mlipviz's whole overhead
                   (cluster start, validation, hashing, durable writes, Dask). The loop and this arm alternate
                   ``--repeats`` times; each ratio compares neighbouring runs, and the median is reported;
* running/1×N      the same on an already running :func:`~mlipviz.reference.campaign.local_cluster`, as in a
                   notebook that runs several campaigns: the overhead per record, without the start-up;
* dask-default/1×N the same on Dask's own default ``LocalCluster`` (its workers start with
                   ``MALLOC_TRIM_THRESHOLD_=65536``), which is why mlipviz starts its own;
* campaign/N×1     the default: N single-threaded workers;
* campaign/1×1     one single-threaded worker: the baseline of the parallel efficiency T(1×1) / (N · T(N×1)).

The campaigns run without their finite-difference guard (``fd_check_first=False``) so that the ratios measure
the machinery; the guard's own price (6N extra energies on the first record) is timed separately.

    python benchmarks/labelling.py [--n-water 64] [--n-methanol 4] [--repeats 3] [--json out.json]
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

import numpy as np
from ase.build import molecule

from mlipviz.reference import rattle_sample
from mlipviz.reference.campaign import local_cluster, run_campaign

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


def campaign_time(images, workers: int, threads: int, guard: bool = False, client=None) -> float:
    tmp = Path(tempfile.mkdtemp())
    try:
        t0 = time.perf_counter()
        run_campaign(images, LEVEL, tmp / "s.jsonl", n_workers=workers, threads_per_worker=threads,
                     fd_check_first=guard, progress=False, client=client)
        return time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp)


def on_running_cluster(images, make_cluster, threads: int) -> tuple[float, float]:
    """(start-up s, campaign s) on the cluster ``make_cluster()`` starts, warmed by one record first."""
    from dask.distributed import Client

    t0 = time.perf_counter()
    with make_cluster() as cluster, Client(cluster) as client:
        client.submit(sum, [1]).result()
        startup = time.perf_counter() - t0
        campaign_time(images[:1], None, threads, client=client)
        return startup, campaign_time(images, None, threads, client=client)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-water", type=int, default=64)
    p.add_argument("--n-methanol", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3, help="(bare loop, campaign) pairs for the overhead ratio")
    p.add_argument("--json")
    p.add_argument("--quick", action="store_true",
                   help="16 water records, no methanol, one pair: a few minutes on 2 cores")
    args = p.parse_args(argv)
    n = os.cpu_count() or 1
    if args.quick:
        args.n_water, args.n_methanol, args.repeats = 16, 0, 1
    water = rattle_sample(molecule("H2O"), args.n_water, stdev=0.03, seed=0)
    bare_pyscf_loop(water[:2], n)  # PySCF's first call in a process loads its libraries: not part of any arm
    # Alternate the two arms so that slow drifts of the machine hit both; each ratio compares neighbours.
    loops, campaigns = [], []
    for _ in range(args.repeats):
        loops.append(bare_pyscf_loop(water, n))
        campaigns.append(campaign_time(water, 1, n))
    ratios = sorted(c / b for b, c in zip(loops, campaigns))
    startup, running = on_running_cluster(water, lambda: local_cluster(1, n), n)
    from dask.distributed import LocalCluster

    env = dict(os.environ)  # Dask's nanny writes its worker variables into this process's environment
    _, dask_default = on_running_cluster(
        water, lambda: LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0", silence_logs=40), n
    )
    os.environ.clear()
    os.environ.update(env)
    n_by_one = campaign_time(water, n, 1)
    one_by_one = campaign_time(water, 1, 1)
    guarded = campaign_time(water, n, 1, guard=True)
    loop = float(np.median(loops))
    report = {
        "machine": f"{platform.machine()}, {n} cores, {platform.platform()}",
        "level": LEVEL + ", analytic forces",
        "water": {
            "n_records": args.n_water,
            "bare_pyscf_loop_runs_s": loops,
            "campaign_1_worker_x_all_cores_runs_s": campaigns,
            "ratio_campaign_over_bare_loop_same_cores_median": float(np.median(ratios)),
            "ratio_campaign_over_bare_loop_same_cores_range": [ratios[0], ratios[-1]],
            "campaign_1_worker_x_all_cores_on_running_cluster_s": running,
            "ratio_campaign_on_running_cluster_over_bare_loop": running / loop,
            "local_cluster_startup_s": startup,
            "campaign_1_worker_x_all_cores_on_dask_default_cluster_s": dask_default,
            "ratio_dask_default_cluster_over_mlipviz_cluster": dask_default / running,
            "campaign_all_workers_x_1_thread_s": n_by_one,
            "ratio_default_campaign_over_bare_loop": n_by_one / loop,
            "campaign_1_worker_x_1_thread_s": one_by_one,
            "parallel_efficiency": one_by_one / (n * n_by_one),
            "campaign_all_workers_with_fd_guard_on_first_record_s": guarded,
            "records_per_hour": 3600 * args.n_water / min(n_by_one, *campaigns),
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
