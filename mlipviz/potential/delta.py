"""Δ-learning: a potential at a cheap baseline level plus a model of the expensive-minus-cheap difference.

A Δ pair predicts the target level (for example CCSD(T)/cc-pVDZ) as E = E_base + E_Δ and F = F_base + F_Δ. The
baseline learns the baseline level (for example B3LYP/cc-pVDZ) from many cheap labels; the Δ model learns
target − baseline from the few structures that carry both. The difference is smaller and smoother than either
surface, so it needs fewer expensive labels than the target surface itself.

Training goes through :func:`~mlipviz.potential.train_potential`. The Δ model trains on copies of its structures
that carry the target − baseline energies and forces under the target level's keys; its metadata is then
rewritten to say what it learned: :data:`mlipviz.keys.META_LEVEL` becomes "CCSD(T)/cc-pVDZ - B3LYP/cc-pVDZ" (no
level of theory, so it is never taken for a target-level model), with the two levels apart under
:data:`META_DELTA_TARGET_LEVEL` and :data:`META_DELTA_BASELINE_LEVEL`.

The pair's members, their checks, the ASE calculator they form (:class:`DeltaCalculator`) and its files
(:func:`save_delta`, :func:`load_delta`) are in :mod:`mlipviz.potential.delta_pair`; their names are importable
from here too.

References:
    Ramakrishnan, Dral, Rupp, von Lilienfeld, J. Chem. Theory Comput. 11, 2087 (2015),
    doi:10.1021/acs.jctc.5b00099 (Δ-learning).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from .. import keys
from ..reference.levels import get_level
from .chemistry import elements_of
from .delta_pair import (
    BASELINE_DIR,
    DELTA_DIR,
    DELTA_FILE,
    META_DELTA_BASELINE_LEVEL,
    META_DELTA_TARGET_LEVEL,
    DeltaCalculator,
    as_member,
    delta_level_name,
    load_delta,
    require_baseline_level,
    save_delta,
)
from .model import ModelConfig
from .provenance import data_file_name, levels_in
from .train import TrainResult, _images, train_potential

__all__ = [
    "DELTA_FILE",
    "META_DATA_INDICES",
    "META_DELTA_BASELINE_LEVEL",
    "META_DELTA_TARGET_LEVEL",
    "DeltaCalculator",
    "DeltaResult",
    "default_delta_config",
    "delta_level_name",
    "load_delta",
    "save_delta",
    "train_delta",
]

#: Metadata of a model trained by :func:`train_delta`: indices into the data given of the structures it trained on
#: (its ``split`` indexes this list).
META_DATA_INDICES = keys.META_DATA_INDICES
_OWN_ARGUMENTS = ("level", "split", "init_from")  # train_potential arguments train_delta sets itself


def default_delta_config() -> ModelConfig:
    """The Δ model's default architecture: PaiNN, 32 features, 2 interactions, 20 radial functions, 5 Å cutoff.

    Half the width and two thirds of the depth of the default potential (64 features, 3 interactions): about a
    quarter of its parameters. The difference between a correlated level and a hybrid functional varies by tens of
    meV where the total energy varies by eV, and more slowly with geometry, so a smaller network describes it; and
    a Δ model is fitted to few expensive labels, where fewer parameters overfit less (Ramakrishnan et al. 2015).
    """
    return ModelConfig(representation="painn", n_atom_basis=32, n_interactions=2, n_rbf=20, cutoff=5.0)


@dataclass
class DeltaResult:
    """What :func:`train_delta` returns.

    Attributes:
        baseline: The baseline model (trained here, or the one given with an empty history).
        delta: The Δ model; its metadata names what it learned (see the module docstring).
        target_level: Name of the level the pair predicts, e.g. "CCSD(T)/cc-pVDZ".
        baseline_level: Name of the baseline's level, e.g. "B3LYP/cc-pVDZ".
        baseline_trained: Whether the baseline was trained here.
        directory: Where the pair was saved (:func:`save_delta`), if anywhere.
    """

    baseline: TrainResult
    delta: TrainResult
    target_level: str
    baseline_level: str
    baseline_trained: bool
    directory: Path | None = None

    def calculator(self, device: str = "auto") -> DeltaCalculator:
        """The pair as one ASE calculator (see :class:`DeltaCalculator`)."""
        return DeltaCalculator((self.baseline.model, self.baseline.config), (self.delta.model, self.delta.config),
                               device=device)


# ------------------------------------------------------------------------------------------ training data


def _labelled(images: list[Atoms], level) -> np.ndarray:
    ek, fk = keys.energy_key(level.slug), keys.forces_key(level.slug)
    return np.array([ek in a.info and fk in a.arrays for a in images], dtype=bool)


def _delta_indices(images, target_indices, target, base) -> list[int]:
    """Indices of the Δ training structures: ``target_indices``, or every structure labelled at both levels."""
    n = len(images)
    has_t, has_b = _labelled(images, target), _labelled(images, base)
    if target_indices is None:
        idx = np.flatnonzero(has_t & has_b).tolist()
        if len(idx) < 3:
            held = levels_in(images)
            raise ValueError(
                f"data: {n - has_t.sum()} of {n} structures lack {target.name} energy and forces and "
                f"{n - has_b.sum()} lack {base.name}; {len(idx)} carry both, and a Δ model needs at least 3. The "
                f"data holds {', '.join(held) if held else 'no labelled level'}.")
        return idx
    arr = np.asarray(target_indices).reshape(-1)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"target_indices must hold integer indices into data, got {arr.dtype} values.")
    idx = arr.astype(int).tolist()
    bad = [i for i in idx if not 0 <= i < n]
    if bad:
        raise ValueError(f"target_indices has indices {bad[:5]} outside 0..{n - 1} (data holds {n} structures).")
    if len(set(idx)) != len(idx):
        raise ValueError(f"target_indices repeats indices {sorted({i for i in idx if idx.count(i) > 1})[:5]}.")
    for has, level in ((has_t, target), (has_b, base)):
        lack = [i for i in idx if not has[i]]
        if lack:
            raise ValueError(f"target_indices: {len(lack)} of {len(idx)} structures (first: structure {lack[0]}) "
                             f"have no {level.name} energy and forces ({keys.energy_key(level.slug)!r}, "
                             f"{keys.forces_key(level.slug)!r}); a Δ label needs both levels.")
    if len(idx) < 3:
        raise ValueError(f"target_indices selects {len(idx)} structures; a Δ model needs at least 3 "
                         f"(train and validation splits).")
    return idx


def _delta_copies(images: list[Atoms], target, base) -> list[Atoms]:
    """Bare copies carrying target − baseline energies (eV) and forces (eV/Å) under the target level's keys."""
    et, ft = keys.energy_key(target.slug), keys.forces_key(target.slug)
    eb, fb = keys.energy_key(base.slug), keys.forces_key(base.slug)
    name = delta_level_name(target, base)
    out = []
    for a in images:
        c = Atoms(a.numbers, a.positions, cell=a.cell, pbc=a.pbc)
        c.info[et] = float(a.info[et]) - float(a.info[eb])
        c.arrays[ft] = np.asarray(a.arrays[ft], dtype=float) - np.asarray(a.arrays[fb], dtype=float)
        c.info[keys.provenance_key(target.slug, keys.LEVEL)] = name  # levels_in() then names the difference
        out.append(c)
    return out


# --------------------------------------------------------------------------------------------- training


def train_delta(
    data: str | Path | list[Atoms],
    target_level: str = "CCSD(T)/cc-pVDZ",
    baseline_level: str = "B3LYP/cc-pVDZ",
    baseline: str | Path | tuple | TrainResult | None = None,
    target_indices=None,
    config: ModelConfig | None = None,
    delta_config: ModelConfig | None = None,
    workdir: str | Path = "runs/delta",
    save_to: str | Path | None = None,
    **train_kwargs,
) -> DeltaResult:
    """Train a Δ pair: a baseline potential and a model of the target − baseline difference.

    Args:
        data: An extxyz path, or labelled structures (see :mod:`mlipviz.reference.labelling`).
        target_level: The level the pair predicts, e.g. "CCSD(T)/cc-pVDZ".
        baseline_level: The cheaper level the baseline learns, e.g. "B3LYP/cc-pVDZ".
        baseline: None to train the baseline on every structure of ``data`` with ``baseline_level`` energies and
            forces; or a baseline to reuse: a saved model directory, a ``(model, ModelConfig)`` pair or a
            :class:`TrainResult`, whose metadata must record ``baseline_level``.
        target_indices: Indices into ``data`` of the structures the Δ model learns from (the budget of target
            labels), each labelled at both levels; default every structure labelled at both.
        config: The baseline's architecture when it is trained here (default that of ``train_potential``).
        delta_config: The Δ model's architecture (default :func:`default_delta_config`).
        workdir: Scratch directory; the baseline trains in ``workdir/baseline``, the Δ model in ``workdir/delta``.
        save_to: If given, save the pair there (:func:`save_delta`).
        **train_kwargs: Passed to :func:`~mlipviz.potential.train_potential` for both models (``n_train``,
            ``n_val``, ``max_epochs``, ``max_time_s``, ``seed``, ``device``, ...), except ``level``, ``split`` and
            ``init_from``, which train_delta sets.

    Returns:
        A :class:`DeltaResult`. Both models' metadata record :data:`META_DATA_INDICES` (indices into ``data``;
        their splits index that list); the Δ model's ``errors`` are errors on the difference.

    Raises:
        ValueError: before any training, for equal levels, ``data`` without structures labelled at both levels
            (naming how many lack which level), ``target_indices`` out of range, repeated or without labels at
            either level, a ``baseline`` trained on another level or knowing other elements, baseline and Δ
            structures holding different elements, ``config`` given with a reused baseline, or a train_kwargs
            entry that train_delta sets itself.
    """
    target, base = get_level(target_level), get_level(baseline_level)
    if target == base:
        raise ValueError(f"target_level and baseline_level are both {target.name}; a Δ model learns a difference.")
    own = sorted(set(train_kwargs) & set(_OWN_ARGUMENTS))
    if own:
        raise ValueError(f"train_delta sets {own} itself (the level of each model, and the splits within each "
                         f"training set); leave them out.")
    images = _images(data)
    idx = _delta_indices(images, target_indices, target, base)
    delta_images = [images[i] for i in idx]
    elements = elements_of(delta_images)
    if baseline is None:
        base_idx = np.flatnonzero(_labelled(images, base)).tolist()
        base_elements = elements_of(images[i] for i in base_idx)
        if base_elements != elements:
            raise ValueError(f"The {len(base_idx)} baseline structures ({base.name}) hold elements {base_elements} "
                             f"but the {len(idx)} Δ structures hold {elements}; the members of a Δ pair must know "
                             f"the same elements. Choose Δ structures that cover every element, or pass data with "
                             f"only these elements.")
    else:
        if config is not None:
            raise ValueError("config describes a baseline to train, but baseline= gives one to reuse; pass only one.")
        given = as_member(baseline, "baseline")
        require_baseline_level(given.config, base.name)
        if given.config.elements != elements:
            raise ValueError(f"baseline knows elements {given.config.elements} but the {len(idx)} Δ structures hold "
                             f"{elements}; the members of a Δ pair must know the same elements.")
    workdir = Path(workdir)

    if baseline is None:
        base_result = train_potential([images[i] for i in base_idx], base.name, config, workdir / BASELINE_DIR,
                                      **train_kwargs)
        base_result.config.metadata.update({keys.META_DATA_FILE: data_file_name(data), META_DATA_INDICES: base_idx})
    else:
        base_result = given
    delta_result = train_potential(_delta_copies(delta_images, target, base), target.name,
                                   copy.deepcopy(delta_config) if delta_config is not None else default_delta_config(),
                                   workdir / DELTA_DIR, **train_kwargs)
    delta_result.config.metadata.update({
        keys.META_LEVEL: delta_level_name(target, base),
        META_DELTA_TARGET_LEVEL: target.name,
        META_DELTA_BASELINE_LEVEL: base.name,
        keys.META_LEVELS: levels_in(delta_images),
        keys.META_DATA_FILE: data_file_name(data),
        META_DATA_INDICES: idx,
    })
    result = DeltaResult(base_result, delta_result, target.name, base.name, baseline_trained=baseline is None)
    if save_to is not None:
        result.directory = save_delta(base_result, delta_result, save_to)
        for member, sub in ((base_result, BASELINE_DIR), (delta_result, DELTA_DIR)):
            if member.history:
                (Path(save_to) / sub / "history.json").write_text(json.dumps(member.history, indent=1) + "\n")
    return result
