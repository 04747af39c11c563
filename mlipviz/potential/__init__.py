"""SchNetPack potentials: build, train, save/load without pickles (checksummed), an ASE calculator; deep ensembles
with calibrated uncertainties, last-layer uncertainties (LLPR), and Δ-learning on top of a DFT baseline."""

import warnings

# SchNetPack 2.2 decorates functions with torch.jit.script at import; torch >= 2.9 warns that TorchScript is
# deprecated. Nothing a user of mlipviz can act on, so it is not shown; any later warning still is.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning)
    import schnetpack  # noqa: F401

from .calculator import MLIPCalculator
from .delta import DeltaCalculator, DeltaResult, load_delta, save_delta, train_delta
from .ensemble import Ensemble, EnsemblePrediction
from .ensemble_calculator import EnsembleCalculator
from .ensemble_files import load_ensemble, save_ensemble
from .ensemble_train import train_ensemble
from .files import ChecksumError
from .llpr import LLPR, LLPRCalibration, LLPRPrediction
from .hessian import model_hessian, model_normal_modes
from .model import ModelConfig, build_model, load_model, save_model
from .train import TrainResult, train_potential

__all__ = [
    "DeltaCalculator",
    "DeltaResult",
    "LLPR",
    "LLPRCalibration",
    "LLPRPrediction",
    "load_delta",
    "save_delta",
    "train_delta",
    "ChecksumError",
    "Ensemble",
    "EnsembleCalculator",
    "EnsemblePrediction",
    "MLIPCalculator",
    "ModelConfig",
    "TrainResult",
    "build_model",
    "load_ensemble",
    "load_model",
    "model_hessian",
    "model_normal_modes",
    "save_ensemble",
    "save_model",
    "train_ensemble",
    "train_potential",
]
