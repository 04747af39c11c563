"""Deep ensembles of SchNetPack potentials: members that can be averaged, their prediction and its calibration.

K members share one architecture, one set of elements, one training level and one train/validation/test split;
they differ only in their random seed (initial weights and order of the training data). Their mean is the
prediction, and the standard deviation over members (``ddof=1``) the raw uncertainty. That spread is
proportional to the error at best, so one scale factor per quantity (energy; force components) is fitted by
maximum likelihood on the shared validation split (:func:`mlipviz.potential.calibration.fit_scale`), and the
calibrated uncertainty is ``scale · spread``.

The scale factors and the calibration report are in :mod:`mlipviz.potential.ensemble_calibration`, training in
:mod:`mlipviz.potential.ensemble_train`, saving and loading in :mod:`mlipviz.potential.ensemble_files`, the ASE
calculator in :mod:`mlipviz.potential.ensemble_calculator`.

References:
    Lakshminarayanan, Pritzel, Blundell, NeurIPS 2017, arXiv:1612.01474 (deep ensembles).
    Peterson, Christensen, Khorshidi, Phys. Chem. Chem. Phys. 19, 10978 (2017), doi:10.1039/C7CP00375G
    (ensembles of neural-network potentials as an uncertainty).
    Tan et al., npj Comput. Mater. 9, 225 (2023), doi:10.1038/s41524-023-01180-8 (UQ for MLIPs, scale by NLL).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import schnetpack.transform as trn
import torch
from ase import Atoms
from schnetpack import properties as spk_properties
from schnetpack.interfaces import AtomsConverter
from tqdm.auto import tqdm

from .. import keys
from ..device import default_threads, resolve_device, torch_threads
from ..reference.levels import get_level
from ..structure_io import load_images
from .chemistry import check_chemistry, embedding_size
from .ensemble_calibration import MIN_SPREAD, QUANTITIES, calibration_summary, check_calibration
from .model import ModelConfig, energy_offset_per_atom, load_model

__all__ = [
    "ARCHITECTURE",
    "MIN_SPREAD",
    "QUANTITIES",
    "Ensemble",
    "EnsemblePrediction",
    "calibration_summary",
    "check_calibration",
    "check_members",
    "evaluate_members",
]

#: The architecture fields every member must share.
ARCHITECTURE = ("representation", "n_atom_basis", "n_interactions", "n_rbf", "cutoff", "lmax")
#: Structures per model call in :meth:`Ensemble.predict` (fewer when they hold many atoms).
_BATCH_STRUCTURES, _BATCH_ATOMS = 64, 4096


def member_label(k: int, where=None) -> str:
    """How errors name member ``k``: "member 2", or "member 2 (member_2)" with its directory."""
    return f"member {k}" + (f" ({where})" if where is not None else "")


def check_members(models: Sequence[torch.nn.Module], configs: Sequence[ModelConfig], names=None) -> None:
    """Refuse an ensemble whose members cannot be averaged.

    Raises:
        ValueError: for fewer than 2 members, models and configs that do not pair up, or a member that differs
            from member 0 in architecture (:data:`ARCHITECTURE`), elements or training level; the message names
            the member and the field.
    """
    names = list(names) if names is not None else [None] * len(models)
    if len(models) != len(configs):
        raise ValueError(f"{len(models)} models but {len(configs)} configs; give one config per member.")
    if len(models) < 2:
        raise ValueError(f"An ensemble needs at least 2 members, got {len(models)}: a single model has no spread.")
    for k, (model, config) in enumerate(zip(models, configs)):
        if not isinstance(model, torch.nn.Module) or not isinstance(config, ModelConfig):
            raise ValueError(f"{member_label(k, names[k])}: expected a torch module and a ModelConfig, got "
                             f"{type(model).__name__} and {type(config).__name__}.")
        if not any(getattr(m, "per_atom_output_key", None) == keys.ENERGIES for m in model.modules()):
            raise ValueError(f"{member_label(k, names[k])} does not predict per-atom energies ({keys.ENERGIES!r}).")
    first = configs[0]
    for k, config in enumerate(configs[1:], start=1):
        fields = [(f, getattr(first, f), getattr(config, f)) for f in ARCHITECTURE]
        fields += [("elements", first.elements, config.elements),
                   (keys.META_LEVEL, first.metadata.get(keys.META_LEVEL), config.metadata.get(keys.META_LEVEL))]
        for name, ref, value in fields:
            if value != ref:
                raise ValueError(f"{member_label(k, names[k])} has {name}={value!r} but {member_label(0, names[0])} "
                                 f"has {name}={ref!r}; ensemble members must share architecture, elements and "
                                 f"training level.")


@dataclass
class EnsemblePrediction:
    """Ensemble predictions for ``n_struct`` structures; per-structure lists hold one array per structure.

    Attributes:
        member_energy: (K, n_struct) total energies of each member, eV.
        energy: (n_struct,) mean energy, eV.
        energy_std_raw: (n_struct,) standard deviation over members (ddof=1), eV.
        energy_std: (n_struct,) calibrated energy uncertainty, eV.
        member_forces: per structure (K, n_atoms, 3) forces of each member, eV/Å.
        forces: per structure (n_atoms, 3) mean forces, eV/Å.
        forces_std_raw: per structure (n_atoms, 3) spread of each component, eV/Å.
        forces_std: per structure (n_atoms, 3) calibrated uncertainty of each component, eV/Å.
        atom_uncertainty: per structure (n_atoms,) RMS over an atom's 3 calibrated component uncertainties, eV/Å.
        energies: per structure (n_atoms,) mean per-atom energies (offsets included; they sum to ``energy``), eV.
        energies_std: per structure (n_atoms,) per-atom energy spread times the energy scale, eV.
        calibration: The scales applied, ``{"energy": s_E, "forces": s_F}``.
    """

    member_energy: np.ndarray
    energy: np.ndarray
    energy_std_raw: np.ndarray
    energy_std: np.ndarray
    member_forces: list[np.ndarray]
    forces: list[np.ndarray]
    forces_std_raw: list[np.ndarray]
    forces_std: list[np.ndarray]
    atom_uncertainty: list[np.ndarray]
    energies: list[np.ndarray]
    energies_std: list[np.ndarray]
    calibration: dict[str, float]


def evaluate_members(models: Sequence[torch.nn.Module], inputs: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run every member once on one SchNetPack input batch (one or several structures, neighbour list built).

    Args:
        models: The members, on the device of ``inputs``.
        inputs: A batch from SchNetPack's ``AtomsConverter`` (not modified).

    Returns:
        Energies (K, n_struct) eV, forces (K, n_atoms, 3) eV/Å and per-atom energies (K, n_atoms) eV, the
        latter including each member's energy offset so that they sum to its energy; all float64.
    """
    numbers = inputs[spk_properties.Z]
    energy, forces, energies = [], [], []
    with torch.enable_grad():
        for model in models:
            batch = dict(inputs)  # the model adds its intermediate results to the dict it is given
            batch[spk_properties.R] = inputs[spk_properties.R].detach().clone()
            out = model(batch)
            energy.append(out[keys.ENERGY].detach().double().reshape(-1).cpu().numpy())
            forces.append(out[keys.FORCES].detach().double().cpu().numpy())
            per_atom = out[keys.ENERGIES].detach().double().reshape(-1) + energy_offset_per_atom(model, numbers)
            energies.append(per_atom.cpu().numpy())
    return np.stack(energy), np.stack(forces), np.stack(energies)


def _spread(values: np.ndarray) -> np.ndarray:
    return np.std(values, axis=0, ddof=1)


@dataclass
class Ensemble:
    """A deep ensemble of SchNetPack potentials (see the module docstring).

    Attributes:
        models: The K ≥ 2 member networks (eval mode).
        configs: Their :class:`ModelConfig`, one per member.
        calibration: ``{"energy": s_E, "forces": s_F}``, dimensionless scales of the spread; 1.0 = uncalibrated.
        directory: Where the ensemble was saved or loaded from, if anywhere.
        level: The members' training level, e.g. "CCSD(T)/cc-pVDZ" (None when not recorded).
        split: The shared ``{"train", "val", "test"}`` indices into the training data, if known.
        metadata: Free-form JSON-serialisable facts (calibration report, seeds).
        histories: Per member, the per-epoch training history (may be empty).

    Raises:
        ValueError: on construction, for members that cannot be averaged (see :func:`check_members`), a bad
            calibration, or a ``level`` other than the members' own.
    """

    models: list[torch.nn.Module] = field(repr=False)
    configs: list[ModelConfig] = field(repr=False)
    calibration: dict[str, float] | None = None
    directory: Path | None = None
    level: str | None = None
    split: dict | None = field(default=None, repr=False)
    metadata: dict = field(default_factory=dict, repr=False)
    histories: list = field(default_factory=list, repr=False)

    def __post_init__(self):
        self.models, self.configs = list(self.models), list(self.configs)
        check_members(self.models, self.configs)
        self.calibration = check_calibration(self.calibration)
        recorded = self.configs[0].metadata.get(keys.META_LEVEL)
        if self.level is None:
            self.level = recorded
        elif recorded is not None and get_level(self.level).name != recorded:
            raise ValueError(f"level={self.level!r} but the members were trained on {recorded!r}.")
        elif recorded is None:
            self.level = get_level(self.level).name

    @property
    def n_members(self) -> int:
        """Number of members K."""
        return len(self.models)

    @property
    def elements(self) -> list[str] | None:
        """The chemical symbols the members know (None when not recorded)."""
        return self.configs[0].elements

    @property
    def max_z(self) -> int | None:
        """Atomic numbers below this fit every member's embedding (None when unknown)."""
        sizes = [s for s in (embedding_size(m) for m in self.models) if s is not None]
        return min(sizes) if sizes else None

    @classmethod
    def from_models(cls, models_or_dirs: Sequence, configs: Sequence | None = None, calibration: Mapping | None = None,
                    device: str = "auto", trust: bool = False) -> Ensemble:
        """Build an ensemble from existing models: modules (with their configs) or saved model directories.

        Args:
            models_or_dirs: Per member, a model module or a :func:`save_model` directory.
            configs: Per member, the :class:`ModelConfig` of a module (None for a directory); may be omitted
                when every member is a directory.
            calibration: ``{"energy": s_E, "forces": s_F}``; default the calibration the members record (saved
                from one ensemble), otherwise 1.0 (uncalibrated).
            device: Where directories are loaded ("auto", "cpu", "cuda").
            trust: Passed to :func:`load_model`.

        Raises:
            ValueError: as :func:`check_members`, naming the member and the field; for a module without config.
        """
        items = list(models_or_dirs)
        configs = list(configs) if configs is not None else [None] * len(items)
        if len(configs) != len(items):
            raise ValueError(f"configs has {len(configs)} entries for {len(items)} models; give one per member.")
        models, cfgs = [], []
        for k, (item, config) in enumerate(zip(items, configs)):
            if isinstance(item, (str, Path)):
                if config is not None:
                    raise ValueError(f"configs[{k}] is given but member {k} is a directory, which has its own config.")
                item, config = load_model(item, device=device, trust=trust)
            elif config is None:
                raise ValueError(f"configs[{k}] is None but member {k} is a module: its config is needed.")
            models.append(item)
            cfgs.append(config)
        if calibration is None:
            recorded = [c.metadata.get(keys.ENSEMBLE_CALIBRATION) for c in cfgs]
            calibration = recorded[0] if all(r is not None and r == recorded[0] for r in recorded) else None
        splits = [c.metadata.get(keys.META_SPLIT) for c in cfgs]
        split = splits[0] if all(s is not None and s == splits[0] for s in splits) else None
        return cls(models, cfgs, calibration=calibration, split=split)

    def predict(self, images: Atoms | Sequence[Atoms] | str | Path, device: str = "auto", calibrated: bool = True,
                progress: bool = True) -> EnsemblePrediction:
        """Every member's energy, forces and per-atom energies, with their mean and calibrated spread.

        Structures are batched (each member runs once per batch), after every structure has passed the
        chemistry check (:func:`mlipviz.potential.chemistry.check_chemistry`).

        Args:
            images: One structure, several, or an extxyz path; positions in Å.
            device: "auto" (CUDA when present), "cpu" or "cuda"; the members are moved there.
            calibrated: Apply :attr:`calibration`; False reports the raw spread as the uncertainty too.
            progress: A tqdm bar for more than 50 structures.

        Returns:
            An :class:`EnsemblePrediction`.

        Raises:
            ValueError: for an empty list, or a structure outside the members' chemistry (naming it).
        """
        if isinstance(images, (str, Path)):
            images = load_images(images)
        images = [images] if isinstance(images, Atoms) else list(images)
        if not images:
            raise ValueError("images is empty; give at least one structure.")
        for i, atoms in enumerate(images):
            check_chemistry(atoms, self.elements, self.max_z, name=f"images[{i}]")
        dev = resolve_device(device)
        models = [m.to(dev).eval() for m in self.models]
        converter = AtomsConverter(trn.MatScipyNeighborList(cutoff=self.configs[0].cutoff), device=dev,
                                   dtype=torch.float32)
        e_all, f_all, ei_all = [], [], []
        with tqdm(total=len(images), desc="ensemble", disable=not progress or len(images) <= 50) as bar:
            start = 0
            while start < len(images):
                stop, n_atoms = start, 0
                while stop < len(images) and stop - start < _BATCH_STRUCTURES and (
                        stop == start or n_atoms + len(images[stop]) <= _BATCH_ATOMS):
                    n_atoms += len(images[stop])
                    stop += 1
                with torch_threads(default_threads(n_atoms, dev)):
                    energy, forces, energies = evaluate_members(models, converter(images[start:stop]))
                bounds = np.cumsum([len(a) for a in images[start:stop]])[:-1]
                e_all.append(energy)
                f_all.extend(np.split(forces, bounds, axis=1))
                ei_all.extend(np.split(energies, bounds, axis=1))
                bar.update(stop - start)
                start = stop
        scale = self.calibration if calibrated else check_calibration(None)
        member_energy = np.concatenate(e_all, axis=1)
        energy_raw = _spread(member_energy)
        forces_raw = [_spread(f) for f in f_all]
        forces_std = [scale[keys.FORCES] * s for s in forces_raw]
        return EnsemblePrediction(
            member_energy=member_energy,
            energy=member_energy.mean(axis=0),
            energy_std_raw=energy_raw,
            energy_std=scale[keys.ENERGY] * energy_raw,
            member_forces=f_all,
            forces=[f.mean(axis=0) for f in f_all],
            forces_std_raw=forces_raw,
            forces_std=forces_std,
            atom_uncertainty=[np.sqrt(np.mean(s**2, axis=-1)) for s in forces_std],
            energies=[e.mean(axis=0) for e in ei_all],
            energies_std=[scale[keys.ENERGY] * _spread(e) for e in ei_all],
            calibration=dict(scale),
        )

    def fit_calibration(self, images: Sequence[Atoms], level: str | None = None, device: str = "auto",
                        progress: bool = False) -> dict:
        """Set :attr:`calibration` to the maximum-likelihood scales on labelled held-out structures.

        Args:
            images: Structures labelled at ``level`` (the validation split), not used in training.
            level: Reference level; default the members' training level.
            device: Where to run the members.
            progress: Show a progress bar for many structures.

        Returns:
            The :func:`calibration_summary` on ``images`` under the new calibration.
        """
        level = level if level is not None else self.level
        prediction = self.predict(images, device, calibrated=False, progress=progress)
        fitted = calibration_summary(prediction, images, level)
        self.calibration = {q: fitted[q]["scale_fit"] for q in QUANTITIES}
        return calibration_summary(prediction, images, level, self.calibration)
