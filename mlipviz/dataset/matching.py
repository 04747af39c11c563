"""Finding the same geometry across datasets, by its geometry key (never by comparing floats).

Two datasets labelled at different levels (say a cc-pVTZ subset of a cc-pVDZ set) share geometries; the
:func:`~mlipviz.geometry.geometry_key` of a structure (numbers and positions to 1e-8 Å) names it exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

from ase import Atoms

from ..geometry import geometry_key

__all__ = ["match_geometries"]


def match_geometries(images: Sequence[Atoms], pool: Sequence[Atoms], pool_name: str = "pool") -> list[Atoms]:
    """For every structure of ``images``, the structure of ``pool`` with the same geometry, in order.

    Args:
        images: Structures to look up, Å.
        pool: Structures to find them in, e.g. a larger dataset labelled at another level.
        pool_name: How to call ``pool`` in the error message.

    Returns:
        ``len(images)`` structures from ``pool`` (the first one of each geometry there).

    Raises:
        KeyError: naming the first structure of ``images`` whose geometry ``pool`` lacks.
    """
    by_key: dict[str, Atoms] = {}
    for a in pool:
        by_key.setdefault(geometry_key(a), a)
    out = []
    for i, a in enumerate(images):
        found = by_key.get(geometry_key(a))
        if found is None:
            raise KeyError(f"structure {i} ({a.get_chemical_formula()}) has no geometry twin in {pool_name} "
                           f"({len(pool)} structures).")
        out.append(found)
    return out
