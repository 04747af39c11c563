"""Reference labels from PySCF: levels of theory, validation, labelling, sampling.

Typical use::

    from mlipviz.reference import label, normal_modes, sample_normal_modes
    modes = normal_modes(molecule("H2O"), "HF/cc-pVDZ")
    images = sample_normal_modes(modes, 10, temperature_K=300)
    labelled = label_many(images, ["CCSD(T)/cc-pVDZ", "B3LYP/cc-pVDZ"])
"""

from .calculator import PySCFCalculator
from .catalogue import get_system, system_names
from .compare import LevelComparison, compare_levels, errors_by_stretch, plot_level_comparison, relative_energy_errors
from .samplers import distance_scan, md_sample, orientation_samples, rattle_sample
from .labelling import label, label_many, level_energy, level_forces
from .levels import METHODS, Level, get_level, known_methods
from .pyscf_driver import PySCFResult, UntrustedGradientError, run_pyscf
from .sampling import NormalModes, mode_variances, normal_modes, sample_normal_modes
from .validate import check_atoms

__all__ = [
    "METHODS",
    "LevelComparison",
    "compare_levels",
    "distance_scan",
    "errors_by_stretch",
    "get_system",
    "md_sample",
    "orientation_samples",
    "rattle_sample",
    "relative_energy_errors",
    "system_names",
    "plot_level_comparison",
    "Level",
    "NormalModes",
    "PySCFCalculator",
    "PySCFResult",
    "UntrustedGradientError",
    "check_atoms",
    "get_level",
    "known_methods",
    "label",
    "label_many",
    "level_energy",
    "level_forces",
    "mode_variances",
    "normal_modes",
    "run_pyscf",
    "sample_normal_modes",
]
