"""The record of an active-learning run: its directory, its state file, and its learning curve.

A run directory holds ``state.json`` (arguments, rounds, the geometry keys of the labelled structures in file
order), ``labelled.extxyz`` (every labelled structure, initial ones first) and one ``round_NNN`` folder per round
(``ensemble``, ``selected.extxyz``). :class:`ActiveLearningRun` reads it, finished or not.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from ..potential import load_ensemble
from ..structure_io import load_images

__all__ = ["LABELLED_FILE", "STATE_FILE", "ActiveLearningRun", "RoundRecord", "compare_arguments", "read_labelled",
           "read_state", "round_dir", "write_state"]

#: The run's state: arguments, rounds, labelled geometry keys.
STATE_FILE = "state.json"
#: Every labelled structure, initial ones first.
LABELLED_FILE = "labelled.extxyz"
#: Version of the state file's layout.
STATE_VERSION = 1


@dataclass
class RoundRecord:
    """One round of a run.

    Attributes:
        round: Round index, from 0.
        n_labels: Labelled structures the round's ensemble trained on (train + validation).
        n_val: Of which in the validation split (the ensemble is calibrated on them).
        test_energy_mae_meV: Test energy MAE of the ensemble mean, meV (None without a test set).
        test_forces_mae_meV_per_A: Test force-component MAE of the ensemble mean, meV/Å (None without a test set).
        pool_size: Candidates scored this round (new geometries only); None when the run stopped before scoring.
        pool_mean_uncertainty, pool_max_uncertainty: Mean and largest score over them, meV/Å (score "forces")
            or meV/atom (score "energy").
        n_selected: Structures chosen to label; n_failed: of which the labeller could not label.
        train_wall_s: Wall time of training the ensemble, s.
        phase: "trained", "selected" or "labelled" (done), or "final" (the run stopped after training).
    """

    round: int
    n_labels: int
    n_val: int
    test_energy_mae_meV: float | None = None
    test_forces_mae_meV_per_A: float | None = None
    pool_size: int | None = None
    pool_mean_uncertainty: float | None = None
    pool_max_uncertainty: float | None = None
    n_selected: int = 0
    n_failed: int = 0
    train_wall_s: float = 0.0
    phase: str = "trained"
    selected_keys: list[str] = field(default_factory=list, repr=False)
    selected_indices: list[int] = field(default_factory=list, repr=False)


@dataclass
class ActiveLearningRun:
    """A run's rounds, labels and ensembles, read from its directory.

    Attributes:
        directory: The run directory.
        level: Level of theory learned.
        strategy, score: Selection rule and uncertainty score.
        rounds: One :class:`RoundRecord` per round.
        labelled: Every labelled structure, initial ones first.
        stop_reason: Why the run stopped, or None if it has not.
    """

    directory: Path
    level: str
    strategy: str
    score: str
    rounds: list[RoundRecord]
    labelled: list[Atoms]
    stop_reason: str | None = None

    @classmethod
    def load(cls, directory: str | Path) -> ActiveLearningRun:
        """Read a run directory (finished or not) without continuing it."""
        directory = Path(directory)
        state = read_state(directory)
        if state is None:
            raise FileNotFoundError(f"{directory} holds no {STATE_FILE}; it is not an active-learning run.")
        args = state["arguments"]
        return cls(directory, args["level"], args["strategy"], args["score"],
                   [RoundRecord(**r) for r in state["rounds"]], read_labelled(directory, state), state["stopped"])

    @property
    def n_labels(self) -> np.ndarray:
        """(n_rounds,) labelled structures each round's ensemble trained on."""
        return np.array([r.n_labels for r in self.rounds], dtype=int)

    @property
    def test_forces_mae(self) -> np.ndarray:
        """(n_rounds,) test force MAE, meV/Å (NaN without a test set)."""
        return np.array([np.nan if r.test_forces_mae_meV_per_A is None else r.test_forces_mae_meV_per_A
                         for r in self.rounds])

    @property
    def test_energy_mae(self) -> np.ndarray:
        """(n_rounds,) test energy MAE, meV (NaN without a test set)."""
        return np.array([np.nan if r.test_energy_mae_meV is None else r.test_energy_mae_meV for r in self.rounds])

    def ensemble(self, round_index: int = -1, device: str = "auto"):
        """The ensemble trained in one round (default: the last), loaded from the run directory."""
        rec = self.rounds[round_index]
        return load_ensemble(round_dir(self.directory, rec.round) / "ensemble", device=device)

    def plot(self, ax=None):
        """Learning curve: test force MAE (meV/Å) and the pool's mean/max uncertainty against labels (log-log).

        Args:
            ax: Two matplotlib axes, or None for a new figure.

        Returns:
            The matplotlib figure.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(1, 2, figsize=(9, 3.6), layout="constrained")
        fig = ax[0].figure
        n = self.n_labels
        ax[0].plot(n, self.test_forces_mae, "o-", label=f"{self.strategy} selection")
        ax[0].set(xscale="log", yscale="log", xlabel="labelled structures", ylabel="test force MAE (meV/Å)",
                  title=f"learning curve, {self.level}")
        ax[0].legend()
        unit = "meV/Å" if self.score == "forces" else "meV/atom"
        scored = [r for r in self.rounds if r.pool_size]
        ax[1].plot([r.n_labels for r in scored], [r.pool_max_uncertainty for r in scored], "s-", label="max")
        ax[1].plot([r.n_labels for r in scored], [r.pool_mean_uncertainty for r in scored], "o-", label="mean")
        ax[1].set(xscale="log", yscale="log", xlabel="labelled structures", ylabel=f"pool uncertainty ({unit})",
                  title=f"candidate uncertainty ({self.score})")
        ax[1].legend()
        return fig


def round_dir(directory: Path, r: int) -> Path:
    """The folder of round ``r``: ``round_NNN``."""
    return Path(directory) / f"round_{r:03d}"


def read_state(directory: Path) -> dict | None:
    """The run's state, or None when ``directory`` holds none (a new run).

    Raises:
        ValueError: for a state file of another layout version.
    """
    path = Path(directory) / STATE_FILE
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    if state.get("version") != STATE_VERSION:
        raise ValueError(f"{path} has state version {state.get('version')!r}; this mlipviz reads {STATE_VERSION}.")
    return state


def write_state(directory: Path, state: dict) -> None:
    """Write ``state.json`` atomically (temporary file, fsync, rename)."""
    path = Path(directory) / STATE_FILE
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(state, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_labelled(directory: Path, state: dict) -> list[Atoms]:
    """The labelled structures; frames written after the last state (a crash in between) are matched and kept."""
    images = load_images(Path(directory) / LABELLED_FILE)
    n_known = len(state["labelled_keys"])
    if len(images) < n_known:
        raise ValueError(f"{directory / LABELLED_FILE} holds {len(images)} structures but {STATE_FILE} lists "
                         f"{n_known}; the run directory was changed by something else.")
    extra = images[n_known:]
    if extra:  # labels written just before an interruption: recover their keys from the round's selection
        rec = state["rounds"][-1] if state["rounds"] else {}
        chosen = load_images(round_dir(directory, rec["round"]) / "selected.extxyz") if rec.get("selected_keys") else []
        for a in extra:
            match = [k for k, c in zip(rec.get("selected_keys", []), chosen) if len(c) == len(a)
                     and np.array_equal(c.numbers, a.numbers) and np.abs(c.positions - a.positions).max() < 1e-6]
            if not match:
                raise ValueError(f"{directory / LABELLED_FILE} holds a structure that no round selected; the run "
                                 "directory was changed by something else.")
            state["labelled_keys"].append(match[0])
        write_state(directory, state)
    return images


def compare_arguments(saved: dict, given: dict, directory: Path) -> None:
    """Refuse to continue a run with other arguments.

    Raises:
        ValueError: naming the first field (in alphabetical order) that differs, with both values.
    """
    for name in sorted(set(saved) | set(given)):
        if saved.get(name) != given.get(name):
            raise ValueError(f"{name} differs from the run saved in {directory} (saved {saved.get(name)!r}, given "
                             f"{given.get(name)!r}); continue it with the same arguments, or start a new directory.")
