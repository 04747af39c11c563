"""The chemistry a potential knows: its elements, and the refusal of structures outside them.

A network that never saw an element in training still returns a number for it: an embedding row that no
gradient ever touched. Such a number is meaningless, so mlipviz refuses the structure instead. The elements
a model knows are saved with it (``ModelConfig.elements``, chemical symbols).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols

__all__ = ["check_chemistry", "elements_of", "embedding_size", "normalise_elements"]


def normalise_elements(elements: Iterable, name: str = "elements") -> list[str]:
    """Chemical symbols or atomic numbers as a sorted (by Z), duplicate-free list of symbols.

    Args:
        elements: For example ``["O", "H"]`` or ``[1, 8]``.
        name: How to call the argument in error messages.

    Returns:
        Symbols in order of atomic number, e.g. ``["H", "O"]``.

    Raises:
        ValueError: naming every entry that is not a chemical element (Z from 1 to 118).
    """
    if isinstance(elements, (str, bytes)) or not isinstance(elements, Iterable):
        raise ValueError(f"{name} must be a list of chemical symbols or atomic numbers, got {elements!r}.")
    zs, bad = set(), []
    for e in elements:
        if isinstance(e, str) and e in atomic_numbers and atomic_numbers[e] > 0:
            zs.add(atomic_numbers[e])
        elif isinstance(e, (int, np.integer)) and not isinstance(e, bool) and 0 < int(e) < len(chemical_symbols):
            zs.add(int(e))
        else:
            bad.append(e)
    if bad:
        raise ValueError(f"{name} holds entries that are not chemical elements: {bad!r}.")
    if not zs:
        raise ValueError(f"{name} is empty; a model knows at least one element.")
    return [chemical_symbols[z] for z in sorted(zs)]


def elements_of(images: Iterable[Atoms]) -> list[str]:
    """The elements present in ``images``, as symbols sorted by atomic number."""
    zs = set()
    for a in images:
        zs.update(int(z) for z in np.unique(a.numbers))
    return [chemical_symbols[z] for z in sorted(zs)]


def embedding_size(model: torch.nn.Module) -> int | None:
    """Rows of the model's atom-type embedding: atomic numbers 0 … size−1 can be looked up (None if unknown)."""
    embedding = getattr(getattr(model, "representation", None), "embedding", None)
    return int(embedding.num_embeddings) if isinstance(embedding, torch.nn.Embedding) else None


def _describe(zs) -> str:
    return ", ".join(f"{chemical_symbols[z] if 0 <= z < len(chemical_symbols) else '?'} (Z={z})" for z in zs)


def check_chemistry(atoms: Atoms, elements: list[str] | None, max_z: int | None = None, name: str = "atoms") -> Atoms:
    """Refuse a structure a potential cannot predict: empty, non-finite positions, or unknown elements.

    Args:
        atoms: The structure, positions in Å.
        elements: Symbols the model was trained on (``ModelConfig.elements``); None when the model does not
            record them, in which case only ``max_z`` limits the atomic numbers.
        max_z: Size of the model's atom-type embedding: atomic numbers must lie below it.
        name: How to call the structure in error messages.

    Returns:
        The same ``atoms``.

    Raises:
        ValueError: naming what is wrong (the elements the model knows, the offending atoms).
    """
    if not isinstance(atoms, Atoms):
        raise ValueError(f"{name} must be an ase.Atoms, got {type(atoms).__name__}.")
    if len(atoms) == 0:
        raise ValueError(f"{name} has no atoms; a potential predicts energies of one or more atoms.")
    pos = atoms.positions
    if not np.all(np.isfinite(pos)):
        rows = sorted(set(np.argwhere(~np.isfinite(pos))[:, 0].tolist()))
        raise ValueError(f"{name} has NaN or infinite positions for atom index(es) {rows}.")
    zs = sorted({int(z) for z in np.unique(atoms.numbers)})
    if elements is not None:
        known = {atomic_numbers[s] for s in elements}
        unknown = [z for z in zs if z not in known]
        if unknown:
            raise ValueError(
                f"{name} ({atoms.get_chemical_formula()}) contains {_describe(unknown)}, which the model never saw "
                f"in training; it knows only {', '.join(elements)}. Its prediction for them would be meaningless."
            )
    bad = [z for z in zs if z < 1 or (max_z is not None and z >= max_z)]
    if bad:
        limit = f" (its embedding covers Z < {max_z})" if max_z is not None else ""
        raise ValueError(f"{name} contains {_describe(bad)}, which the model cannot represent{limit}.")
    return atoms
