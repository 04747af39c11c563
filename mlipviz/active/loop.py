"""The active-learning loop: train an ensemble, score candidates, label the most uncertain, repeat; resumable.

Each round trains a deep ensemble (:func:`mlipviz.potential.train_ensemble`) on every structure labelled so
far, measures it on a held-out test set, scores the candidates by calibrated uncertainty
(:mod:`mlipviz.active.selection`), labels the top ``per_round`` and adds them. It stops at the label budget, when
the test force MAE reaches a target, or when no new candidate is left.

Everything lives in one directory, written so that an interrupted run, started again with the same arguments,
continues from where it stopped and never labels a structure twice nor loses a label:

* ``state.json``: the arguments, each round's phase (trained, selected, labelled) and metrics, the geometry keys
  of the labelled structures, in file order (written atomically, after the files it describes);
* ``labelled.extxyz``: every labelled structure (initial first), rewritten atomically after each labelling;
* ``round_NNN/ensemble``: each round's ensemble; ``round_NNN/selected.extxyz``: what the round chose to label.

References:
    Smith, Nebgen, Lubbers, Isayev, Roitberg, J. Chem. Phys. 148, 241733 (2018), doi:10.1063/1.5023802.
    Lakshminarayanan, Pritzel, Blundell, NeurIPS 2017, arXiv:1612.01474 (deep ensembles).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from tqdm.auto import tqdm

from .. import keys
from ..geometry import check_positive_int, geometry_key, stable_hash
from ..potential import ModelConfig, load_ensemble, train_ensemble
from ..potential.chemistry import elements_of
from ..reference.levels import get_level
from ..structure_io import load_images, write_images
from .run import (LABELLED_FILE, STATE_VERSION, ActiveLearningRun, RoundRecord, compare_arguments, read_labelled,
                  read_state, round_dir, write_state)
from .selection import SCORES, STRATEGIES, distinct_candidates, round_rng, select, uncertainty_scores
from .sources import bare, check_labelled

__all__ = ["active_learning"]
#: ``train_ensemble`` arguments the loop sets itself and ``train_kwargs`` may not hold.
_OWN_ARGS = ("data", "level", "n_members", "config", "workdir", "save_to", "seeds", "split", "n_train", "n_val",
             "progress")
_ARCHITECTURE = ("representation", "n_atom_basis", "n_interactions", "n_rbf", "cutoff", "lmax")
_STOPPING = ("label_budget", "target_forces_mae")  # may change when a run is continued
_BUDGET_STOP, _TARGET_STOP = "label budget", "test force MAE"  # how the stop reasons begin
Candidates = Sequence[Atoms] | Callable[[object, int], Sequence[Atoms]]


def active_learning(
    initial: Sequence[Atoms],
    candidates: Candidates,
    labeller: Callable[[list[Atoms]], list[Atoms | None]],
    directory: str | Path,
    *,
    level: str = "CCSD(T)/cc-pVDZ",
    n_members: int = 3,
    per_round: int = 10,
    label_budget: int = 100,
    target_forces_mae: float | None = None,
    test: Sequence[Atoms] | None = None,
    config: ModelConfig | None = None,
    train_kwargs: Mapping | None = None,
    strategy: str = "uncertainty",
    score: str = "forces",
    val_fraction: float = 0.2,
    seed: int = 0,
    progress: bool = True,
) -> ActiveLearningRun:
    """Grow a training set by uncertainty (or random) selection, one ensemble per round; resumable.

    Args:
        initial: Labelled start structures (``level`` energies and forces), at least 3.
        candidates: A pool (list of structures, Å; labels on them are ignored), or a callable
            ``(ensemble, round) -> list[Atoms]`` that makes new ones each round (e.g. :func:`md_candidates`).
            Geometries already labelled or failed are never offered again. A round in which the labeller labels
            none of its structures ends the run.
        labeller: ``list[Atoms] -> list[Atoms | None]``: one entry per input, in order, labelled at ``level``
            with energy and forces, or None where labelling failed (see :func:`campaign_labeller`,
            :func:`pool_labeller`).
        directory: Run directory; an existing run there is continued with the same arguments, except
            ``train_kwargs["device"]`` and the stopping rules: a run that stopped at its label budget or force
            target goes on when given a larger ``label_budget`` or a lower ``target_forces_mae``.
        level: Level of theory to learn.
        n_members: Ensemble members (>= 2).
        per_round: Structures labelled per round.
        label_budget: Stop once this many structures (initial included) are labelled.
        target_forces_mae: Stop once the test force MAE is at most this, meV/Å (needs ``test``).
        test: Labelled held-out structures, never trained on or selected; their MAEs are recorded each round.
        config: Architecture of every member (default :class:`ModelConfig`).
        train_kwargs: More arguments of ``train_potential`` per member (``max_epochs``, ``max_time_s``,
            ``batch_size``, ``lr``, ``device`` ...).
        strategy: "uncertainty" (the highest scores) or "random" (the baseline, same seeds).
        score: "forces" (max per-atom force uncertainty) or "energy" (energy uncertainty per atom).
        val_fraction: Fraction of the labelled structures (at least one) held out for early stopping and
            calibration; a structure's membership follows a hash of its geometry and ``seed``.
        seed: Seed of the member initialisations and of random selection.
        progress: Show a progress bar over rounds.

    Returns:
        The :class:`ActiveLearningRun`.

    Raises:
        ValueError: naming the argument: an empty or unlabelled ``initial``, ``per_round`` < 1, a budget below
            the initial size, candidates or test structures with elements ``initial`` lacks, test structures that
            are also initial or candidates, a labeller that returns wrong or unlabelled structures, or arguments
            that differ from those saved in ``directory`` (naming the field).
    """
    lv = get_level(level)
    initial = _check_labelled_set(initial, lv, "initial")
    first = {}
    for i, a in enumerate(initial):
        j = first.setdefault(geometry_key(a), i)
        if j != i:
            raise ValueError(f"initial[{i}] repeats the geometry of initial[{j}]; give each structure once.")
    if len(initial) < 3:
        raise ValueError(f"initial holds {len(initial)} structures; an ensemble needs at least 3 (train and "
                         "validation for each member).")
    per_round = check_positive_int(per_round, "per_round")
    n_members = check_positive_int(n_members, "n_members")
    if n_members < 2:
        raise ValueError(f"n_members must be at least 2 (an ensemble's spread needs two members), got {n_members}.")
    label_budget = check_positive_int(label_budget, "label_budget")
    if label_budget < len(initial):
        raise ValueError(f"label_budget={label_budget} is below the {len(initial)} initial structures.")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {list(STRATEGIES)}, got {strategy!r}.")
    if score not in SCORES:
        raise ValueError(f"score must be one of {list(SCORES)}, got {score!r}.")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction!r}.")
    if target_forces_mae is not None and (test is None or not target_forces_mae > 0):
        raise ValueError(f"target_forces_mae={target_forces_mae!r} needs a test set and a positive value in meV/Å.")
    train_kwargs = dict(train_kwargs or {})
    own = sorted(set(train_kwargs) & set(_OWN_ARGS))
    if own:
        raise ValueError(f"train_kwargs may not set {own}: the loop sets them.")
    elements = elements_of(initial)
    pool = None if callable(candidates) else _check_candidates(candidates, elements, "candidates")
    test = None if test is None else _check_labelled_set(test, lv, "test")
    if test is not None:
        _check_elements(test, elements, "test")
        _check_disjoint(test, initial, "initial")
        if pool is not None:
            _check_disjoint(test, pool, "candidates")
    config = copy.deepcopy(config) if config is not None else ModelConfig()
    arguments = {
        "level": lv.name, "n_members": n_members, "per_round": per_round, "label_budget": label_budget,
        "target_forces_mae": target_forces_mae, "strategy": strategy, "score": score, "val_fraction": val_fraction,
        "seed": int(seed), "config": {f: getattr(config, f) for f in _ARCHITECTURE},
        "train_kwargs": json.loads(json.dumps({k: v for k, v in train_kwargs.items() if k != "device"},
                                              sort_keys=True, default=lambda o: type(o).__name__)),
        "initial": _set_hash(initial), "test": None if test is None else _set_hash(test),
        "candidates": _set_hash(pool) if pool is not None else getattr(
            candidates, "fingerprint", getattr(candidates, "__qualname__", type(candidates).__name__)),
    }
    arguments = json.loads(json.dumps(arguments, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))
    directory = Path(directory)
    state = read_state(directory)
    if state is None:
        directory.mkdir(parents=True, exist_ok=True)
        write_images(directory / LABELLED_FILE, [bare(a, keep_labels=True) for a in initial])
        labelled = load_images(directory / LABELLED_FILE)  # train on what is on disk, as a resumed run does
        state = {"version": STATE_VERSION, "arguments": arguments, "labelled_keys": [geometry_key(a) for a in initial],
                 "failed_keys": [], "rounds": [], "stopped": None}
        write_state(directory, state)
    else:
        compare_arguments(_identity(state["arguments"]), _identity(arguments), directory)
        _take_stopping_rules(directory, state, arguments)
        labelled = read_labelled(directory, state)
    loop = _Loop(directory, state, labelled, lv.name, candidates, pool, labeller, test, config, train_kwargs)
    n_rounds = int(np.ceil((label_budget - len(initial)) / per_round)) + 1
    bar = tqdm(total=n_rounds, initial=sum(r["phase"] == "labelled" for r in state["rounds"]), unit="round",
               desc=f"active learning ({strategy})", disable=not progress)
    while state["stopped"] is None:
        loop.round()
        bar.update(1)
        bar.set_postfix(labels=len(state["labelled_keys"]))
    bar.close()
    return ActiveLearningRun.load(directory)


class _Loop:
    """One run's rounds: each phase is done once, recorded in the state, and skipped when the run resumes."""

    def __init__(self, directory, state, labelled, level, candidates, pool, labeller, test, config, train_kwargs):
        self.dir, self.state, self.labelled, self.level = directory, state, labelled, level
        self.args = state["arguments"]
        self.candidates, self.pool, self.labeller, self.test = candidates, pool, labeller, test
        self.config, self.train_kwargs = config, train_kwargs

    def round(self) -> None:
        rounds = self.state["rounds"]
        ensemble = self._train(len(rounds)) if not rounds or rounds[-1]["phase"] == "labelled" else None
        rec = rounds[-1]
        if rec["phase"] == "trained":
            if self._stop(rec):
                return
            self._select(rec, ensemble if ensemble is not None else self.ensemble_of(rec["round"]))
        if rec["phase"] == "selected":
            self._label(rec)

    def ensemble_of(self, r: int):
        return load_ensemble(round_dir(self.dir, r) / "ensemble", device=self._device)

    @property
    def _device(self) -> str:
        return self.train_kwargs.get("device", "auto")

    def _train(self, r: int):
        """Train, calibrate and measure round ``r``'s ensemble; record it (phase "trained")."""
        keys_ = self.state["labelled_keys"]
        split = _validation_split(keys_, self.args["val_fraction"], self.args["seed"])
        rdir = round_dir(self.dir, r)
        t0 = time.perf_counter()
        seeds = [1000 * self.args["seed"] + m for m in range(self.args["n_members"])]
        # train_potential builds a member's network before it seeds, from the global generator: seed that here,
        # so that a round's ensemble depends on its seed only (and both arms of a benchmark start alike)
        torch.manual_seed(seeds[0])
        ensemble = train_ensemble(self.labelled, level=self.level, n_members=self.args["n_members"],
                                  config=self.config, workdir=rdir / "work", save_to=rdir / "ensemble", seeds=seeds,
                                  split=split, progress=False, **self.train_kwargs)
        rec = RoundRecord(round=r, n_labels=len(keys_), n_val=len(split[keys.SPLIT_VAL]),
                          train_wall_s=round(time.perf_counter() - t0, 2))
        if self.test is not None:
            rec.test_energy_mae_meV, rec.test_forces_mae_meV_per_A = _test_errors(ensemble, self.test, self.level,
                                                                                  self._device)
        self.state["rounds"].append(asdict(rec))
        write_state(self.dir, self.state)
        return ensemble

    def _stop(self, rec: dict) -> bool:
        target, mae = self.args["target_forces_mae"], rec["test_forces_mae_meV_per_A"]
        reason = None
        if target is not None and mae is not None and mae <= target:
            reason = f"{_TARGET_STOP} {mae:.1f} meV/Å reached the target {target:g} meV/Å"
        elif len(self.state["labelled_keys"]) >= self.args["label_budget"]:
            reason = f"{_BUDGET_STOP} of {self.args['label_budget']} reached"
        if reason:
            rec["phase"] = "final"
            self.state["stopped"] = reason
            write_state(self.dir, self.state)
        return reason is not None

    def _select(self, rec: dict, ensemble) -> None:
        """Score the new candidates, choose this round's structures and save them (phase "selected")."""
        r = rec["round"]
        if self.pool is not None:
            cands = self.pool
        else:
            cands = _check_candidates(self.candidates(ensemble, r), elements_of(self.labelled),
                                      f"candidates of round {r}")
        done = set(self.state["labelled_keys"]) | set(self.state["failed_keys"])
        avail = distinct_candidates(cands, done)
        if not avail:
            rec["phase"] = "final"
            self.state["stopped"] = "no candidate left that is not already labelled"
            write_state(self.dir, self.state)
            return
        prediction = ensemble.predict([cands[i] for i in avail], device=self._device, progress=False)
        scores = uncertainty_scores(prediction, self.args["score"])
        k = min(self.args["per_round"], self.args["label_budget"] - len(self.state["labelled_keys"]), len(avail))
        rng = round_rng(self.args["seed"], r)
        picked = select(scores if self.args["strategy"] == "uncertainty" else len(avail), k, self.args["strategy"], rng)
        chosen = [bare(cands[avail[i]]) for i in picked]
        write_images(round_dir(self.dir, r) / "selected.extxyz", chosen)
        rec.update(pool_size=len(avail), pool_mean_uncertainty=1e3 * float(scores.mean()),
                   pool_max_uncertainty=1e3 * float(scores.max()), n_selected=k,
                   selected_keys=[geometry_key(cands[avail[i]]) for i in picked],
                   selected_indices=[int(avail[i]) for i in picked] if self.pool is not None else [], phase="selected")
        write_state(self.dir, self.state)

    def _label(self, rec: dict) -> None:
        """Label what the round selected and is not labelled yet; add it to the set (phase "labelled")."""
        chosen = load_images(round_dir(self.dir, rec["round"]) / "selected.extxyz")
        have = set(self.state["labelled_keys"]) | set(self.state["failed_keys"])
        todo = [(k, a) for k, a in zip(rec["selected_keys"], chosen) if k not in have]
        if todo:
            out = self.labeller([a for _, a in todo])
            new = check_labelled(out, [a for _, a in todo], self.level)
            added = [(k, a) for (k, _), a in zip(todo, new) if a is not None]
            failed = [k for (k, _), a in zip(todo, new) if a is None]
            write_images(self.dir / LABELLED_FILE, self.labelled + [a for _, a in added])
            self.labelled = load_images(self.dir / LABELLED_FILE)
            self.state["labelled_keys"].extend(k for k, _ in added)
            self.state["failed_keys"].extend(failed)
            rec["n_failed"] += len(failed)
            if not added:  # retraining on the same labels would only repeat this round
                self.state["stopped"] = f"the labeller labelled none of round {rec['round']}'s {len(todo)} structures"
        rec["phase"] = "labelled"
        write_state(self.dir, self.state)


def _identity(arguments: dict) -> dict:
    """The arguments that define a run: all but its stopping rules."""
    return {k: v for k, v in arguments.items() if k not in _STOPPING}


def _take_stopping_rules(directory: Path, state: dict, arguments: dict) -> None:
    """Adopt the given budget and target; reopen a run that only the old ones had stopped (its last round is
    then decided again under the new rules, with the ensemble it already trained)."""
    if all(state["arguments"].get(k) == arguments[k] for k in _STOPPING):
        return
    state["arguments"].update({k: arguments[k] for k in _STOPPING})
    stopped, rounds = state["stopped"], state["rounds"]
    if stopped and stopped.startswith((_BUDGET_STOP, _TARGET_STOP)) and rounds and rounds[-1]["phase"] == "final":
        rounds[-1]["phase"] = "trained"
        state["stopped"] = None
    write_state(directory, state)


def _set_hash(images: Sequence[Atoms]) -> str:
    return stable_hash([geometry_key(a) for a in images])


def _check_elements(images: Sequence[Atoms], elements: list[str], name: str) -> None:
    for i, a in enumerate(images):
        other = sorted(set(a.get_chemical_symbols()) - set(elements))
        if other:
            raise ValueError(f"{name}[{i}] contains {', '.join(other)}, which the initial structures lack (they hold "
                             f"{', '.join(elements)}); an ensemble trained on them cannot predict it.")


def _check_candidates(candidates, elements: list[str], name: str) -> list[Atoms]:
    if isinstance(candidates, Atoms) or not isinstance(candidates, Sequence):
        raise ValueError(f"{name} must be a list of ase.Atoms or a callable (ensemble, round) -> list[Atoms], got "
                         f"{type(candidates).__name__}.")
    bad = [i for i, a in enumerate(candidates) if not isinstance(a, Atoms)]
    if bad:
        raise ValueError(f"{name}[{bad[0]}] is a {type(candidates[bad[0]]).__name__}, not an ase.Atoms.")
    _check_elements(candidates, elements, name)
    return list(candidates)


def _check_labelled_set(images, level, name: str) -> list[Atoms]:
    if isinstance(images, Atoms) or not isinstance(images, Sequence) or not len(images):
        raise ValueError(f"{name} must be a non-empty list of labelled ase.Atoms, got "
                         f"{'an empty list' if isinstance(images, Sequence) and not len(images) else type(images).__name__}.")
    images = list(images)
    ek, fk = keys.energy_key(level.slug), keys.forces_key(level.slug)
    for i, a in enumerate(images):
        if not isinstance(a, Atoms):
            raise ValueError(f"{name}[{i}] is a {type(a).__name__}, not an ase.Atoms.")
        if ek not in a.info or fk not in a.arrays:
            raise ValueError(f"{name}[{i}] has no {level.name} energy and forces ({ek!r}, {fk!r}).")
    return images


def _check_disjoint(test: list[Atoms], other: list[Atoms], name: str) -> None:
    seen: dict[str, int] = {}
    for i, a in enumerate(other):
        seen.setdefault(geometry_key(a), i)
    for j, a in enumerate(test):
        if geometry_key(a) in seen:
            raise ValueError(f"test[{j}] is {name}[{seen[geometry_key(a)]}]; a test structure must stay unseen.")


def _validation_split(labelled_keys: list[str], fraction: float, seed: int) -> dict[str, list[int]]:
    """Validation = the ``max(1, round(fraction·n))`` structures with the lowest hash of (seed, geometry key)."""
    n = len(labelled_keys)
    n_val = min(max(1, int(round(fraction * n))), n - 1)
    order = sorted(range(n), key=lambda i: stable_hash({"seed": seed, "key": labelled_keys[i]}))
    val = sorted(order[:n_val])
    return {keys.SPLIT_TRAIN: sorted(order[n_val:]), keys.SPLIT_VAL: val, keys.SPLIT_TEST: []}


def _test_errors(ensemble, test: list[Atoms], level: str, device: str) -> tuple[float, float]:
    """Test energy MAE (meV) and force-component MAE (meV/Å) of the ensemble mean."""
    slug = get_level(level).slug
    pred = ensemble.predict(test, device=device, progress=False)
    e_ref = np.array([a.info[keys.energy_key(slug)] for a in test])
    f_err = np.concatenate([(np.asarray(f) - a.arrays[keys.forces_key(slug)]).ravel()
                            for f, a in zip(pred.forces, test)])
    return 1e3 * float(np.mean(np.abs(np.asarray(pred.energy) - e_ref))), 1e3 * float(np.mean(np.abs(f_err)))
