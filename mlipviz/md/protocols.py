"""Stability protocols on the batched engine: the Fu et al. rule applied while replicas run, and survival.

:func:`bond_monitor` stops a replica at the first recorded frame where a bond leaves its reference mean by more
than the tolerance, so the compute goes to the replicas still alive; :func:`fu_protocol` runs N replicas of one
molecule (by default as Fu et al.: Nosé–Hoover at 500 K, 0.5 fs) and returns each replica's
:class:`~mlipviz.md.stability.StabilityReport` (with its failure frame, for attribution), the MLIPAudit score of
the same trajectories and the Kaplan–Meier survival curve.

Fu et al. ran 300 ps. A shorter horizon answers a shorter question, and the result says which horizon it ran.

References:
    Fu et al., "Forces are not enough: benchmark and critical evaluation for machine learning force fields with
    molecular simulations", TMLR 2023, arXiv:2210.07237.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from .batched import BatchedMD, BatchedMDResult
from .observables import as_trajectory
from .stability import (AuditScore, BondRule, StabilityReport, SurvivalCurve, fu_stability, mlipaudit_score,
                        survival_curve)

__all__ = ["StabilityRun", "bond_monitor", "fu_protocol"]


def bond_monitor(reference, tolerance_A: float = 0.5, contacts: bool = False):
    """A :class:`~mlipviz.md.BatchedMD` monitor that applies the Fu et al. bond rule at every recorded frame.

    Args:
        reference: Reference structures of the molecule (a list of ``ase.Atoms``, e.g. the training set); bonds are
            those of the first, their reference lengths the means over all.
        tolerance_A: Allowed deviation of any bond from its mean, Å.
        contacts: Also stop a system where two atoms that are not bonded come closer than their smallest reference
            distance by more than ``tolerance_A`` (see :func:`mlipviz.md.fu_stability`).

    Returns:
        ``monitor(system, atoms) -> reason or None``; it refuses (ValueError) a system with other atoms.
    """
    if not (np.isfinite(tolerance_A) and tolerance_A > 0):
        raise ValueError(f"tolerance_A must be a positive distance in Å, got {tolerance_A!r}.")
    ref = as_trajectory(reference, name="reference")
    rule = BondRule.from_reference(ref, contacts)
    pairs, n_bonds = rule.pairs, len(rule.bonds)

    def monitor(system: int, atoms: Atoms) -> str | None:
        if len(atoms) != len(ref.numbers) or np.any(atoms.numbers != ref.numbers):
            raise ValueError(f"system {system} ({atoms.get_chemical_formula()}) does not hold the reference's atoms "
                             "in the same order: the bond rule needs replicas of the reference molecule.")
        dev = rule.deviations(as_trajectory([atoms]))[0]
        if np.isinf(dev).any():
            return "non-finite interatomic distance"
        if len(dev) and dev.max() > tolerance_A:
            b = int(np.argmax(dev))
            i, j = (int(x) for x in pairs[b])
            pair, r = f"{atoms[i].symbol}{i}–{atoms[j].symbol}{j}", atoms.get_distance(i, j)
            if b < n_bonds:
                return (f"bond {pair} at {r:.2f} Å, {dev[b]:.2f} Å from its reference mean {rule.mean_A[b]:.2f} Å "
                        f"(tolerance {tolerance_A:g} Å)")
            return (f"non-bonded {pair} at {r:.2f} Å, {dev[b]:.2f} Å inside its closest reference distance "
                    f"{rule.closest_A[b - n_bonds]:.2f} Å (tolerance {tolerance_A:g} Å)")
        return None

    return monitor


@dataclass
class StabilityRun:
    """The outcome of :func:`fu_protocol`.

    Attributes:
        reports: One Fu et al. report per replica (failure frame, bond, structure at failure).
        audit: The MLIPAudit score of each replica's whole trajectory, or None when failed replicas were stopped.
        survival: Kaplan–Meier curve over the replicas, fs.
        result: The batched run (energies, temperatures, frames).
        horizon_ps: The horizon every replica was asked to reach, ps.
    """

    reports: list[StabilityReport]
    audit: list[AuditScore] | None
    survival: SurvivalCurve
    result: BatchedMDResult
    horizon_ps: float

    @property
    def n_failed(self) -> int:
        return sum(not r.stable for r in self.reports)

    @property
    def time_to_failure_ps(self) -> np.ndarray:
        """(n_replicas,) failure time, ps; NaN for a replica that reached the horizon."""
        return np.array([np.nan if r.stable else r.failure_time_fs / 1e3 for r in self.reports])

    def summary(self) -> str:
        """One line: replicas failed, median time to failure and the horizon."""
        ttf = self.time_to_failure_ps
        median = f"{np.nanmedian(ttf):.2f} ps" if self.n_failed else "none failed"
        audit = "" if self.audit is None else f"; mean MLIPAudit score {np.mean([a.score for a in self.audit]):.3f}"
        return (f"{self.n_failed}/{len(self.reports)} replicas collapsed within {self.horizon_ps:g} ps "
                f"(median time to failure: {median}){audit}")


def fu_protocol(model, molecule: Atoms, reference, horizon_ps: float, n_replicas: int = 8,
                temperature_K: float = 500.0, timestep_fs: float = 0.5, ensemble: str = "nose_hoover",
                record_every: int = 20, tolerance_A: float = 0.5, contacts: bool = False, seed: int = 0,
                stop_failed: bool = True,
                directory=None, resume: bool = False, progress: bool = True, **engine) -> StabilityRun:
    """Fu et al.'s stability test for a molecule: N replicas until the horizon or until their bonds break.

    Args:
        model: A saved model directory or model (see :class:`~mlipviz.md.BatchedMD`).
        molecule: Start structure, Å (every replica starts here, with its own velocities).
        reference: Reference structures for the bond means (e.g. the training set), same atoms in the same order.
        horizon_ps: Simulated time per replica, ps (Fu et al.: 300).
        n_replicas: Replicas, run in one batch.
        temperature_K, timestep_fs, ensemble: As Fu et al.: 500 K, 0.5 fs, "nose_hoover".
        record_every: Steps between checked frames (20 steps = 10 fs at 0.5 fs).
        tolerance_A: The bond tolerance, Å.
        contacts: Also fail non-bonded pairs that come too close (see :func:`mlipviz.md.fu_stability`).
        seed: Seed of the start velocities.
        stop_failed: Stop a replica at its failure frame (saves its compute; the frame is kept). The MLIPAudit
            score needs whole runs, so it is computed only with ``stop_failed=False``.
        directory, resume: Run directory for trajectories, log and checkpoints, and whether to resume there.
        progress: Show a progress bar.
        **engine: More :class:`~mlipviz.md.BatchedMD` arguments (device, tau_fs, skin, compile, threads, ...).

    Returns:
        A :class:`StabilityRun`.
    """
    if not (np.isfinite(horizon_ps) and horizon_ps > 0):
        raise ValueError(f"horizon_ps must be a positive time in ps, got {horizon_ps!r}.")
    monitor = bond_monitor(reference, tolerance_A, contacts) if stop_failed else None
    md = BatchedMD(molecule, model, n_replicas=n_replicas, ensemble=ensemble, timestep_fs=timestep_fs,
                   temperature_K=temperature_K, seed=seed, **engine)
    n_steps = max(record_every, int(round(horizon_ps * 1e3 / md.timestep_fs / record_every)) * record_every)
    result = md.run(n_steps, record_every=record_every, directory=directory, resume=resume, monitor=monitor,
                    progress=progress)
    dt_frame = md.timestep_fs * record_every
    reports = [fu_stability(result.trajectory(k), reference, tolerance_A, dt_fs=dt_frame, contacts=contacts)
               for k in range(result.n_systems)]
    audit = None if stop_failed else [mlipaudit_score(result.trajectory(k)) for k in range(result.n_systems)]
    return StabilityRun(reports, audit, survival_curve(reports), result, n_steps * md.timestep_fs / 1e3)
