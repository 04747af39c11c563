"""Stability of MD runs: energy drift in NVE, bond integrity, Fu et al.'s collapse time, the MLIPAudit score
and survival curves over many runs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms, units

from ..geometry import bonds_of
from .observables import as_trajectory, pair_distances
from .thermo import kinetic_temperature

__all__ = [
    "DriftReport", "energy_drift", "BondReport", "bond_check", "bonds_of",
    "BondRule", "StabilityReport", "fu_stability", "plot_stability", "AuditScore", "mlipaudit_score",
    "SurvivalCurve", "survival_curve", "plot_survival",
]


@dataclass
class DriftReport:
    """Energy conservation of an NVE run.

    Attributes:
        slope_meV_per_atom_ps: Slope of a least-squares line through E_tot(t), meV/atom/ps.
        max_deviation_meV_per_atom: Largest |E_tot - E_tot(0)|, meV/atom.
        std_meV_per_atom: Standard deviation of E_tot, meV/atom.
    """

    slope_meV_per_atom_ps: float
    max_deviation_meV_per_atom: float
    std_meV_per_atom: float


def energy_drift(time_fs: np.ndarray, etot_eV: np.ndarray, n_atoms: int) -> DriftReport:
    """Drift of the total energy of an NVE run.

    Args:
        time_fs: (n,) times, fs.
        etot_eV: (n,) total energies, eV.
        n_atoms: Atoms in the system (for per-atom values).
    """
    t = np.asarray(time_fs, dtype=float)
    e = np.asarray(etot_eV, dtype=float)
    if t.shape != e.shape or t.ndim != 1 or len(t) < 2:
        raise ValueError(f"time_fs and etot_eV must be 1-D of equal length >= 2, got {t.shape} and {e.shape}.")
    slope = np.polyfit(t / 1000.0, e, 1)[0]  # eV/ps
    return DriftReport(
        slope_meV_per_atom_ps=1e3 * slope / n_atoms,
        max_deviation_meV_per_atom=1e3 * np.max(np.abs(e - e[0])) / n_atoms,
        std_meV_per_atom=1e3 * np.std(e) / n_atoms,
    )


@dataclass
class BondReport:
    """Bond integrity along a trajectory.

    Attributes:
        stable: True when every bond stayed within ``tolerance`` of its starting length in every frame.
        tolerance: Allowed change of a bond length, Å.
        bonds: (n_bonds, 2) atom index pairs bonded in the first frame.
        max_change: (n_bonds,) largest |r(t) - r(0)| over the run, Å.
        first_broken_frame: Index of the first frame where some bond left the tolerance, or None.
    """

    stable: bool
    tolerance: float
    bonds: np.ndarray
    max_change: np.ndarray
    first_broken_frame: int | None


def bond_check(frames: list[Atoms], tolerance: float = 0.5) -> BondReport:
    """Whether every bond of the first frame stays within ``tolerance`` (Å) of its starting length.

    Args:
        frames: Trajectory frames, Å; the first defines the bonds and their reference lengths.
        tolerance: Allowed change, Å.
    """
    if not frames:
        raise ValueError("frames is empty: no trajectory to check.")
    bonds = bonds_of(frames[0])
    if len(bonds) == 0:
        return BondReport(True, tolerance, bonds, np.zeros(0), None)
    pos = np.stack([f.get_positions() for f in frames])
    lengths = np.linalg.norm(pos[:, bonds[:, 0]] - pos[:, bonds[:, 1]], axis=-1)
    change = np.abs(lengths - lengths[0])
    bad = np.where((change > tolerance).any(axis=1))[0]
    first = int(bad[0]) if len(bad) else None
    return BondReport(first is None, tolerance, bonds, change.max(axis=0), first)


# --- Fu et al. stability, the MLIPAudit score and survival over many runs ---------------------------------------


@dataclass
class StabilityReport:
    """Where an MD run first leaves the reference bond lengths (Fu et al. 2023).

    Attributes:
        tolerance_A: Allowed deviation of a bond from its reference mean, Å.
        bonds: (n_bonds, 2) pairs bonded in the first reference structure.
        reference_lengths_A: (n_bonds,) mean bond lengths over the reference data, Å.
        max_deviation_A: (n_frames,) largest |r_b(t) − mean_b| per frame, Å (inf for non-finite positions); with
            ``contacts``, also the largest approach of a non-bonded pair below its reference minimum.
        dt_fs: Time between frames, fs, or None.
        failure_frame: First frame beyond the tolerance, or None when the run stayed stable.
        failed_bond: (i, j) of the bond (or, with ``contacts``, non-bonded pair) that deviated most in the failure
            frame, or None.
        failed_symbols: Its elements, e.g. ("O", "H"), or None.
        failed_length_A: Its length in the failure frame, Å, or None.
        failure_atoms: The failure frame as ``ase.Atoms``, or None.
    """

    tolerance_A: float
    bonds: np.ndarray
    reference_lengths_A: np.ndarray
    max_deviation_A: np.ndarray
    dt_fs: float | None
    failure_frame: int | None = None
    failed_bond: tuple[int, int] | None = None
    failed_symbols: tuple[str, str] | None = None
    failed_length_A: float | None = None
    failure_atoms: Atoms | None = None

    @property
    def stable(self) -> bool:
        return self.failure_frame is None

    @property
    def n_frames(self) -> int:
        return len(self.max_deviation_A)

    @property
    def failure_time_fs(self) -> float | None:
        """Time of the failure frame, fs (frame index × dt), or None."""
        return None if self.failure_frame is None or self.dt_fs is None else self.failure_frame * self.dt_fs

    @property
    def horizon_fs(self) -> float | None:
        """Time of the last frame, fs, or None without dt."""
        return None if self.dt_fs is None else (self.n_frames - 1) * self.dt_fs


def nonbonded_pairs(n_atoms: int, bonds: np.ndarray) -> np.ndarray:
    """All pairs (i < j) of ``n_atoms`` atoms that are not in ``bonds``, shape (n_pairs, 2)."""
    i, j = np.triu_indices(n_atoms, 1)
    bonded = {(int(a), int(b)) for a, b in bonds}
    keep = np.array([(a, b) not in bonded for a, b in zip(i.tolist(), j.tolist())], dtype=bool)
    return np.stack([i[keep], j[keep]], axis=1).reshape(-1, 2)


@dataclass
class BondRule:
    """The reference of Fu et al.'s rule for one molecule, from reference structures.

    Attributes:
        bonds: (n_bonds, 2) pairs bonded in the first reference structure (:func:`bonds_of`).
        mean_A: (n_bonds,) their mean lengths over the reference structures, Å.
        others: (n_others, 2) the non-bonded pairs watched for contacts (empty without contacts).
        closest_A: (n_others,) their smallest distance in the reference structures, Å.
    """

    bonds: np.ndarray
    mean_A: np.ndarray
    others: np.ndarray
    closest_A: np.ndarray

    @classmethod
    def from_reference(cls, reference, contacts: bool = False) -> BondRule:
        """The rule of a :class:`~mlipviz.md.observables.Trajectory` of reference structures."""
        bonds = bonds_of(reference.atoms(0))
        others = nonbonded_pairs(len(reference.numbers), bonds) if contacts else np.zeros((0, 2), dtype=int)
        return cls(bonds, pair_distances(reference, bonds).mean(axis=0), others,
                   pair_distances(reference, others).min(axis=0) if len(others) else np.zeros(0))

    @property
    def pairs(self) -> np.ndarray:
        """(n_bonds + n_others, 2): the columns of :meth:`deviations`."""
        return np.concatenate([self.bonds, self.others]).astype(int)

    def deviations(self, traj) -> np.ndarray:
        """(n_frames, n_pairs) Å: |r − mean| of each bond, then how far each watched non-bonded pair is inside its
        closest reference distance (0 outside it); inf where a distance is not finite."""
        with np.errstate(invalid="ignore"):
            dev = np.concatenate([np.abs(pair_distances(traj, self.bonds) - self.mean_A),
                                  np.maximum(self.closest_A - pair_distances(traj, self.others), 0.0)], axis=1)
        dev[~np.isfinite(dev)] = np.inf
        return dev


def fu_stability(trajectory, reference, tolerance_A: float = 0.5, dt_fs: float | None = None,
                 contacts: bool = False, **kwargs) -> StabilityReport:
    """Fu et al.'s stability criterion: the first frame where a bond leaves its reference mean by > tolerance.

    Bonds are those of the first reference structure (covalent radii, :func:`bonds_of`); their reference
    lengths are the means over all reference structures (e.g. the training set). A frame with non-finite
    positions fails too. Fu et al. report the collapse time as this frame's index × the frame interval.

    Args:
        trajectory: List of ``ase.Atoms`` or positions (n_frames, n_atoms, 3) Å (then ``numbers=``).
        reference: Reference structures (list of ``ase.Atoms`` or positions array), same atoms in the same order.
        tolerance_A: Allowed deviation, Å (0.5 in Fu et al.).
        dt_fs: Time between frames, fs.
        contacts: Also fail a frame where two atoms that are not bonded come closer than their smallest distance
            in the reference data by more than ``tolerance_A`` (mlipviz's addition: Fu et al.'s rule watches bonds
            only, and misses two molecules fusing while their own bonds stay intact).
        **kwargs: Passed to :func:`mlipviz.md.observables.as_trajectory` (numbers, cell, pbc, ...).

    Reference:
        Fu et al., "Forces are not enough", TMLR 2023, arXiv:2210.07237.
    """
    if not tolerance_A > 0:
        raise ValueError(f"tolerance_A must be a positive distance in Å, got {tolerance_A!r}.")
    traj = as_trajectory(trajectory, dt_fs=dt_fs, **kwargs)
    ref_kwargs = {k: v for k, v in kwargs.items() if k in ("numbers", "masses", "cell", "pbc")}
    ref = as_trajectory(reference, name="reference", **ref_kwargs)
    if ref.positions.shape[1:] != traj.positions.shape[1:] or np.any(ref.numbers != traj.numbers):
        raise ValueError("reference and trajectory must hold the same atoms in the same order.")
    rule = BondRule.from_reference(ref, contacts)
    dev, pairs = rule.deviations(traj), rule.pairs
    worst = dev.max(axis=1) if len(pairs) else np.zeros(traj.n_frames)
    worst[~np.isfinite(traj.positions).all(axis=(1, 2))] = np.inf
    report = StabilityReport(float(tolerance_A), rule.bonds, rule.mean_A, worst, traj.dt_fs)
    bad = np.where(worst > tolerance_A)[0]
    if len(bad):
        f = int(bad[0])
        report.failure_frame, report.failure_atoms = f, traj.atoms(f)
        if len(pairs):
            b = int(np.argmax(dev[f]))
            i, j = (int(x) for x in pairs[b])
            report.failed_bond, report.failed_symbols = (i, j), (traj.symbols[i], traj.symbols[j])
            report.failed_length_A = float(pair_distances(traj, pairs[b:b + 1], slice(f, f + 1))[0, 0])
    return report


def plot_stability(reports: dict[str, StabilityReport], ax=None):
    """Largest bond deviation against time (fs, or frame without dt), the tolerance and each failure."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    for label, r in reports.items():
        t = np.arange(r.n_frames) * (r.dt_fs or 1.0)
        line, = ax.plot(t, np.where(np.isfinite(r.max_deviation_A), r.max_deviation_A, np.nan), label=label)
        if r.failure_frame is not None:
            ax.axvline(t[r.failure_frame], color=line.get_color(), ls=":")
    tol = {r.tolerance_A for r in reports.values()}
    for x in tol:
        ax.axhline(x, color="k", ls="--", lw=0.8)
    ax.set_xlabel("time (fs)" if all(r.dt_fs for r in reports.values()) else "frame")
    ax.set_ylabel("max |r − r_ref| (Å)")
    ax.legend()
    return ax


@dataclass
class AuditScore:
    """MLIPAudit stability score of one run.

    Attributes:
        score: 1 stable; 0.5 + ½·f/N after a hydrogen detached at frame f; ½·f/N after an explosion at f.
        n_frames: N.
        explosion_frame: First exploded frame, or None.
        detach_frame: First frame with a detached hydrogen, or None.
        detached_hydrogen: Index of that hydrogen, or None.
        partner: Index of the atom it was bonded to in the first frame, or None.
    """

    score: float
    n_frames: int
    explosion_frame: int | None
    detach_frame: int | None
    detached_hydrogen: int | None = None
    partner: int | None = None


def mlipaudit_score(trajectory, hydrogen_cutoff_A: float = 2.5, explosion_factor: float = 5.0,
                    temperature_limit_K: float = 10_000.0, **kwargs) -> AuditScore:
    """MLIPAudit's stability score of one run.

    * **Explodes** at the first frame f with non-finite positions, or with a first-frame bond longer than
      ``explosion_factor`` × its first-frame length, or (when velocities are known) a kinetic temperature
      above ``temperature_limit_K`` (MLIPAudit's own test is the temperature). Score ½·f/N.
    * Otherwise a **hydrogen detaches** at the first frame f where a hydrogen is more than ``hydrogen_cutoff_A``
      from the atom it was bonded to in the first frame. Score 0.5 + ½·f/N. (MLIPAudit's code also forgives a
      hydrogen that has moved next to another heavy atom; here any detachment counts.)
    * Otherwise the score is 1.

    Args:
        trajectory: List of ``ase.Atoms`` or positions (n_frames, n_atoms, 3) Å (then ``numbers=``).
        hydrogen_cutoff_A: Detachment distance, Å.
        explosion_factor: Bond stretch factor that counts as an explosion (dimensionless, > 1).
        temperature_limit_K: Kinetic temperature that counts as an explosion, K.
        **kwargs: Passed to :func:`mlipviz.md.observables.as_trajectory`.

    Reference:
        InstaDeep, MLIPAudit stability benchmark (2025), https://github.com/instadeepai/mlipaudit.
    """
    if not explosion_factor > 1:
        raise ValueError(f"explosion_factor must be > 1, got {explosion_factor!r}.")
    traj = as_trajectory(trajectory, **kwargs)
    n = traj.n_frames
    exploded = ~np.isfinite(traj.positions).all(axis=(1, 2))
    bonds = bonds_of(traj.atoms(0))
    with np.errstate(invalid="ignore"):
        lengths = pair_distances(traj, bonds) if len(bonds) else np.zeros((n, 0))
        exploded |= (lengths > explosion_factor * lengths[0]).any(axis=1)
        if traj.velocities is not None:
            ekin = 0.5 * np.einsum("i,tia->t", traj.masses, (traj.velocities / units.fs) ** 2)
            exploded |= kinetic_temperature(ekin, 3 * len(traj.numbers)) > temperature_limit_K  # over 3N, as MLIPAudit
    if exploded.any():
        f = int(np.argmax(exploded))
        return AuditScore(0.5 * f / n, n, f, None)
    is_h = traj.numbers == 1
    hb = np.array([b for b in bonds if is_h[b[0]] != is_h[b[1]]], dtype=int).reshape(-1, 2)
    if len(hb):
        gone = pair_distances(traj, hb) > hydrogen_cutoff_A
        if gone.any():
            f, b = (int(x) for x in np.argwhere(gone)[0])
            h, p = (hb[b, 0], hb[b, 1]) if is_h[hb[b, 0]] else (hb[b, 1], hb[b, 0])
            return AuditScore(0.5 + 0.5 * f / n, n, None, f, int(h), int(p))
    return AuditScore(1.0, n, None, None)


@dataclass
class SurvivalCurve:
    """Fraction of runs not yet failed against time (Kaplan–Meier).

    Attributes:
        time_fs: (k,) step times, fs, starting at 0.
        surviving: (k,) fraction of runs not failed up to and including each time.
        time_to_failure_fs: (n_runs,) failure time, or the run's horizon when it did not fail (censored).
        failed: (n_runs,) whether each run failed.
    """

    time_fs: np.ndarray
    surviving: np.ndarray
    time_to_failure_fs: np.ndarray
    failed: np.ndarray

    def at(self, t_fs: float) -> float:
        """Surviving fraction at time ``t_fs`` (fs)."""
        return float(self.surviving[np.searchsorted(self.time_fs, t_fs, side="right") - 1])


def survival_curve(reports: list[StabilityReport]) -> SurvivalCurve:
    """Survival of many runs (e.g. seeds) from their :class:`StabilityReport` (each needs ``dt_fs``).

    A run that never failed is censored at its horizon (its last frame). With a common horizon the
    Kaplan–Meier estimate is simply the fraction of runs that have not failed yet; with different horizons it
    accounts for runs that stopped early.

    Reference:
        Kaplan, Meier, J. Am. Stat. Assoc. 53, 457 (1958), doi:10.1080/01621459.1958.10501452.
    """
    if not reports:
        raise ValueError("reports is empty: no runs to make a survival curve of.")
    if any(r.dt_fs is None for r in reports):
        raise ValueError("Every report needs dt_fs (pass dt_fs= to fu_stability) to put failures on a time axis.")
    failed = np.array([not r.stable for r in reports])
    t = np.array([r.failure_time_fs if not r.stable else r.horizon_fs for r in reports], dtype=float)
    times, surv, s = [0.0], [1.0], 1.0
    for u in np.unique(t[failed]):
        at_risk = np.sum(t >= u)
        s *= 1.0 - np.sum(failed & (t == u)) / at_risk
        times.append(float(u))
        surv.append(s)
    return SurvivalCurve(np.array(times), np.array(surv), t, failed)


def plot_survival(curves: dict[str, SurvivalCurve], ax=None):
    """Step plot of surviving fraction against time (ps); censored runs marked with '+'."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(5, 3.5))[1]
    for label, c in curves.items():
        end = max(c.time_to_failure_fs.max(), c.time_fs[-1])
        line, = ax.step(np.append(c.time_fs, end) / 1000, np.append(c.surviving, c.surviving[-1]), where="post",
                        label=label)
        cens = c.time_to_failure_fs[~c.failed]
        ax.plot(cens / 1000, [c.at(x) for x in cens], "+", color=line.get_color())
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("fraction of runs not failed")
    ax.set_ylim(-0.02, 1.02)
    ax.legend()
    return ax
