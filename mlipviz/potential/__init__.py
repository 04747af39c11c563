"""SchNetPack potentials: build, train, save/load without pickles (checksummed), and an ASE calculator."""

import warnings

# SchNetPack 2.2 decorates functions with torch.jit.script at import; torch >= 2.9 warns that TorchScript is
# deprecated. Nothing a user of mlipviz can act on, so it is not shown; any later warning still is.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning)
    import schnetpack  # noqa: F401

from .calculator import MLIPCalculator
from .files import ChecksumError
from .hessian import model_hessian, model_normal_modes
from .model import ModelConfig, build_model, load_model, save_model
from .train import TrainResult, train_potential

__all__ = [
    "ChecksumError",
    "MLIPCalculator",
    "ModelConfig",
    "TrainResult",
    "build_model",
    "load_model",
    "model_hessian",
    "model_normal_modes",
    "save_model",
    "train_potential",
]
