"""Attribution of one force component to the atoms: Integrated Gradients or saliency of F_a · u.

The force on atom a projected on a direction u, f(x) = F_a(x) · u = −∂E/∂r_a · u (eV/Å), is a smooth scalar
function of all positions, so the attribution methods of the energy apply to it. Its gradient holds the network's
second derivatives and is obtained by double back-propagation (the force is computed with ``create_graph``).
Two choices of u:

* along a bond, u = (r_a − r_b)/|r_a − r_b| with partner b: f is invariant under rotations and translations and
  positive when the force stretches the bond (what fails in an MD collapse, :mod:`.failure`);
* a fixed unit vector, e.g. the direction of F_a at the structure (then f(x) = |F_a(x)|).

Integrated Gradients integrates ∂f/∂r along the straight path from a baseline aligned onto the structure, with
Gauss–Legendre points doubled until the attributions add up to f(x) − f(baseline) within a tolerance (eV/Å).
Saliency gives |∂f/∂r_k| (eV/Å²) at the structure, with no baseline and no completeness.

**Caveat.** f is translation invariant, so Σ_k ∂f/∂r_k = 0: atoms that move together along the path (after
the baseline is aligned onto the structure, often the atoms *not* in the stretched bond) receive large terms of
opposite sign, and how the baseline is placed moves attribution between them. The sum is exact whatever the
placement; the split between atoms that move rigidly together is a choice of the baseline's alignment.

References:
    Sundararajan, Taly, Yan, ICML 2017, arXiv:1703.01365 (Integrated Gradients, completeness).
    Simonyan, Vedaldi, Zisserman, arXiv:1312.6034 (2013) (saliency maps).
    Kokhlikyan et al., arXiv:2009.07896 (2020) (captum).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms

from ..geometry import check_atoms, check_positive_int
from .integrated_gradients import DEFAULT_TOL, MAX_STEPS, _resolve_baseline, adaptive_ig, check_tolerance
from .model_function import network_energy_function

__all__ = ["FORCE_METHODS", "ForceAttribution", "check_atom_index", "force_attributions", "projected_force_function"]

#: Attribution methods for a force component.
FORCE_METHODS = ("ig", "saliency")


def check_atom_index(value, n: int, name: str) -> int:
    """``value`` as an int if it indexes one of ``n`` atoms, else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < n:
        raise ValueError(f"{name} must be an atom index in 0..{n - 1}, got {value!r}.")
    return int(value)


def projected_force_function(model: torch.nn.Module, atoms: Atoms, atom: int, partner: int | None = None,
                             direction=None):
    """The force on one atom projected on a direction, as a differentiable function of all positions.

    Exactly one of ``partner`` and ``direction`` is given. With ``partner`` b the direction moves with the atoms,
    u = (r_a − r_b)/|r_a − r_b|, so f is invariant under rotations and positive when the force stretches a–b;
    with ``direction`` it is a fixed unit vector.

    Args:
        model: A SchNetPack potential built by :func:`mlipviz.potential.build_model`.
        atoms: The atoms (numbers fix the element of each row), Å.
        atom: Index a of the atom whose force is projected.
        partner: Index b of the bond partner.
        direction: (3,) fixed direction (normalised here).

    Returns:
        ``f(positions[k, n_atoms, 3]) -> F_a · u [k]``, eV/Å, differentiable (it keeps the graph of the force).
    """
    n = len(atoms)
    atom = check_atom_index(atom, n, "atom")
    if (partner is None) == (direction is None):
        raise ValueError("give exactly one of partner (an atom index) and direction (a 3-vector).")
    device = next(model.parameters()).device
    fixed = None
    if partner is not None:
        partner = check_atom_index(partner, n, "partner")
        if partner == atom:
            raise ValueError(f"partner must differ from atom, got {atom} twice.")
    else:
        d = np.asarray(direction, dtype=float)
        if d.shape != (3,) or not np.all(np.isfinite(d)) or np.linalg.norm(d) == 0:
            raise ValueError(f"direction must be a finite non-zero 3-vector, got {direction!r}.")
        fixed = torch.as_tensor(d / np.linalg.norm(d), dtype=torch.float32, device=device)
    energy = network_energy_function(model, atoms)

    def f(positions: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            if not positions.requires_grad:
                positions = positions.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(energy(positions).sum(), positions, create_graph=True)
            if fixed is None:
                bond = positions[:, atom] - positions[:, partner]
                u = bond / bond.norm(dim=-1, keepdim=True)
            else:
                u = fixed.expand(len(positions), 3)
            return (-grad[:, atom] * u).sum(dim=-1)

    return f


@dataclass
class ForceAttribution:
    """Per-atom attribution of the force on one atom along a direction.

    Attributes:
        atom_attributions: (n_atoms,) eV/Å for IG (summing to ``value − baseline_value`` up to the gap);
            |∂f/∂r_k| in eV/Å² for saliency.
        coordinate_attributions: (n_atoms, 3) IG terms, eV/Å, or None (saliency).
        value: f(x), the projected force on the structure, eV/Å.
        baseline_value: f(baseline), eV/Å, or None (saliency).
        completeness_gap: Σ attributions − (value − baseline_value), eV/Å (NaN for saliency).
        baseline: The baseline structure aligned onto the structure, Å, or None.
        n_steps: Gauss–Legendre points of IG (0 for saliency).
        tolerance: Completeness tolerance, eV/Å.
        converged: |completeness_gap| < tolerance (True for saliency, which has none).
        atom: The atom whose force is projected.
        partner: Its bond partner (moving direction), or None.
        direction: The fixed unit direction, or None.
        method: "ig" or "saliency".
        unit: Unit of ``atom_attributions``.
    """

    atom_attributions: np.ndarray
    coordinate_attributions: np.ndarray | None
    value: float
    baseline_value: float | None
    completeness_gap: float
    baseline: Atoms | None
    n_steps: int
    tolerance: float
    converged: bool
    atom: int
    partner: int | None
    direction: np.ndarray | None
    method: str
    unit: str

    def __str__(self) -> str:
        what = f"force on atom {self.atom} " + (f"along the bond from atom {self.partner}" if self.partner is not None
                                                 else "along a fixed direction")
        if self.method == "saliency":
            return f"saliency of the {what}: f = {self.value:+.4f} eV/Å (no baseline, no completeness)"
        diff = self.value - self.baseline_value
        return (f"Integrated Gradients of the {what}: f(x) − f(baseline) = {diff:+.4f} eV/Å; "
                f"completeness gap {self.completeness_gap:+.1e} eV/Å with {self.n_steps} steps "
                f"({'within' if self.converged else 'NOT within'} {self.tolerance:g} eV/Å)")


def force_attributions(
    model: torch.nn.Module,
    atoms: Atoms,
    atom: int,
    *,
    partner: int | None = None,
    direction=None,
    method: str = "ig",
    baseline: Atoms | str | None = "minimum",
    cutoff: float | None = None,
    n_steps: int | None = None,
    tol: float = DEFAULT_TOL,
    max_steps: int = MAX_STEPS,
    fmax: float = 1e-3,
) -> ForceAttribution:
    """Attribute the force on ``atom`` projected on a bond (``partner``) or a fixed ``direction`` to every atom.

    With ``method="ig"`` Integrated Gradients integrates ∂f/∂r (the network's second derivatives, by double
    back-propagation) along the straight path from the baseline (aligned onto ``atoms``), with Gauss–Legendre
    points doubled until the attributions add up to f(x) − f(baseline) within ``tol`` (eV/Å). With
    ``method="saliency"`` each atom gets |∂f/∂r_k| (eV/Å²) at ``atoms``, with no baseline.

    Args:
        model: A SchNetPack potential built by :func:`mlipviz.potential.build_model`.
        atoms: Structure, Å.
        atom: Index of the atom whose force is projected.
        partner: Bond partner: project on (r_atom − r_partner)/|…| (positive = stretching the bond).
        direction: Or a fixed (3,) direction.
        method: "ig" or "saliency".
        baseline: For IG: a name of :data:`mlipviz.attribution.baselines.BASELINE_KINDS` or an ``ase.Atoms``
            with the same atoms (see :func:`mlipviz.attribution.integrated_gradients`).
        cutoff: The model's cutoff, Å (needed for ``"dissociated"``).
        n_steps, tol, max_steps: Quadrature as in :func:`mlipviz.attribution.integrated_gradients`; ``tol`` in eV/Å.
        fmax: Force threshold of a ``"minimum"`` baseline's relaxation, eV/Å.

    Returns:
        A :class:`ForceAttribution`.

    Raises:
        ValueError: for bad atoms, indices, direction, method, baseline or quadrature settings.
    """
    check_atoms(atoms)
    if method not in FORCE_METHODS:
        raise ValueError(f"method={method!r} is not one of {FORCE_METHODS}.")
    f = projected_force_function(model, atoms, atom, partner, direction)
    model = model.eval()
    device = next(model.parameters()).device
    x = torch.as_tensor(atoms.get_positions(), dtype=torch.float32, device=device)[None]
    value = float(f(x).detach().double()[0])
    fixed = None if direction is None else np.asarray(direction, float) / np.linalg.norm(direction)
    common = dict(atom=int(atom), partner=None if partner is None else int(partner), direction=fixed, method=method)
    if method == "saliency":
        from captum.attr import Saliency

        grad = Saliency(f).attribute(x.clone().requires_grad_(True), abs=True)[0].detach().cpu().double().numpy()
        return ForceAttribution(np.linalg.norm(grad, axis=1), None, value, None, float("nan"), None, 0, 0.0, True,
                                unit="eV/Å²", **common)
    if n_steps is not None:
        n_steps = check_positive_int(n_steps, "n_steps")
    tol = check_tolerance(tol)
    max_steps = check_positive_int(max_steps, "max_steps")
    base, _ = _resolve_baseline(model, atoms, baseline, cutoff, None, fmax)
    x0 = torch.as_tensor(base.get_positions(), dtype=torch.float32, device=device)[None]
    base_value = float(f(x0).detach().double()[0])
    what = f"Integrated Gradients of the force on atom {int(atom)}"
    coord, steps, gap, converged = adaptive_ig(f, x, x0, value - base_value, n_steps, tol, max_steps, what=what)
    return ForceAttribution(coord.sum(axis=1), coord, value, base_value, gap, base, steps, tol, converged,
                            unit="eV/Å", **common)


