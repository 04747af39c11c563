"""Molecular dynamics: the ASE path, MD snapshots for labelling, stability and the observables of MD metrology.

* :mod:`.engine`: :func:`run_md`, NVE and Langevin with any ASE calculator (the baseline path);
* :mod:`.batched`: :class:`BatchedMD`, many replicas in one model call per step on TorchSim's integrators (NVE,
  Langevin, Nosé–Hoover), with :mod:`.batch_model` (the batched SchNetPack call), :mod:`.neighbors` (a Verlet list
  with a skin) and :mod:`.batched_io` (extxyz trajectories, CSV log, checkpoints and resume);
* :mod:`.thermo`: degrees of freedom and start velocities at exactly the requested temperature;
* :mod:`.drift`: NVE energy drift as a time-step scan with its spread over seeds;
* :mod:`.sampling`: :func:`md_sample`, MD snapshots to label;
* :mod:`.stability`: drift, bond integrity, the Fu et al. stability rule, the MLIPAudit score, survival curves;
* :mod:`.protocols`: :func:`fu_protocol`, N replicas under the Fu et al. bond rule (:func:`bond_monitor`), survival;
* :mod:`.observables`: h(r), bond and angle distributions; :mod:`.spectra`: velocity autocorrelation and
  vibrational spectra.
"""

from .batch_model import SchNetPackPotential, torchsim_model
from .batched import BATCHED_ENSEMBLES, BatchedMD, BatchedMDResult
from .batched_io import LOG_COLUMNS, read_log
from .drift import DriftScan, drift_scan, plot_drift_scan
from .engine import MAX_TEMPERATURE_K, MAX_TIMESTEP_FS, MDInstabilityError, MDResult, run_md
from .observables import (HR, StructureDistributions, Trajectory, as_trajectory, distribution_distances, h_r, h_r_mae,
                          pair_distances, plot_h_r, plot_structure_distributions, structure_distributions,
                          wasserstein_1)
from .protocols import StabilityRun, bond_monitor, fu_protocol
from .sampling import md_sample
from .spectra import VibrationalSpectrum, plot_spectrum, vibrational_spectrum
from .stability import (AuditScore, BondReport, DriftReport, StabilityReport, SurvivalCurve, bond_check, bonds_of,
                        energy_drift, fu_stability, mlipaudit_score, plot_stability, plot_survival, survival_curve)
from .neighbors import SkinNeighborList, pairs_within
from .thermo import count_dof, kinetic_temperature

__all__ = [
    "BATCHED_ENSEMBLES",
    "HR",
    "LOG_COLUMNS",
    "MAX_TEMPERATURE_K",
    "MAX_TIMESTEP_FS",
    "AuditScore",
    "BatchedMD",
    "BatchedMDResult",
    "BondReport",
    "DriftReport",
    "DriftScan",
    "MDInstabilityError",
    "MDResult",
    "SchNetPackPotential",
    "SkinNeighborList",
    "StabilityReport",
    "StabilityRun",
    "StructureDistributions",
    "SurvivalCurve",
    "Trajectory",
    "VibrationalSpectrum",
    "as_trajectory",
    "bond_check",
    "bond_monitor",
    "bonds_of",
    "count_dof",
    "distribution_distances",
    "drift_scan",
    "energy_drift",
    "fu_protocol",
    "fu_stability",
    "h_r",
    "h_r_mae",
    "kinetic_temperature",
    "md_sample",
    "mlipaudit_score",
    "pair_distances",
    "pairs_within",
    "plot_drift_scan",
    "plot_h_r",
    "plot_spectrum",
    "plot_stability",
    "plot_structure_distributions",
    "plot_survival",
    "read_log",
    "run_md",
    "structure_distributions",
    "survival_curve",
    "torchsim_model",
    "vibrational_spectrum",
    "wasserstein_1",
]
