"""Label structures with reference energies and forces, with provenance on every record.

A labelled structure keeps each level side by side (see :mod:`mlipviz.keys`)::

    atoms.info["energy_ccsdt_ccpvdz"]           # eV
    atoms.arrays["forces_ccsdt_ccpvdz"]         # (n_atoms, 3) eV/Å
    atoms.info["ccsdt_ccpvdz_converged"]        # provenance, one key per field
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from tqdm.auto import tqdm

from .. import keys
from ..geometry import check_molecule
from .levels import Level, get_level, get_levels
from .pyscf_driver import PySCFResult, check_dispersion_available, check_gradient_trusted, run_pyscf
from .validate import check_level

__all__ = ["label", "label_many", "provenance", "level_energy", "level_forces"]


def provenance(level: Level, result: PySCFResult, spin: int) -> dict:
    """The provenance record of one label, keyed by :data:`mlipviz.keys.PROVENANCE_FIELDS`.

    CC levels add :data:`mlipviz.keys.T1_DIAGNOSTIC`; DFT levels add the exact PySCF xc string
    (:data:`mlipviz.keys.XC`) and the integration grid (:data:`mlipviz.keys.DFT_GRID`).
    """
    import pyscf

    from .. import __version__

    record = {
        keys.LEVEL: level.name,
        keys.METHOD: level.method,
        keys.BASIS: level.basis,
        keys.FROZEN_CORE: bool(level.frozen_core and level.spec.correlated),
        keys.CHARGE: int(level.charge),
        keys.SPIN: int(spin),
        keys.PYSCF_VERSION: pyscf.__version__,
        keys.MLIPVIZ_VERSION: __version__,
        keys.CONVERGED: bool(result.converged),
        keys.WALL_TIME: round(float(result.wall_time), 4),
    }
    if result.t1_diagnostic is not None:
        record[keys.T1_DIAGNOSTIC] = float(result.t1_diagnostic)
    if result.xc is not None:
        record[keys.XC] = str(result.xc)
    if result.dft_grid is not None:
        record[keys.DFT_GRID] = str(result.dft_grid)
    return record


def _level_list(levels) -> list[Level]:
    """``levels`` as distinct Levels (a level given twice counts once); refuses two levels with one slug."""
    level_list = list(dict.fromkeys(get_levels(levels)))
    if not level_list:
        raise ValueError("levels is empty; name at least one level of theory, e.g. 'CCSD(T)/cc-pVDZ'.")
    seen: dict[str, Level] = {}
    for level in level_list:
        other = seen.setdefault(level.slug, level)
        if other != level:
            raise ValueError(f"levels {other!r} and {level!r} would share the keys of slug {level.slug!r}; "
                             "label them in separate calls.")
    return level_list


def _check_levels(atoms: Atoms, level_list: list[Level], forces: bool) -> list[int]:
    """Check one structure against every level before any SCF; the 2S of each level."""
    spins = []
    for level in level_list:
        spin = check_level(atoms, level)
        check_dispersion_available(level)
        if forces:
            check_gradient_trusted(level, spin)
        spins.append(spin)
    return spins


def label(atoms: Atoms, levels: str | Level | Sequence[str | Level], forces: bool = True) -> Atoms:
    """Label one structure at one or several levels of theory.

    Args:
        atoms: Structure, positions in Å.
        levels: One level ("CCSD(T)/cc-pVDZ") or a list of levels (a level given twice is computed once;
            two different levels with one slug, e.g. two charges, are refused). The first is the *primary* level: its
            energy and forces are also attached as a :class:`SinglePointCalculator`, so
            ``atoms.get_potential_energy()`` works on the result.
        forces: Compute analytic forces too.

    Returns:
        A labelled copy of ``atoms``; the input is left untouched.

    Raises:
        ValueError: for ``levels`` that are not levels, a bad or periodic structure, or any level that does
            not fit the structure (:func:`mlipviz.reference.validate.check_level`), before any SCF starts.
        UntrustedGradientError: when forces are asked at a level whose PySCF gradient is known wrong.
    """
    level_list = _level_list(levels)
    check_molecule(atoms)
    spins = _check_levels(atoms, level_list, forces)
    out = atoms.copy()
    out.calc = None
    primary = None
    for level, spin in zip(level_list, spins):
        result = run_pyscf(atoms, level, forces=forces)
        out.info[keys.energy_key(level.slug)] = result.energy
        if result.forces is not None:
            out.arrays[keys.forces_key(level.slug)] = result.forces
        for field, value in provenance(level, result, spin).items():
            out.info[keys.provenance_key(level.slug, field)] = value
        primary = primary or result
    out.calc = SinglePointCalculator(out, energy=primary.energy, forces=primary.forces)
    return out


def label_many(
    images: Iterable[Atoms],
    levels: str | Level | Sequence[str | Level],
    forces: bool = True,
    progress: bool = True,
) -> list[Atoms]:
    """Label a list of structures in this process, with a progress bar.

    For large or resumable campaigns across processes or a cluster use the campaign runner instead; this
    is the simple serial path for notebooks and small datasets.

    Args:
        images: Structures, positions in Å. All are validated before the first calculation starts.
        levels: Level(s) of theory, as for :func:`label`.
        forces: Compute analytic forces too.
        progress: Show a tqdm progress bar.

    Returns:
        Labelled copies, in input order.

    Raises:
        ValueError: as :func:`label`, naming the first geometry (and level) that is wrong, before any SCF.
    """
    images = list(images)
    level_list = _level_list(levels)
    for i, atoms in enumerate(images):
        check_molecule(atoms, name=f"geometry {i}")
        try:
            _check_levels(atoms, level_list, forces)
        except ValueError as err:
            raise ValueError(f"geometry {i}: {err}") from None
    names = " + ".join(lv.name for lv in level_list)
    return [label(a, level_list, forces=forces) for a in tqdm(images, desc=f"labelling {names}", disable=not progress)]


def level_energy(images: Sequence[Atoms], level: str | Level) -> np.ndarray:
    """Energies (eV) of ``images`` at ``level``, shape (n_images,).

    Raises:
        KeyError: naming the level and the first image that lacks it.
    """
    key = keys.energy_key(get_level(level).slug)
    missing = [i for i, a in enumerate(images) if key not in a.info]
    if missing:
        raise KeyError(f"image {missing[0]} has no {key!r}; was it labelled at {get_level(level).name}?")
    return np.array([a.info[key] for a in images], dtype=float)


def level_forces(images: Sequence[Atoms], level: str | Level) -> list[np.ndarray]:
    """Forces (eV/Å) of ``images`` at ``level``, one (n_atoms, 3) array per image."""
    key = keys.forces_key(get_level(level).slug)
    missing = [i for i, a in enumerate(images) if key not in a.arrays]
    if missing:
        raise KeyError(f"image {missing[0]} has no {key!r}; was it labelled with forces at {get_level(level).name}?")
    return [np.asarray(a.arrays[key], dtype=float) for a in images]
