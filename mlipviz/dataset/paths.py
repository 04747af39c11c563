"""Where the embedded data lives: the datasets and the model shipped in ``data/``.

The directory is the repository's ``data/`` by default; set ``MLIPVIZ_DATA`` to use another copy.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "CAMPAIGN_DATASETS",
    "DATA_DIR",
    "campaign_dataset_path",
    "rmd17_ensemble_dir",
    "water_dataset_path",
    "water_ensemble_dir",
    "water_model_dir",
]

#: Embedded data shipped with the repository (override with the MLIPVIZ_DATA environment variable).
DATA_DIR = Path(os.environ.get("MLIPVIZ_DATA", Path(__file__).resolve().parents[2] / "data"))

#: The reference-lab datasets in ``data/campaigns/`` (see ``data/README.md``), by name.
CAMPAIGN_DATASETS = ("water_monomer", "water_monomer_tz_subset", "water_dimer", "water_dimer_s22x5", "methanol")


def water_dataset_path() -> Path:
    """The embedded water dataset: CCSD(T)/cc-pVDZ and B3LYP/cc-pVDZ energies and forces (extxyz)."""
    return DATA_DIR / "water" / "water_ccsdt_b3lyp.extxyz"


def water_model_dir() -> Path:
    """The embedded PaiNN potential trained on :func:`water_dataset_path` at CCSD(T)/cc-pVDZ."""
    return DATA_DIR / "models" / "painn_water_ccsdt"


def water_ensemble_dir() -> Path:
    """The embedded deep ensemble of PaiNN potentials (same data, split and level as :func:`water_model_dir`),
    calibrated on the validation split; load it with :func:`mlipviz.potential.load_ensemble`."""
    return DATA_DIR / "models" / "painn_water_ensemble"


def rmd17_ensemble_dir(molecule: str = "ethanol") -> Path:
    """The embedded deep ensemble of PaiNN potentials trained on rMD17 ``molecule`` (PBE/def2-SVP, split 01);
    load it with :func:`mlipviz.potential.load_ensemble`. Only ethanol is shipped."""
    return DATA_DIR / "models" / f"painn_rmd17_{molecule}_ensemble"


def campaign_dataset_path(name: str) -> Path:
    """The extxyz file of one reference-lab dataset, e.g. ``campaign_dataset_path("water_dimer")``.

    Raises:
        ValueError: naming the unknown dataset and listing the known ones.
    """
    if name not in CAMPAIGN_DATASETS:
        raise ValueError(f"Unknown campaign dataset {name!r}; the embedded ones are: {', '.join(CAMPAIGN_DATASETS)}.")
    return DATA_DIR / "campaigns" / f"{name}.extxyz"
