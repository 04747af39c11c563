"""The campaign from a shell: ``python -m mlipviz.reference.campaign GEOMETRIES.xyz --level ... --store ...``."""

from __future__ import annotations

from ...structure_io import load_images, write_images
from ..store import RecordStore
from .run import run_campaign

__all__ = ["main"]


def main(argv=None) -> int:
    """Command line: ``python -m mlipviz.reference.campaign GEOMETRIES.xyz --level ... --store out.jsonl``.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).

    Returns:
        0 when the campaign ran.

    Raises:
        SystemExit: with status 2 and one error line naming the file, as argparse does for bad arguments, when
            the geometry file is missing, malformed or holds no structures; nothing has been computed then.
    """
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m mlipviz.reference.campaign", description="Run a resumable labelling campaign."
    )
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
    try:
        images = load_images(args.geometries)
    except (OSError, ValueError) as err:  # missing, unreadable or malformed: stop before any cluster starts
        p.exit(2, f"{p.prog}: error: geometries: {err}\n")
    report = run_campaign(
        images, args.level, args.store, forces=not args.energies_only,
        scheduler_address=args.scheduler, n_workers=args.workers, threads_per_worker=args.threads_per_worker,
        fd_check_fraction=args.fd_check_fraction, progress=not args.no_progress,
    )
    print(f"{report.n_ok} new, {report.n_skipped} already done, {report.n_failed} failed, "
          f"{report.n_fd_checked} FD-checked, {report.wall_time_s:.1f} s -> {report.store}")
    if args.export:
        print("exported", write_images(args.export, RecordStore(args.store, mode="r").to_images()))
    return 0
