"""A Dask ``LocalCluster`` tuned for PySCF workers."""

from __future__ import annotations

import os

from ...geometry import check_positive_int

__all__ = ["local_cluster"]


#: Thread variables of the worker processes of :func:`local_cluster`, set before each worker starts.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: Less background work in each worker while PySCF keeps every core busy: no statistical profiler sampling the
#: task thread every 10 ms, a slower memory monitor and event-loop tick (about 1 % in benchmarks/labelling.py).
_QUIET_WORKERS = {
    "distributed.worker.profile.enabled": False,
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.tick.interval": "200ms",
}


def local_cluster(n_workers: int | None = None, threads_per_worker: int = 1):
    """A ``LocalCluster`` tuned for PySCF: worker processes that run one task at a time on a set thread count.

    This is what :func:`run_campaign` starts when it is given no client. Start one yourself and pass
    ``Client(local_cluster(...))`` to several campaigns to pay the start-up (about 1–2 s) once.

    It differs from Dask's default ``LocalCluster`` in the environment its workers start with: OpenMP and
    BLAS get ``threads_per_worker`` threads, and ``MALLOC_TRIM_THRESHOLD_``, which Dask sets to 64 kB by
    default, is left unset. With it, glibc returns freed memory eagerly and PySCF, which allocates many
    short-lived large arrays, ran its CCSD(T) gradients 15–21 % slower (``benchmarks/labelling.py``).
    Its workers also skip Dask's statistical profiler, whose dashboard panel campaigns do not need.

    Args:
        n_workers: Worker processes; default cores ÷ ``threads_per_worker``.
        threads_per_worker: OpenMP and BLAS threads of each worker's one task.
    """
    import dask
    from dask.distributed import LocalCluster

    threads = check_positive_int(threads_per_worker, "threads_per_worker")
    if n_workers is None:
        n_workers = max(1, (os.cpu_count() or 1) // threads)
    check_positive_int(n_workers, "n_workers")
    # Workers inherit this process's environment, which an earlier default Dask cluster may have changed:
    # the nanny writes its variables here before it spawns a worker. Set ours, spawn, then put all back.
    saved = {k: os.environ.get(k) for k in (*_THREAD_VARIABLES, "MALLOC_TRIM_THRESHOLD_")}
    os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": {k: threads for k in _THREAD_VARIABLES},
                              **_QUIET_WORKERS}):
            return LocalCluster(
                n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
            )
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
