"""The dataset stage: labelled structures on disk, the embedded data, and SchNetPack databases.

* structure files: :func:`load_images`, :func:`write_images` (the reader and atomic writer every stage uses,
  from :mod:`mlipviz.structure_io`);
* the embedded data: :data:`DATA_DIR`, :func:`water_dataset_path`, :func:`water_model_dir`,
  :func:`water_ensemble_dir`, :func:`rmd17_ensemble_dir`,
  :func:`campaign_dataset_path`;
* :func:`write_spk_database`, the one SchNetPack database writer (training uses it);
* :func:`match_geometries`: the same geometry across datasets, by geometry key;
* :func:`load_rmd17`: rMD17 from a user's own download, labelled at :data:`RMD17_LEVEL` in eV and Å.

The recipe that rebuilds the embedded data is ``data/build.py`` (``make data``), outside the library.
"""

from ..structure_io import load_images, write_images
from .matching import match_geometries
from .paths import (CAMPAIGN_DATASETS, DATA_DIR, campaign_dataset_path, rmd17_ensemble_dir, water_dataset_path,
                    water_ensemble_dir, water_model_dir)
from .rmd17 import RMD17_LEVEL, RMD17_MOLECULES, load_rmd17, rmd17_split_file
from .spk import write_spk_database

__all__ = [
    "CAMPAIGN_DATASETS",
    "DATA_DIR",
    "RMD17_LEVEL",
    "RMD17_MOLECULES",
    "campaign_dataset_path",
    "load_images",
    "load_rmd17",
    "match_geometries",
    "rmd17_ensemble_dir",
    "rmd17_split_file",
    "water_dataset_path",
    "water_ensemble_dir",
    "water_model_dir",
    "write_images",
    "write_spk_database",
]
