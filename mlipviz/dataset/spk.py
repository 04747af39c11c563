"""The one writer of SchNetPack databases: labelled structures into an ``ASEAtomsData`` file.

Training (:func:`mlipviz.potential.train_potential`) writes its database through here, and so can a user who
wants several levels side by side for SchNetPack's own tools.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms

from .. import keys
from ..reference.levels import get_levels

__all__ = ["write_spk_database"]


def write_spk_database(images: list[Atoms], path: str | Path, levels, *, target: bool = False,
                       overwrite: bool = False) -> Path:
    """Write labelled structures as a SchNetPack ``ASEAtomsData`` database.

    By default each level becomes two properties side by side, ``energy_<slug>`` (eV) and ``forces_<slug>``
    (eV/Å), e.g. ``energy_ccsdt_ccpvdz``; energy-only levels get no forces property. With ``target=True`` the
    one level given is written under SchNetPack's plain ``energy`` and ``forces`` names, the properties a
    potential learns; it then needs forces on every structure.

    Args:
        images: Structures labelled at every level (see :mod:`mlipviz.reference.labelling`).
        path: The ``.db`` file.
        levels: Level names or :class:`~mlipviz.reference.levels.Level` objects.
        target: Write one level as the training target (``energy``, ``forces``).
        overwrite: Replace an existing file (training does: its database is derived from the extxyz, the
            source of truth). By default an existing file is refused, so no database is ever overwritten.

    Returns:
        ``path``.

    Raises:
        FileExistsError: if ``path`` exists and ``overwrite`` is False.
        KeyError: naming the first structure that lacks a level (or its forces, for a target).
        ValueError: for no structures, or a target of more than one level.
    """
    import schnetpack as spk

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; choose a new file (databases are never overwritten).")
    images = list(images)
    if not images:
        raise ValueError("No structures to write into a SchNetPack database.")
    level_list = get_levels(levels)
    if target and len(level_list) != 1:
        raise ValueError(f"A training target is one level, got {len(level_list)}: {[lv.name for lv in level_list]}.")
    slugs = [lv.slug for lv in level_list]
    if target:
        names = {slugs[0]: (keys.ENERGY, keys.FORCES)}
        with_forces = {slugs[0]: True}
    else:
        names = {s: (keys.energy_key(s), keys.forces_key(s)) for s in slugs}
        with_forces = {s: all(keys.forces_key(s) in a.arrays for a in images) for s in slugs}
    units = {}
    for s in slugs:
        units[names[s][0]] = "eV"
        if with_forces[s]:
            units[names[s][1]] = "eV/Ang"
    props = []
    for i, a in enumerate(images):
        p = {}
        for s, lv in zip(slugs, level_list):
            ek, fk = keys.energy_key(s), keys.forces_key(s)
            if target and (ek not in a.info or fk not in a.arrays):
                raise KeyError(f"structure {i} has no {ek!r}/{fk!r}: it was not labelled with forces at {lv.name}.")
            if ek not in a.info:
                raise KeyError(f"structure {i} has no {ek!r}: it was not labelled at {lv.name}.")
            p[names[s][0]] = np.array([a.info[ek]], dtype=float)
            if with_forces[s]:
                if fk not in a.arrays:
                    raise KeyError(f"structure {i} has no {fk!r}: it was not labelled with forces at {lv.name}.")
                p[names[s][1]] = np.asarray(a.arrays[fk], dtype=float)
        props.append(p)
    if path.exists():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    db = spk.data.ASEAtomsData.create(str(path), distance_unit="Ang", property_unit_dict=units)
    db.add_systems(props, [Atoms(a.numbers, a.positions) for a in images])
    return path
