"""A SchNetPack potential called once for a whole batch of systems, and the same as a TorchSim model.

:class:`SchNetPackPotential` builds SchNetPack's input dict for many systems at once (atoms concatenated, a per-atom
system index, pairs from a :class:`~mlipviz.md.neighbors.SkinNeighborList`) and calls the model once; forces come from
the model's own autograd ``Forces`` module. :func:`torchsim_model` wraps it as a TorchSim ``ModelInterface`` so
TorchSim's integrators drive it.

References:
    Schütt et al., J. Chem. Phys. 158, 144801 (2023), doi:10.1063/5.0138367 (SchNetPack 2.0).
    TorchSim, https://github.com/TorchSim/torch-sim (PyPI torch-sim-atomistic 0.6).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from schnetpack import properties as spk_properties

from .. import keys
from .neighbors import SkinNeighborList

__all__ = ["SchNetPackPotential", "as_potential", "sliced_state", "torchsim_model"]


class SchNetPackPotential(torch.nn.Module):
    """A SchNetPack potential evaluated on a whole batch of systems in one call.

    Args:
        model: A SchNetPack ``NeuralNetworkPotential`` with ``PairwiseDistances`` as input module and a
            ``Forces`` output (as built by :func:`mlipviz.potential.build_model`).
        cutoff: The model's cutoff, Å.
        skin: Neighbour-list skin, Å (see :class:`SkinNeighborList`).
        compile: Call the model through ``torch.compile(model, dynamic=False)`` (the first call compiles); the
            pairs are then padded to a fixed count (see :class:`SkinNeighborList`).
        pad_multiple, trim: See :class:`SkinNeighborList`.
        energy_key, force_key: Output keys of the model.

    Call it with positions (n_atoms, 3) Å, cell rows (n_systems, 3, 3) Å, pbc, atomic numbers, the sorted
    system index of each atom and the number of systems; it returns ``{"energy": (n_systems,) eV,
    "forces": (n_atoms, 3) eV/Å}`` in the dtype of ``positions``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        cutoff: float,
        skin: float = 1.0,
        compile: bool = False,
        energy_key: str = keys.ENERGY,
        force_key: str = keys.FORCES,
        pad_multiple: int = 16,
        trim: bool | None = None,
    ):
        super().__init__()
        self.model = model.eval()
        self.model_dtype = next(model.parameters()).dtype
        self.neighbors = SkinNeighborList(cutoff, skin, pad_multiple=pad_multiple if compile else 0, trim=trim)
        self.call = torch.compile(self.model, dynamic=False) if compile else self.model
        self.energy_key, self.force_key = energy_key, force_key
        self.elements: list[str] | None = None  # the elements the model knows, when its config says
        self._counts: tuple[torch.Tensor, torch.Tensor] | None = None

    def fork(self) -> SchNetPackPotential:
        """A potential with its own neighbour list that shares this one's model and (compiled) call."""
        twin = SchNetPackPotential.__new__(SchNetPackPotential)
        torch.nn.Module.__init__(twin)
        twin.model, twin.model_dtype, twin.call = self.model, self.model_dtype, self.call
        twin.energy_key, twin.force_key, twin._counts = self.energy_key, self.force_key, None
        twin.elements = self.elements
        nl = self.neighbors
        twin.neighbors = SkinNeighborList(
            nl.cutoff, nl.skin, pad_multiple=nl.pad_multiple, trim=nl.trim, trim_above=nl.trim_above
        )
        return twin

    def _n_atoms(self, system_idx: torch.Tensor, n_systems: int) -> torch.Tensor:
        if self._counts is None or self._counts[0] is not system_idx:
            self._counts = (system_idx, torch.bincount(system_idx, minlength=n_systems))
        return self._counts[1]

    def inputs(
        self,
        positions: torch.Tensor,
        cell_rows: torch.Tensor,
        pbc: torch.Tensor,
        atomic_numbers: torch.Tensor,
        system_idx: torch.Tensor,
        n_systems: int,
    ) -> dict[str, torch.Tensor]:
        """The SchNetPack input dict of the batch (neighbour list included)."""
        idx_i, idx_j, offsets = self.neighbors(positions, cell_rows, pbc, system_idx, n_systems)
        pbc_rows = pbc.expand(n_systems, 3) if pbc.ndim == 1 else pbc
        return {
            spk_properties.Z: atomic_numbers.long(),
            spk_properties.R: positions.detach().to(self.model_dtype),
            spk_properties.idx_m: system_idx,
            spk_properties.n_atoms: self._n_atoms(system_idx, n_systems),
            spk_properties.cell: cell_rows.to(self.model_dtype),
            spk_properties.pbc: pbc_rows,
            spk_properties.idx_i: idx_i,
            spk_properties.idx_j: idx_j,
            spk_properties.offsets: offsets.to(self.model_dtype),
        }

    def forward(
        self,
        positions: torch.Tensor,
        cell_rows: torch.Tensor,
        pbc: torch.Tensor,
        atomic_numbers: torch.Tensor,
        system_idx: torch.Tensor,
        n_systems: int,
    ) -> dict[str, torch.Tensor]:
        out = self.call(self.inputs(positions, cell_rows, pbc, atomic_numbers, system_idx, n_systems))
        return {
            "energy": out[self.energy_key].detach().reshape(n_systems).to(positions.dtype),
            "forces": out[self.force_key].detach().to(positions.dtype),
        }


@functools.cache
def _torchsim_model_class():
    from torch_sim.models.interface import ModelInterface

    class SchNetPackTorchSimModel(ModelInterface):
        """A :class:`SchNetPackPotential` as a TorchSim model (energies and forces, no stress)."""

        def __init__(self, potential: SchNetPackPotential, device: torch.device, dtype: torch.dtype):
            super().__init__()
            self.potential = potential
            self._device, self._dtype = torch.device(device), dtype
            self._compute_forces, self._compute_stress = True, False
            self._memory_scales_with = "n_atoms_x_density"

        def forward(self, state, **_kwargs) -> dict[str, torch.Tensor]:
            return self.potential(
                state.positions,
                state.row_vector_cell,
                state.pbc,
                state.atomic_numbers,
                state.system_idx,
                state.n_systems,
            )

    return SchNetPackTorchSimModel


def torchsim_model(
    potential: SchNetPackPotential, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float64
):
    """``potential`` as a TorchSim ``ModelInterface`` (needs ``torch_sim``)."""
    return _torchsim_model_class()(potential, device, dtype)


def as_potential(model, cutoff: float | None = None, skin: float = 1.0, compile: bool = False,
                 device: str | torch.device = "cpu") -> SchNetPackPotential:
    """A :class:`SchNetPackPotential` from a saved model directory, a SchNetPack model (with ``cutoff``, Å) or one
    already built (returned on ``device``). ``.elements`` holds the elements a saved model knows (else None)."""
    if isinstance(model, SchNetPackPotential):
        return model.to(device)
    elements = None
    if isinstance(model, (str, Path)):
        from ..potential import load_model

        model, config = load_model(model, device=device)
        cutoff, elements = config.cutoff, config.elements
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a saved model directory, a SchNetPack model or a SchNetPackPotential, "
                        f"got {type(model).__name__}.")
    if cutoff is None:
        raise ValueError("cutoff (Å) is required when model is a module; a saved model directory carries its own.")
    potential = SchNetPackPotential(model.to(device), cutoff=cutoff, skin=skin, compile=compile)
    potential.elements = elements
    return potential


def sliced_state(state, keep: list[int]):
    """The systems ``keep`` of a TorchSim state, thermostat chains included (TorchSim's slicing leaves those)."""
    n_before = state.n_systems
    new = state[keep]
    index = torch.as_tensor(keep, device=state.device)
    for value in vars(new).values():
        if hasattr(value, "__dataclass_fields__") and not isinstance(value, torch.Tensor):
            for name, v in vars(value).items():
                if name == "system_idx" and v is not None:
                    setattr(value, name, new.system_idx)
                elif isinstance(v, torch.Tensor) and v.ndim >= 1 and v.shape[0] == n_before:
                    setattr(value, name, v[index])
    return new
