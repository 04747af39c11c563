"""Baselines for Integrated Gradients: where the straight path to a structure starts.

An attribution explains E(x) − E(baseline), so the baseline sets the question:

* **the model's minimum** (:func:`minimum_energy_baseline`): the structure relaxed with the potential itself.
  The attributions split the *strain energy* of ``x`` — which atoms raise the energy above the nearest
  equilibrium. The path stays near the training data of any potential trained on thermal samples.
* **the lowest-energy training structure** (:func:`training_minimum_baseline`): the same question, with a
  baseline the model has certainly seen.
* **a chosen reference structure** (any ``Atoms``): "what changes between this conformer and that one?".
* **the dissociated molecule** (:func:`dissociated_baseline`): every pair beyond the cutoff, so the
  attributions split the model's *atomisation energy*. No potential trained on molecules near equilibrium has
  seen it: the path is an extrapolation (see :mod:`mlipviz.attribution.distribution`).

In-distribution baselines are rotated and translated onto the structure (Kabsch 1976) before use: that changes
neither their energy nor any distance, and it keeps the straight path short.

References:
    Sundararajan, Taly, Yan, ICML 2017, arXiv:1703.01365 (baselines of Integrated Gradients).
    Sturmfels, Lundberg, Lee, Distill (2020), doi:10.23915/distill.00022 (the choice of baseline).
    Kabsch, Acta Cryst. A 32, 922 (1976), doi:10.1107/S0567739476001873 (optimal superposition).
"""

from __future__ import annotations

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from ..geometry import check_atoms, check_positive_int
from .model_function import energy_function

__all__ = [
    "BASELINE_KINDS",
    "EnergyFunctionCalculator",
    "align_to",
    "dissociated_baseline",
    "minimum_energy_baseline",
    "training_minimum_baseline",
    "training_structures",
]

#: Names :func:`mlipviz.attribution.integrated_gradients` accepts for ``baseline`` (besides an ``Atoms``).
BASELINE_KINDS = ("minimum", "training-minimum", "dissociated")


def check_cutoff(cutoff) -> float:
    """``cutoff`` as a float if it is a finite positive distance (Å), else a ValueError naming it."""
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float, np.floating, np.integer)):
        raise ValueError(f"cutoff must be a distance in Å (a number), got {cutoff!r}.")
    if not np.isfinite(cutoff) or cutoff <= 0:
        raise ValueError(f"cutoff must be a finite positive distance in Å, got {cutoff!r}.")
    return float(cutoff)


def dissociated_baseline(atoms: Atoms, cutoff: float, margin: float = 0.5) -> Atoms:
    """``atoms`` scaled about its centroid until the closest pair is ``cutoff + margin`` apart.

    Args:
        atoms: Structure, Å.
        cutoff: The model's cutoff, Å (finite, positive).
        margin: Extra distance beyond the cutoff, Å (finite, >= 0).

    Returns:
        The scaled copy, Å. A single atom is returned unchanged.
    """
    check_atoms(atoms)
    cutoff = check_cutoff(cutoff)
    if not (np.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a finite distance >= 0 Å, got {margin!r}.")
    pos = atoms.get_positions()
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    d[np.diag_indices_from(d)] = np.inf
    dmin = d.min()
    base = atoms.copy()
    base.calc = None
    if np.isfinite(dmin):
        c = pos.mean(axis=0)
        base.positions = c + (pos - c) * (cutoff + margin) / dmin
    return base


def align_to(mobile: Atoms, target: Atoms) -> Atoms:
    """A copy of ``mobile`` rotated and translated to best overlay ``target`` atom by atom (Kabsch), Å.

    Distances, and so the energy, are unchanged; no reflection is applied.
    """
    if len(mobile) != len(target):
        raise ValueError(f"cannot align {len(mobile)} atoms onto {len(target)}.")
    p, q = mobile.get_positions(), target.get_positions()
    pc, qc = p.mean(axis=0), q.mean(axis=0)
    h = (p - pc).T @ (q - qc)
    u, _, vt = np.linalg.svd(h)
    sign = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    rot = vt.T @ np.diag([1.0, 1.0, sign]) @ u.T
    out = mobile.copy()
    out.calc = None
    out.positions = (p - pc) @ rot.T + qc
    return out


class EnergyFunctionCalculator(Calculator):
    """ASE calculator on :func:`mlipviz.attribution.energy_function`: the exact function that IG integrates.

    Energy in eV, forces −∂E/∂r in eV/Å by autograd; every pair of atoms is a neighbour.

    Args:
        model: A SchNetPack potential built by :func:`mlipviz.potential.build_model`.
    """

    implemented_properties = ["energy", "forces"]

    def __init__(self, model: torch.nn.Module, **kwargs):
        super().__init__(**kwargs)
        self.model = model

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        f = energy_function(self.model, self.atoms)
        device = next(self.model.parameters()).device
        x = torch.tensor(self.atoms.get_positions()[None], dtype=torch.float32, device=device, requires_grad=True)
        e = f(x)
        (grad,) = torch.autograd.grad(e.sum(), x)
        self.results = {"energy": float(e.detach()[0]), "forces": -grad[0].detach().cpu().double().numpy()}


def minimum_energy_baseline(atoms: Atoms, calculator: Calculator, fmax: float = 1e-3, steps: int = 1000) -> Atoms:
    """The nearest minimum of the potential: ``atoms`` relaxed with ASE's BFGS, then aligned onto ``atoms``.

    Args:
        atoms: Structure, Å.
        calculator: The potential as an ASE calculator (e.g. :class:`mlipviz.potential.MLIPCalculator` or
            :class:`EnergyFunctionCalculator`).
        fmax: Convergence threshold on the largest atomic force, eV/Å.
        steps: Most BFGS steps.

    Returns:
        The relaxed structure (no calculator attached), Å.

    Raises:
        RuntimeError: when BFGS does not reach ``fmax`` within ``steps``.
    """
    from ase.optimize import BFGS

    check_atoms(atoms)
    steps = check_positive_int(steps, "steps")
    if not (np.isfinite(fmax) and fmax > 0):
        raise ValueError(f"fmax must be a finite positive force in eV/Å, got {fmax!r}.")
    work = atoms.copy()
    work.calc = calculator
    opt = BFGS(work, logfile=None)
    if not opt.run(fmax=fmax, steps=steps):
        f = float(np.linalg.norm(work.get_forces(), axis=1).max())
        raise RuntimeError(f"relaxation did not reach fmax={fmax} eV/Å in {steps} steps (largest force {f:.2e} eV/Å).")
    return align_to(work, atoms)


def training_minimum_baseline(atoms: Atoms, training: list[Atoms], model: torch.nn.Module) -> Atoms:
    """The training structure of lowest model energy among those with the same atoms, aligned onto ``atoms``.

    Args:
        atoms: Structure, Å.
        training: Training structures, Å.
        model: The potential; its energy ranks the candidates (eV).

    Returns:
        The chosen structure (no calculator attached), Å.

    Raises:
        ValueError: when no training structure holds the same atoms in the same order.
    """
    check_atoms(atoms)
    z = atoms.get_atomic_numbers()
    candidates = [a for a in training if len(a) == len(z) and np.array_equal(a.get_atomic_numbers(), z)]
    if not candidates:
        raise ValueError(f"no training structure holds the atoms of {atoms.get_chemical_formula()} in the same order.")
    f = energy_function(model, atoms)
    device = next(model.parameters()).device
    with torch.no_grad():
        x = torch.as_tensor(np.stack([a.get_positions() for a in candidates]), dtype=torch.float32, device=device)
        e = torch.cat([f(chunk) for chunk in torch.split(x, 256)])
    return align_to(candidates[int(torch.argmin(e))], atoms)


def training_structures(images: list[Atoms], config) -> list[Atoms]:
    """The structures a model was trained on: ``images`` at the indices in ``config.metadata["split"]["train"]``.

    Args:
        images: The dataset the model was trained on (as passed to :func:`mlipviz.potential.train_potential`).
        config: The model's :class:`mlipviz.potential.ModelConfig`.

    Raises:
        ValueError: when the config records no training split, or an index is outside ``images``.
    """
    split = (getattr(config, "metadata", None) or {}).get("split") or {}
    train = split.get("train")
    if train is None:
        raise ValueError("config.metadata has no 'split' with 'train' indices; pass the training structures directly.")
    bad = [i for i in train if not 0 <= int(i) < len(images)]
    if bad:
        raise ValueError(f"training indices {bad[:5]} are outside images (length {len(images)}): not this dataset?")
    return [images[int(i)] for i in train]
