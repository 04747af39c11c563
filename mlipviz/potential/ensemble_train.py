"""Train a deep ensemble: K potentials that differ only in their seed, on one shared split, then calibrate.

Each member is trained by :func:`mlipviz.potential.train_potential` with its own seed (initial weights and
order of the training data). The first member draws the random split (or takes the one given); every other
member is trained on exactly that split, so the validation and test structures are held out from all of them.
The spread is then calibrated on the validation split (:meth:`mlipviz.potential.ensemble.Ensemble.fit_calibration`)
and scored on the test split.

References:
    Lakshminarayanan, Pritzel, Blundell, NeurIPS 2017, arXiv:1612.01474 (deep ensembles).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from ase import Atoms

from .. import keys
from ..reference.levels import get_level
from ..structure_io import load_images
from .ensemble import Ensemble, calibration_summary
from .ensemble_files import save_ensemble
from .model import ModelConfig
from .train import train_potential

__all__ = ["ENSEMBLE_CALIBRATION_REPORT", "ENSEMBLE_SEEDS", "train_ensemble"]

#: ``Ensemble.metadata`` / ``ensemble.json`` entry: :func:`calibration_summary` on the validation and test splits.
ENSEMBLE_CALIBRATION_REPORT = keys.ENSEMBLE_CALIBRATION_REPORT
#: ``Ensemble.metadata`` / ``ensemble.json`` entry: the members' seeds.
ENSEMBLE_SEEDS = keys.ENSEMBLE_SEEDS
#: train_potential arguments that train_ensemble sets per member.
_PER_MEMBER = ("seed", "workdir", "save_to", "split", "callbacks", "level", "config", "progress")


def _seeds(seeds, n_members: int) -> list[int]:
    if seeds is None:
        return list(range(n_members))
    seeds = list(seeds)
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, (int, np.integer))]
    if bad:
        raise ValueError(f"seeds must be integers, got {bad[:3]}.")
    if len(seeds) != n_members:
        raise ValueError(f"seeds has {len(seeds)} entries for n_members={n_members}.")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds {seeds} repeat a value; members with one seed are identical and have no spread.")
    return [int(s) for s in seeds]


def _callback_factory(callbacks) -> Callable[[int], list]:
    if callbacks is None:
        return lambda k: []
    if callable(callbacks) and not isinstance(callbacks, pl.Callback):
        def factory(k):
            made = callbacks(k)
            return list(made) if made is not None else []
        return factory
    if isinstance(callbacks, Sequence) and not isinstance(callbacks, (str, bytes)):
        return lambda k: list(callbacks)
    raise ValueError(f"callbacks must be None, a list of Lightning callbacks, or a function k -> list, got "
                     f"{type(callbacks).__name__}.")


def train_ensemble(
    data: str | Path | list[Atoms],
    level: str = "CCSD(T)/cc-pVDZ",
    n_members: int = 4,
    config: ModelConfig | None = None,
    workdir: str | Path = "runs/ensemble",
    save_to: str | Path | None = None,
    seeds: Sequence[int] | None = None,
    split: Mapping | None = None,
    n_train: int | float = 0.8,
    n_val: int | float = 0.1,
    progress: bool = True,
    callbacks: Sequence[pl.Callback] | Callable[[int], list] | None = None,
    **train_kwargs,
) -> Ensemble:
    """Train ``n_members`` potentials on one split, then calibrate their spread on its validation part.

    Args:
        data: An extxyz path, or labelled structures.
        level: Which level's energies/forces to learn, e.g. "CCSD(T)/cc-pVDZ".
        n_members: K ≥ 2 members.
        config: Architecture shared by every member (see :func:`train_potential`).
        workdir: Scratch directory; member ``k`` trains in ``<workdir>/member_<k>``.
        save_to: If given, the ensemble is saved there (:func:`save_ensemble`), with each member's history.
        seeds: One distinct integer seed per member; default ``0 … K-1``.
        split: Explicit ``{"train", "val", "test"}`` indices into ``data`` for every member; default the random
            split of the first member by ``n_train``/``n_val``.
        n_train: Training structures (count or fraction); ignored when ``split`` is given.
        n_val: Validation structures (count or fraction); the rest is the test split.
        progress: Show Lightning's progress bar.
        callbacks: Extra Lightning callbacks: a list given to every member, or a function ``k -> list``
            called once per member (for callbacks that must not be shared).
        **train_kwargs: Further :func:`train_potential` arguments (``max_epochs``, ``lr``, ``batch_size``,
            ``device``, ``max_time_s``, ``energy_weight``, ``init_from``).

    Returns:
        The :class:`~mlipviz.potential.ensemble.Ensemble`, calibrated on the validation split. Its
        ``metadata[ENSEMBLE_CALIBRATION_REPORT]`` holds :func:`calibration_summary` on the validation split and,
        when it is not empty, on the test split (with the validation scales); ``metadata[ENSEMBLE_SEEDS]`` the
        seeds.

    Raises:
        ValueError: for fewer than 2 members, bad seeds or callbacks, a ``train_potential`` argument that is set
            per member, and everything :func:`train_potential` refuses, before the first member trains.
    """
    if isinstance(n_members, bool) or not isinstance(n_members, (int, np.integer)) or n_members < 2:
        raise ValueError(f"n_members must be an integer ≥ 2 (a single model has no spread), got {n_members!r}.")
    seeds = _seeds(seeds, int(n_members))
    clash = sorted(set(train_kwargs) & set(_PER_MEMBER))
    if clash:
        raise ValueError(f"{clash} cannot be passed through to train_potential: train_ensemble sets them per member "
                         f"(use seeds= for the seeds).")
    make_callbacks = _callback_factory(callbacks)
    level_name = get_level(level).name
    images = load_images(data) if isinstance(data, (str, Path)) else list(data)
    workdir = Path(workdir)
    models, configs, histories = [], [], []
    for k, seed in enumerate(seeds):
        result = train_potential(data, level=level_name, config=config, workdir=workdir / f"member_{k}", seed=seed,
                                 split=split, n_train=n_train, n_val=n_val, progress=progress,
                                 callbacks=make_callbacks(k), **train_kwargs)
        split = result.config.metadata[keys.META_SPLIT]  # every later member trains on the first one's split
        models.append(result.model)
        configs.append(result.config)
        histories.append(result.history)
    ensemble = Ensemble(models, configs, level=level_name, split=split, histories=histories,
                        metadata={ENSEMBLE_SEEDS: seeds})
    device = train_kwargs.get("device", "auto")
    report = {keys.SPLIT_VAL: ensemble.fit_calibration([images[i] for i in split[keys.SPLIT_VAL]], device=device)}
    if split[keys.SPLIT_TEST]:
        test = [images[i] for i in split[keys.SPLIT_TEST]]
        report[keys.SPLIT_TEST] = calibration_summary(ensemble.predict(test, device, progress=False), test,
                                                      level_name, ensemble.calibration)
    ensemble.metadata[ENSEMBLE_CALIBRATION_REPORT] = report
    if save_to is not None:
        save_ensemble(ensemble, save_to)
    return ensemble
