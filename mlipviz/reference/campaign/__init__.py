"""Labelling campaigns: many (geometry, level) tasks on a Dask cluster, resumable and crash-safe.

* :mod:`.plan`: every input validated before any expensive work, and the task list;
* :mod:`.cluster`: :func:`local_cluster`, a ``LocalCluster`` tuned for PySCF;
* :mod:`.worker`: :func:`compute_record`, one task on a worker, failures stored as data;
* :mod:`.fd_check`: analytic forces checked against finite differences;
* :mod:`.run`: :func:`run_campaign`, the run loop with its progress bar and durable store;
* :mod:`.cli`: ``python -m mlipviz.reference.campaign``.
"""

from .cluster import local_cluster
from .fd_check import FD_STEP, FD_TOLERANCE, FDMismatchError, finite_difference_forces
from .run import CampaignReport, run_campaign
from .worker import FALLBACK_SCF, compute_record

__all__ = [
    "FALLBACK_SCF",
    "FD_STEP",
    "FD_TOLERANCE",
    "CampaignReport",
    "FDMismatchError",
    "compute_record",
    "finite_difference_forces",
    "local_cluster",
    "run_campaign",
]
