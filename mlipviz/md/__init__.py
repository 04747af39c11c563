"""Molecular dynamics with mlipviz potentials, and stability observables."""

from .engine import MDResult, run_md
from .stability import BondReport, DriftReport, bond_check, bonds_of, energy_drift

__all__ = ["BondReport", "DriftReport", "MDResult", "bond_check", "bonds_of", "energy_drift", "run_md"]
