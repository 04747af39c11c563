"""Saliency: how strongly the energy responds to moving each atom, |∂E/∂r_i| — the magnitude of the force.

For a potential the gradient of the energy with respect to an atom's position is minus the force on it, so
the saliency map of the energy is |F_i| in eV/Å: a local, first-order attribution with no baseline and no
completeness property. captum's ``Saliency`` returns |∂E/∂x| per Cartesian component; the Euclidean norm over
an atom's three components is |F_i|.

References:
    Simonyan, Vedaldi, Zisserman, arXiv:1312.6034 (2013) (saliency maps).
    Kokhlikyan et al., arXiv:2009.07896 (2020) (captum).
"""

from __future__ import annotations

import numpy as np
import torch
from ase import Atoms

from ..geometry import check_atoms
from .model_function import network_energy_function

__all__ = ["saliency"]


def saliency(model: torch.nn.Module, atoms: Atoms) -> np.ndarray:
    """Per-atom saliency |∂E/∂r_i| of the model energy, computed with captum's ``Saliency``.

    Args:
        model: A SchNetPack potential built by :func:`mlipviz.potential.build_model`.
        atoms: Structure, Å.

    Returns:
        (n_atoms,) eV/Å: the magnitude of the force on each atom.

    Raises:
        ValueError: for an empty structure, NaN positions or overlapping atoms.
    """
    from captum.attr import Saliency

    check_atoms(atoms)
    model = model.eval()
    device = next(model.parameters()).device
    f = network_energy_function(model, atoms)
    x = torch.tensor(atoms.get_positions()[None], dtype=torch.float32, device=device, requires_grad=True)
    grad = Saliency(f).attribute(x, abs=True)[0].detach().cpu().double().numpy()  # (n_atoms, 3) eV/Å
    return np.linalg.norm(grad, axis=1)
