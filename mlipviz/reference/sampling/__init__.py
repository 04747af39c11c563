"""Ways to make geometries for labelling.

* :mod:`.normal_modes`: harmonic analysis from PySCF's analytic Hessian, and thermal normal-mode sampling;
* :mod:`.rattle`: random Gaussian displacements;
* :mod:`.rigid_body`: rigid scans and random orientations of molecular clusters.

Snapshots of MD driven by a potential are :func:`mlipviz.md.md_sample` (MD is a later stage).
Every sampler records how a geometry was made in ``atoms.info["sampler"]``, with a name from
:mod:`mlipviz.keys`.
"""

from .normal_modes import HBAR, NormalModes, harmonic_analysis, mode_variances, normal_modes, sample_normal_modes
from .rattle import rattle_sample
from .rigid_body import distance_scan, orientation_samples

__all__ = [
    "HBAR",
    "NormalModes",
    "distance_scan",
    "harmonic_analysis",
    "mode_variances",
    "normal_modes",
    "orientation_samples",
    "rattle_sample",
    "sample_normal_modes",
]
