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
from .model import ModelConfig, energy_offset_per_atom, load_model

__all__ = ["MLIPCalculator"]


class MLIPCalculator(SpkCalculator):
    """SchNetPack's ``SpkCalculator`` plus per-atom energies (ASE's ``energies``), for mlipviz models.

    Args:
        model: A saved model directory (see :func:`mlipviz.potential.load_model`) or a model object.
        config: The model's :class:`ModelConfig` (needed for the cutoff when ``model`` is an object).
        device: "auto" (CUDA when present), "cpu" or "cuda".
        skin: Verlet-list skin, Å: the neighbour list is rebuilt only after an atom moved more than
            skin/2 (SchNetPack's ``SkinNeighborList``); 0 rebuilds every call.

    The per-atom energies include the model's energy offset, so they sum to the total energy.
    """

    implemented_properties = ["energy", "forces", "energies"]

    def __init__(
        self,
        model: str | Path | torch.nn.Module,
        config: ModelConfig | None = None,
        device: str = "auto",
        skin: float = 0.0,
        **kwargs,
    ):
        dev = resolve_device(device)
        if isinstance(model, (str, Path)):
            model, config = load_model(model, device=dev)
        if config is None:
            raise ValueError("config is required when model is a module: the cutoff comes from it.")
        self.config = config
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

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        Calculator.calculate(self, atoms, properties, system_changes)
        inputs = self.converter(self.atoms)
        out = self.model(inputs)
        numbers = inputs[spk_properties.Z]
        energies = out[keys.ENERGIES].detach().double().reshape(-1) + energy_offset_per_atom(self.model, numbers)
        self.results = {
            "energy": float(out[keys.ENERGY].detach().cpu().item()),
            "forces": out[keys.FORCES].detach().cpu().double().numpy(),
            "energies": energies.cpu().numpy(),
        }
