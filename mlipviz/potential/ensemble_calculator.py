"""ASE calculator over a deep ensemble: mean energy, forces and per-atom energies, with calibrated uncertainties.

Each member runs through its own :class:`~mlipviz.potential.MLIPCalculator` set-up (the chemistry refusal, the
float64 energy offsets), on one shared neighbour list: the members share their cutoff, so the input batch is
built once per call. Besides ASE's ``energy``, ``forces`` and ``energies`` the results hold:

* :data:`mlipviz.keys.ENERGY_UNCERTAINTY`: ``s_E`` × std over members of the energy, eV;
* :data:`mlipviz.keys.FORCES_UNCERTAINTY`: ``s_F`` × std of each force component, (n_atoms, 3) eV/Å;
* :data:`mlipviz.keys.ATOM_UNCERTAINTY`: the RMS over an atom's three calibrated component stds, (n_atoms,) eV/Å;
* :data:`mlipviz.keys.ENERGIES_UNCERTAINTY`: ``s_E`` × std of each per-atom energy, (n_atoms,) eV;

with the standard deviation over members taken with ``ddof=1`` and the scales ``s_E``, ``s_F`` from the
ensemble's calibration. Read them with ``calc.get_property(keys.ENERGY_UNCERTAINTY, atoms)``.

References:
    Lakshminarayanan, Pritzel, Blundell, NeurIPS 2017, arXiv:1612.01474 (deep ensembles).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from .. import keys
from ..device import default_threads, resolve_device, torch_threads
from .calculator import MLIPCalculator
from .chemistry import check_chemistry
from .ensemble import Ensemble, check_calibration, evaluate_members
from .ensemble_files import load_ensemble

__all__ = ["EnsembleCalculator"]


class EnsembleCalculator(Calculator):
    """The mean of an ensemble's members as an ASE calculator, with calibrated uncertainties in its results.

    Structures outside the members' chemistry (unknown elements, an empty structure, NaN positions) are
    refused with a ``ValueError`` before any member sees them, as by :class:`MLIPCalculator`.

    Args:
        ensemble: An :class:`~mlipviz.potential.ensemble.Ensemble`, or the directory of a saved one.
        device: "auto" (CUDA when present), "cpu" or "cuda"; the members are moved there.
        calibrated: Scale the spreads by the ensemble's calibration; False reports the raw spreads.
        skin: Verlet-list skin, Å (see :class:`MLIPCalculator`); 0 rebuilds the neighbour list every call.
        trust: Passed to :func:`~mlipviz.potential.load_ensemble` when ``ensemble`` is a directory.
    """

    implemented_properties = [
        "energy",
        "forces",
        "energies",
        keys.ENERGY_UNCERTAINTY,
        keys.FORCES_UNCERTAINTY,
        keys.ATOM_UNCERTAINTY,
        keys.ENERGIES_UNCERTAINTY,
    ]

    def __init__(self, ensemble: Ensemble | str | Path, device: str = "auto", calibrated: bool = True,
                 skin: float = 0.0, trust: bool = False, **kwargs):
        dev = resolve_device(device)
        if isinstance(ensemble, (str, Path)):
            ensemble = load_ensemble(ensemble, device=dev, trust=trust)
        if not isinstance(ensemble, Ensemble):
            raise ValueError(f"ensemble must be an Ensemble or a saved ensemble directory, got "
                             f"{type(ensemble).__name__}.")
        self.ensemble = ensemble
        self.device = dev
        self.scale = dict(ensemble.calibration) if calibrated else check_calibration(None)
        self.members = [MLIPCalculator(m, c, device=dev, skin=skin) for m, c in zip(ensemble.models, ensemble.configs)]
        self.max_z = ensemble.max_z  # the members know the same elements (Ensemble checks); the smallest embedding
        super().__init__(**kwargs)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        check_chemistry(atoms if atoms is not None else self.atoms, self.ensemble.elements, self.max_z)
        Calculator.calculate(self, atoms, properties, system_changes)
        inputs = self.members[0].converter(self.atoms)  # one neighbour list for all: the members share the cutoff
        with torch_threads(default_threads(len(self.atoms), self.device)):
            energy, forces, energies = evaluate_members([m.model for m in self.members], inputs)
        s_e, s_f = self.scale[keys.ENERGY], self.scale[keys.FORCES]
        forces_std = s_f * np.std(forces, axis=0, ddof=1)
        self.results = {
            "energy": float(energy[:, 0].mean()),
            "forces": forces.mean(axis=0),
            "energies": energies.mean(axis=0),
            keys.ENERGY_UNCERTAINTY: float(s_e * np.std(energy[:, 0], ddof=1)),
            keys.FORCES_UNCERTAINTY: forces_std,
            keys.ATOM_UNCERTAINTY: np.sqrt(np.mean(forces_std**2, axis=1)),
            keys.ENERGIES_UNCERTAINTY: s_e * np.std(energies, axis=0, ddof=1),
        }
