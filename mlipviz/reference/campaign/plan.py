"""Planning a campaign: every input validated before any expensive work, and the list of distinct tasks.

A task is one geometry at one level. Tasks that repeat another one are merged before any work, so each is
computed once and stored once: the same geometry given twice (or twice within :data:`GEOMETRY_TOLERANCE`),
or the same level given twice.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from ...geometry import check_molecule
from ..levels import Level, check_basis
from ..pyscf_driver import check_dispersion_available, check_gradient_trusted
from ..store import task_key
from ..validate import check_level

__all__ = ["GEOMETRY_TOLERANCE", "CampaignPlan", "Task", "json_info", "merge_geometries", "plan_tasks"]

#: Two geometries with the same atomic numbers (in the same order) whose positions differ by less than this
#: in every Cartesian component (Å) are one geometry. It is far below any physical displacement (samplers move
#: atoms by 1e-3 Å and more) and far above float noise and the 1e-8 Å rounding of
#: :data:`mlipviz.geometry.KEY_DECIMALS`, so two copies of a geometry 4e-9 Å apart are merged even when they
#: round to neighbouring keys.
GEOMETRY_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Task:
    """One distinct (geometry, level) task.

    Attributes:
        atoms: The geometry, Å (the first input geometry of its kind).
        level: The level of theory.
        key: :func:`~mlipviz.reference.store.task_key` of the task: the key its record is stored under.
        index: Index of ``atoms`` in the campaign's input geometries.
    """

    atoms: Atoms
    level: Level
    key: str
    index: int


@dataclass(frozen=True)
class CampaignPlan:
    """The distinct tasks of a campaign.

    Attributes:
        tasks: Distinct tasks, in input order (geometry-major, then level).
        n_requested: Tasks asked for: geometries × levels.
        n_duplicates: Requested tasks that repeated an earlier one and were merged into it
            (``n_requested - len(tasks)``).
    """

    tasks: list[Task]
    n_requested: int

    @property
    def n_duplicates(self) -> int:
        return self.n_requested - len(self.tasks)


def merge_geometries(images: Sequence[Atoms], tolerance: float = GEOMETRY_TOLERANCE) -> list[int]:
    """For each geometry, the index of the first geometry it repeats (itself if it is the first of its kind).

    Geometries are the same when their atomic numbers are equal, in order, and every position component
    differs by less than ``tolerance`` Å. Candidates are found through a fixed projection of all coordinates,
    so large campaigns need no comparison of every pair.

    Args:
        images: Geometries, Å.
        tolerance: Largest |Δx| of one Cartesian component, Å, for two geometries to be the same.

    Returns:
        A list as long as ``images``.

    Raises:
        ValueError: if ``tolerance`` is not a positive number.
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance > 0:
        raise ValueError(f"tolerance must be a positive number of Å, got {tolerance!r}.")
    first: list[int] = []
    groups: dict[tuple[int, ...], list[tuple[float, int]]] = {}  # numbers -> sorted (projection, index)
    weights: dict[int, np.ndarray] = {}
    for i, atoms in enumerate(images):
        numbers = tuple(int(z) for z in atoms.get_atomic_numbers())
        pos = np.asarray(atoms.get_positions(), dtype=float).ravel()
        w = weights.get(pos.size)
        if w is None:  # fixed weights in [0.5, 1.5): a projection that symmetric or centred geometries do not share
            w = weights[pos.size] = np.random.default_rng(pos.size).uniform(0.5, 1.5, pos.size)
        p, reach = float(pos @ w), tolerance * float(w.sum())  # same geometry => |Δp| < reach
        seen = groups.setdefault(numbers, [])
        lo, hi = bisect.bisect_left(seen, (p - reach, -1)), bisect.bisect_right(seen, (p + reach, len(images)))
        match = [j for _, j in seen[lo:hi]
                 if np.max(np.abs(np.asarray(images[j].get_positions(), dtype=float).ravel() - pos)) < tolerance]
        if match:
            first.append(min(match))
        else:
            first.append(i)
            bisect.insort(seen, (p, i))
    return first


def plan_tasks(images: Sequence[Atoms], levels: Sequence[Level], forces: bool | str) -> CampaignPlan:
    """Validate everything before any expensive work; return the distinct tasks.

    Args:
        images: Geometries, Å; isolated molecules (no periodic boundary conditions).
        levels: Levels of theory.
        forces: True (analytic), "fd" (finite differences) or False (energies only).

    Returns:
        A :class:`CampaignPlan`. A geometry that repeats an earlier one (within :data:`GEOMETRY_TOLERANCE`) is
        computed once, at the earlier one's positions and with its ``info``; tasks with the same task key are
        computed once.

    Raises:
        ValueError: naming the geometry index or level of a bad input: no geometries or levels, bad
            ``forces``, a bad or periodic geometry, a basis without some element, a missing dispersion
            package, an impossible spin or more electrons than the basis holds, an untrusted analytic gradient.
    """
    if not images:
        raise ValueError("The campaign has no geometries.")
    if not levels:
        raise ValueError("The campaign has no levels of theory.")
    if forces not in (True, False, "fd"):
        raise ValueError(f"forces must be True (analytic), 'fd' (finite differences) or False, got {forces!r}.")
    for i, atoms in enumerate(images):
        check_molecule(atoms, name=f"geometry {i}")
    symbols = {s for a in images for s in a.get_chemical_symbols()}
    for lv in levels:
        check_basis(lv.basis, symbols)  # once per level: names the basis before any per-geometry message
        check_dispersion_available(lv)
        for i, atoms in enumerate(images):
            try:
                spin = check_level(atoms, lv)  # electrons, spin, and whether the basis can hold them
            except ValueError as err:
                raise ValueError(f"geometry {i} at {lv.name}: {err}") from None
            if forces is True:
                check_gradient_trusted(lv, spin)
    first = merge_geometries(images)
    tasks: dict[str, Task] = {}
    for i in sorted(set(first)):
        for lv in levels:
            key = task_key(images[i], lv, bool(forces))
            tasks.setdefault(key, Task(images[i], lv, key, i))
    return CampaignPlan(list(tasks.values()), n_requested=len(images) * len(levels))


def json_info(info: dict) -> dict:
    """The JSON-serialisable scalar entries of an ``atoms.info`` dict (NumPy scalars as Python ones)."""
    out = {}
    for k, v in info.items():
        if isinstance(v, (bool, int, float, str)) or v is None:
            out[k] = v
        elif isinstance(v, np.generic):
            out[k] = v.item()
    return out
