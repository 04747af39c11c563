"""Reading and writing structure files, and where the embedded datasets live.

Files are read and written with :mod:`ase.io` (extxyz keeps per-level energies, forces and provenance).
Writes go to a temporary file first and are renamed into place, so an interrupted write never destroys
data that was already on disk.
"""

from __future__ import annotations

import os
from pathlib import Path

import ase.io
from ase import Atoms

from .reference.validate import check_atoms, check_symbols

__all__ = ["DATA_DIR", "load_images", "write_images", "write_spk_database", "water_dataset_path", "water_model_dir"]

#: Embedded data shipped with the repository (override with the MLIPVIZ_DATA environment variable).
DATA_DIR = Path(os.environ.get("MLIPVIZ_DATA", Path(__file__).resolve().parents[1] / "data"))


def water_dataset_path() -> Path:
    """The embedded water dataset: CCSD(T)/cc-pVDZ and B3LYP/cc-pVDZ energies and forces (extxyz)."""
    return DATA_DIR / "water" / "water_ccsdt_b3lyp.extxyz"


def water_model_dir() -> Path:
    """The embedded PaiNN potential trained on :func:`water_dataset_path` at CCSD(T)/cc-pVDZ."""
    return DATA_DIR / "models" / "painn_water_ccsdt"


def _check_xyz_symbols(path: Path) -> None:
    """Give a clear error for unknown element symbols in a plain/extended xyz file, before ASE parses it."""
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        try:
            n = int(lines[i].split()[0])
        except (ValueError, IndexError):
            raise ValueError(f"{path}: line {i + 1} should hold an atom count, found {lines[i][:60]!r}.") from None
        block = lines[i + 2 : i + 2 + n]
        if len(block) < n:
            raise ValueError(f"{path}: frame at line {i + 1} announces {n} atoms but the file ends after {len(block)}.")
        try:
            check_symbols([ln.split()[0] for ln in block])
        except (ValueError, IndexError) as err:
            raise ValueError(f"{path}, frame at line {i + 1}: {err}") from None
        i += 2 + n


def load_images(path: str | Path, index: str | int | slice = ":", check: bool = True) -> list[Atoms]:
    """Read structures from any file ASE reads (extxyz, xyz, traj, ...).

    Args:
        path: File path.
        index: Which frames, ASE-style (":" all, -1 last, "10:20").
        check: Validate every structure (elements, NaNs, overlapping atoms).

    Returns:
        A list of structures, positions in Å.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: for a malformed file or a structure that fails the checks, naming the frame.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No structure file at {path}.")
    if path.suffix in (".xyz", ".extxyz"):
        _check_xyz_symbols(path)
    try:
        images = ase.io.read(path, index=index)
    except Exception as err:
        raise ValueError(f"Could not read {path} as a structure file: {type(err).__name__}: {err}") from err
    images = images if isinstance(images, list) else [images]
    if check:
        for i, a in enumerate(images):
            check_atoms(a, name=f"{path.name} frame {i}")
    return images


def write_images(path: str | Path, images: list[Atoms] | Atoms, append: bool = False) -> Path:
    """Write structures as extxyz atomically (temporary file, then rename).

    With ``append=True`` the new frames are added after the existing ones, and the existing ones survive
    an interruption at any point.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [images] if isinstance(images, Atoms) else list(images)
    tmp = path.with_name(path.name + ".tmp")
    old = path.read_bytes() if append and path.exists() else b""
    with open(tmp, "wb") as fh:
        fh.write(old)
    ase.io.write(tmp, images, format="extxyz", append=True)
    os.replace(tmp, path)
    return path


def write_spk_database(images: list[Atoms], path: str | Path, levels) -> Path:
    """Write labelled structures as a SchNetPack ``ASEAtomsData`` database, several levels side by side.

    Each level becomes two properties, ``energy_<slug>`` (eV) and ``forces_<slug>`` (eV/Å), e.g.
    ``energy_ccsdt_ccpvdz``; energy-only levels get no forces property.

    Args:
        images: Structures labelled at every level (see :mod:`mlipviz.reference.labelling`).
        path: New ``.db`` file; an existing file is refused, so no database is ever overwritten.
        levels: Level names or :class:`~mlipviz.reference.levels.Level` objects.

    Raises:
        FileExistsError: if ``path`` exists.
        KeyError: naming the first structure that lacks a level.
    """
    import numpy as np
    import schnetpack as spk

    from . import keys
    from .reference.levels import get_levels

    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; choose a new file (databases are never overwritten).")
    slugs = [lv.slug for lv in get_levels(levels)]
    with_forces = {s: all(keys.forces_key(s) in a.arrays for a in images) for s in slugs}
    units = {}
    for s in slugs:
        units[keys.energy_key(s)] = "eV"
        if with_forces[s]:
            units[keys.forces_key(s)] = "eV/Ang"
    props = []
    for i, a in enumerate(images):
        p = {}
        for s in slugs:
            if keys.energy_key(s) not in a.info:
                raise KeyError(f"structure {i} has no {keys.energy_key(s)!r}.")
            p[keys.energy_key(s)] = np.array([a.info[keys.energy_key(s)]], dtype=float)
            if with_forces[s]:
                p[keys.forces_key(s)] = np.asarray(a.arrays[keys.forces_key(s)], dtype=float)
        props.append(p)
    db = spk.data.ASEAtomsData.create(str(path), distance_unit="Ang", property_unit_dict=units)
    db.add_systems(props, [Atoms(a.numbers, a.positions) for a in images])
    return path
