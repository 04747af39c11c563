"""Interactive explorers for JupyterLab: a dataset explorer, an attribution explorer and a live training monitor."""

from .attribution_explorer import AttributionExplorer
from .dataset_explorer import DatasetExplorer, dataset_explorer
from .training_monitor import TrainingMonitor

__all__ = [
    "AttributionExplorer",
    "DatasetExplorer",
    "TrainingMonitor",
    "dataset_explorer",
]
