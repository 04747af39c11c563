"""rMD17 (the revised MD17 dataset) read from a user's own download, as labelled structures in eV and Å.

rMD17 recomputes 100,000 frames of each of ten MD17 molecules at PBE/def2-SVP (Christensen & von Lilienfeld 2020)
and ships five train/test index splits of 1,000 frames each. Its ``.npz`` files hold ``nuclear_charges``,
``coords`` (Å), ``energies`` (kcal/mol) and ``forces`` (kcal/mol/Å); :func:`load_rmd17` converts them to eV and
eV/Å and stores them under the PBE/def2-SVP keys every mlipviz stage reads (``energy_pbe_def2svp``,
``forces_pbe_def2svp``), so :func:`mlipviz.potential.train_potential` trains on them with
``level=RMD17_LEVEL``.

Two layouts are read:

* the figshare download (record 12672038): ``rmd17/npz_data/rmd17_<molecule>.npz`` with the index files
  ``rmd17/splits/index_{train,test}_0<k>.csv`` — pass ``split_file=`` to pick a split;
* a file per split, ``rmd17_<molecule>_{train,test}_0<k>.npz``, with the same keys.

mlipviz never downloads the data.

Reference:
    Christensen, von Lilienfeld, Mach. Learn.: Sci. Technol. 1, 045018 (2020), arXiv:2007.09593,
    doi:10.6084/m9.figshare.12672038.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms, units

from .. import keys
from ..reference.levels import get_level

__all__ = ["RMD17_LEVEL", "RMD17_MOLECULES", "load_rmd17", "rmd17_split_file"]

#: The level of theory of rMD17's energies and forces.
RMD17_LEVEL = "PBE/def2-SVP"
#: The ten molecules.
RMD17_MOLECULES = ("aspirin", "azobenzene", "benzene", "ethanol", "malonaldehyde", "naphthalene", "paracetamol",
                   "salicylic", "toluene", "uracil")
_KEYS = ("nuclear_charges", "coords", "energies", "forces")
KCAL_PER_MOL = units.kcal / units.mol  # eV


def rmd17_split_file(directory: str | Path, molecule: str, part: str = "train", split: int = 1) -> Path:
    """The path of a per-split file ``rmd17_<molecule>_<part>_0<split>.npz`` in ``directory``.

    Raises:
        ValueError: an unknown molecule, part or split.
        FileNotFoundError: naming the missing file.
    """
    if molecule not in RMD17_MOLECULES:
        raise ValueError(f"molecule={molecule!r} is not an rMD17 molecule; choose from {RMD17_MOLECULES}.")
    if part not in ("train", "test"):
        raise ValueError(f"part={part!r} is not 'train' or 'test'.")
    if split not in (1, 2, 3, 4, 5):
        raise ValueError(f"split={split!r} is not one of rMD17's splits 1-5.")
    path = Path(directory) / f"rmd17_{molecule}_{part}_{split:02d}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: rMD17 is not shipped with mlipviz; download it from "
                                "figshare (record 12672038) and point to its files.")
    return path


def load_rmd17(path: str | Path, split_file: str | Path | None = None, max_frames: int | None = None) -> list[Atoms]:
    """Read rMD17 frames as ``ase.Atoms`` labelled at PBE/def2-SVP, eV and eV/Å.

    Args:
        path: An rMD17 ``.npz`` (the whole molecule, or one split).
        split_file: rMD17's ``index_{train,test}_0k.csv`` to pick those frames of a whole-molecule file.
        max_frames: Keep only the first this many frames (after the split).

    Returns:
        One structure per frame; ``info`` holds the energy (eV) and ``rmd17_index`` (the frame in the file),
        ``arrays`` the forces (eV/Å).

    Raises:
        FileNotFoundError, ValueError: naming the file and what is missing or wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (rMD17 is downloaded by the user; see mlipviz.dataset.rmd17).")
    with np.load(path) as data:
        missing = [k for k in _KEYS if k not in data.files]
        if missing:
            raise ValueError(f"{path} is not an rMD17 file: it lacks {missing} (has {sorted(data.files)}).")
        z, xyz, energy, forces = (np.asarray(data[k]) for k in _KEYS)
    n = len(xyz)
    if xyz.ndim != 3 or xyz.shape[1:] != (len(z), 3) or forces.shape != xyz.shape or energy.shape != (n,):
        raise ValueError(f"{path}: inconsistent shapes: nuclear_charges {z.shape}, coords {xyz.shape}, "
                         f"energies {energy.shape}, forces {forces.shape}.")
    index = np.arange(n)
    if split_file is not None:
        index = np.loadtxt(split_file, dtype=int, ndmin=1)
        if index.size == 0 or index.min() < 0 or index.max() >= n:
            raise ValueError(f"{split_file} holds indices outside 0..{n - 1} of {path}.")
    if max_frames is not None:
        index = index[: int(max_frames)]
    bad = ~(np.isfinite(xyz[index]).all(axis=(1, 2)) & np.isfinite(energy[index])
            & np.isfinite(forces[index]).all(axis=(1, 2)))
    if bad.any():
        raise ValueError(f"{path}: frames {index[bad][:10].tolist()} hold NaN or infinite values.")
    slug = get_level(RMD17_LEVEL).slug
    frames = []
    for i in index:
        a = Atoms(numbers=z.astype(int), positions=xyz[i])
        a.info[keys.energy_key(slug)] = float(energy[i] * KCAL_PER_MOL)
        a.arrays[keys.forces_key(slug)] = forces[i] * KCAL_PER_MOL
        a.info["rmd17_index"] = int(i)
        frames.append(a)
    return frames
