"""NVE energy conservation as a scan: several time steps, several velocity seeds, with the spread.

One drift slope depends on the start velocities (a hot draw can under-resolve a stretch), so a single number
says little. :func:`drift_scan` runs :func:`mlipviz.md.run_md` in NVE for every (time step, seed) over the same
simulated time and reports slopes and fluctuations per time step with their spread over seeds.

References:
    Hairer, Lubich, Wanner, Acta Numerica 12, 399 (2003), doi:10.1017/S0962492902000144 (the energy error of
    velocity Verlet is bounded and O(Δt²)).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from .engine import MDInstabilityError, _check_md_args, _check_timestep, _real, run_md
from .stability import energy_drift

__all__ = ["DriftScan", "drift_scan", "plot_drift_scan"]


@dataclass
class DriftScan:
    """NVE energy conservation over a scan of time steps, several velocity seeds per time step.

    Attributes:
        timesteps_fs: (n_dt,) time steps, fs.
        seeds: (n_seeds,) velocity seeds.
        slope_meV_per_atom_ps: (n_dt, n_seeds) least-squares slope of E_tot(t), meV/atom/ps; NaN for a stopped run.
        rms_meV_per_atom: (n_dt, n_seeds) standard deviation of E_tot, meV/atom.
        max_deviation_meV_per_atom: (n_dt, n_seeds) largest |E_tot − E_tot(0)|, meV/atom.
        failed_step: (n_dt, n_seeds) step where a run stopped with :class:`MDInstabilityError`, −1 if it completed.
        duration_fs: Simulated time of every run, fs.
        temperature_K: Start temperature, K.
    """

    timesteps_fs: np.ndarray
    seeds: np.ndarray
    slope_meV_per_atom_ps: np.ndarray
    rms_meV_per_atom: np.ndarray
    max_deviation_meV_per_atom: np.ndarray
    failed_step: np.ndarray
    duration_fs: float
    temperature_K: float

    def over_seeds(self, name: str = "slope_meV_per_atom_ps") -> dict[str, np.ndarray]:
        """Spread over seeds of one (n_dt, n_seeds) field, ignoring stopped runs.

        Args:
            name: "slope_meV_per_atom_ps", "rms_meV_per_atom" or "max_deviation_meV_per_atom".

        Returns:
            (n_dt,) arrays "mean", "std" (sample, ddof=1), "min" and "max", in the field's unit; NaN where no
            run of that time step completed.
        """
        values = np.asarray(getattr(self, name), dtype=float)
        with warnings.catch_warnings():  # a time step where every seed stopped gives NaN, not a warning
            warnings.simplefilter("ignore", RuntimeWarning)
            return {"mean": np.nanmean(values, axis=1), "std": np.nanstd(values, axis=1, ddof=1),
                    "min": np.nanmin(values, axis=1), "max": np.nanmax(values, axis=1)}


def drift_scan(
    atoms: Atoms,
    calculator,
    timesteps_fs=(0.25, 0.5, 1.0),
    seeds=(0, 1, 2),
    duration_fs: float = 500.0,
    temperature_K: float = 300.0,
    progress: bool = False,
) -> DriftScan:
    """NVE energy drift and fluctuation for every (time step, seed): drift as a scan with its spread, not one number.

    One drift slope depends on the start velocities (a hot draw can under-resolve a stretch), so each time step is
    run from several seeds, all for the same simulated time. Velocity Verlet's energy error is O(Δt²) (Hairer,
    Lubich & Wanner 2003): the RMS fluctuation of E_tot should fall ~4× when Δt halves, and a drift that does not
    shrink with Δt points at the potential (non-smooth, or non-conservative forces) rather than the integrator.
    Each seed starts at exactly ``temperature_K`` (:func:`run_md`); momenta carried by ``atoms`` are ignored.

    Args:
        atoms: Start structure, Å.
        calculator: Any ASE calculator.
        timesteps_fs: Time steps to scan, fs.
        seeds: Velocity seeds per time step.
        duration_fs: Simulated time of each run, fs (at least 10 steps of the largest time step).
        temperature_K: Start temperature, K.
        progress: Show a progress bar per run.

    Returns:
        A :class:`DriftScan`. A run that stops with :class:`MDInstabilityError` is recorded in ``failed_step``
        (NaN drift) and reported with a warning.

    Raises:
        TypeError, ValueError: bad input, named, before any run.
    """
    dts = [_check_timestep(dt) for dt in np.atleast_1d(np.asarray(timesteps_fs, dtype=object))]
    seeds = list(np.atleast_1d(np.asarray(seeds, dtype=object)))
    if not dts or not seeds:
        raise ValueError(f"timesteps_fs and seeds must be non-empty, got {timesteps_fs!r} and {seeds!r}.")
    duration = _real(duration_fs, "duration_fs")
    n_steps = [int(round(duration / dt)) if np.isfinite(duration) else 0 for dt in dts]
    if min(n_steps) < 10:
        raise ValueError(f"duration_fs={duration_fs!r} must cover at least 10 steps of every time step {dts}.")
    for dt, n in zip(dts, n_steps):
        for seed in seeds:
            _check_md_args(atoms, calculator, n, dt, "nve", temperature_K, 0.0, 1, seed)
    start = atoms.copy()
    start.arrays.pop("momenta", None)
    shape = (len(dts), len(seeds))
    slope, rms, dev = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    failed = np.full(shape, -1, dtype=int)
    for i, (dt, n) in enumerate(zip(dts, n_steps)):
        for j, seed in enumerate(seeds):
            try:
                res = run_md(start, calculator, n, dt, "nve", temperature_K, seed=seed, progress=progress)
            except MDInstabilityError as err:
                failed[i, j] = err.step
                warnings.warn(f"drift_scan: NVE at {dt:g} fs, seed {seed}: {err}", RuntimeWarning, stacklevel=2)
                continue
            d = energy_drift(res.time_fs, res.etot, res.n_atoms)
            slope[i, j], rms[i, j] = d.slope_meV_per_atom_ps, d.std_meV_per_atom
            dev[i, j] = d.max_deviation_meV_per_atom
    return DriftScan(np.array(dts), np.array(seeds), slope, rms, dev, failed, duration, float(temperature_K))


def plot_drift_scan(scan: DriftScan, axes=None):
    """Drift slope (mean, min–max over seeds, each seed) and RMS energy fluctuation against the time step.

    Args:
        scan: A :class:`DriftScan`.
        axes: Two matplotlib axes (slope, fluctuation), or None to make a new figure.

    Returns:
        The two axes.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
    ax_s, ax_r = axes
    dt, slope = scan.timesteps_fs, scan.over_seeds()
    mean = slope["mean"]
    for j, seed in enumerate(scan.seeds):
        ax_s.plot(dt, scan.slope_meV_per_atom_ps[:, j], "o", alpha=0.5, label=f"seed {seed}")
    ax_s.errorbar(dt, mean, yerr=[mean - slope["min"], slope["max"] - mean], fmt="k_", ms=12, capsize=3,
                  label="mean, min–max")
    ax_s.axhline(0.0, color="0.6", lw=0.8)
    ax_s.set(xscale="log", xlabel="time step (fs)", ylabel="E_tot drift (meV/atom/ps)")
    ax_s.legend(fontsize="small")
    rms = scan.over_seeds("rms_meV_per_atom")["mean"]
    ax_r.loglog(dt, rms, "ko-", label="RMS of E_tot (mean over seeds)")
    ok = np.isfinite(rms) & (rms > 0)
    if ok.any():
        k = np.flatnonzero(ok)[np.argmin(dt[ok])]
        ax_r.loglog(np.sort(dt), rms[k] * (np.sort(dt) / dt[k]) ** 2, "--", color="0.5", label="∝ Δt²")
    ax_r.set(xlabel="time step (fs)", ylabel="E_tot fluctuation (meV/atom)")
    ax_r.legend(fontsize="small")
    return axes
