"""Per-atom attributions of a potential's energy with Integrated Gradients (captum), converged and checked.

IG integrates the energy gradient along the straight path from a baseline x' to the structure x; atom i's
attribution sums its three Cartesian terms. By completeness the attributions add up to E(x) − E(x'). The
integral is computed with Gauss–Legendre quadrature whose number of points doubles until the completeness gap
|Σ attributions − (E(x) − E(x'))| is below a tolerance (1 meV by default); the points used and the final gap
are on every result, and a gap that does not close raises a :class:`CompletenessWarning`.

Which baseline answers which question is explained in :mod:`mlipviz.attribution.baselines`; the default is
the model's own minimum (the attributions split the strain energy), which stays near the training data. When
training structures are given, every result carries a distance-to-training-data check of its path
(:mod:`mlipviz.attribution.distribution`).

References:
    Sundararajan, Taly, Yan, ICML 2017, arXiv:1703.01365 (Integrated Gradients, completeness).
    Kokhlikyan et al., arXiv:2009.07896 (2020) (captum).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms

from ..geometry import check_atoms, check_positive_int
from .baselines import (
    BASELINE_KINDS,
    EnergyFunctionCalculator,
    align_to,
    check_cutoff,
    dissociated_baseline,
    minimum_energy_baseline,
    training_minimum_baseline,
)
from .distribution import DEFAULT_TOLERANCE, DistanceRanges, OutOfDistributionWarning, PathCheck, path_check
from .model_function import energy_function, energy_offset, network_energy_function

__all__ = [
    "AttributionResult",
    "CompletenessWarning",
    "DEFAULT_TOL",
    "dissociated_baseline",
    "energy_function",
    "integrated_gradients",
    "adaptive_ig",
]

#: Default completeness tolerance, eV.
DEFAULT_TOL = 1e-3
#: Quadrature points of the first adaptive try; doubled until the gap closes.
START_STEPS = 16
#: Default largest number of quadrature points.
MAX_STEPS = 4096


class CompletenessWarning(UserWarning):
    """Integrated Gradients did not meet its completeness tolerance."""


@dataclass
class AttributionResult:
    """An Integrated-Gradients attribution of the energy to atoms.

    Attributions sum to ``energy - baseline_energy`` up to ``completeness_gap``.

    Attributes:
        atom_attributions: (n_atoms,) eV.
        coordinate_attributions: (n_atoms, 3) eV (IG on positions), or None (IG on the embedding mask).
        energy: E(x), eV.
        baseline_energy: E(baseline), eV.
        completeness_gap: Σ attributions − (E(x) − E(baseline)), eV.
        baseline: The baseline structure, Å (None for the embedding mask, whose baseline is a zero embedding).
        n_steps: Gauss–Legendre points used along the path.
        tolerance: The completeness tolerance asked for, eV.
        converged: |completeness_gap| < tolerance.
        baseline_kind: "minimum", "training-minimum", "dissociated", "reference" or "zero embedding".
        path_check: Distance-to-training-data check of the path, or None when no training data was given.
        method: What was attributed, in words.
    """

    atom_attributions: np.ndarray
    coordinate_attributions: np.ndarray | None
    energy: float
    baseline_energy: float
    completeness_gap: float
    baseline: Atoms | None
    n_steps: int
    tolerance: float = DEFAULT_TOL
    converged: bool = True
    baseline_kind: str = "reference"
    path_check: PathCheck | None = None
    method: str = "Integrated Gradients on positions"

    def __str__(self) -> str:
        lines = [
            f"{self.method}, baseline: {self.baseline_kind}",
            f"  E(x) − E(baseline) = {self.energy - self.baseline_energy:+.4f} eV; "
            f"Σ attributions = {self.atom_attributions.sum():+.4f} eV",
            f"  completeness gap {self.completeness_gap:+.1e} eV with {self.n_steps} steps "
            f"({'within' if self.converged else 'NOT within'} {self.tolerance:g} eV)",
        ]
        if self.path_check is not None:
            lines.append(f"  {self.path_check}")
        return "\n".join(lines)


def check_tolerance(tol, name: str = "tol") -> float:
    """``tol`` as a float if it is a finite positive number, else a ValueError naming it."""
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating, np.integer)) or not np.isfinite(tol) or tol <= 0:
        raise ValueError(f"{name} must be a finite positive number, got {tol!r}.")
    return float(tol)


def adaptive_ig(forward, x: torch.Tensor, x0: torch.Tensor, delta: float, n_steps: int | None, tol: float,
                max_steps: int, what: str = "Integrated Gradients"):
    """Integrated Gradients of ``forward`` from ``x0`` to ``x`` with points doubled until completeness holds.

    Args:
        forward: ``f(inputs[k, ...]) -> outputs[k]``, eV.
        x, x0: (1, ...) input and baseline.
        delta: f(x) − f(x0), eV, computed separately (float64).
        n_steps: A fixed number of points, or None to adapt from :data:`START_STEPS`.
        tol: Completeness tolerance, eV.
        max_steps: Largest number of points when adapting.
        what: Name for the warning.

    Returns:
        ``(attributions (…) float64 ndarray, n_steps, gap eV, converged)``.
    """
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(forward)
    per_copy = max(1, int(np.prod(x.shape[1:])))
    batch = max(16, 2_000_000 // (per_copy * per_copy))
    steps = n_steps if n_steps is not None else min(START_STEPS, max_steps)
    while True:
        attr = ig.attribute(x, baselines=x0, n_steps=steps, method="gausslegendre", internal_batch_size=batch)
        attr = attr[0].detach().cpu().double().numpy()
        gap = float(attr.sum() - delta)
        converged = abs(gap) < tol
        if converged or n_steps is not None or steps >= max_steps:
            break
        steps = min(2 * steps, max_steps)
    if not converged:
        hint = "raise n_steps" if n_steps is not None else "raise max_steps or tol"
        warnings.warn(
            f"{what}: completeness gap {gap:+.2e} eV with {steps} steps exceeds tol={tol:g} eV; {hint}. "
            "The attributions do not add up to the energy difference.",
            CompletenessWarning,
            stacklevel=3,
        )
    return attr, steps, gap, converged


def _resolve_baseline(model, atoms, baseline, cutoff, training, fmax) -> tuple[Atoms, str]:
    if baseline is None:
        baseline = "minimum"
    if isinstance(baseline, str):
        if baseline not in BASELINE_KINDS:
            raise ValueError(f"baseline={baseline!r} is not one of {BASELINE_KINDS} or an ase.Atoms.")
        if baseline == "minimum":
            return minimum_energy_baseline(atoms, EnergyFunctionCalculator(model), fmax=fmax), baseline
        if baseline == "training-minimum":
            if training is None or isinstance(training, DistanceRanges):
                raise ValueError("baseline='training-minimum' needs the training structures (training=[...]).")
            return training_minimum_baseline(atoms, training, model), baseline
        if cutoff is None:
            raise ValueError("baseline='dissociated' needs the model's cutoff (Å).")
        return dissociated_baseline(atoms, cutoff), baseline
    if not isinstance(baseline, Atoms):
        raise ValueError(f"baseline must be an ase.Atoms or one of {BASELINE_KINDS}, got {type(baseline).__name__}.")
    check_atoms(baseline, "baseline")
    if len(baseline) != len(atoms) or list(baseline.numbers) != list(atoms.numbers):
        raise ValueError("baseline must hold the same atoms in the same order as atoms.")
    return align_to(baseline, atoms), "reference"


def integrated_gradients(
    model: torch.nn.Module,
    atoms: Atoms,
    cutoff: float | None = None,
    baseline: Atoms | str | None = "minimum",
    n_steps: int | None = None,
    tol: float = DEFAULT_TOL,
    max_steps: int = MAX_STEPS,
    training: list[Atoms] | DistanceRanges | None = None,
    ood_tolerance: float = DEFAULT_TOLERANCE,
    fmax: float = 1e-3,
) -> AttributionResult:
    """Integrated-Gradients attribution of the model energy of ``atoms`` to its atoms, converged to ``tol``.

    Choose the baseline by the question (see :mod:`mlipviz.attribution.baselines`):

    ========================================================  =====================================
    question                                                  ``baseline``
    ========================================================  =====================================
    which atoms strain this structure above its equilibrium?  ``"minimum"`` (default)
    the same, from a structure the model was trained on       ``"training-minimum"`` (``training``)
    what changes between this conformer and that one?         an ``ase.Atoms`` (aligned onto ``atoms``)
    which atoms hold the atomisation energy?                  ``"dissociated"`` (extrapolates)
    ========================================================  =====================================

    Args:
        model: A SchNetPack potential built by :func:`mlipviz.potential.build_model`.
        atoms: Structure, Å.
        cutoff: The model's cutoff, Å; needed for ``"dissociated"``, checked whenever given.
        baseline: A name above, an ``ase.Atoms`` with the same atoms in the same order, or None (the default).
        n_steps: A fixed number of Gauss–Legendre points; None (default) doubles from 16 until the gap < ``tol``.
        tol: Completeness tolerance, eV.
        max_steps: Most points when adapting; beyond it a :class:`CompletenessWarning` is raised as a warning.
        training: The model's training structures (or their distance ranges) for the path check, whose
            :class:`~mlipviz.attribution.distribution.OutOfDistributionWarning` says when the path leaves them.
        ood_tolerance: Excursion beyond the training distances (Å) that counts as out of distribution.
        fmax: Force threshold of the ``"minimum"`` relaxation, eV/Å.

    Returns:
        An :class:`AttributionResult` (eV) with the points used, the gap and the path check.

    Raises:
        ValueError: for bad structures or baselines (NaN, wrong atoms), a NaN or non-positive cutoff,
            ``n_steps`` < 1, a non-positive ``tol``, or an unknown baseline name.
    """
    check_atoms(atoms)
    if cutoff is not None:
        cutoff = check_cutoff(cutoff)
    if n_steps is not None:
        n_steps = check_positive_int(n_steps, "n_steps")
    tol = check_tolerance(tol)
    max_steps = check_positive_int(max_steps, "max_steps")
    model = model.eval()
    base, kind = _resolve_baseline(model, atoms, baseline, cutoff, training, fmax)
    check = None
    if training is not None:
        check = path_check(atoms, base, training, tolerance=ood_tolerance, warn=False)
        if not check.in_distribution:
            warnings.warn(f"Integrated Gradients with baseline {kind!r}: {check}.", OutOfDistributionWarning, stacklevel=2)
    device = next(model.parameters()).device
    f = network_energy_function(model, atoms)
    x = torch.as_tensor(atoms.get_positions(), dtype=torch.float32, device=device)[None]
    x0 = torch.as_tensor(base.get_positions(), dtype=torch.float32, device=device)[None]
    with torch.no_grad():
        e_x, e_0 = (float(v) for v in f(torch.cat([x, x0])).double())
    coord, steps, gap, converged = adaptive_ig(f, x, x0, e_x - e_0, n_steps, tol, max_steps)
    offset = energy_offset(model, atoms)
    return AttributionResult(
        atom_attributions=coord.sum(axis=1),
        coordinate_attributions=coord,
        energy=e_x + offset,
        baseline_energy=e_0 + offset,
        completeness_gap=gap,
        baseline=base,
        n_steps=steps,
        tolerance=tol,
        converged=converged,
        baseline_kind=kind,
        path_check=check,
    )
