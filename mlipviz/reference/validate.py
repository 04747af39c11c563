"""Checks of a structure against a level of theory before PySCF starts: basis coverage, electron count,
charge, spin, and whether the basis has room for the electrons.

Generic geometry checks (elements, NaNs, overlapping atoms, periodic cells) live in :mod:`mlipviz.geometry`.
Every check raises :class:`ValueError` with a message that names the input and what is wrong, so that bad
input never surfaces as a traceback from deep inside PySCF.
"""

from __future__ import annotations

from functools import lru_cache

from ase import Atoms

from .levels import Level, check_basis, get_level

__all__ = ["check_level", "electron_count", "orbital_count", "resolve_spin"]


def electron_count(atoms: Atoms, charge: int = 0) -> int:
    """Number of electrons of ``atoms`` at total ``charge``."""
    return int(atoms.get_atomic_numbers().sum()) - int(charge)


def resolve_spin(atoms: Atoms, level: Level) -> int:
    """The 2S to run with, checked against the electron count (not against the basis: see :func:`check_level`).

    Raises:
        ValueError: for an odd electron count with the default (closed-shell) spin, a parity mismatch,
            a non-positive electron count, or more unpaired electrons than electrons.
    """
    n_elec = electron_count(atoms, level.charge)
    formula = atoms.get_chemical_formula()
    if n_elec <= 0:
        raise ValueError(f"Charge {level.charge:+d} leaves {n_elec} electrons on {formula}; that is impossible.")
    if level.spin is None:
        if n_elec % 2:
            raise ValueError(
                f"{formula} with charge {level.charge:+d} has {n_elec} electrons, an odd count, but the default spin "
                f"is a closed shell. Pass spin=1 (a doublet) or change the charge."
            )
        return 0
    if (n_elec - level.spin) % 2:
        raise ValueError(
            f"spin={level.spin} (2S) is impossible for {formula} with {n_elec} electrons: "
            "2S must have the same parity as the electron count."
        )
    if level.spin > n_elec:
        raise ValueError(f"spin={level.spin} exceeds the {n_elec} electrons of {formula}.")
    return level.spin


def orbital_count(atoms: Atoms, basis: str) -> int:
    """Number of spatial orbitals (spherical basis functions, PySCF's ``mol.nao``) of ``atoms`` in ``basis``.

    Raises:
        ValueError: for an unknown basis or elements it does not cover (see :func:`check_basis`).
    """
    check_basis(basis, atoms.get_chemical_symbols())
    return _orbital_count(tuple(sorted(int(z) for z in atoms.get_atomic_numbers())), basis)


@lru_cache(maxsize=256)
def _orbital_count(numbers: tuple[int, ...], basis: str) -> int:
    from pyscf import gto

    # The count depends on the elements only; atoms on a line 2 Å apart stand in for the geometry.
    atom = [(z, (0.0, 0.0, 2.0 * i)) for i, z in enumerate(numbers)]
    mol = gto.M(atom=atom, basis=basis, spin=sum(numbers) % 2, verbose=0)
    return int(mol.nao_nr())


def check_level(atoms: Atoms, level: str | Level) -> int:
    """Every check of a structure against a level of theory, before any SCF starts.

    Checks that the basis exists and covers every element, that charge and spin give a possible electron
    count (:func:`resolve_spin`), that the basis has an orbital for every α and β electron (PySCF would
    otherwise fail inside the SCF with "Failed to assign mo_occ"), and that a correlated method has at least one
    virtual orbital. Geometry checks come first, from :func:`mlipviz.geometry.check_molecule`.

    Args:
        atoms: The structure (only its elements are read).
        level: The level of theory, a :class:`Level` or a string such as "CCSD(T)/cc-pVDZ".

    Returns:
        The number of unpaired electrons 2S to run with.

    Raises:
        ValueError: naming the basis, charge, spin, electron count or orbital count that does not fit.
    """
    level = get_level(level)
    return _check_composition(tuple(sorted(int(z) for z in atoms.get_atomic_numbers())), level)


@lru_cache(maxsize=1024)
def _check_composition(numbers: tuple[int, ...], level: Level) -> int:
    atoms = Atoms(numbers=list(numbers))
    spin = resolve_spin(atoms, level)
    n_orb = orbital_count(atoms, level.basis)
    n_elec = electron_count(atoms, level.charge)
    n_alpha, n_beta = (n_elec + spin) // 2, (n_elec - spin) // 2
    formula = atoms.get_chemical_formula()
    if n_alpha > n_orb:
        raise ValueError(
            f"{formula} with charge {level.charge:+d} and spin {spin} has {n_elec} electrons "
            f"({n_alpha} α, {n_beta} β), but {level.basis} has only {n_orb} orbitals for {formula}: room for "
            f"{n_orb} electrons of each spin. Check the charge and spin, or use a larger basis."
        )
    if level.spec.correlated and n_beta == n_orb:
        raise ValueError(
            f"{level.method} correlates electrons into virtual orbitals, but the {n_elec} electrons of {formula} "
            f"with charge {level.charge:+d} and spin {spin} fill all {n_orb} orbitals of {level.basis}. "
            "Use a larger basis."
        )
    return spin
