"""Train/validation/test splits: checked for emptiness, overlap and leaked geometries.

A split is ``{"train": [...], "val": [...], "test": [...]}``, indices into the training data. A geometry in
both the training split and the validation or test split makes the held-out error an error on seen data, so
leaks are found by geometry key (atomic numbers and positions to 1e-8 Å, :func:`mlipviz.geometry.geometry_key`),
which catches duplicates stored under different indices too.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from ase import Atoms

from .. import keys
from ..geometry import geometry_key

__all__ = ["SPLIT_NAMES", "check_no_leak", "check_split"]

#: The parts of a split, in order.
SPLIT_NAMES = (keys.SPLIT_TRAIN, keys.SPLIT_VAL, keys.SPLIT_TEST)


def check_split(split, n_structures: int) -> dict[str, list[int]]:
    """Validate a user-given split of ``n_structures`` structures.

    Args:
        split: Mapping with "train" and "val" (each non-empty) and optionally "test" (may be empty).
        n_structures: Structures in the training data.

    Returns:
        ``{"train", "val", "test"}`` → lists of int indices.

    Raises:
        ValueError: naming the part that is unknown, missing, empty, out of range, repeated or shared.
    """
    if not isinstance(split, Mapping):
        raise ValueError(f"split must be a mapping with keys {SPLIT_NAMES}, got {type(split).__name__}.")
    unknown = sorted(set(split) - set(SPLIT_NAMES))
    if unknown:
        raise ValueError(f"split has unknown part(s) {unknown}; the parts are {SPLIT_NAMES}.")
    out = {}
    for name in SPLIT_NAMES:
        raw = split.get(name, [] if name == keys.SPLIT_TEST else None)
        if raw is None:
            raise ValueError(f"split has no {name!r} part.")
        idx = np.asarray(raw).reshape(-1)
        if idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"split[{name!r}] must hold integer indices, got {idx.dtype} values.")
        idx = idx.astype(int).tolist()
        if not idx and name != keys.SPLIT_TEST:
            raise ValueError(f"split[{name!r}] is empty; training needs at least one {name} structure.")
        bad = [i for i in idx if not 0 <= i < n_structures]
        if bad:
            raise ValueError(f"split[{name!r}] has indices {bad[:5]} outside 0..{n_structures - 1}.")
        if len(set(idx)) != len(idx):
            dup = sorted({i for i in idx if idx.count(i) > 1})
            raise ValueError(f"split[{name!r}] repeats indices {dup[:5]}.")
        out[name] = idx
    pairs = ((keys.SPLIT_TRAIN, keys.SPLIT_VAL), (keys.SPLIT_TRAIN, keys.SPLIT_TEST), (keys.SPLIT_VAL, keys.SPLIT_TEST))
    for a, b in pairs:
        shared = sorted(set(out[a]) & set(out[b]))
        if shared:
            raise ValueError(f"split[{a!r}] and split[{b!r}] share indices {shared[:5]}.")
    return out


def check_no_leak(split: Mapping, images: list[Atoms]) -> None:
    """Refuse a split whose training part shares a geometry with its validation or test part.

    Raises:
        ValueError: naming the two structure indices of the first shared geometry and how many there are.
    """
    train = {}
    for i in split[keys.SPLIT_TRAIN]:
        train.setdefault(geometry_key(images[i]), i)
    for name in (keys.SPLIT_VAL, keys.SPLIT_TEST):
        leaks = [(train[k], j) for j in split[name] if (k := geometry_key(images[j])) in train]
        if leaks:
            i, j = leaks[0]
            raise ValueError(
                f"The split leaks {len(leaks)} {name} structure(s) into training: structure {j} ({name}) has the "
                f"same geometry as structure {i} (train). Remove duplicate geometries from the data, or split "
                f"them into the same part."
            )
