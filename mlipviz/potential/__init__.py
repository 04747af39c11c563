"""SchNetPack potentials: build, train, save/load without pickles, and an ASE calculator."""

from .calculator import MLIPCalculator
from .model import ModelConfig, build_model, load_model, save_model
from .train import TrainResult, train_potential

__all__ = ["MLIPCalculator", "ModelConfig", "TrainResult", "build_model", "load_model", "save_model", "train_potential"]
