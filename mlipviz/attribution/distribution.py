"""Does an attribution path stay inside the training data? A distance-to-training-data check.

A potential is only trustworthy where it was trained. Every interatomic distance along the straight path from a
baseline to a structure is compared with the range of that distance in the training structures; the largest
excursion beyond the range (Å) is the check's figure. When every training structure holds the same atoms in the
same order as the structure, each atom pair i–j is compared with its own range (the tight check); otherwise each
pair is compared with the range of all pairs of its two elements (a looser check, said so on the result).

References:
    Sundararajan, Taly, Yan, ICML 2017, arXiv:1703.01365 (the straight-line path of Integrated Gradients).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from ..geometry import check_atoms, check_positive_int

__all__ = ["DistanceRanges", "PathCheck", "OutOfDistributionWarning", "distance_ranges", "path_check"]

#: Distances beyond the training range by more than this (Å) make a path "out of distribution" by default.
DEFAULT_TOLERANCE = 0.05


class OutOfDistributionWarning(UserWarning):
    """An attribution's baseline or path leaves the range of the training data."""


@dataclass
class DistanceRanges:
    """Interatomic-distance ranges seen in training structures.

    Attributes:
        per_pair: True when ranges are per atom pair (i, j) (all structures share one atom order), False when
            per element pair.
        numbers: (n_atoms,) atomic numbers of the common atom order (per-pair ranges only), else None.
        low: Per pair: (n_atoms, n_atoms) minimum distance, Å. Per element pair: dict (Z_a, Z_b) -> Å (Z_a <= Z_b).
        high: Same shape or keys as ``low``: maximum distance, Å.
        n_structures: Number of training structures.
    """

    per_pair: bool
    numbers: np.ndarray | None
    low: np.ndarray | dict
    high: np.ndarray | dict
    n_structures: int


@dataclass
class PathCheck:
    """How far the straight path from a baseline to a structure leaves the training distances.

    Attributes:
        max_deviation: Largest distance of any pair, at any point of the path, outside its training range, Å
            (0 when the whole path is inside).
        baseline_deviation: The same at the baseline alone, Å.
        alpha: Path fraction (0 = baseline, 1 = structure) where ``max_deviation`` occurs.
        pair: The atom pair (i, j) where it occurs.
        distance: That pair's distance there, Å.
        training_range: That pair's training range (low, high), Å.
        per_pair: Whether the check used per-pair or per-element-pair ranges (see :class:`DistanceRanges`).
        tolerance: Deviation allowed before the path counts as out of distribution, Å.
    """

    max_deviation: float
    baseline_deviation: float
    alpha: float
    pair: tuple[int, int]
    distance: float
    training_range: tuple[float, float]
    per_pair: bool
    tolerance: float

    @property
    def in_distribution(self) -> bool:
        """True when no distance leaves its training range by more than ``tolerance``."""
        return self.max_deviation <= self.tolerance

    def __str__(self) -> str:
        i, j = self.pair
        where = "baseline" if self.alpha == 0 else f"path fraction {self.alpha:.2f}"
        verdict = "inside" if self.in_distribution else "OUTSIDE"
        kind = "per-pair ranges" if self.per_pair else "per-element-pair ranges"
        if self.max_deviation == 0:
            return f"path inside the training distances: every distance stays within its training range ({kind})"
        return (
            f"path {verdict} the training distances: largest excursion {self.max_deviation:.3f} Å "
            f"(pair {i}–{j} at {self.distance:.3f} Å, training {self.training_range[0]:.3f}–"
            f"{self.training_range[1]:.3f} Å, {where}; tolerance {self.tolerance} Å; {kind})"
        )


def _distances(pos: np.ndarray) -> np.ndarray:
    return np.linalg.norm(pos[..., :, None, :] - pos[..., None, :, :], axis=-1)


def distance_ranges(training: list[Atoms]) -> DistanceRanges:
    """The range of every interatomic distance in ``training`` (Å).

    Args:
        training: Training structures (positions in Å), at least one.

    Returns:
        Per-pair ranges when all structures have the same atomic numbers in the same order, else per-element-pair.

    Raises:
        ValueError: for an empty list or a structure with NaN positions.
    """
    training = list(training)
    if not training:
        raise ValueError("training must hold at least one structure.")
    for k, a in enumerate(training):
        check_atoms(a, f"training structure {k}")
    first = training[0].get_atomic_numbers()
    if all(len(a) == len(first) and np.array_equal(a.get_atomic_numbers(), first) for a in training):
        d = _distances(np.stack([a.get_positions() for a in training]))
        return DistanceRanges(True, first.copy(), d.min(axis=0), d.max(axis=0), len(training))
    low: dict = {}
    high: dict = {}
    for a in training:
        z = a.get_atomic_numbers()
        d = _distances(a.get_positions())
        for i, j in zip(*np.triu_indices(len(a), 1)):
            key = (min(z[i], z[j]), max(z[i], z[j]))
            low[key] = min(low.get(key, np.inf), d[i, j])
            high[key] = max(high.get(key, -np.inf), d[i, j])
    return DistanceRanges(False, None, low, high, len(training))


def _range_matrices(ranges: DistanceRanges, atoms: Atoms) -> tuple[np.ndarray, np.ndarray, bool]:
    z = atoms.get_atomic_numbers()
    if ranges.per_pair and len(z) == len(ranges.numbers) and np.array_equal(z, ranges.numbers):
        return ranges.low, ranges.high, True
    if ranges.per_pair:  # a different molecule: fall back to element pairs
        lo, hi = {}, {}
        n = len(ranges.numbers)
        for i, j in zip(*np.triu_indices(n, 1)):
            key = (min(ranges.numbers[i], ranges.numbers[j]), max(ranges.numbers[i], ranges.numbers[j]))
            lo[key] = min(lo.get(key, np.inf), ranges.low[i, j])
            hi[key] = max(hi.get(key, -np.inf), ranges.high[i, j])
    else:
        lo, hi = ranges.low, ranges.high
    n = len(z)
    low = np.full((n, n), np.inf)  # a pair of elements never seen together: every distance is outside
    high = np.full((n, n), -np.inf)
    for i, j in zip(*np.triu_indices(n, 1)):
        key = (min(z[i], z[j]), max(z[i], z[j]))
        if key in lo:
            low[i, j] = low[j, i] = lo[key]
            high[i, j] = high[j, i] = hi[key]
    return low, high, False


def path_check(
    atoms: Atoms,
    baseline: Atoms,
    training: list[Atoms] | DistanceRanges,
    n_points: int = 65,
    tolerance: float = DEFAULT_TOLERANCE,
    warn: bool = True,
) -> PathCheck:
    """Compare every interatomic distance along the straight path ``baseline -> atoms`` with the training data.

    Args:
        atoms: The structure, Å.
        baseline: The baseline, same atoms in the same order, Å.
        training: Training structures, or their :func:`distance_ranges`.
        n_points: Points on the path, ends included.
        tolerance: Excursion (Å) beyond which the path is out of distribution.
        warn: Emit an :class:`OutOfDistributionWarning` when it is.

    Returns:
        A :class:`PathCheck`.
    """
    check_atoms(atoms)
    check_atoms(baseline, "baseline")
    n_points = check_positive_int(n_points, "n_points")
    if n_points < 2:
        raise ValueError(f"n_points must be at least 2 (both ends of the path), got {n_points}.")
    if not (isinstance(tolerance, (int, float)) and np.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be a finite distance >= 0 Å, got {tolerance!r}.")
    if not np.array_equal(atoms.get_atomic_numbers(), baseline.get_atomic_numbers()):
        raise ValueError("baseline must hold the same atoms in the same order as atoms.")
    ranges = training if isinstance(training, DistanceRanges) else distance_ranges(training)
    low, high, per_pair = _range_matrices(ranges, atoms)
    alphas = np.linspace(0.0, 1.0, n_points)
    x0, x1 = baseline.get_positions(), atoms.get_positions()
    d = _distances(x0[None] + alphas[:, None, None] * (x1 - x0)[None])  # (n_points, n, n)
    with np.errstate(invalid="ignore"):
        dev = np.maximum(np.maximum(d - high, low - d), 0.0)
    iu = np.triu_indices(len(atoms), 1)
    dev_pairs = dev[:, iu[0], iu[1]]
    if dev_pairs.size == 0:  # a single atom has no distances
        return PathCheck(0.0, 0.0, 0.0, (0, 0), 0.0, (0.0, 0.0), per_pair, float(tolerance))
    dev_pairs = np.where(np.isfinite(dev_pairs), dev_pairs, np.inf)
    k, p = np.unravel_index(int(np.argmax(dev_pairs)), dev_pairs.shape)
    i, j = int(iu[0][p]), int(iu[1][p])
    result = PathCheck(
        max_deviation=float(dev_pairs[k, p]),
        baseline_deviation=float(dev_pairs[0].max()),
        alpha=float(alphas[k]),
        pair=(i, j),
        distance=float(d[k, i, j]),
        training_range=(float(low[i, j]), float(high[i, j])),
        per_pair=per_pair,
        tolerance=float(tolerance),
    )
    if warn and not result.in_distribution:
        warnings.warn(f"Attribution {result}.", OutOfDistributionWarning, stacklevel=2)
    return result
