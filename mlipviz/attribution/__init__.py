"""Attribution of potential energies to atoms: captum Integrated Gradients and the energy decomposition."""

from .decomposition import binding_contributions
from .integrated_gradients import AttributionResult, dissociated_baseline, energy_function, integrated_gradients

__all__ = ["AttributionResult", "binding_contributions", "dissociated_baseline", "energy_function", "integrated_gradients"]
