"""Where a model's training data came from: the levels it holds, and a hash of what was learned.

The hash covers each structure's geometry key (atomic numbers and positions to 1e-8 Å, see
:func:`mlipviz.geometry.geometry_key`) and its target energy and forces, in order, so it names the data
independently of the file format, the column order or the other levels stored beside the target.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from ase import Atoms

from .. import keys
from ..geometry import geometry_key
from ..reference.levels import get_level

__all__ = ["data_file_name", "dataset_sha256", "levels_in", "require_level"]

_ENERGY_PREFIX = keys.ENERGY + "_"


def levels_in(images: list[Atoms]) -> list[str]:
    """Levels (names such as "CCSD(T)/cc-pVDZ", or slugs where no name is recorded) labelled on any structure."""
    found = {}
    for a in images:
        for k in a.info:
            if k.startswith(_ENERGY_PREFIX) and k != keys.ENERGY_UNCERTAINTY:
                slug = k[len(_ENERGY_PREFIX):]
                found.setdefault(slug, a.info.get(keys.provenance_key(slug, keys.LEVEL), slug))
    return sorted(found.values())


def require_level(images: list[Atoms], level: str) -> None:
    """Refuse training data whose structures are not all labelled with energies and forces at ``level``.

    Raises:
        ValueError: naming the level, how many structures lack it (the first one), and the levels the data holds.
    """
    lv = get_level(level)
    ek, fk = keys.energy_key(lv.slug), keys.forces_key(lv.slug)
    lacking = [i for i, a in enumerate(images) if ek not in a.info or fk not in a.arrays]
    if lacking:
        held = levels_in(images)
        raise ValueError(
            f"level={lv.name!r}: {len(lacking)} of {len(images)} training structures (first: structure {lacking[0]}) "
            f"have no {lv.name} energy and forces ({ek!r}, {fk!r}). The data holds "
            f"{', '.join(held) if held else 'no labelled level'}."
        )


def dataset_sha256(images: list[Atoms], level: str) -> str:
    """SHA-256 hex digest over every structure's geometry key, ``level`` energy (eV) and forces (eV/Å), in order."""
    lv = get_level(level)
    ek, fk = keys.energy_key(lv.slug), keys.forces_key(lv.slug)
    h = hashlib.sha256()
    for a in images:
        h.update(geometry_key(a).encode())
        h.update(np.float64(a.info[ek]).tobytes())
        h.update(np.ascontiguousarray(a.arrays[fk], dtype="<f8").tobytes())
    return h.hexdigest()


def data_file_name(data) -> str | None:
    """The file name (no directories) of training data given as a path, else None."""
    return Path(data).name if isinstance(data, (str, Path)) else None
