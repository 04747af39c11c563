"""Reference labels from PySCF: levels of theory, validation, labelling, sampling.

Typical use::

    from mlipviz.reference import label, normal_modes, sample_normal_modes
    modes = normal_modes(molecule("H2O"), "HF/cc-pVDZ")
    images = sample_normal_modes(modes, 10, temperature_K=300)
    labelled = label_many(images, ["CCSD(T)/cc-pVDZ", "B3LYP/cc-pVDZ"])
"""

from .calculator import PySCFCalculator
from .compare import LevelComparison, compare_levels, plot_level_comparison
from .labelling import label, label_many, level_energy, level_forces
from .levels import METHODS, Level, get_level, known_methods
from .pyscf_driver import PySCFResult, UntrustedGradientError, run_pyscf
from .sampling import NormalModes, mode_variances, normal_modes, sample_normal_modes
from .validate import check_atoms

__all__ = [
    "METHODS",
    "LevelComparison",
    "compare_levels",
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
