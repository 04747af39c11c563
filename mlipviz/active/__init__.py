"""Active learning: sample with the current ensemble, label the most uncertain structures, retrain, repeat.

* :mod:`.loop`: :func:`active_learning`, the resumable loop;
* :mod:`.run`: :class:`ActiveLearningRun`, a run directory read back, with its learning curve;
* :mod:`.selection`: uncertainty scores of candidates, and the top-k and random selection rules;
* :mod:`.sources`: candidates from MD with the ensemble (:func:`md_candidates`), labels from a campaign
  (:func:`campaign_labeller`) or from a pool labelled before (:func:`pool_labeller`).
"""

from .loop import active_learning
from .run import ActiveLearningRun, RoundRecord
from .selection import SCORES, STRATEGIES, distinct_candidates, round_rng, select, uncertainty_scores
from .sources import MDCandidates, campaign_labeller, md_candidates, pool_labeller

__all__ = [
    "SCORES",
    "STRATEGIES",
    "ActiveLearningRun",
    "MDCandidates",
    "RoundRecord",
    "active_learning",
    "campaign_labeller",
    "distinct_candidates",
    "md_candidates",
    "pool_labeller",
    "round_rng",
    "select",
    "uncertainty_scores",
]
