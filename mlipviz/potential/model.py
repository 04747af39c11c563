"""Build, save and load SchNetPack potentials without pickles.

A saved model is a directory with two files:

* ``config.json`` — the architecture (:class:`ModelConfig`) plus free-form metadata (training level,
  split, metrics, versions);
* ``model.pt`` — the ``state_dict`` only, which loads with ``torch.load(..., weights_only=True)``.

``torch.save(model)`` would write a pickle whose loading runs arbitrary code from the file, so mlipviz
never writes or reads one.

References:
    Schütt, Unke, Gastegger, ICML 2021, arXiv:2102.03150 (PaiNN).
    Schütt et al., NeurIPS 2017, arXiv:1706.08566 (SchNet).
    Schütt et al., J. Chem. Phys. 158, 144801 (2023), doi:10.1063/5.0138367 (SchNetPack 2.0, SO3net).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import schnetpack as spk
import schnetpack.transform as trn
import torch

from .. import keys
from ..device import resolve_device

__all__ = ["ModelConfig", "build_model", "save_model", "load_model", "energy_offset_per_atom", "MODEL_FILE", "CONFIG_FILE"]

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
REPRESENTATIONS = ("painn", "schnet", "so3net")


@dataclass
class ModelConfig:
    """Architecture of a SchNetPack potential.

    Attributes:
        representation: "painn", "schnet" or "so3net".
        n_atom_basis: Feature width per atom.
        n_interactions: Number of message-passing blocks.
        n_rbf: Number of Gaussian radial basis functions.
        cutoff: Radial cutoff, Å.
        lmax: Maximum angular momentum (SO3net only).
        metadata: Free-form JSON-serialisable facts about the model (level, split, metrics, ...).
    """

    representation: str = "painn"
    n_atom_basis: int = 64
    n_interactions: int = 3
    n_rbf: int = 20
    cutoff: float = 5.0
    lmax: int = 2
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.representation not in REPRESENTATIONS:
            raise ValueError(f"representation={self.representation!r} is not one of {REPRESENTATIONS}.")
        for name in ("n_atom_basis", "n_interactions", "n_rbf"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if not self.cutoff > 0:
            raise ValueError(f"cutoff must be a positive distance in Å, got {self.cutoff!r}.")

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """Build from a dict, rejecting unknown keys by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown model-config key(s) {unknown}; known: {sorted(known)}.")
        return cls(**data)


def build_model(config: ModelConfig) -> spk.model.NeuralNetworkPotential:
    """A fresh (untrained) SchNetPack potential predicting energy (eV), per-atom energies and forces (eV/Å).

    The energy head adds back the training set's mean energy per atom (``AddOffsets``), so raw outputs are
    total energies on the scale of the reference method.
    """
    radial = spk.nn.GaussianRBF(n_rbf=config.n_rbf, cutoff=config.cutoff)
    cutoff_fn = spk.nn.CosineCutoff(config.cutoff)
    if config.representation == "painn":
        rep = spk.representation.PaiNN(config.n_atom_basis, config.n_interactions, radial, cutoff_fn)
    elif config.representation == "schnet":
        rep = spk.representation.SchNet(config.n_atom_basis, config.n_interactions, radial, cutoff_fn)
    else:
        rep = spk.representation.SO3net(config.n_atom_basis, config.n_interactions, config.lmax, radial, cutoff_fn)
    return spk.model.NeuralNetworkPotential(
        representation=rep,
        input_modules=[spk.atomistic.PairwiseDistances()],
        output_modules=[
            spk.atomistic.Atomwise(n_in=config.n_atom_basis, output_key=keys.ENERGY, per_atom_output_key=keys.ENERGIES),
            spk.atomistic.Forces(energy_key=keys.ENERGY, force_key=keys.FORCES),
        ],
        postprocessors=[trn.CastTo64(), trn.AddOffsets(keys.ENERGY, add_mean=True, add_atomrefs=False)],
    )


def energy_offset_per_atom(model: torch.nn.Module, numbers: torch.Tensor) -> torch.Tensor:
    """Energy (eV) that the model's ``AddOffsets`` post-processor adds for each atom, shape (n_atoms,).

    The per-atom energies of the network do not include it; adding it makes them sum to the total energy.
    """
    offset = torch.zeros(len(numbers), dtype=torch.float64, device=numbers.device)
    for module in model.modules():
        if isinstance(module, trn.AddOffsets):
            if module.add_mean:
                offset = offset + module.mean.double().to(numbers.device).reshape(-1)[0]
            if module.add_atomrefs:
                offset = offset + module.atomref.double().to(numbers.device)[numbers]
    return offset


def save_model(model: torch.nn.Module, config: ModelConfig, directory: str | Path) -> Path:
    """Write ``config.json`` and a weights-only ``model.pt`` into ``directory``.

    Returns:
        The directory.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    tmp = directory / (MODEL_FILE + ".tmp")
    torch.save(state, tmp)
    tmp.replace(directory / MODEL_FILE)
    (directory / CONFIG_FILE).write_text(json.dumps(asdict(config), indent=2, default=str) + "\n")
    return directory


def load_model(directory: str | Path, device: str | torch.device = "auto") -> tuple[spk.model.NeuralNetworkPotential, ModelConfig]:
    """Load a model saved by :func:`save_model`, with ``torch.load(weights_only=True)``.

    Args:
        directory: Directory holding ``config.json`` and ``model.pt``.
        device: "auto" (CUDA when present), "cpu" or "cuda".

    Returns:
        ``(model, config)``; the model is in eval mode on ``device``.

    Raises:
        FileNotFoundError: naming the missing file.
        ValueError: if the config or the weights do not match an mlipviz model.
    """
    directory = Path(directory)
    for name in (CONFIG_FILE, MODEL_FILE):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory / name} is missing; a saved mlipviz model has {CONFIG_FILE} and {MODEL_FILE}.")
    config = ModelConfig.from_dict(json.loads((directory / CONFIG_FILE).read_text()))
    dev = resolve_device(device)
    model = build_model(config)
    state = torch.load(directory / MODEL_FILE, map_location="cpu", weights_only=True)
    expected = model.state_dict()
    for name, value in state.items():
        # Statistics set from the data module (e.g. AddOffsets.mean) may be 0-d where a fresh module has (1,).
        if name in expected and value.shape != expected[name].shape and value.numel() == expected[name].numel():
            state[name] = value.reshape(expected[name].shape)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"Weights in {directory / MODEL_FILE} do not fit the architecture in {CONFIG_FILE}: {err}") from err
    return model.to(dev).eval(), config
