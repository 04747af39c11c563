"""A SchNetPack potential as a plain function of positions (and of a per-atom mask), for captum.

captum rejects dict inputs and repeats ``additional_forward_args`` along dim 0, so the model is wrapped as
``f(positions[k, n_atoms, 3]) -> energy[k]`` with the k-copy batch built inside and the index tensors kept in a
closure. Every pair of atoms is a neighbour (the model's cosine cutoff switches far pairs off smoothly), so the
neighbour list never changes along an attribution path.

References:
    Kokhlikyan et al., arXiv:2009.07896 (2020) (captum).
    Schütt et al., J. Chem. Phys. 158, 144801 (2023), doi:10.1063/5.0138367 (SchNetPack 2.0).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from ase import Atoms
from schnetpack import properties

from .. import keys

__all__ = ["energy_function", "energy_offset", "masked_energy_function", "network_energy_function"]


def _energy_module(model: torch.nn.Module) -> torch.nn.Module:
    for m in model.output_modules:
        if getattr(m, "output_key", None) == keys.ENERGY:
            return m
    raise ValueError(f"model has no output module with output_key {keys.ENERGY!r}; it is not an mlipviz potential.")


def energy_offset(model: torch.nn.Module, atoms: Atoms) -> float:
    """The constant (eV) that the model's ``AddOffsets`` post-processor adds to the network energy of ``atoms``."""
    from ..potential.model import energy_offset_per_atom

    device = next(model.parameters()).device
    z = torch.as_tensor(atoms.get_atomic_numbers(), device=device)
    return float(energy_offset_per_atom(model, z).sum())


def network_energy_function(model: torch.nn.Module, atoms: Atoms, embedding_mask: bool = False):
    """The network energy (eV, **without** the constant offset) as a function of positions.

    Without the offset (a few thousand eV for water) the float32 arithmetic resolves energy differences to
    about 1e-7 eV instead of about 1e-4 eV, which a completeness check of 1 meV needs.

    Args:
        model: A SchNetPack potential built by :func:`mlipviz.potential.build_model`.
        atoms: The atoms (numbers fix the element of each of the ``n_atoms`` rows), Å.
        embedding_mask: Return ``f(positions, mask)`` whose ``mask[k, n_atoms]`` multiplies each atom's
            atom-type embedding (1: the trained embedding, 0: a zero vector).

    Returns:
        ``f(positions[k, n_atoms, 3]) -> energy[k]`` (or ``f(positions, mask)``), eV, differentiable.
    """
    device = next(model.parameters()).device
    n = len(atoms)
    z = torch.as_tensor(atoms.get_atomic_numbers(), device=device)
    ii, jj = np.where(~np.eye(n, dtype=bool))
    idx_i0 = torch.as_tensor(ii, device=device)
    idx_j0 = torch.as_tensor(jj, device=device)
    energy_module = _energy_module(model)
    embedding = getattr(model.representation, "embedding", None)
    if embedding_mask and not isinstance(embedding, torch.nn.Module):
        raise ValueError(f"{type(model.representation).__name__} has no atom-type embedding to mask.")

    def f(positions: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        k = positions.shape[0]
        shift = (torch.arange(k, device=device) * n).repeat_interleave(len(ii))
        inputs = {
            properties.Z: z.repeat(k),
            properties.R: positions.reshape(k * n, 3).float(),
            properties.idx_m: torch.arange(k, device=device).repeat_interleave(n),
            properties.n_atoms: torch.full((k,), n, device=device),
            properties.idx_i: idx_i0.repeat(k) + shift,
            properties.idx_j: idx_j0.repeat(k) + shift,
            properties.offsets: torch.zeros(k * len(ii), 3, device=device),
            properties.cell: torch.zeros(k, 3, 3, device=device),
            properties.pbc: torch.zeros(k, 3, dtype=torch.bool, device=device),
        }
        with contextlib.ExitStack() as stack:
            if mask is not None:
                scale = mask.reshape(k * n, 1).float()
                handle = embedding.register_forward_hook(lambda _m, _inp, out: out * scale)
                stack.callback(handle.remove)
            for m in model.input_modules:
                inputs = m(inputs)
            inputs = model.representation(inputs)
            inputs = energy_module(inputs)
        return inputs[keys.ENERGY]

    if embedding_mask:
        return f
    return lambda positions: f(positions)


def masked_energy_function(model: torch.nn.Module, atoms: Atoms):
    """``f(mask[k, n_atoms]) -> network energy[k]`` (eV) at the fixed positions of ``atoms``.

    ``mask`` scales each atom's atom-type embedding: 1 everywhere is the model, 0 everywhere replaces every
    embedding by a zero vector while the geometry stays.
    """
    f = network_energy_function(model, atoms, embedding_mask=True)
    device = next(model.parameters()).device
    x = torch.as_tensor(atoms.get_positions(), dtype=torch.float32, device=device)[None]

    def g(mask: torch.Tensor) -> torch.Tensor:
        return f(x.expand(mask.shape[0], -1, -1), mask)

    return g


def energy_function(model: torch.nn.Module, atoms: Atoms):
    """Wrap a SchNetPack potential as ``f(positions[k, n_atoms, 3]) -> energy[k]`` (eV, total energy), for captum.

    The total includes the model's energy offset (float32, so differences resolve to about 1e-4 eV; use
    :func:`network_energy_function` for differences).
    """
    f = network_energy_function(model, atoms)
    offset = energy_offset(model, atoms)
    return lambda positions: f(positions) + offset
