"""What a Dask worker runs: one geometry at one level, as a JSON-ready record, on a set thread count.

Failures are data: an SCF that does not converge is retried once with :data:`FALLBACK_SCF`; if that fails
too, the record stores the reason and the campaign goes on.
"""

from __future__ import annotations

import socket
import time

import numpy as np
from ase import Atoms

from ... import keys
from ..pyscf_driver import run_pyscf
from ..store import STATUS_FAILED, STATUS_OK, geometry_key, level_from_record, level_record, task_key
from ..validate import resolve_spin
from .fd_check import FD_TOLERANCE, finite_difference_forces

__all__ = ["FALLBACK_SCF", "compute_record"]

#: SCF settings of the one retry after a failed convergence.
FALLBACK_SCF = {"level_shift": 0.5, "init_guess": "atom", "max_cycle": 200}


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
        level: :func:`~mlipviz.reference.store.level_record` of the level (a user-defined DFT level carries its
            xc string, and is registered on the worker if needed).
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

    from ... import __version__
    from ..labelling import provenance

    lv = level_from_record(level)
    atoms = Atoms(numbers=numbers, positions=positions)
    want_analytic = forces is True
    rec = {
        keys.RECORD_KEY: task_key(atoms, lv, bool(forces)),
        keys.RECORD_GEOMETRY_KEY: geometry_key(atoms),
        keys.RECORD_SLUG: lv.slug,
        keys.RECORD_LEVEL: level_record(lv),
        keys.RECORD_NUMBERS: [int(z) for z in numbers],
        keys.RECORD_POSITIONS: np.asarray(positions, dtype=float).tolist(),
        keys.RECORD_INFO: info,
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
        rec.update({keys.RECORD_STATUS: STATUS_FAILED, keys.RECORD_REASON: "; ".join(attempts),
                    keys.WALL_TIME: time.perf_counter() - t0})
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
    rec.update({keys.RECORD_STATUS: STATUS_OK, keys.RECORD_ENERGY: result.energy,
                keys.RECORD_FORCES: None if f is None else f.tolist(), keys.RECORD_PROVENANCE: prov})
    return rec
