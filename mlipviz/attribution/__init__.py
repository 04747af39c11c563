"""Attribution of potential energies to atoms, with the checks that make the numbers trustworthy.

Integrated Gradients on positions (adaptive quadrature, in-distribution baselines, a path check against the
training data), IG on the atom-type embedding, saliency (|force|), the model's own energy decomposition, and
sanity checks (completeness, model randomisation, symmetry); n-body (pair and triplet) relevance by GNN-LRP;
attributions of a projected force, and of the frames before an MD failure.
"""

from .baselines import (
    EnergyFunctionCalculator,
    align_to,
    dissociated_baseline,
    minimum_energy_baseline,
    training_minimum_baseline,
    training_structures,
)
from .decomposition import binding_contributions
from .distribution import DistanceRanges, OutOfDistributionWarning, PathCheck, distance_ranges, path_check
from .embedding import embedding_attributions
from .failure import FailureAttribution, failure_attribution
from .force import FORCE_METHODS, ForceAttribution, force_attributions, projected_force_function
from .integrated_gradients import AttributionResult, CompletenessWarning, integrated_gradients
from .model_function import energy_function
from .nbody import (NBodyRelevance, WalkRelevance, nbody_relevance, pair_relevance, triplet_relevance,
                    walk_relevance)
from .saliency import saliency
from .sanity import (
    CompletenessCheck,
    RandomisationCheck,
    SymmetryCheck,
    completeness_check,
    equivalent_atoms,
    model_randomisation,
    randomised_copy,
    symmetry_check,
)

__all__ = [
    "FORCE_METHODS",
    "FailureAttribution",
    "ForceAttribution",
    "failure_attribution",
    "force_attributions",
    "projected_force_function",
    "AttributionResult",
    "CompletenessCheck",
    "CompletenessWarning",
    "DistanceRanges",
    "EnergyFunctionCalculator",
    "NBodyRelevance",
    "OutOfDistributionWarning",
    "PathCheck",
    "RandomisationCheck",
    "SymmetryCheck",
    "WalkRelevance",
    "align_to",
    "binding_contributions",
    "completeness_check",
    "distance_ranges",
    "dissociated_baseline",
    "embedding_attributions",
    "energy_function",
    "equivalent_atoms",
    "integrated_gradients",
    "minimum_energy_baseline",
    "model_randomisation",
    "nbody_relevance",
    "pair_relevance",
    "path_check",
    "randomised_copy",
    "saliency",
    "symmetry_check",
    "training_minimum_baseline",
    "training_structures",
    "triplet_relevance",
    "walk_relevance",
]
