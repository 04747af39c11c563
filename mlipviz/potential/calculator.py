"""ASE calculator for an mlipviz/SchNetPack potential: energy, forces and per-atom energies."""

from __future__ import annotations

from pathlib import Path

import schnetpack.transform as trn
import torch
from ase.calculators.calculator import Calculator, all_changes
from schnetpack import properties as spk_properties
from schnetpack.interfaces import SpkCalculator

from .. import keys
from ..device import resolve_device
from .chemistry import check_chemistry, embedding_size
from .model import ModelConfig, energy_offset_per_atom, load_model

__all__ = ["MLIPCalculator"]


def _float64_offsets(model: torch.nn.Module) -> list[tuple[trn.AddOffsets, torch.Tensor, torch.Tensor]]:
    """The model's ``AddOffsets`` post-processors that follow a ``CastTo64``, with float64 copies of their offsets."""
    out, cast = [], False
    for module in getattr(model, "postprocessors", []):
        cast = cast or isinstance(module, trn.CastTo64)
        if cast and isinstance(module, trn.AddOffsets):
            out.append((module, module.mean.detach().double().clone(), module.atomref.detach().double().clone()))
    return out


class MLIPCalculator(SpkCalculator):
    """SchNetPack's ``SpkCalculator`` plus per-atom energies (ASE's ``energies``), for mlipviz models.

    Structures outside the model's chemistry are refused with a ``ValueError`` before the model sees them:
    an empty structure, NaN or infinite positions, elements missing from ``config.elements`` (the elements of
    the training data), or atomic numbers beyond the model's embedding.

    Args:
        model: A saved model directory (see :func:`mlipviz.potential.load_model`) or a model object.
        config: The model's :class:`ModelConfig` (needed for the cutoff and elements when ``model`` is an object).
        device: "auto" (CUDA when present), "cpu" or "cuda".
        skin: Verlet-list skin, Å: the neighbour list is rebuilt only after an atom moved more than
            skin/2 (SchNetPack's ``SkinNeighborList``); 0 rebuilds every call.
        trust: Passed to :func:`~mlipviz.potential.load_model` when ``model`` is a path.

    The per-atom energies include the model's energy offset, so they sum to the total energy.
    """

    implemented_properties = ["energy", "forces", "energies"]

    def __init__(
        self,
        model: str | Path | torch.nn.Module,
        config: ModelConfig | None = None,
        device: str = "auto",
        skin: float = 0.0,
        trust: bool = False,
        **kwargs,
    ):
        dev = resolve_device(device)
        if isinstance(model, (str, Path)):
            model, config = load_model(model, device=dev, trust=trust)
        if config is None:
            raise ValueError("config is required when model is a module: the cutoff comes from it.")
        self.config = config
        self.max_z = embedding_size(model)
        offsets = _float64_offsets(model)
        nl = trn.MatScipyNeighborList(cutoff=config.cutoff)
        if skin > 0:
            nl = trn.SkinNeighborList(nl, cutoff_skin=skin)
        super().__init__(
            model,
            neighbor_list=nl,
            energy_key=keys.ENERGY,
            force_key=keys.FORCES,
            energy_unit="eV",
            position_unit="Angstrom",
            device=dev,
            dtype=torch.float32,
            **kwargs,
        )
        # SpkCalculator casts every buffer to float32, which rounds an offset of -691.4675 eV/atom by up to
        # 3e-5 eV; put the float64 offsets back (they act after CastTo64, on float64 energies).
        for module, mean, atomref in offsets:
            module.mean, module.atomref = mean.to(dev), atomref.to(dev)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        check_chemistry(atoms if atoms is not None else self.atoms, self.config.elements, self.max_z)
        Calculator.calculate(self, atoms, properties, system_changes)
        inputs = self.converter(self.atoms)
        out = self.model(inputs)
        self.results = {
            "energy": float(out[keys.ENERGY].detach().cpu().item()),
            "forces": out[keys.FORCES].detach().cpu().double().numpy(),
        }
        if keys.ENERGIES in out:  # a model read from a trusted SchNetPack pickle may lack per-atom energies
            numbers = inputs[spk_properties.Z]
            energies = out[keys.ENERGIES].detach().double().reshape(-1) + energy_offset_per_atom(self.model, numbers)
            self.results["energies"] = energies.cpu().numpy()
