"""Running a campaign: many (geometry, level) tasks on a Dask cluster, resumable and crash-safe.

A campaign validates every input before any expensive work (:mod:`.plan`), skips tasks already in its
:class:`~mlipviz.reference.store.RecordStore`, runs the rest on ``dask.distributed`` (a tuned
``LocalCluster`` by default, :mod:`.cluster`, or any scheduler address, e.g. one started by dask-jobqueue on
SLURM), and appends each finished record durably as it arrives.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from ... import keys
from ...geometry import check_positive_int
from ..levels import Level, get_levels
from ..store import STATUS_OK, RecordStore, level_record
from .cluster import local_cluster
from .fd_check import FD_TOLERANCE, FDMismatchError
from .plan import json_info, plan_tasks
from .worker import compute_record

__all__ = ["CampaignReport", "run_campaign"]


@dataclass
class CampaignReport:
    """What a campaign run did.

    Attributes:
        store: Path of the record store.
        n_tasks: Distinct tasks planned (geometries × levels, less the duplicates merged).
        n_skipped: Tasks already done in the store.
        n_ok: Tasks finished successfully in this run.
        n_failed: Tasks stored as failures in this run.
        n_fd_checked: Records checked against finite differences in this run.
        wall_time_s: Wall time of this run, s.
        failures: ``(key, reason)`` of this run's failures.
        n_duplicates: Requested tasks that repeated another one (the same geometry, within
            :data:`~mlipviz.reference.campaign.plan.GEOMETRY_TOLERANCE`, at the same level) and were merged
            into it, so that it is computed and stored once; geometries × levels = ``n_tasks + n_duplicates``.
    """

    store: Path
    n_tasks: int
    n_skipped: int = 0
    n_ok: int = 0
    n_failed: int = 0
    n_fd_checked: int = 0
    wall_time_s: float = 0.0
    failures: list = field(default_factory=list)
    n_duplicates: int = 0


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

    Each distinct task is computed once: a geometry repeated in ``images`` (exactly, or within
    :data:`~mlipviz.reference.campaign.plan.GEOMETRY_TOLERANCE` Å) is computed at its first occurrence's
    positions, and a level given twice once; the report counts the duplicates merged.

    Args:
        images: Geometries, Å; isolated molecules (periodic structures are refused).
        levels: One level or several, e.g. ``["CCSD(T)/cc-pVDZ", "B3LYP/cc-pVDZ"]``.
        store: A :class:`RecordStore` opened for appending, or the path of its ``.jsonl`` file (opened with
            ``on_damage="raise"``: a damaged store stops the campaign before any work, with a message saying how
            to recover; pass ``RecordStore(path, on_damage="skip")`` to go on with its sound records).
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
        ValueError: for bad inputs, a damaged or read-only store, before any calculation starts.
        FDMismatchError: when a checked gradient disagrees with finite differences (the record is stored).
    """
    from dask.distributed import Client, as_completed
    from tqdm.auto import tqdm

    level_list = get_levels(levels)
    if not 0 <= fd_check_fraction <= 1:
        raise ValueError(f"fd_check_fraction must lie in [0, 1], got {fd_check_fraction!r}.")
    check_positive_int(threads_per_worker, "threads_per_worker")
    if n_workers is not None:
        check_positive_int(n_workers, "n_workers")
    plan = plan_tasks(list(images), level_list, forces)
    if isinstance(store, RecordStore) and store.mode != "a":
        raise ValueError(f"store {store.path} was opened read only (mode={store.mode!r}); a campaign appends to it: "
                         "pass its path or RecordStore(path) instead.")
    store = store if isinstance(store, RecordStore) else RecordStore(store)
    report = CampaignReport(store=store.path, n_tasks=len(plan.tasks), n_duplicates=plan.n_duplicates)
    todo = []
    for task in plan.tasks:
        if store.done(task.key, retry_failed=retry_failed):
            report.n_skipped += 1
        else:
            todo.append((task.atoms, task.level))
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
                json_info(atoms.info), level_record(lv), forces, bool(fd), fd_tolerance, threads_per_worker,
                pure=False,
            )
            futures[fut] = lv
        bar = tqdm(total=len(plan.tasks), initial=report.n_skipped, desc="campaign", unit="task", disable=not progress)
        for fut in as_completed(futures):
            rec = fut.result()
            store.append(rec)
            bar.update(1)
            if rec[keys.RECORD_STATUS] == STATUS_OK:
                report.n_ok += 1
                prov = rec[keys.RECORD_PROVENANCE]
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
                report.failures.append((rec[keys.RECORD_KEY], rec[keys.RECORD_REASON]))
        bar.close()
    finally:
        report.wall_time_s = time.perf_counter() - t0
        if own_cluster is not None:
            client.close()
            own_cluster.close()
    return report
