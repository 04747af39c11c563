"""Vibrational spectra of MD trajectories: the velocity autocorrelation function and its power spectrum.

References:
    Dickey, Paskin, Phys. Rev. 188, 1407 (1969), doi:10.1103/PhysRev.188.1407 (spectrum from the VACF).
    Thomas, Brehm, Fligg, Vöhringer, Kirchner, Phys. Chem. Chem. Phys. 15, 6608 (2013),
    doi:10.1039/C3CP44302G (windowing and zero padding of MD spectra).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import units

from .observables import as_trajectory

__all__ = ["SPEED_OF_LIGHT_CM_PER_FS", "VibrationalSpectrum", "plot_spectrum", "vibrational_spectrum"]

#: Speed of light, cm/fs: a wavenumber (cm⁻¹) is a frequency (1/fs) divided by this.
SPEED_OF_LIGHT_CM_PER_FS = units._c * 100 * 1e-15


@dataclass
class VibrationalSpectrum:
    """Mass-weighted VACF and its power spectrum.

    Attributes:
        lag_fs: (n_lags,) correlation lags, fs.
        vacf: (n_lags,) Σ m_i <v_i(0)·v_i(t)> / Σ m_i <v_i²>, dimensionless (1 at lag 0).
        wavenumber_cm: (n_freq,) cm⁻¹.
        intensity: (n_freq,) power spectrum, scaled to a maximum of 1 above ``min_wavenumber_cm``.
        peaks_cm: Peak positions, cm⁻¹, ascending (parabolic interpolation between grid points).
        resolution_cm, grid_cm: Resolution of the windowed VACF, 1/(c · max lag), and the spacing of the
            zero-padded frequency grid, cm⁻¹.
        velocities_from: "velocities" or "finite differences".
    """

    lag_fs: np.ndarray
    vacf: np.ndarray
    wavenumber_cm: np.ndarray
    intensity: np.ndarray
    peaks_cm: np.ndarray
    resolution_cm: float
    grid_cm: float
    velocities_from: str


def vibrational_spectrum(trajectory, dt_fs: float | None = None, max_lag_fs: float | None = None,
                         zero_pad: int = 8, min_wavenumber_cm: float = 100.0, prominence: float = 0.05,
                         **kwargs) -> VibrationalSpectrum:
    """Mass-weighted VACF and vibrational power spectrum with peak positions (Dickey & Paskin 1969).

    Velocities come from the frames (ASE momenta) or else from central differences of the positions
    (frames 1..n-2; the difference damps amplitudes by sin(ωΔt)/(ωΔt) but does not move peaks). The VACF
    is the unbiased FFT estimate (zero padded to 2n, no circular wrap), averaged over time origins. It is cut
    at ``max_lag_fs`` (default half the run), multiplied by the decaying half of a Hann window, mirrored to an
    even function and zero padded to ``zero_pad`` times its length before the cosine transform.

    Args:
        trajectory: List of ``ase.Atoms`` or positions (n_frames, n_atoms, 3) Å (then ``numbers=``).
        dt_fs: Time between frames, fs (required unless the trajectory carries it).
        max_lag_fs: Longest correlation lag kept, fs; sets the resolution 1/(c · max_lag_fs).
        zero_pad: Zero-padding factor (interpolates the spectrum; does not add resolution).
        min_wavenumber_cm: Peaks below this (translation, rotation) are not reported, cm⁻¹.
        prominence: Smallest peak prominence reported, as a fraction of the largest intensity.
        **kwargs: Passed to :func:`as_trajectory`.
    """
    from scipy.signal import find_peaks

    traj = as_trajectory(trajectory, dt_fs=dt_fs, **kwargs)
    if (dt := traj.dt_fs) is None:
        raise ValueError("dt_fs (the time between frames, fs) is needed for a spectrum; pass dt_fs=...")
    by_fd = traj.velocities is None
    v = (traj.positions[2:] - traj.positions[:-2]) / (2 * dt) if by_fd else traj.velocities
    if not np.isfinite(v).all():
        raise ValueError("trajectory has NaN/inf positions or velocities: cut it at the failure first.")
    if (n := len(v)) < 8:
        raise ValueError(f"A spectrum needs at least 8 velocity frames, got {n}.")
    n_lag = n // 2 if max_lag_fs is None else int(round(max_lag_fs / dt)) + 1
    if not 2 <= n_lag <= n:
        raise ValueError(f"max_lag_fs={max_lag_fs} must lie between {dt} fs and the run length {(n - 1) * dt} fs.")
    f = np.fft.rfft((np.sqrt(traj.masses)[None, :, None] * v).reshape(n, -1), n=2 * n, axis=0)
    c = np.fft.irfft(np.sum(np.abs(f) ** 2, axis=1), n=2 * n)[:n_lag] / (n - np.arange(n_lag))
    c = c / c[0]
    window = np.hanning(2 * n_lag + 1)[n_lag:-1]  # 1 at lag 0, decaying to ~0 at max lag
    n_fft = zero_pad * (2 * n_lag - 1)  # the length of the even (mirrored) function, times zero_pad
    cw = c * window  # cosine transform of the even function: C(0) + 2 Σ_τ>0 C(τ) cos(2πντ)
    spec = np.abs(2 * np.fft.rfft(cw, n=n_fft).real - cw[0])
    wn = np.fft.rfftfreq(n_fft, d=dt) / SPEED_OF_LIGHT_CM_PER_FS
    above = wn >= min_wavenumber_cm
    spec = spec / (spec[above].max() if above.any() else spec.max())
    idx, _ = find_peaks(np.where(above, spec, 0.0), prominence=prominence)
    a, b, d = spec[idx - 1], spec[idx], spec[idx + 1]  # parabolic vertex through the 3 points at each maximum
    peaks = wn[idx] + 0.5 * (a - d) / (a - 2 * b + d) * (wn[1] - wn[0])  # b > a, b >= d: never 0/0
    return VibrationalSpectrum(np.arange(n_lag) * dt, c, wn, spec, peaks,
                               1.0 / ((n_lag - 1) * dt * SPEED_OF_LIGHT_CM_PER_FS), float(wn[1] - wn[0]),
                               "finite differences" if by_fd else "velocities")


def plot_spectrum(spectra: dict[str, VibrationalSpectrum], reference_cm=None, axes=None):
    """VACFs against lag in fs (left) and power spectra in cm⁻¹ with their peaks (right), with dashed lines
    at ``reference_cm`` (e.g. harmonic wavenumbers); returns the two axes."""
    import matplotlib.pyplot as plt

    axes = axes if axes is not None else plt.subplots(1, 2, figsize=(10, 3.5))[1]
    ref = np.atleast_1d(reference_cm if reference_cm is not None else [])
    for label, s in spectra.items():
        axes[0].plot(s.lag_fs, s.vacf, label=label)
        line, = axes[1].plot(s.wavenumber_cm, s.intensity, label=label)
        axes[1].plot(s.peaks_cm, np.interp(s.peaks_cm, s.wavenumber_cm, s.intensity), "v", color=line.get_color())
    for k, x in enumerate(ref):
        axes[1].axvline(x, color="k", ls="--", lw=0.8, label="reference" if k == 0 else None)
    top = max([4000.0 / 1.2, *ref] + [s.peaks_cm.max() for s in spectra.values() if len(s.peaks_cm)])
    axes[1].set_xlim(0, 1.2 * top)
    axes[0].set(xlabel="lag (fs)", ylabel="VACF (normalised)")
    axes[1].set(xlabel="wavenumber (cm⁻¹)", ylabel="intensity (normalised)")
    for ax in axes:
        ax.legend()
    return axes
