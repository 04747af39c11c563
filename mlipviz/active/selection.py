"""Which candidates to label next: the most uncertain under a calibrated ensemble, or a random draw as the baseline.

A candidate's score is one number per structure from an :class:`~mlipviz.potential.EnsemblePrediction`:

* ``"forces"`` (default): the largest per-atom force uncertainty, eV/Å — the calibrated root-mean-square spread of
  one atom's three force components (:data:`mlipviz.keys.ATOM_UNCERTAINTY`). One badly known atom is enough to make a
  structure worth labelling, whatever the size of the molecule.
* ``"energy"``: the calibrated energy uncertainty divided by the number of atoms, eV/atom.

Uncertainty sampling picks the ``k`` highest scores (ties go to the earlier candidate); random sampling draws ``k``
candidates uniformly without replacement. Both take their random numbers from one generator seeded by
``(seed, round)``, so a run is reproducible and its baseline differs from it only in the rule.

References:
    Settles, Active Learning Literature Survey, University of Wisconsin–Madison TR 1648 (2009) (uncertainty sampling).
    Smith, Nebgen, Lubbers, Isayev, Roitberg, J. Chem. Phys. 148, 241733 (2018), doi:10.1063/1.5023802
    (query by committee for neural-network potentials).
    Kulichenko et al., Nat. Comput. Sci. 3, 230 (2023), doi:10.1038/s43588-023-00406-5 (uncertainty-driven
    dynamics for active learning of potentials).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from ..geometry import check_positive_int, geometry_key

__all__ = ["SCORES", "STRATEGIES", "distinct_candidates", "round_rng", "select", "uncertainty_scores"]

#: Selection rules: label the most uncertain candidates, or a uniform random draw (the baseline).
STRATEGIES = ("uncertainty", "random")
#: Per-structure scores, and their units.
SCORES = {"forces": "eV/Å", "energy": "eV/atom"}


def round_rng(seed: int, round_index: int) -> np.random.Generator:
    """The random generator of one round: NumPy's PCG64 seeded by ``(seed, round_index)``."""
    return np.random.default_rng([int(seed), int(round_index)])


def uncertainty_scores(prediction, score: str = "forces") -> np.ndarray:
    """One uncertainty per structure from an ensemble prediction.

    Args:
        prediction: An :class:`~mlipviz.potential.EnsemblePrediction` of ``n`` structures (calibrated).
        score: ``"forces"``: the largest per-atom force uncertainty of each structure, eV/Å; ``"energy"``: the
            energy uncertainty per atom, eV/atom.

    Returns:
        (n,) scores, in the unit of :data:`SCORES`.

    Raises:
        ValueError: for an unknown ``score``, or a prediction holding non-finite or negative uncertainties.
    """
    if score not in SCORES:
        raise ValueError(f"score must be one of {list(SCORES)}, got {score!r}.")
    atom_unc = [np.asarray(u, dtype=float).reshape(-1) for u in prediction.atom_uncertainty]
    if score == "forces":
        values = np.array([u.max() for u in atom_unc], dtype=float)
    else:
        n_atoms = np.array([len(u) for u in atom_unc], dtype=float)
        values = np.asarray(prediction.energy_std, dtype=float).reshape(-1) / n_atoms
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"the ensemble's {score} uncertainties are not all finite and non-negative.")
    return values


def select(
    n_or_scores: int | Sequence[float] | np.ndarray,
    k: int,
    strategy: str = "uncertainty",
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Indices of the ``k`` candidates to label.

    Args:
        n_or_scores: The candidates' scores, (n,) (``"uncertainty"`` needs them; ``"random"`` uses only their
            number), or for ``"random"`` just the number of candidates.
        k: How many to pick; at most ``n``.
        strategy: ``"uncertainty"``: the ``k`` highest scores, highest first, ties to the lower index;
            ``"random"``: ``k`` distinct indices drawn uniformly from ``rng``.
        rng: Generator for ``"random"`` (see :func:`round_rng`); required there.

    Returns:
        (k,) distinct int indices into the candidates.

    Raises:
        ValueError: for an unknown strategy, ``k`` < 1 or above the number of candidates, non-finite scores, or
            ``"random"`` without ``rng``.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {list(STRATEGIES)}, got {strategy!r}.")
    k = check_positive_int(k, "k")
    if isinstance(n_or_scores, (int, np.integer)) and not isinstance(n_or_scores, bool):
        if strategy == "uncertainty":
            raise ValueError("strategy='uncertainty' needs the candidates' scores, not only their number.")
        n, scores = int(n_or_scores), None
    else:
        scores = np.asarray(n_or_scores, dtype=float).reshape(-1)
        if not np.all(np.isfinite(scores)):
            raise ValueError("scores must be finite.")
        n = len(scores)
    if k > n:
        raise ValueError(f"k={k} exceeds the {n} candidates.")
    if strategy == "random":
        if rng is None:
            raise ValueError("strategy='random' needs rng (mlipviz.active.selection.round_rng(seed, round)).")
        return np.sort(rng.choice(n, size=k, replace=False)).astype(int)
    return np.argsort(-scores, kind="stable")[:k].astype(int)


def distinct_candidates(candidates: Sequence[Atoms], exclude: set[str] | frozenset[str] = frozenset()) -> list[int]:
    """Indices of candidates worth scoring: the first of each geometry, leaving out those in ``exclude``.

    Args:
        candidates: Structures, Å.
        exclude: Geometry keys (:func:`mlipviz.geometry.geometry_key`) already labelled, or failed.

    Returns:
        Indices into ``candidates``, in order; no two share a geometry key.
    """
    seen = set(exclude)
    keep = []
    for i, atoms in enumerate(candidates):
        key = geometry_key(atoms)
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return keep
