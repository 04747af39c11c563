"""The exact Hessian of a SchNetPack potential by automatic differentiation, and its harmonic frequencies.

SchNetPack models compute forces as F = −∂E/∂R with torch autograd. Asking the force module to keep its graph
(``create_graph``) makes F itself differentiable, so each row of the Hessian H = −∂F/∂R is one more backward
pass: 3N passes for N atoms, exact to floating-point rounding (no finite-difference step to choose).

References:
    Schütt et al., J. Chem. Phys. 158, 144801 (2023), doi:10.1063/5.0138367 (SchNetPack 2.0).
    Paszke et al., NeurIPS 2019, arXiv:1912.01703 (PyTorch autograd).
    Wilson, Decius, Cross, Molecular Vibrations (Dover, 1980) (normal-mode analysis).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import schnetpack as spk
import schnetpack.transform as trn
import torch
from ase import Atoms
from schnetpack import properties as spk_properties
from schnetpack.interfaces import AtomsConverter

from .. import keys
from ..device import resolve_device
from ..geometry import check_atoms
from ..reference.sampling.normal_modes import NormalModes, harmonic_analysis
from .calculator import MLIPCalculator
from .model import ModelConfig, load_model

__all__ = ["model_hessian", "model_normal_modes"]


def _model_and_cutoff(model_or_calculator, config: ModelConfig | None) -> tuple[torch.nn.Module, float]:
    if isinstance(model_or_calculator, (str, Path)):
        model, config = load_model(model_or_calculator, device="cpu")
        return model, config.cutoff
    if isinstance(model_or_calculator, MLIPCalculator):
        return model_or_calculator.model, model_or_calculator.config.cutoff
    if isinstance(model_or_calculator, torch.nn.Module):
        if config is None:
            raise ValueError("config is required when model_or_calculator is a module: the cutoff comes from it.")
        return model_or_calculator, config.cutoff
    raise ValueError("model_or_calculator must be an MLIPCalculator, a SchNetPack model (with config=) or a saved "
                     f"model directory, got {type(model_or_calculator).__name__}.")


def model_hessian(model_or_calculator, atoms: Atoms, config: ModelConfig | None = None, device: str = "auto",
                  dtype: torch.dtype = torch.float64) -> np.ndarray:
    """Cartesian Hessian ∂²E/∂R∂R of a SchNetPack potential at ``atoms``, (3N, 3N) eV/Å², by autograd.

    The model is copied (the caller's is left as it is) and run in ``dtype``; float64 keeps the Hessian
    symmetric to ~1e-12 eV/Å², float32 to ~1e-5 (and within ~1e-3 of float64).

    Args:
        model_or_calculator: An :class:`MLIPCalculator`, a SchNetPack model (then ``config``), or a saved model
            directory.
        atoms: Structure, positions Å.
        config: The model's :class:`ModelConfig` (for the cutoff) when a bare model is given.
        device: "auto" (CUDA when present), "cpu" or "cuda".
        dtype: torch.float64 or torch.float32.

    Returns:
        The Hessian, row and column index 3·atom + xyz, eV/Å² (not symmetrised).

    Raises:
        ValueError: for a bad structure or model argument, or a model with no force output.
    """
    check_atoms(atoms)
    if dtype not in (torch.float64, torch.float32):
        raise ValueError(f"dtype must be torch.float64 or torch.float32, got {dtype!r}.")
    model, cutoff = _model_and_cutoff(model_or_calculator, config)
    return _hessian(model, cutoff, atoms, resolve_device(device), dtype)


def _hessian(model: torch.nn.Module, cutoff: float, atoms: Atoms, dev, dtype) -> np.ndarray:
    model = copy.deepcopy(model).to(device=dev, dtype=dtype).eval()
    force_modules = [m for m in model.modules() if isinstance(m, spk.atomistic.Forces)]
    if not force_modules:
        raise ValueError("The model has no schnetpack Forces output, so it has no autograd Hessian.")
    for m in force_modules:
        m.train()  # only the force module: its create_graph follows self.training
    converter = AtomsConverter(trn.MatScipyNeighborList(cutoff=cutoff), device=dev, dtype=dtype)
    inputs = converter(atoms)
    positions = inputs[spk_properties.R].requires_grad_()  # before the call: post-processing may recast inputs
    out = model(inputs)
    forces = out[keys.FORCES].reshape(-1)
    n3 = forces.numel()
    rows = []
    for k in range(n3):
        (g,) = torch.autograd.grad(forces[k], positions, retain_graph=k < n3 - 1, allow_unused=True)
        rows.append(torch.zeros(n3, dtype=dtype, device=dev) if g is None else -g.reshape(-1))
    return torch.stack(rows).detach().cpu().double().numpy()


def model_normal_modes(model_or_calculator, atoms: Atoms, config: ModelConfig | None = None, optimize: bool = True,
                       fmax: float = 1e-3, steps: int = 500, device: str = "auto") -> NormalModes:
    """Harmonic normal modes of a potential at its own minimum near ``atoms``.

    Args:
        model_or_calculator: As for :func:`model_hessian`.
        atoms: Starting structure, Å (not modified).
        config: The model's :class:`ModelConfig` when a bare model is given.
        optimize: Relax to the potential's nearest minimum first (ASE BFGS on :class:`MLIPCalculator`).
        fmax: Force convergence of the relaxation, eV/Å.
        steps: Most BFGS steps.
        device: "auto", "cpu" or "cuda".

    Returns:
        :class:`mlipviz.reference.NormalModes` (``.frequencies_cm`` in cm⁻¹, ``.hessian`` in eV/Å²).

    Raises:
        ValueError: when the relaxation does not converge, or the structure is not a minimum of the model.
    """
    from ase.optimize import BFGS

    check_atoms(atoms)
    model, cutoff = _model_and_cutoff(model_or_calculator, config)
    work = atoms.copy()
    if optimize:
        if isinstance(model_or_calculator, MLIPCalculator):
            work.calc = model_or_calculator
        else:  # SpkCalculator moves the module it is given; give it a copy
            work.calc = MLIPCalculator(copy.deepcopy(model), ModelConfig(cutoff=cutoff), device=device)
        if not BFGS(work, logfile=None).run(fmax=fmax, steps=steps):
            fnow = np.abs(work.get_forces()).max()
            raise ValueError(f"The relaxation on the model did not reach fmax={fmax} eV/Å in {steps} steps "
                             f"(largest force {fnow:.2e} eV/Å).")
        work.calc = None
    return harmonic_analysis(work, _hessian(model, cutoff, work, resolve_device(device), torch.float64))
