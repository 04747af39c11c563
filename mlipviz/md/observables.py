"""Structural observables of MD trajectories: h(r) and bond/angle distributions (spectra: :mod:`.spectra`).

Each takes a list of ``ase.Atoms`` or positions (n_frames, n_atoms, 3) Å with the atomic numbers (and the frame
interval in fs where time matters; :func:`as_trajectory` converts and checks), returns data, and has a
``plot_*`` function that draws it with matplotlib.

References:
    Fu et al., "Forces are not enough: Benchmark and critical evaluation for machine learning force fields
    with molecular simulations", TMLR 2023, arXiv:2210.07237 (h(r) and its MAE).
    Ramdas, García Trillos, Cuturi, Entropy 19, 47 (2017), doi:10.3390/e19020047 (Wasserstein-1 from CDFs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms, units
from ase.data import chemical_symbols

from ..geometry import bonds_of

__all__ = [
    "Trajectory", "as_trajectory", "pair_distances", "HR", "h_r", "h_r_mae", "plot_h_r",
    "StructureDistributions", "structure_distributions", "wasserstein_1", "distribution_distances",
    "plot_structure_distributions",
]

#: Most pair distances held in memory at once by :func:`h_r` (long runs are histogrammed in passes).
MAX_DISTANCES_PER_PASS = 2_000_000


@dataclass
class Trajectory:
    """Frames of one MD run as arrays.

    Attributes:
        positions: (n_frames, n_atoms, 3) Å (unwrapped for spectra; may hold NaN in a run that exploded).
        numbers, masses: (n_atoms,) atomic numbers and masses (amu).
        dt_fs: Time between frames, fs, or None when unknown.
        cells, pbc: (n_frames, 3, 3) cell vectors (Å) or None, and the (3,) periodic directions.
        velocities: (n_frames, n_atoms, 3) Å/fs, or None.
    """

    positions: np.ndarray
    numbers: np.ndarray
    masses: np.ndarray
    dt_fs: float | None = None
    cells: np.ndarray | None = None
    pbc: np.ndarray = field(default_factory=lambda: np.zeros(3, bool))
    velocities: np.ndarray | None = None

    n_frames = property(lambda self: len(self.positions))
    symbols = property(lambda self: [chemical_symbols[z] for z in self.numbers])

    def atoms(self, i: int) -> Atoms:
        """Frame ``i`` as ``ase.Atoms`` (positions Å, with velocities when known)."""
        a = Atoms(numbers=self.numbers, positions=self.positions[i], masses=self.masses, pbc=self.pbc,
                  cell=None if self.cells is None else self.cells[i])
        if self.velocities is not None:
            a.set_velocities(self.velocities[i] / units.fs)
        return a


def as_trajectory(frames, numbers=None, masses=None, dt_fs: float | None = None, velocities=None, cell=None,
                  pbc=None, name: str = "trajectory") -> Trajectory:
    """A :class:`Trajectory` from a list of ``ase.Atoms`` or from positions (n_frames, n_atoms, 3) Å.

    Args:
        frames: A :class:`Trajectory` (returned as is, with ``dt_fs`` filled in if given), a list of
            ``ase.Atoms`` (velocities are taken from their momenta when every frame has them), or an array
            (n_frames, n_atoms, 3) Å.
        numbers: (n_atoms,) atomic numbers; required with an array.
        masses: (n_atoms,) amu; default ASE's standard masses.
        dt_fs: Time between frames, fs.
        velocities, cell, pbc: With an array of positions: (n_frames, n_atoms, 3) Å/fs; (3, 3) or
            (n_frames, 3, 3) Å; periodic directions (default none).
        name: How to call the input in error messages.

    Raises:
        ValueError: naming ``name`` and the problem (empty, wrong shape, frames with different atoms, ...).
    """
    if dt_fs is not None and not (np.isfinite(dt_fs) and dt_fs > 0):
        raise ValueError(f"dt_fs must be a positive time in fs, got {dt_fs!r}.")
    dt = None if dt_fs is None else float(dt_fs)
    if isinstance(frames, Trajectory):
        return frames if dt is None else Trajectory(**{**frames.__dict__, "dt_fs": dt})
    frames = [frames] if isinstance(frames, Atoms) else frames
    if isinstance(frames, (list, tuple)) and frames and all(isinstance(f, Atoms) for f in frames):
        first = frames[0]
        for k, f in enumerate(frames):
            if len(f) != len(first) or np.any(f.numbers != first.numbers):
                raise ValueError(f"{name}: frame {k} has other atoms than frame 0 ({f.get_chemical_formula()} vs "
                                 f"{first.get_chemical_formula()}, same order needed).")
        with_v = all(f.has("momenta") for f in frames)
        vel = np.stack([f.get_velocities() for f in frames]) * units.fs if with_v else None
        pbc = np.asarray(first.pbc, bool)
        cells = np.stack([f.cell.array for f in frames]) if pbc.any() else None
        return Trajectory(np.stack([f.positions for f in frames]).astype(float), first.numbers.copy(),
                          first.get_masses().copy(), dt, cells, pbc, vel)
    pos = np.asarray(frames, dtype=float)
    if pos.ndim != 3 or pos.shape[-1] != 3 or len(pos) == 0 or pos.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty list of ase.Atoms or positions of shape (n_frames, n_atoms, 3) "
                         f"Å, got {type(frames).__name__} of shape {pos.shape}.")
    if numbers is None:
        raise ValueError(f"{name} is an array of positions: pass numbers= (the atomic numbers) too.")
    ref = Atoms(numbers=np.asarray(numbers), masses=masses)  # ASE checks the numbers
    if len(ref) != pos.shape[1]:
        raise ValueError(f"{name} has {pos.shape[1]} atoms per frame but numbers has {len(ref)}.")
    vel = None if velocities is None else np.asarray(velocities, dtype=float)
    if vel is not None and vel.shape != pos.shape:
        raise ValueError(f"velocities of {name} have shape {vel.shape}, positions {pos.shape}.")
    pbc = np.zeros(3, bool) if pbc is None else np.broadcast_to(np.asarray(pbc, bool), (3,)).copy()
    if pbc.any() and cell is None:
        raise ValueError(f"{name} is periodic (pbc={pbc.tolist()}) but no cell was given.")
    cells = np.broadcast_to(np.asarray(cell, float), (len(pos), 3, 3)).copy() if pbc.any() else None
    return Trajectory(pos, ref.numbers.copy(), ref.get_masses().copy(), dt, cells, pbc, vel)


def _vectors(traj: Trajectory, pairs: np.ndarray, frames: slice = slice(None)) -> np.ndarray:
    """r_j − r_i of each pair (i, j), (n_frames, n_pairs, 3) Å; minimum image when periodic."""
    vec = traj.positions[frames, pairs[:, 1]] - traj.positions[frames, pairs[:, 0]]
    if traj.pbc.any():
        from ase.geometry import find_mic

        vec = np.stack([find_mic(v, c, traj.pbc)[0] for v, c in zip(vec, traj.cells[frames])])
    return vec


def pair_distances(traj: Trajectory, pairs: np.ndarray, frames: slice = slice(None)) -> np.ndarray:
    """Distances of atom pairs in the given frames, (n_frames, n_pairs) Å; minimum image when periodic."""
    return np.linalg.norm(_vectors(traj, np.asarray(pairs, dtype=int).reshape(-1, 2), frames), axis=-1)


# --- h(r): the distribution of all pairwise distances --------------------------------------------------------


@dataclass
class HR:
    """h(r), the distribution of all interatomic distances (Fu et al. 2023).

    Attributes:
        edges_A, r_A: (n_bins + 1,) bin edges and (n_bins,) bin centres, Å.
        h_per_A: (n_bins,) probability density of a pair distance, 1/Å (integrates to 1 over the range).
        n_frames: Frames pooled.
    """

    edges_A: np.ndarray
    r_A: np.ndarray
    h_per_A: np.ndarray
    n_frames: int


def h_r(trajectory, r_max_A: float = 10.0, n_bins: int = 500, **kwargs) -> HR:
    """h(r) as in Fu et al. (2023): a histogram of all pairwise distances up to ``r_max_A``, as a density.

    The distances i < j of every frame are pooled and normalised like ``np.histogram(density=True)`` over the
    edges ``linspace(1e-6, r_max_A, n_bins + 1)`` (Fu et al.'s MDsim code), i.e. a distribution over distance
    averaged over frames. Periodic frames use minimum-image distances.

    Args:
        trajectory: List of ``ase.Atoms`` or positions (n_frames, n_atoms, 3) Å (then ``numbers=`` too).
        r_max_A, n_bins: Largest distance (Å) and number of bins.
        **kwargs: Passed to :func:`as_trajectory`.
    """
    traj = as_trajectory(trajectory, **kwargs)
    if not np.isfinite(traj.positions).all():
        bad = np.argmin(np.isfinite(traj.positions).all(axis=(1, 2)))
        raise ValueError(f"trajectory has NaN/inf positions from frame {bad}: cut it at the failure first.")
    if len(traj.numbers) < 2:
        raise ValueError("h(r) needs at least two atoms per frame.")
    edges = np.linspace(1e-6, float(r_max_A), int(n_bins) + 1)
    i, j = np.triu_indices(len(traj.numbers), k=1)
    counts = np.zeros(len(edges) - 1, dtype=np.int64)
    chunk = max(1, MAX_DISTANCES_PER_PASS // len(i))  # frames per pass: bounded memory for long runs
    for start in range(0, traj.n_frames, chunk):
        counts += np.histogram(pair_distances(traj, np.stack([i, j], 1), slice(start, start + chunk)), edges)[0]
    if counts.sum() == 0:
        raise ValueError(f"No pair distance falls below r_max_A={r_max_A} Å.")
    return HR(edges, 0.5 * (edges[1:] + edges[:-1]), counts / (counts.sum() * np.diff(edges)), traj.n_frames)


def h_r_mae(model: HR, reference: HR) -> float:
    """MAE between two h(r) curves as Fu et al. score it: ∫|h_model − h_ref| dr (dimensionless, 0 to 2).

    Equals their ``mean(|Δh|) · r_max`` on equal bins. Raises ValueError if the bins differ.
    """
    if model.edges_A.shape != reference.edges_A.shape or not np.allclose(model.edges_A, reference.edges_A):
        raise ValueError("The two h(r) curves have different bins; compute both with the same r_max_A and n_bins.")
    return float(np.sum(np.abs(model.h_per_A - reference.h_per_A) * np.diff(model.edges_A)))


def plot_h_r(curves: dict[str, HR], ax=None):
    """Plot h(r) curves (label -> :class:`HR`); returns the axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(5, 3.5))[1]
    for label, c in curves.items():
        ax.plot(c.r_A, c.h_per_A, label=label)
    ax.set(xlabel="r (Å)", ylabel="h(r) (1/Å)")
    ax.legend()
    return ax


# --- bond-length and bond-angle distributions ----------------------------------------------------------------


@dataclass
class StructureDistributions:
    """Bond lengths and bond angles along a trajectory.

    Attributes:
        bonds: (n_bonds, 2) atom pairs bonded in the first frame (covalent radii, :func:`bonds_of`).
        bond_labels: (n_bonds,) element pair, e.g. "H-O" (elements sorted).
        bond_lengths_A: (n_frames, n_bonds) Å.
        angles: (n_angles, 3) triplets (i, centre, k) of bonded atoms.
        angle_labels: (n_angles,) e.g. "H-O-H" (outer elements sorted).
        angles_deg: (n_frames, n_angles) degrees.
    """

    bonds: np.ndarray
    bond_labels: list[str]
    bond_lengths_A: np.ndarray
    angles: np.ndarray
    angle_labels: list[str]
    angles_deg: np.ndarray

    def samples(self) -> dict[str, np.ndarray]:
        """Pooled samples per type: "bond H-O" (Å), "angle H-O-H" (degrees)."""
        sets = (("bond", self.bond_labels, self.bond_lengths_A), ("angle", self.angle_labels, self.angles_deg))
        return {f"{kind} {lab}": values[:, [x == lab for x in labels]].ravel()
                for kind, labels, values in sets for lab in dict.fromkeys(labels)}


def structure_distributions(trajectory, bonds=None, **kwargs) -> StructureDistributions:
    """Bond lengths and angles of every frame, bonds from the first frame (or ``bonds``).

    Args:
        trajectory: List of ``ase.Atoms`` or positions (n_frames, n_atoms, 3) Å (then ``numbers=``).
        bonds: (n_bonds, 2) pairs to use instead of :func:`mlipviz.geometry.bonds_of` of the first frame.
        **kwargs: Passed to :func:`as_trajectory`.
    """
    traj = as_trajectory(trajectory, **kwargs)
    bonds = bonds_of(traj.atoms(0)) if bonds is None else np.asarray(bonds, dtype=int).reshape(-1, 2)
    sym = traj.symbols
    triplets = []
    for c in range(len(sym)):
        nb = sorted({int(b[1 - k]) for b in bonds for k in (0, 1) if b[k] == c})
        triplets += [(i, c, k) for n, i in enumerate(nb) for k in nb[n + 1:]]
    angles = np.array(triplets, dtype=int).reshape(-1, 3)
    u, v = _vectors(traj, angles[:, [1, 0]]), _vectors(traj, angles[:, [1, 2]])
    cos = np.sum(u * v, -1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
    return StructureDistributions(
        bonds, ["-".join(sorted((sym[i], sym[j]))) for i, j in bonds], pair_distances(traj, bonds),
        angles, ["-".join([min(sym[i], sym[k]), sym[c], max(sym[i], sym[k])]) for i, c, k in angles],
        np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def wasserstein_1(u, v) -> float:
    """Wasserstein-1 (earth mover's) distance of two 1-D samples, ∫|F_u(x) − F_v(x)| dx, in their unit."""
    u, v = np.sort(np.asarray(u, float).ravel()), np.sort(np.asarray(v, float).ravel())
    if len(u) == 0 or len(v) == 0:
        raise ValueError("wasserstein_1 needs two non-empty samples.")
    x = np.sort(np.concatenate([u, v]))
    fu = np.searchsorted(u, x[:-1], side="right") / len(u)
    fv = np.searchsorted(v, x[:-1], side="right") / len(v)
    return float(np.sum(np.abs(fu - fv) * np.diff(x)))


def distribution_distances(model: StructureDistributions, reference: StructureDistributions) -> dict[str, float]:
    """Wasserstein-1 distance per bond type (Å) and angle type (degrees) present in both.

    Returns e.g. ``{"bond H-O": 0.004, "angle H-O-H": 1.2}``.
    """
    m, r = model.samples(), reference.samples()
    return {k: wasserstein_1(m[k], r[k]) for k in m if k in r}


def plot_structure_distributions(curves: dict[str, StructureDistributions], bins: int = 60, axes=None):
    """Histograms of bond lengths (left) and angles (right), one line per trajectory and type."""
    import matplotlib.pyplot as plt

    axes = axes if axes is not None else plt.subplots(1, 2, figsize=(9, 3.5))[1]
    for label, d in curves.items():
        for key, x in d.samples().items():
            ax = axes[0] if key.startswith("bond") else axes[1]
            ax.hist(x, bins=bins, density=True, histtype="step", label=f"{label}: {key.split(' ', 1)[1]}")
    axes[0].set(xlabel="bond length (Å)", ylabel="density")
    axes[1].set(xlabel="angle (degrees)", ylabel="density")
    for ax in axes:
        ax.legend(fontsize="small")
    return axes
