"""Sanity checks for attributions, run and reported: completeness, model randomisation, symmetry.

* **Completeness** (Sundararajan et al. 2017): IG attributions add up to E(x) − E(baseline); the gap measures
  the quadrature.
* **Model randomisation** (Adebayo et al. 2018): an attribution that explains the *model* must change when the
  trained weights are replaced by fresh random ones of the same architecture. A high rank correlation between
  the two means the method shows the input (here: the geometry of the path), not what the model learned.
* **Symmetry**: energy is invariant under rotation and translation, so per-atom IG attributions are too (each
  atom's attribution is a dot product of its displacement and gradient); atoms that a symmetry of the molecule
  exchanges (the two hydrogens of water at a C2v geometry) must receive equal attributions.

Each function returns a small result object that prints as one or two lines, for a notebook.

References:
    Adebayo et al., NeurIPS 2018, arXiv:1810.03292 (Sanity checks for saliency maps).
    Sundararajan, Taly, Yan, ICML 2017, arXiv:1703.01365 (completeness, symmetry preservation).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms
from scipy.spatial.transform import Rotation
from scipy.stats import spearmanr

from ..geometry import check_atoms
from .integrated_gradients import AttributionResult, integrated_gradients

__all__ = [
    "CompletenessCheck",
    "RandomisationCheck",
    "SymmetryCheck",
    "completeness_check",
    "equivalent_atoms",
    "model_randomisation",
    "randomised_copy",
    "symmetry_check",
]


@dataclass
class CompletenessCheck:
    """Completeness of one IG result.

    Attributes:
        gap: Σ attributions − (E(x) − E(baseline)), eV.
        relative_gap: |gap| / |E(x) − E(baseline)| (inf when the difference is 0 and the gap is not).
        n_steps: Quadrature points used.
        tolerance: The tolerance, eV.
    """

    gap: float
    relative_gap: float
    n_steps: int
    tolerance: float

    @property
    def passed(self) -> bool:
        return abs(self.gap) < self.tolerance

    def __str__(self) -> str:
        return (f"completeness: gap {self.gap:+.2e} eV ({100 * self.relative_gap:.3g} %) with {self.n_steps} steps; "
                f"{'passed' if self.passed else 'FAILED'} (tolerance {self.tolerance:g} eV)")


def completeness_check(result: AttributionResult, tolerance: float | None = None) -> CompletenessCheck:
    """The completeness gap of ``result`` against ``tolerance`` (eV; default: the result's own)."""
    diff = result.energy - result.baseline_energy
    gap = result.completeness_gap
    rel = abs(gap) / abs(diff) if diff != 0 else (0.0 if gap == 0 else float("inf"))
    return CompletenessCheck(gap, rel, result.n_steps, result.tolerance if tolerance is None else float(tolerance))


@dataclass
class RandomisationCheck:
    """Trained versus re-initialised models (Adebayo et al. 2018).

    Attributes:
        spearman: Mean over the re-initialisations of the Spearman rank correlation between the trained and the
            re-initialised model's per-atom attributions (all structures pooled).
        spearman_abs: The same for their absolute values (the ranking of importance, whatever the sign).
        per_seed: ``(seed, ρ, ρ_abs)`` for each re-initialisation.
        n_values: Number of per-atom values compared.
        trained: (n_values,) attributions of the trained model, eV.
        randomised: (n_seeds, n_values) attributions of the re-initialised models, eV.
        threshold: |ρ| below which the check passes (both mean correlations).
    """

    spearman: float
    spearman_abs: float
    per_seed: list[tuple[int, float, float]]
    n_values: int
    trained: np.ndarray
    randomised: np.ndarray
    threshold: float

    @property
    def passed(self) -> bool:
        return bool(abs(self.spearman) < self.threshold and abs(self.spearman_abs) < self.threshold)

    def __str__(self) -> str:
        seeds = ", ".join(f"{r:+.2f}/{ra:+.2f}" for _, r, ra in self.per_seed)
        return (f"model randomisation: Spearman ρ(trained, re-initialised) = {self.spearman:+.3f}, of |attributions| "
                f"{self.spearman_abs:+.3f} (mean of {len(self.per_seed)} re-initialisations: {seeds}), over "
                f"{self.n_values} atoms; {'passed' if self.passed else 'FAILED'} (|ρ| < {self.threshold}; a high |ρ| "
                "means the path, not the training, sets the attributions)")


def randomised_copy(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """A deep copy of ``model`` with every learnable layer re-initialised (same architecture, fresh weights).

    The copy is re-initialised on the CPU from ``seed`` (so the result does not depend on the device) and moved
    to the model's device. Buffers such as the energy offset stay; the global torch random state is untouched.

    Raises:
        ValueError: when some parameter could not be re-initialised.
    """
    device = next(model.parameters()).device
    fresh = copy.deepcopy(model).cpu()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in fresh.modules():
            if hasattr(module, "reset_parameters") and module is not fresh:
                module.reset_parameters()
    fresh = fresh.to(device)
    same = [name for (name, p), q in zip(fresh.named_parameters(), model.parameters()) if p.numel() > 1 and torch.equal(p, q)]
    if same:
        raise ValueError(f"parameters {same[:5]} were not re-initialised; the model has layers without reset_parameters.")
    return fresh.eval()


def model_randomisation(
    model: torch.nn.Module,
    structures: list[Atoms],
    baselines: list[Atoms],
    seeds=(0, 1, 2),
    threshold: float = 0.5,
    n_steps: int | None = None,
) -> RandomisationCheck:
    """IG attributions of the trained model and of re-initialised copies, compared by rank correlation.

    Every model integrates along the same paths (the same baselines), so only the weights differ. One random
    initialisation can happen to resemble the trained model, so several are drawn and the correlations averaged.

    Args:
        model: The trained potential.
        structures: Structures to attribute, Å.
        baselines: One baseline per structure (e.g. ``result.baseline`` of earlier runs), Å.
        seeds: Seeds of the re-initialisations (an int for one).
        threshold: |ρ| below which the check passes.
        n_steps: Fixed quadrature points (None: adaptive, 1 meV).

    Returns:
        A :class:`RandomisationCheck`.
    """
    structures, baselines = list(structures), list(baselines)
    if not structures or len(structures) != len(baselines):
        raise ValueError(f"need one baseline per structure, got {len(structures)} structures and {len(baselines)} baselines.")
    seeds = [seeds] if isinstance(seeds, (int, np.integer)) else list(seeds)
    if not seeds or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"seeds must be an integer or a non-empty list of integers, got {seeds!r}.")

    def attributions(m):
        return np.concatenate([integrated_gradients(m, a, baseline=b, n_steps=n_steps).atom_attributions
                               for a, b in zip(structures, baselines)])

    trained = attributions(model)
    if len(trained) < 3:
        raise ValueError(f"a rank correlation needs at least 3 values, got {len(trained)} atoms in all.")
    randomised, per_seed = [], []
    for seed in seeds:
        r = attributions(randomised_copy(model, int(seed)))
        randomised.append(r)
        per_seed.append((int(seed), float(spearmanr(trained, r).statistic),
                         float(spearmanr(np.abs(trained), np.abs(r)).statistic)))
    rho = float(np.mean([p[1] for p in per_seed]))
    rho_abs = float(np.mean([p[2] for p in per_seed]))
    return RandomisationCheck(rho, rho_abs, per_seed, len(trained), trained, np.array(randomised), float(threshold))


@dataclass
class SymmetryCheck:
    """Invariance of per-atom attributions under rigid motions, and equality on equivalent atoms.

    Attributes:
        rotation_error: Largest |change| of any atom's attribution after a random rotation, eV.
        translation_error: The same after a translation, eV.
        equivalent_pairs: Atom pairs exchanged by a symmetry of both structure and baseline.
        equivalence_error: Largest |a_i − a_j| over those pairs, eV (0 when there are none).
        scale: Largest |attribution|, eV, to judge the errors against.
        tolerance: Error allowed, eV.
    """

    rotation_error: float
    translation_error: float
    equivalent_pairs: list[tuple[int, int]]
    equivalence_error: float
    scale: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return max(self.rotation_error, self.translation_error, self.equivalence_error) < self.tolerance

    def __str__(self) -> str:
        pairs = ", ".join(f"{i}–{j}" for i, j in self.equivalent_pairs) or "none"
        return (f"symmetry: rotation changes attributions by ≤ {self.rotation_error:.1e} eV, translation by ≤ "
                f"{self.translation_error:.1e} eV; equivalent atoms ({pairs}) differ by ≤ {self.equivalence_error:.1e} eV "
                f"(largest attribution {self.scale:.3g} eV); {'passed' if self.passed else 'FAILED'} "
                f"(tolerance {self.tolerance:g} eV)")


def equivalent_atoms(atoms: Atoms, tol: float = 1e-3) -> list[tuple[int, int]]:
    """Pairs (i < j) of same-element atoms with identical sorted distance lists to every element (within ``tol`` Å).

    Equal distance fingerprints are what a symmetry operation exchanging i and j implies; for small molecules
    (water, methanol) they identify the symmetry-equivalent atoms.
    """
    check_atoms(atoms)
    z = atoms.get_atomic_numbers()
    d = atoms.get_all_distances()
    prints = []
    for i in range(len(atoms)):
        others = np.delete(np.arange(len(atoms)), i)
        prints.append({int(e): np.sort(d[i, others[z[others] == e]]) for e in set(z[others].tolist())})
    pairs = []
    for i in range(len(atoms)):
        for j in range(i + 1, len(atoms)):
            if z[i] != z[j] or prints[i].keys() != prints[j].keys():
                continue
            if all(np.allclose(prints[i][e], prints[j][e], atol=tol, rtol=0) for e in prints[i]):
                pairs.append((i, j))
    return pairs


def _moved(atoms: Atoms, rot: np.ndarray, shift: np.ndarray) -> Atoms:
    out = atoms.copy()
    out.calc = None
    out.positions = atoms.get_positions() @ rot.T + shift
    return out


def symmetry_check(
    model: torch.nn.Module,
    atoms: Atoms,
    result: AttributionResult,
    seed: int = 0,
    translation=(3.1, -2.4, 1.7),
    tolerance: float = 1e-3,
    equivalence_tol: float = 1e-3,
) -> SymmetryCheck:
    """Recompute ``result`` on a rotated and on a translated copy (baseline moved alike) and compare.

    Args:
        model: The potential that produced ``result``.
        atoms: The structure of ``result``, Å.
        result: An IG result on positions (it fixes the baseline and the number of points).
        seed: Seed of the random rotation.
        translation: (3,) translation, Å.
        tolerance: Error allowed, eV.
        equivalence_tol: Distance tolerance for :func:`equivalent_atoms`, Å.

    Returns:
        A :class:`SymmetryCheck`.
    """
    check_atoms(atoms)
    if result.baseline is None or len(result.baseline) != len(atoms):
        raise ValueError("result must be an IG-on-positions result for these atoms (it needs its baseline).")
    shift = np.asarray(translation, dtype=float)
    if shift.shape != (3,) or not np.all(np.isfinite(shift)):
        raise ValueError(f"translation must be 3 finite numbers (Å), got {translation!r}.")
    rot = Rotation.random(random_state=seed).as_matrix()
    errors = []
    for r, t in ((rot, np.zeros(3)), (np.eye(3), shift)):
        moved = integrated_gradients(model, _moved(atoms, r, t), baseline=_moved(result.baseline, r, t),
                                     n_steps=result.n_steps)
        errors.append(float(np.abs(moved.atom_attributions - result.atom_attributions).max()))
    pairs = sorted(set(equivalent_atoms(atoms, equivalence_tol)) & set(equivalent_atoms(result.baseline, equivalence_tol)))
    a = result.atom_attributions
    eq = max((abs(a[i] - a[j]) for i, j in pairs), default=0.0)
    return SymmetryCheck(errors[0], errors[1], pairs, float(eq), float(np.abs(a).max()), float(tolerance))
