"""Build, save and load SchNetPack potentials without pickles.

A saved model is a directory with two files:

* ``config.json`` — the architecture (:class:`ModelConfig`, with the elements the model knows), free-form
  metadata (training level, data provenance, split, metrics, versions) and the SHA-256 checksums of both
  files (see :mod:`mlipviz.potential.files`);
* ``model.pt`` — the ``state_dict`` only, which loads with ``torch.load(..., weights_only=True)``.

``torch.save(model)`` would write a pickle whose loading runs arbitrary code from the file, so mlipviz
never writes one, and reads one (a SchNetPack ``best_model``) only when told ``trust=True``.

References:
    Schütt, Unke, Gastegger, ICML 2021, arXiv:2102.03150 (PaiNN).
    Schütt et al., NeurIPS 2017, arXiv:1706.08566 (SchNet).
    Schütt et al., J. Chem. Phys. 158, 144801 (2023), doi:10.1063/5.0138367 (SchNetPack 2.0, SO3net).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import schnetpack as spk
import schnetpack.transform as trn
import torch

from .. import keys
from ..device import resolve_device
from .chemistry import normalise_elements
from .files import ChecksumError, check_state_dict, config_digest, file_digest, load_trusted_pickle, verify_checksums

__all__ = [
    "CONFIG_FILE",
    "MODEL_FILE",
    "ModelConfig",
    "build_model",
    "config_from_model",
    "energy_offset_per_atom",
    "load_model",
    "save_model",
]

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
REPRESENTATIONS = ("painn", "schnet", "so3net")


@dataclass
class ModelConfig:
    """Architecture of a SchNetPack potential, and the elements it knows.

    Attributes:
        representation: "painn", "schnet" or "so3net".
        n_atom_basis: Feature width per atom.
        n_interactions: Number of message-passing blocks.
        n_rbf: Number of Gaussian radial basis functions.
        cutoff: Radial cutoff, Å.
        lmax: Maximum angular momentum (SO3net only).
        elements: Chemical symbols the model was trained on, sorted by atomic number (training fills it in);
            None when unknown. :class:`~mlipviz.potential.MLIPCalculator` refuses structures with other elements.
        metadata: Free-form JSON-serialisable facts about the model (level, data provenance, split, metrics, ...).
    """

    representation: str = "painn"
    n_atom_basis: int = 64
    n_interactions: int = 3
    n_rbf: int = 20
    cutoff: float = 5.0
    lmax: int = 2
    elements: list[str] | None = None
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
        if self.elements is not None:
            self.elements = normalise_elements(self.elements, "elements")

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """Build from a dict, rejecting unknown keys by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown model-config key(s) {unknown}; known: {sorted(known)}.")
        return cls(**data)

    def describe(self) -> str:
        """A short description of the architecture, e.g. "painn (64 features, 3 interactions, cutoff 5 Å)"."""
        return (f"{self.representation} ({self.n_atom_basis} features, {self.n_interactions} interactions, "
                f"{self.n_rbf} radial functions, cutoff {self.cutoff:g} Å)")


def build_model(config: ModelConfig) -> spk.model.NeuralNetworkPotential:
    """A fresh (untrained) SchNetPack potential predicting energy (eV), per-atom energies and forces (eV/Å).

    The energy head adds back a per-atom energy offset (``AddOffsets``, kept in float64): training sets it
    to the training set's mean energy per atom and then refits it to the trained network (see
    :mod:`mlipviz.potential.bias`), so raw outputs are total energies on the scale of the reference method.
    """
    radial = spk.nn.GaussianRBF(n_rbf=config.n_rbf, cutoff=config.cutoff)
    cutoff_fn = spk.nn.CosineCutoff(config.cutoff)
    if config.representation == "painn":
        rep = spk.representation.PaiNN(config.n_atom_basis, config.n_interactions, radial, cutoff_fn)
    elif config.representation == "schnet":
        rep = spk.representation.SchNet(config.n_atom_basis, config.n_interactions, radial, cutoff_fn)
    else:
        rep = spk.representation.SO3net(config.n_atom_basis, config.n_interactions, config.lmax, radial, cutoff_fn)
    offsets = trn.AddOffsets(keys.ENERGY, add_mean=True, add_atomrefs=False)
    offsets.mean = torch.zeros(1, dtype=torch.float64)  # a float32 buffer would round −2000 eV to 0.1 meV
    return spk.model.NeuralNetworkPotential(
        representation=rep,
        input_modules=[spk.atomistic.PairwiseDistances()],
        output_modules=[
            spk.atomistic.Atomwise(n_in=config.n_atom_basis, output_key=keys.ENERGY, per_atom_output_key=keys.ENERGIES),
            spk.atomistic.Forces(energy_key=keys.ENERGY, force_key=keys.FORCES),
        ],
        postprocessors=[trn.CastTo64(), offsets],
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


def config_from_model(model: spk.model.NeuralNetworkPotential, metadata: dict | None = None) -> ModelConfig:
    """The :class:`ModelConfig` that describes an existing SchNetPack model (e.g. one read from a pickle).

    Raises:
        ValueError: for a representation other than PaiNN, SchNet or SO3net.
    """
    rep = model.representation
    name = type(rep).__name__.lower()
    if name not in REPRESENTATIONS:
        raise ValueError(f"The model's representation is {type(rep).__name__}; mlipviz knows {REPRESENTATIONS}.")
    n_interactions = getattr(rep, "n_interactions", None) or len(rep.interactions)
    return ModelConfig(
        representation=name,
        n_atom_basis=int(rep.n_atom_basis),
        n_interactions=int(n_interactions),
        n_rbf=int(rep.radial_basis.n_rbf),
        cutoff=float(rep.cutoff_fn.cutoff.reshape(-1)[0]),
        lmax=int(getattr(rep, "lmax", 2)),
        metadata=dict(metadata or {}),
    )


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def save_model(model: torch.nn.Module, config: ModelConfig, directory: str | Path) -> Path:
    """Write a weights-only ``model.pt`` and ``config.json`` (with both files' SHA-256) into ``directory``.

    The weights are written first and the config, which carries their digest, last: a save interrupted in
    between leaves a pair that :func:`load_model` refuses rather than one that loads wrongly.

    Returns:
        The directory.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    tmp = directory / (MODEL_FILE + ".tmp")
    torch.save(state, tmp)
    weights_digest = file_digest(tmp)
    tmp.replace(directory / MODEL_FILE)
    data = json.loads(json.dumps(asdict(config), default=str))  # exactly what the file will hold
    data[keys.MODEL_CHECKSUMS] = {"config": config_digest(data), MODEL_FILE: weights_digest}
    _write_atomically(directory / CONFIG_FILE, (json.dumps(data, indent=2) + "\n").encode())
    return directory


def _load_pickle(path: Path, dev: torch.device, trust: bool) -> tuple[spk.model.NeuralNetworkPotential, ModelConfig]:
    if not trust:
        raise ValueError(
            f"{path} is a single file, not an mlipviz model directory ({CONFIG_FILE} + {MODEL_FILE}). If it is a "
            f"SchNetPack model saved with torch.save(model), reading it runs code stored in the file: pass "
            f"trust=True only if you trust where it came from."
        )
    model = load_trusted_pickle(path)
    config = config_from_model(model, {keys.META_TRUSTED_PICKLE: path.name})
    return model.to(dev).eval(), config


def load_model(directory: str | Path, device: str | torch.device = "auto", *,
               trust: bool = False) -> tuple[spk.model.NeuralNetworkPotential, ModelConfig]:
    """Load a model saved by :func:`save_model`, checking its checksums, with ``torch.load(weights_only=True)``.

    Args:
        directory: Directory holding ``config.json`` and ``model.pt``; or, with ``trust=True``, a SchNetPack
            model file written by ``torch.save(model)`` (such as ``spktrain``'s ``best_model``).
        device: "auto" (CUDA when present), "cpu" or "cuda".
        trust: Accept what cannot be verified: a pickled SchNetPack model (reading one runs code from the file),
            or a model directory saved before checksums were recorded (a warning names it).

    Returns:
        ``(model, config)``; the model is in eval mode on ``device``.

    Raises:
        FileNotFoundError: naming the missing file.
        ValueError: naming the file, for a checksum mismatch (:class:`~mlipviz.potential.files.ChecksumError`),
            an untrusted pickle, or weights that do not fit the architecture in the config.
    """
    directory = Path(directory)
    dev = resolve_device(device)
    if directory.is_file():
        return _load_pickle(directory, dev, trust)
    config_path, weights_path = directory / CONFIG_FILE, directory / MODEL_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; a saved mlipviz model has {CONFIG_FILE} and {MODEL_FILE}.")
    try:
        data = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ChecksumError(f"{config_path} is not valid JSON ({err}); the file is damaged.") from err
    if not isinstance(data, dict):
        raise ValueError(f"{config_path} must hold a JSON object, got {type(data).__name__}.")
    if keys.MODEL_CHECKSUMS in data or not trust:
        verify_checksums(data, config_path, weights_path)
    else:
        warnings.warn(f"{config_path} records no checksums; loading it unverified because trust=True.", stacklevel=2)
    config = ModelConfig.from_dict({k: v for k, v in data.items() if k != keys.MODEL_CHECKSUMS})
    model = build_model(config)
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises several types for a damaged or foreign file
        raise ValueError(f"{weights_path} cannot be read as a weights-only state_dict: {err}") from err
    state = check_state_dict(state, model, str(weights_path), f"the {config.describe()} in {CONFIG_FILE}")
    saved_cutoff = state.get("representation.cutoff_fn.cutoff")
    if saved_cutoff is not None and abs(float(saved_cutoff.reshape(-1)[0]) - config.cutoff) > 1e-6:
        raise ValueError(f"{weights_path} was trained with a {float(saved_cutoff.reshape(-1)[0]):g} Å cutoff but "
                         f"{CONFIG_FILE} says {config.cutoff:g} Å.")
    model.load_state_dict(state)
    return model.to(dev).eval(), config
