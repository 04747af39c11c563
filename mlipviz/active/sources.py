"""Where an active-learning run's candidates and labels come from.

* :func:`md_candidates`: new candidates each round, from Langevin MD driven by the current ensemble's mean
  (:func:`mlipviz.md.md_sample` with an :class:`~mlipviz.potential.EnsembleCalculator`);
* :func:`campaign_labeller`: labels from a resumable labelling campaign (:func:`mlipviz.reference.campaign.run_campaign`,
  CCSD(T) by default), kept in its crash-safe record store, so nothing is computed twice;
* :func:`pool_labeller`: labels a campaign already computed, looked up by geometry (for benchmarks).

A labeller is a callable ``list[Atoms] -> list[Atoms | None]``: one entry per input, in order, the structure
labelled at the run's level (energy and forces), or None where labelling failed.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from .. import keys
from ..geometry import check_positive_int, geometry_key
from ..md.engine import MDInstabilityError
from ..md.sampling import md_sample
from ..potential import EnsembleCalculator
from ..reference.campaign import run_campaign
from ..reference.campaign.plan import merge_geometries
from ..reference.levels import get_level
from ..reference.store import STATUS_OK, RecordStore, task_key
from ..structure_io import as_atoms

__all__ = ["MDCandidates", "bare", "campaign_labeller", "check_labelled", "md_candidates", "pool_labeller"]

#: ``atoms.info`` entries a candidate keeps when its labels are stripped: how it was made.
_SAMPLING_INFO = (keys.SAMPLER, keys.SYSTEM, keys.SAMPLING_TEMPERATURE, keys.RATTLE_STDEV, keys.QUANTUM_SAMPLING)
#: Largest |Δx| (Å) between a structure handed to a labeller and the one it returns.
POSITION_TOLERANCE = 1e-6


def bare(atoms: Atoms, keep_labels: bool = False) -> Atoms:
    """A copy without calculator; unless ``keep_labels``, also without labels (only the sampling info is kept)."""
    if keep_labels:
        out = atoms.copy()
    else:
        out = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        out.info.update({k: atoms.info[k] for k in _SAMPLING_INFO if k in atoms.info})
    out.calc = None
    return out


def check_labelled(out, images: Sequence[Atoms], level: str) -> list[Atoms | None]:
    """What a labeller returned, checked against what it was given.

    Returns:
        One entry per input: a copy of the input's geometry (exactly) with the returned labels, or None.

    Raises:
        ValueError: when the labeller returned another number of entries, or an entry that is not an Atoms, has
            another geometry (beyond :data:`POSITION_TOLERANCE`), or lacks the level's energy or forces.
    """
    lv = get_level(level)
    ek, fk = keys.energy_key(lv.slug), keys.forces_key(lv.slug)
    if isinstance(out, Atoms) or not isinstance(out, Sequence) or len(out) != len(images):
        n = len(out) if isinstance(out, Sequence) else type(out).__name__
        raise ValueError(f"the labeller must return one entry per structure ({len(images)}), got {n}.")
    result = []
    for i, (a, ref) in enumerate(zip(out, images)):
        if a is None:
            result.append(None)
            continue
        if not isinstance(a, Atoms):
            raise ValueError(f"the labeller returned a {type(a).__name__} for structure {i}, not an ase.Atoms or None.")
        if len(a) != len(ref) or not np.array_equal(a.numbers, ref.numbers) \
                or np.abs(a.positions - ref.positions).max() > POSITION_TOLERANCE:
            raise ValueError(f"the labeller returned another geometry for structure {i} (labels must come back in "
                             "the order of the structures given).")
        if ek not in a.info or fk not in a.arrays:
            raise ValueError(f"the labeller returned structure {i} without {lv.name} energy and forces "
                             f"({ek!r}, {fk!r}).")
        labelled = bare(a, keep_labels=True)
        labelled.positions = ref.positions
        result.append(labelled)
    return result


def campaign_labeller(level: str = "CCSD(T)/cc-pVDZ", store: str | Path = "labels.jsonl", forces: bool | str = True,
                      progress: bool = True, **campaign_kwargs):
    """A labeller that runs a labelling campaign into a record store.

    A structure the store already holds is not computed again (an interrupted run loses nothing), and a failed
    calculation comes back as None.

    Args:
        level: Level of theory, e.g. "CCSD(T)/cc-pVDZ".
        store: The campaign's ``.jsonl`` record store.
        forces: True (analytic) or "fd" (finite differences); the loop needs forces.
        progress: Show the campaign's progress bar.
        **campaign_kwargs: More arguments of :func:`~mlipviz.reference.campaign.run_campaign` (``client``,
            ``n_workers``, ``threads_per_worker``, ``fd_check_fraction``, ...).

    Returns:
        ``label(images) -> list[Atoms | None]``.
    """
    lv = get_level(level)
    if forces not in (True, "fd"):
        raise ValueError(f"forces must be True (analytic) or 'fd' (finite differences), got {forces!r}; active "
                         "learning trains on forces.")

    def label(images: list[Atoms]) -> list[Atoms | None]:
        images = list(images)
        if not images:
            return []
        run_campaign(images, lv, store, forces=forces, progress=progress, **campaign_kwargs)
        records = RecordStore(store, mode="r")
        first = merge_geometries(images)  # the campaign computed a repeated geometry once, at its first copy
        out = []
        for i, atoms in enumerate(images):
            rec = records.get(task_key(images[first[i]], lv, True))
            if rec is None or rec[keys.RECORD_STATUS] != STATUS_OK:
                out.append(None)
                continue
            a = bare(atoms)
            a.info[keys.energy_key(lv.slug)] = float(rec[keys.RECORD_ENERGY])
            a.arrays[keys.forces_key(lv.slug)] = np.asarray(rec[keys.RECORD_FORCES], dtype=float)
            for name, value in rec[keys.RECORD_PROVENANCE].items():
                a.info[keys.provenance_key(lv.slug, name)] = value
            out.append(a)
        return out

    return label


def pool_labeller(labelled_pool: Sequence[Atoms], level: str = "CCSD(T)/cc-pVDZ"):
    """A labeller that looks labels up in structures labelled before (a finished campaign), by geometry key.

    Args:
        labelled_pool: Structures with ``level`` energies and forces.
        level: The level whose labels are handed out.

    Returns:
        ``label(images) -> list[Atoms]``, copies of the matching pool structures.

    Raises:
        ValueError: at once, for pool structures without the level's labels; when called, for a structure that
            is not in the pool.
    """
    lv = get_level(level)
    ek, fk = keys.energy_key(lv.slug), keys.forces_key(lv.slug)
    index = {}
    for i, a in enumerate(labelled_pool):
        if ek not in a.info or fk not in a.arrays:
            raise ValueError(f"labelled_pool[{i}] has no {lv.name} energy and forces ({ek!r}, {fk!r}).")
        index.setdefault(geometry_key(a), a)

    def label(images: list[Atoms]) -> list[Atoms]:
        out = []
        for i, atoms in enumerate(images):
            hit = index.get(geometry_key(atoms))
            if hit is None:
                raise ValueError(f"structure {i} ({atoms.get_chemical_formula()}) is not in the labelled pool.")
            out.append(bare(hit, keep_labels=True))
        return out

    return label


class MDCandidates:
    """Candidates from Langevin MD with the ensemble mean, from fixed start structures; see :func:`md_candidates`."""

    def __init__(self, starts, n_samples, temperature_K, interval_steps, equilibration_steps, timestep_fs, seed,
                 device):
        self.starts = [as_atoms(s, name=f"starts[{i}]") for i, s in enumerate(starts)]
        if not self.starts:
            raise ValueError("starts is empty; MD needs at least one start structure.")
        self.n_samples = check_positive_int(n_samples, "n_samples")
        if not temperature_K > 0:
            raise ValueError(f"temperature_K must be positive, got {temperature_K!r}.")
        self.settings = dict(temperature_K=float(temperature_K), interval_steps=interval_steps,
                             equilibration_steps=equilibration_steps, timestep_fs=float(timestep_fs))
        self.seed, self.device = int(seed), device

    @property
    def fingerprint(self) -> dict:
        """What the candidates depend on: the start geometries and the MD settings (saved with a run)."""
        return {"md": self.settings, "n_samples": self.n_samples, "seed": self.seed,
                "starts": [geometry_key(s) for s in self.starts]}

    def __call__(self, ensemble, round_index: int) -> list[Atoms]:
        calc = EnsembleCalculator(ensemble, device=self.device)
        out = []
        for i, start in enumerate(self.starts):
            seed = 1_000_003 * self.seed + 1009 * round_index + i
            try:
                out += md_sample(start, calc, self.n_samples, seed=seed, progress=False, **self.settings)
            except MDInstabilityError as err:  # an early ensemble may not hold a hot molecule together
                warnings.warn(f"round {round_index}: MD from starts[{i}] became unstable and gave no candidates "
                              f"({err})", RuntimeWarning, stacklevel=2)
        return out


def md_candidates(starts: Sequence[Atoms | str], n_samples: int = 10, temperature_K: float = 500.0,
                  interval_steps: int = 20, equilibration_steps: int = 100, timestep_fs: float = 0.5, seed: int = 0,
                  device: str = "auto") -> MDCandidates:
    """Candidates for :func:`~mlipviz.active.active_learning` from MD driven by each round's ensemble mean.

    Hot MD reaches the distorted geometries the potential does not know yet; the ensemble then scores them.

    Args:
        starts: Start structures (Å), or structure files; each runs one trajectory per round.
        n_samples: Snapshots per start and round.
        temperature_K: Langevin thermostat temperature, K.
        interval_steps: MD steps between snapshots.
        equilibration_steps: Steps discarded first.
        timestep_fs: Time step, fs.
        seed: Seed of the velocities and noise (each round and start gets its own).
        device: Torch device of the ensemble calculator.

    Returns:
        A callable ``(ensemble, round) -> list[Atoms]``.
    """
    return MDCandidates(starts, n_samples, temperature_K, interval_steps, equilibration_steps, timestep_fs, seed,
                        device)
