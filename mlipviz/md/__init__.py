"""Molecular dynamics with mlipviz potentials, MD snapshots for labelling, and stability observables."""

from .engine import MDResult, run_md
from .sampling import md_sample
from .stability import BondReport, DriftReport, bond_check, bonds_of, energy_drift

__all__ = ["BondReport", "DriftReport", "MDResult", "bond_check", "bonds_of", "energy_drift", "md_sample", "run_md"]
