"""Labelling campaigns: many (geometry, level) tasks on a Dask cluster, resumable and crash-safe.

A campaign validates every input before any expensive work, skips tasks already in its
:class:`~mlipviz.reference.store.RecordStore`, runs the rest on ``dask.distributed`` (a ``LocalCluster`` sized
to the machine by default, or any scheduler address, e.g. one started by dask-jobqueue on SLURM), and appends
each finished record durably as it arrives.

Failures are data: an SCF that does not converge is retried once with a level shift of 0.5 Ha and the
``atom`` initial guess; if that fails too, the failure is stored with its reason and the campaign goes on.

Gradients are guarded: the first task of every run, and a chosen fraction of the others, is checked against
central finite differences of the energy. A mismatch above tolerance is stored on the record and stops the
campaign with an :class:`FDMismatchError`.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from .. import keys
from .levels import Level, check_basis, get_levels
from .pyscf_driver import check_dispersion_available, check_gradient_trusted, run_pyscf
from .store import STATUS_FAILED, STATUS_OK, RecordStore, geometry_key, task_key
from .validate import check_atoms, resolve_spin

__all__ = [
    "CampaignReport",
    "FDMismatchError",
    "FALLBACK_SCF",
    "compute_record",
    "finite_difference_forces",
    "local_cluster",
    "run_campaign",
]

#: SCF settings of the one retry after a failed convergence.
FALLBACK_SCF = {"level_shift": 0.5, "init_guess": "atom", "max_cycle": 200}
#: Default tolerance of the finite-difference check, eV/Å.
FD_TOLERANCE = 1e-3
#: Finite-difference step, Å.
FD_STEP = 1e-3


class FDMismatchError(RuntimeError):
    """An analytic gradient disagreed with finite differences; the campaign stopped."""


@dataclass
class CampaignReport:
    """What a campaign run did.

    Attributes:
        store: Path of the record store.
        n_tasks: Tasks requested.
        n_skipped: Tasks already done in the store.
        n_ok: Tasks finished successfully in this run.
        n_failed: Tasks stored as failures in this run.
        n_fd_checked: Records checked against finite differences in this run.
        wall_time_s: Wall time of this run, s.
        failures: ``(key, reason)`` of this run's failures.
    """

    store: Path
    n_tasks: int
    n_skipped: int = 0
    n_ok: int = 0
    n_failed: int = 0
    n_fd_checked: int = 0
    wall_time_s: float = 0.0
    failures: list = field(default_factory=list)


def finite_difference_forces(atoms: Atoms, level: Level, h: float = FD_STEP, scf_options: dict | None = None) -> np.ndarray:
    """Forces (eV/Å) by central differences of the energy, (n_atoms, 3): 6N energy evaluations."""
    f = np.zeros((len(atoms), 3))
    for i in range(len(atoms)):
        for a in range(3):
            e = []
            for sign in (1, -1):
                disp = atoms.copy()
                disp.positions[i, a] += sign * h
                e.append(run_pyscf(disp, level, forces=False, scf_options=scf_options).energy)
            f[i, a] = -(e[0] - e[1]) / (2 * h)
    return f


def compute_record(
    numbers: list[int],
    positions: list,
    info: dict,
    level: dict,
    forces: bool | str,
    fd_check: bool = False,
    fd_tolerance: float = FD_TOLERANCE,
    threads: int | None = None,
) -> dict:
    """Label one geometry at one level and return a JSON-ready record (runs on a Dask worker).

    Args:
        numbers: Atomic numbers.
        positions: (n_atoms, 3) positions, Å.
        info: ``atoms.info`` entries to carry along (JSON-serialisable).
        level: :meth:`Level.as_dict` of the level.
        forces: True for analytic forces, "fd" for finite-difference forces, False for energy only.
        fd_check: Check analytic forces against finite differences.
        fd_tolerance: Largest allowed |analytic − FD| component, eV/Å.
        threads: OpenMP and BLAS threads for this task (None: leave the process as it is).

    Returns:
        A record with ``status`` "ok" or "failed" (and ``reason``).
    """
    from pyscf import lib
    from threadpoolctl import threadpool_limits

    if not threads:
        return _compute_record(numbers, positions, info, level, forces, fd_check, fd_tolerance)
    # Dask's nanny starts workers with OMP/OPENBLAS/MKL_NUM_THREADS=1 (any cluster, not only ours); PySCF's
    # CCSD runs much of its work in numpy's BLAS, so both PySCF's OpenMP and the BLAS get the task's count.
    lib.num_threads(threads)
    with threadpool_limits(limits=threads):
        return _compute_record(numbers, positions, info, level, forces, fd_check, fd_tolerance)


def _compute_record(numbers, positions, info, level, forces, fd_check, fd_tolerance) -> dict:
    from pyscf import lib
    from threadpoolctl import threadpool_info

    from .. import __version__
    from .labelling import provenance

    lv = Level(**level)
    atoms = Atoms(numbers=numbers, positions=positions)
    want_analytic = forces is True
    rec = {
        "key": task_key(atoms, lv, bool(forces)),
        "geometry_key": geometry_key(atoms),
        "slug": lv.slug,
        "level": lv.as_dict(),
        "numbers": [int(z) for z in numbers],
        "positions": np.asarray(positions, dtype=float).tolist(),
        "info": info,
    }
    t0 = time.perf_counter()
    attempts = []
    result = None
    for scf_options in (None, FALLBACK_SCF):
        try:
            result = run_pyscf(atoms, lv, forces=want_analytic, scf_options=scf_options)
        except Exception as err:  # PySCF errors on a geometry are data, not a crash of the campaign
            attempts.append(f"{'fallback' if scf_options else 'default'} settings: {type(err).__name__}: {err}")
            result = None
            continue
        if result.converged:
            break
        attempts.append(f"{'fallback' if scf_options else 'default'} settings: not converged {result.details}")
    if result is None or not result.converged:
        rec.update(status=STATUS_FAILED, reason="; ".join(attempts), wall_time_s=time.perf_counter() - t0)
        return rec
    f = result.forces
    if forces == "fd":
        f = finite_difference_forces(atoms, lv, scf_options=FALLBACK_SCF if attempts else None)
    prov = provenance(lv, result, resolve_spin(atoms, lv))
    prov[keys.WALL_TIME] = round(time.perf_counter() - t0, 4)
    prov[keys.HOST] = socket.gethostname()
    prov[keys.THREADS] = lib.num_threads()
    # numpy's BLAS (PySCF's own bundled BLAS is single-threaded by build: threading layer "disabled")
    blas = [p["num_threads"] for p in threadpool_info()
            if p["user_api"] == "blas" and p.get("threading_layer") != "disabled"]
    prov[keys.BLAS_THREADS] = min(blas, default=-1)
    prov[keys.MLIPVIZ_VERSION] = __version__
    prov[keys.RETRIED] = bool(attempts)
    prov[keys.SCF_CYCLES] = result.details.get("scf_cycles", -1)
    if "cc_cycles" in result.details:
        prov[keys.CC_CYCLES] = result.details["cc_cycles"]
    prov[keys.FORCES_METHOD] = "finite differences" if forces == "fd" else ("analytic" if forces else "none")
    if fd_check and want_analytic:
        fd = finite_difference_forces(atoms, lv)
        err = float(np.abs(fd - f).max())
        prov[keys.FD_CHECK_MAX_ERROR] = err
        prov[keys.FD_CHECK_PASSED] = err <= fd_tolerance
    rec.update(status=STATUS_OK, energy=result.energy, forces=None if f is None else f.tolist(), provenance=prov)
    return rec


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

    threads = _positive_int(threads_per_worker, "threads_per_worker")
    if n_workers is None:
        n_workers = max(1, (os.cpu_count() or 1) // threads)
    _positive_int(n_workers, "n_workers")
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


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return value


def _plan(images: Sequence[Atoms], levels: Sequence[Level], forces: bool | str) -> list[tuple[Atoms, Level]]:
    """Validate everything before any expensive work; return the task list."""
    if not images:
        raise ValueError("The campaign has no geometries.")
    if not levels:
        raise ValueError("The campaign has no levels of theory.")
    if forces not in (True, False, "fd"):
        raise ValueError(f"forces must be True (analytic), 'fd' (finite differences) or False, got {forces!r}.")
    for i, atoms in enumerate(images):
        check_atoms(atoms, name=f"geometry {i}")
    symbols = {s for a in images for s in a.get_chemical_symbols()}
    for lv in levels:
        check_basis(lv.basis, symbols)
        check_dispersion_available(lv)
        for i, atoms in enumerate(images):
            try:
                spin = resolve_spin(atoms, lv)
            except ValueError as err:
                raise ValueError(f"geometry {i} at {lv.name}: {err}") from None
            if forces is True:
                check_gradient_trusted(lv, spin)
    return [(a, lv) for a in images for lv in levels]


def _json_info(info: dict) -> dict:
    out = {}
    for k, v in info.items():
        if isinstance(v, (bool, int, float, str)) or v is None:
            out[k] = v
        elif isinstance(v, np.generic):
            out[k] = v.item()
    return out


def run_campaign(
    images: Sequence[Atoms],
    levels: str | Level | Sequence[str | Level],
    store: str | Path | RecordStore,
    forces: bool | str = True,
    client=None,
    scheduler_address: str | None = None,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    fd_check_fraction: float = 0.0,
    fd_check_first: bool = True,
    fd_tolerance: float = FD_TOLERANCE,
    retry_failed: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> CampaignReport:
    """Label every geometry at every level, skipping what the store already holds.

    Args:
        images: Geometries, Å.
        levels: One level or several, e.g. ``["CCSD(T)/cc-pVDZ", "B3LYP/cc-pVDZ"]``.
        store: A :class:`RecordStore` or the path of its ``.jsonl`` file.
        forces: True (analytic), "fd" (central finite differences, for levels without a trusted gradient),
            or False (energies only).
        client: An existing ``dask.distributed.Client``; takes precedence over the next two.
        scheduler_address: Address of a running Dask scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
        n_workers: Worker processes of the default ``LocalCluster``; default cores ÷ threads_per_worker.
        threads_per_worker: OpenMP and BLAS threads per task, set inside each task (Dask starts workers with
            one). Many small molecules: 1; a few large ones: more.
        fd_check_fraction: Fraction of tasks (besides the first) checked against finite differences.
        fd_check_first: Check the first task of the run (on by default; turn off only to time the campaign
            machinery itself, as ``benchmarks/labelling.py`` does).
        fd_tolerance: Largest allowed |analytic − FD| force component, eV/Å.
        retry_failed: Run tasks again whose stored record is a failure.
        seed: Seed for choosing which tasks are FD-checked.
        progress: Show a tqdm progress bar with the estimated time left.

    Returns:
        A :class:`CampaignReport`.

    Raises:
        ValueError: for bad inputs, before any calculation starts.
        FDMismatchError: when a checked gradient disagrees with finite differences (the record is stored).
    """
    from dask.distributed import Client, as_completed
    from tqdm.auto import tqdm

    level_list = get_levels(levels)
    if not 0 <= fd_check_fraction <= 1:
        raise ValueError(f"fd_check_fraction must lie in [0, 1], got {fd_check_fraction!r}.")
    _positive_int(threads_per_worker, "threads_per_worker")
    if n_workers is not None:
        _positive_int(n_workers, "n_workers")
    tasks = _plan(list(images), level_list, forces)
    store = store if isinstance(store, RecordStore) else RecordStore(store)
    report = CampaignReport(store=store.path, n_tasks=len(tasks))
    todo = []
    for atoms, lv in tasks:
        if store.done(task_key(atoms, lv, bool(forces)), retry_failed=retry_failed):
            report.n_skipped += 1
        else:
            todo.append((atoms, lv))
    if not todo:
        return report
    rng = np.random.default_rng(seed)
    check = (rng.random(len(todo)) < fd_check_fraction) & (forces is True)
    check[0] = bool(fd_check_first) and forces is True

    t0 = time.perf_counter()
    own_cluster = None
    if client is None:
        if scheduler_address:
            client = Client(scheduler_address)
        else:
            own_cluster = local_cluster(n_workers, threads_per_worker)
            client = Client(own_cluster)
    try:
        futures = {}
        for (atoms, lv), fd in zip(todo, check):
            fut = client.submit(
                compute_record, atoms.get_atomic_numbers().tolist(), atoms.get_positions().tolist(),
                _json_info(atoms.info), lv.as_dict(), forces, bool(fd), fd_tolerance, threads_per_worker,
                pure=False,
            )
            futures[fut] = lv
        bar = tqdm(total=len(tasks), initial=report.n_skipped, desc="campaign", unit="task", disable=not progress)
        for fut in as_completed(futures):
            rec = fut.result()
            store.append(rec)
            bar.update(1)
            if rec["status"] == STATUS_OK:
                report.n_ok += 1
                prov = rec["provenance"]
                if keys.FD_CHECK_PASSED in prov:
                    report.n_fd_checked += 1
                    if not prov[keys.FD_CHECK_PASSED]:
                        for other in futures:
                            other.cancel()
                        raise FDMismatchError(
                            f"Analytic forces at {futures[fut].name} differ from finite differences by "
                            f"{prov[keys.FD_CHECK_MAX_ERROR]:.2e} eV/Å (tolerance {fd_tolerance:.0e}) for record "
                            f"{rec['key']}; the record is stored with the check result and the campaign stopped."
                        )
            else:
                report.n_failed += 1
                report.failures.append((rec["key"], rec["reason"]))
        bar.close()
    finally:
        report.wall_time_s = time.perf_counter() - t0
        if own_cluster is not None:
            client.close()
            own_cluster.close()
    return report


def main(argv=None) -> int:
    """Command line: ``python -m mlipviz.reference.campaign GEOMETRIES.xyz --level ... --store out.jsonl``."""
    import argparse

    from ..data import load_images, write_images

    p = argparse.ArgumentParser(description="Run a resumable labelling campaign.")
    p.add_argument("geometries", help="xyz/extxyz/traj file of geometries (Å)")
    p.add_argument("--level", action="append", required=True, help="e.g. 'CCSD(T)/cc-pVDZ' (repeatable)")
    p.add_argument("--store", required=True, help="record store (.jsonl), appended to and resumed from")
    p.add_argument("--energies-only", action="store_true")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--threads-per-worker", type=int, default=1)
    p.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    p.add_argument("--fd-check-fraction", type=float, default=0.0)
    p.add_argument("--export", default=None, help="write all successful records as extxyz here when done")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    report = run_campaign(
        load_images(args.geometries), args.level, args.store, forces=not args.energies_only,
        scheduler_address=args.scheduler, n_workers=args.workers, threads_per_worker=args.threads_per_worker,
        fd_check_fraction=args.fd_check_fraction, progress=not args.no_progress,
    )
    print(f"{report.n_ok} new, {report.n_skipped} already done, {report.n_failed} failed, "
          f"{report.n_fd_checked} FD-checked, {report.wall_time_s:.1f} s -> {report.store}")
    if args.export:
        print("exported", write_images(args.export, RecordStore(args.store).to_images()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
