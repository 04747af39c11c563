"""Reference labels from PySCF: levels of theory, validation, labelling, sampling, campaigns.

Typical use::

    from mlipviz.reference import label_many, normal_modes, sample_normal_modes
    modes = normal_modes(molecule("H2O"), "HF/cc-pVDZ")
    images = sample_normal_modes(modes, 10, temperature_K=300)
    labelled = label_many(images, ["CCSD(T)/cc-pVDZ", "B3LYP/cc-pVDZ"])

Campaigns on a Dask cluster: :func:`mlipviz.reference.campaign.run_campaign`. How far one level sits from
another on the same geometries is measured by the metrology stage (:func:`mlipviz.metrology.compare_levels`).
"""

from ..geometry import check_atoms
from .calculator import PySCFCalculator
from .catalogue import get_system, system_names
from .labelling import label, label_many, level_energy, level_forces
from .functionals import register_dft_level
from .hessian import HESSIAN_METHODS, reference_hessian, reference_normal_modes
from .levels import METHODS, Level, canonical_basis, get_level, known_methods
from .pyscf_driver import PySCFResult, UntrustedGradientError, run_pyscf
from .validate import check_level
from .sampling import (NormalModes, distance_scan, harmonic_analysis, mode_variances, normal_modes, orientation_samples,
                       rattle_sample, sample_normal_modes)

__all__ = [
    "HESSIAN_METHODS",
    "METHODS",
    "Level",
    "NormalModes",
    "PySCFCalculator",
    "PySCFResult",
    "UntrustedGradientError",
    "canonical_basis",
    "check_atoms",
    "check_level",
    "distance_scan",
    "get_level",
    "get_system",
    "harmonic_analysis",
    "known_methods",
    "label",
    "label_many",
    "level_energy",
    "level_forces",
    "mode_variances",
    "normal_modes",
    "orientation_samples",
    "rattle_sample",
    "reference_hessian",
    "reference_normal_modes",
    "register_dft_level",
    "run_pyscf",
    "sample_normal_modes",
    "system_names",
]
